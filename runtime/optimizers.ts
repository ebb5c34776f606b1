/**
 * Parameter updates on the host (the train graph returns gradients; a step is a few fused loops
 * over Float32Arrays). SNGD itself is plain GD, or momentum, on W̃': the natural-gradient part
 * lives in the graph's Fisher layers. Momentum buffers of W̃' live in W̃' coordinates, so a refresh
 * remaps them like the weights (`remapState`).
 *
 *   sgd:       w ← w − η·g
 *   momentum:  v ← μ·v + g;  w ← w − η·v
 *   adam:      m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − η·m̂/(√v̂ + ε)
 *   adamw:     adam, then w ← w − η·λ·w for weights (rank ≥ 2), decoupled from the gradient
 *
 * L2 regularisation (for sgd, momentum, adam, sngd) is part of the gradient, computed in the graph.
 */
export type OptimizerName = 'sngd' | 'sgd' | 'momentum' | 'adam' | 'adamw';
export const OPTIMIZERS: OptimizerName[] = ['sngd', 'sgd', 'momentum', 'adam', 'adamw'];

export interface OptimizerConfig {
  name: OptimizerName;
  /** Momentum μ for 'momentum' (default 0.9) and 'sngd' (default 0: plain GD as in the reference). */
  momentum: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** AdamW's decoupled weight decay λ. */
  weightDecay: number;
}

export interface ParamInfo {
  name: string;
  /** Rank of the tensor: rank ≥ 2 counts as a weight for decoupled decay. */
  rank: number;
}

export class Optimizer {
  /** Per-parameter buffers: momentum `v`, or Adam's `m` and `v`. */
  readonly buffers = new Map<string, { m?: Float32Array; v?: Float32Array }>();
  /** Number of updates applied (Adam's bias correction). */
  t = 0;

  constructor(readonly config: OptimizerConfig) {}

  step(params: Map<string, Float32Array>, grads: Map<string, Float32Array>, infos: ParamInfo[], lr: number): void {
    this.t++;
    const { name, momentum, beta1, beta2, eps, weightDecay } = this.config;
    for (const { name: p, rank } of infos) {
      const w = params.get(p)!;
      const g = grads.get(p)!;
      const buf = this.buffer(p, w.length);
      if (name === 'adam' || name === 'adamw') {
        const m = buf.m!;
        const v = buf.v!;
        const c1 = 1 / (1 - beta1 ** this.t);
        const c2 = 1 / (1 - beta2 ** this.t);
        const decay = name === 'adamw' && rank >= 2 ? lr * weightDecay : 0;
        for (let i = 0; i < w.length; i++) {
          const gi = g[i]!;
          const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
          const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
          w[i] = w[i]! - lr * ((mi * c1) / (Math.sqrt(vi * c2) + eps)) - decay * w[i]!;
        }
      } else if (this.usesMomentum()) {
        const v = buf.v!;
        for (let i = 0; i < w.length; i++) {
          const vi = (v[i] = momentum * v[i]! + g[i]!);
          w[i] = w[i]! - lr * vi;
        }
      } else {
        for (let i = 0; i < w.length; i++) w[i] = w[i]! - lr * g[i]!;
      }
    }
  }

  usesMomentum(): boolean {
    return (this.config.name === 'momentum' || this.config.name === 'sngd') && this.config.momentum > 0;
  }

  private buffer(p: string, n: number): { m?: Float32Array; v?: Float32Array } {
    let b = this.buffers.get(p);
    if (!b) {
      const adam = this.config.name === 'adam' || this.config.name === 'adamw';
      b = adam ? { m: new Float32Array(n), v: new Float32Array(n) } : this.usesMomentum() ? { v: new Float32Array(n) } : {};
      this.buffers.set(p, b);
    }
    return b;
  }
}

export function defaultOptimizerConfig(name: OptimizerName): OptimizerConfig {
  return { name, momentum: name === 'momentum' ? 0.9 : 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: name === 'adamw' ? 1e-2 : 0 };
}
