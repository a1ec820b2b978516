/**
 * Operational failures (the disk, the permissions, the folder: not the user's input) as one line:
 * `<path>: <what happened>; <what to do>`, exit 1. Undefined for anything else (a bug: stack trace).
 */
const WHAT: Record<string, [string, string]> = {
  ENOSPC: ['no space left on the device', 'free some space (or pass --out on another disk), then continue with --resume'],
  EDQUOT: ['disk quota exceeded', 'free some space or raise the quota, then continue with --resume'],
  EACCES: ['permission denied', 'make it writable for this user (or pass --out elsewhere), then continue with --resume'],
  EPERM: ['operation not permitted', 'make it writable for this user (or pass --out elsewhere), then continue with --resume'],
  EROFS: ['read-only file system', 'pass --out on a writable file system, then continue with --resume'],
  EMFILE: ['too many open files', 'raise the limit (ulimit -n) or run fewer jobs at once, then continue with --resume'],
  ENFILE: ['too many open files on the system', 'close other programs or run fewer jobs at once, then continue with --resume'],
  ENOENT: ['it vanished while the run was writing there', 'check the folder (a removed or unmounted --out), then continue with --resume'],
  EIO: ['input/output error', 'check the disk, then continue with --resume'],
};

export function operationalMessage(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || !err.code || !(err.code in WHAT)) return undefined;
  if (err.syscall === undefined && err.path === undefined) return undefined;
  const [what, todo] = WHAT[err.code]!;
  return `${err.path ?? (err as { dest?: string }).dest ?? '(a file)'}: ${what} (${err.code}${err.syscall ? ` in ${err.syscall}` : ''}); ${todo}`;
}
