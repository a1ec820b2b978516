/**
 * SIGINT and SIGTERM during training: the first asks the run to stop at its next safe point (between
 * steps; the completed epochs stay, the manifest says 'interrupted', --resume continues); a second
 * one exits at once, which tears nothing (every durable write is atomic or a whole, fsynced append).
 * Exit codes: 130 (SIGINT), 143 (SIGTERM).
 */
let received: NodeJS.Signals | undefined;
let installed = false;

export function exitCodeOf(sig: NodeJS.Signals): number {
  return sig === 'SIGINT' ? 130 : 143;
}

/** Install the handlers (once) and return the poll the trainer calls. */
export function stopOnSignals(): () => boolean {
  if (!installed) {
    installed = true;
    const on = (sig: NodeJS.Signals) => {
      if (received) {
        process.stderr.write(`spikeprobe: ${sig} again: stopping now\n`);
        process.exit(exitCodeOf(sig));
      }
      received = sig;
      process.stderr.write(`spikeprobe: ${sig}: stopping at the next safe point (completed epochs are kept; continue with --resume); send it again to stop at once\n`);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  }
  return () => received !== undefined;
}

/** The signal that stopped training, if one did. */
export function stopSignal(): NodeJS.Signals | undefined {
  return received;
}

/** Thrown where a signal stopped training, after everything is released; main exits with its code. */
export class StoppedBySignal extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
    this.name = 'StoppedBySignal';
  }
  get exitCode(): number {
    return exitCodeOf(this.signal);
  }
}
