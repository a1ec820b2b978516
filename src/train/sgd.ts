import * as tf from '@tensorflow/tfjs';
import { SGD_STEP } from '../backend/index.js';

/**
 * torch.optim.SGD with momentum and coupled weight decay (dampening 0, no Nesterov):
 *   d = g + wd * p;  buf = d on the first step, else buf = momentum * buf + d;  p -= lr * buf.
 * (tfjs' l2 regulariser would add 2*l2*p; this adds wd*p as PyTorch does.)
 */
export interface SgdParam {
  name: string;
  v: tf.Variable;
  /** Weight decay of this parameter (default: the optimiser's). */
  weightDecay?: number;
}

export class TorchSGD {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly params: SgdParam[];
  /** Momentum buffers by parameter name; absent until the parameter's first step. */
  readonly buffers = new Map<string, tf.Variable>();
  /** false: always the unfused tfjs ops (tests compare the two). */
  fused?: boolean;

  constructor(params: SgdParam[], opts: { lr: number; momentum?: number; weightDecay?: number }) {
    this.params = params;
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  /** One step with the given gradients (by parameter name); parameters without a gradient are skipped. */
  step(grads: Record<string, tf.Tensor>): void {
    const lr = this.lr;
    for (const p of this.params) {
      const g = grads[p.name];
      if (!g) continue;
      const wd = p.weightDecay ?? this.weightDecay;
      if (this.momentum !== 0 && this.fused !== false && tf.getKernel(SGD_STEP, tf.getBackend()) !== undefined) {
        // One fused kernel (the compiled wasm module): the same float32 operations as below.
        const buf = this.buffers.get(p.name);
        const [np, nb] = tf.engine().runKernel(SGD_STEP, { p: p.v, buf: buf ?? p.v, g },
          { lr, momentum: this.momentum, weightDecay: wd, first: !buf } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        p.v.assign(np!);
        if (buf) buf.assign(nb!);
        else this.buffers.set(p.name, tf.variable(nb!, false, `${p.v.name}.momentum_buffer`));
        tf.dispose([np!, nb!]);
        continue;
      }
      tf.tidy(() => {
        let d: tf.Tensor = wd !== 0 ? tf.add(g, tf.mul(p.v, wd)) : g;
        if (this.momentum !== 0) {
          const buf = this.buffers.get(p.name);
          if (!buf) {
            this.buffers.set(p.name, tf.variable(d, false, `${p.v.name}.momentum_buffer`));
          } else {
            buf.assign(tf.add(tf.mul(buf, this.momentum), d));
            d = buf;
          }
        }
        p.v.assign(tf.sub(p.v, tf.mul(d, lr)));
      });
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
