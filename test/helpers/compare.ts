/** Numeric comparison helpers shared by tests. */
import type { Tensor } from '../../src/onnx/tensor.js';

/** max |a−b| / max(|b|∞, tiny): a relative error over the whole tensor. */
export function relError(a: Tensor, b: Tensor): number {
  if (a.dims.join() !== b.dims.join()) return Number.POSITIVE_INFINITY;
  const x = a.data as ArrayLike<number>;
  const y = b.data as ArrayLike<number>;
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(Number(x[i]) - Number(y[i])));
    scale = Math.max(scale, Math.abs(Number(y[i])));
  }
  return diff / scale;
}

export function maxRelError(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  let worst = 0;
  for (const k of Object.keys(b)) worst = Math.max(worst, a[k] ? relError(a[k]!, b[k]!) : Number.POSITIVE_INFINITY);
  return worst;
}
