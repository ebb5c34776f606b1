/**
 * In-memory datasets and seeded batching. Samples are float32 rows (already normalized) and
 * labels are int64 class indices or float targets; a batch is reshaped to the model's input shape.
 */
import { SngdError } from '../../src/errors.js';
import { Rng } from '../../src/numerics/random.js';
import type { Tensor } from '../../src/onnx/tensor.js';

export interface Dataset {
  name: string;
  /** Elements per sample (e.g. 784) and the natural sample shape (e.g. [1, 28, 28]). */
  sampleSize: number;
  sampleShape: number[];
  count: number;
  x: Float32Array;
  /** int64 class labels, or float targets of `labelSize` elements per sample. */
  labels: { kind: 'class'; data: BigInt64Array; classes: number } | { kind: 'float'; data: Float32Array; labelSize: number };
}

export interface Split {
  train: Dataset;
  validation?: Dataset;
  test?: Dataset;
}

export function subset(d: Dataset, start: number, end: number, name: string): Dataset {
  const labels = d.labels.kind === 'class'
    ? { ...d.labels, data: d.labels.data.subarray(start, end) }
    : { ...d.labels, data: d.labels.data.subarray(start * d.labels.labelSize, end * d.labels.labelSize) };
  return { ...d, name, count: end - start, x: d.x.subarray(start * d.sampleSize, end * d.sampleSize), labels };
}

/**
 * The sample shape a model input expects: its dims after the batch axis, which must hold as many
 * elements as a sample (MNIST feeds [N,784] and [N,1,28,28] models alike).
 */
export function inputShapeFor(d: Dataset, modelShape: (number | string)[] | undefined, inputName: string): number[] {
  if (!modelShape || modelShape.length === 0) return d.sampleShape;
  const rest = modelShape.slice(1);
  if (rest.some((s) => typeof s !== 'number')) {
    if (rest.length === d.sampleShape.length) return d.sampleShape;
    throw new SngdError(`model input '${inputName}' has shape [${modelShape.join(', ')}]: only the batch axis may be symbolic`);
  }
  const size = (rest as number[]).reduce((a, b) => a * b, 1);
  if (size !== d.sampleSize) {
    throw new SngdError(`model input '${inputName}' takes samples of shape [${rest.join(', ')}] (${size} values) but ${d.name} samples have ${d.sampleSize} values (shape [${d.sampleShape.join(', ')}])`);
  }
  return rest as number[];
}

/** A seeded permutation of 0..n−1 (Fisher–Yates). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

export interface Batch {
  x: Tensor;
  labels: Tensor;
  size: number;
}

/** Gathers the samples `order[start..end)` into one batch tensor pair. */
export function makeBatch(d: Dataset, order: ArrayLike<number>, start: number, end: number, sampleShape: number[]): Batch {
  const n = end - start;
  const x = new Float32Array(n * d.sampleSize);
  for (let i = 0; i < n; i++) {
    const s = order[start + i]!;
    x.set(d.x.subarray(s * d.sampleSize, (s + 1) * d.sampleSize), i * d.sampleSize);
  }
  let labels: Tensor;
  if (d.labels.kind === 'class') {
    const l = new BigInt64Array(n);
    for (let i = 0; i < n; i++) l[i] = d.labels.data[order[start + i]!]!;
    labels = { dtype: 'int64', dims: [n], data: l };
  } else {
    const k = d.labels.labelSize;
    const l = new Float32Array(n * k);
    for (let i = 0; i < n; i++) l.set(d.labels.data.subarray(order[start + i]! * k, (order[start + i]! + 1) * k), i * k);
    labels = { dtype: 'float32', dims: [n, k], data: l };
  }
  return { x: { dtype: 'float32', dims: [n, ...sampleShape], data: x }, labels, size: n };
}
