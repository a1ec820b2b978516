import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCommand } from './suite.js';

/** The default suite shipped with the package: the FER-like regime scaled down to minutes. */
export const DEFAULT_SUITE = fileURLToPath(new URL('../../probes/fer-demo.yaml', import.meta.url));

export async function demoCommand(o: { backend?: string; quiet?: boolean; jobs?: string }): Promise<void> {
  if (!existsSync(DEFAULT_SUITE)) throw new Error(`default suite missing: ${DEFAULT_SUITE}`);
  await runCommand(DEFAULT_SUITE, { backend: o.backend, quiet: o.quiet, resume: true, jobs: o.jobs });
}
