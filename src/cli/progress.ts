import cliProgress from 'cli-progress';
import type { Progress } from '../train/trainer.js';
import { fmtSeconds } from '../analysis/format.js';

/**
 * A progress bar with ETA and loss on a TTY (stderr); plain periodic lines otherwise (CI logs).
 */
export class ProgressView {
  private bar?: cliProgress.SingleBar;
  private lastLine = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly t0 = Date.now();
  private total = 0;

  constructor(
    private readonly label: string,
    private readonly quiet = false,
  ) {}

  update(p: Progress, doneBefore: number, total: number): void {
    if (this.quiet) return;
    const done = doneBefore + p.epoch * p.iters + p.iter;
    this.total = total;
    if (this.tty) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          { format: `${this.label} |{bar}| {percentage}% | epoch {ep} | loss {loss} | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 200 },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, done, { ep: '', loss: '' });
      }
      this.bar.setTotal(total);
      this.bar.update(done, { ep: `${p.epoch + 1}/${p.epochs}`, loss: p.loss.toFixed(4) });
    } else if (Date.now() - this.lastLine > 10_000) {
      this.lastLine = Date.now();
      const el = (Date.now() - this.t0) / 1000;
      const eta = done > 0 ? (el / done) * (total - done) : NaN;
      process.stderr.write(`${this.label} ${((100 * done) / total).toFixed(1)}% epoch ${p.epoch + 1}/${p.epochs} loss ${p.loss.toFixed(4)} ETA ${formatSeconds(eta)}\n`);
    }
  }

  stop(): void {
    this.bar?.update(this.total);
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** A duration for progress lines (src/analysis/format.ts fmtSeconds). */
export const formatSeconds = fmtSeconds;
