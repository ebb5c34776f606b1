/**
 * The local Fisher matrices (SNGD.md §2): an exponential moving average of each layer's batch
 * statistic, and its damped form F_λ = F + (ε_rel·tr(F) + ε_abs)·I.
 *
 * Two starts: 'identity' (the reference code: the EMA starts at I) and 'zero' (bias-corrected:
 * starts at 0 and is divided by the total weight 1 − β^t, so early refreshes see the data).
 */
export type EmaInit = 'identity' | 'zero';

/**
 * A dense layer's EMA: `blocks` matrices of dim × dim one after another (1 for a layer block; m
 * for a layer with unit blocks, F_j per output unit), each damped by its own trace.
 */
export class FisherEma {
  readonly f: Float64Array;
  /** Statistics folded in so far (for the bias correction). */
  count = 0;

  constructor(readonly dim: number, readonly decay: number, readonly init: EmaInit, readonly blocks = 1) {
    this.f = new Float64Array(blocks * dim * dim);
    if (init === 'identity') for (let j = 0; j < blocks; j++) for (let i = 0; i < dim; i++) this.f[(j * dim + i) * dim + i] = 1;
  }

  update(stat: Float32Array): void {
    const beta = this.decay;
    for (let i = 0; i < this.f.length; i++) this.f[i] = beta * this.f[i]! + (1 - beta) * stat[i]!;
    this.count++;
  }

  /** F_λ (every block: F_j + (ε_rel·tr F_j + ε_abs)·I) as float32 for the root graph; `damping` multiplies ε_rel (raised after failures). */
  damped(epsRel: number, epsAbs: number): Float32Array {
    const d = this.dim;
    const scale = this.init === 'zero' && this.count > 0 ? 1 / (1 - this.decay ** this.count) : 1;
    const out = new Float32Array(this.f.length);
    for (let i = 0; i < out.length; i++) out[i] = this.f[i]! * scale;
    for (let j = 0; j < this.blocks; j++) {
      const base = j * d * d;
      let trace = 0;
      for (let i = 0; i < d; i++) trace += this.f[base + i * d + i]! * scale;
      const lambda = epsRel * trace + epsAbs;
      for (let i = 0; i < d; i++) out[base + i * d + i]! += lambda;
    }
    return out;
  }
}

/**
 * A Nyström layer's EMAs (SNGD.md §4): the landmark columns C = F[:, I] (d × k, row-major) and
 * diag(F) (d), held in one array `f` = [C, diag] so checkpoints and divergence snapshots treat it
 * like a dense EMA. 'identity' starts at F = I (C[I_j, j] = 1, diag = 1); 'zero' starts at 0 and
 * is bias-corrected like FisherEma.
 */
export class NystromEma {
  readonly f: Float64Array;
  readonly columns: Float64Array;
  readonly diagonal: Float64Array;
  count = 0;

  constructor(readonly dim: number, readonly rank: number, landmarks: ArrayLike<number>, readonly decay: number, readonly init: EmaInit) {
    this.f = new Float64Array(dim * rank + dim);
    this.columns = this.f.subarray(0, dim * rank);
    this.diagonal = this.f.subarray(dim * rank);
    if (init === 'identity') {
      for (let j = 0; j < rank; j++) this.columns[landmarks[j]! * rank + j] = 1;
      this.diagonal.fill(1);
    }
  }

  update(columns: Float32Array, diagonal: Float32Array): void {
    const beta = this.decay;
    for (let i = 0; i < this.columns.length; i++) this.columns[i] = beta * this.columns[i]! + (1 - beta) * columns[i]!;
    for (let i = 0; i < this.dim; i++) this.diagonal[i] = beta * this.diagonal[i]! + (1 - beta) * diagonal[i]!;
    this.count++;
  }

  /** The bias correction factor (1 for 'identity'). */
  scale(): number {
    return this.init === 'zero' && this.count > 0 ? 1 / (1 - this.decay ** this.count) : 1;
  }

  /** tr(F) from the diagonal EMA (bias-corrected). */
  trace(): number {
    let t = 0;
    for (let i = 0; i < this.dim; i++) t += this.diagonal[i]!;
    return t * this.scale();
  }
}
