/**
 * In-memory datasets and seeded batching. Samples are rows of numbers (normalized floats, or token
 * ids kept exactly in float32 up to 2^24) and labels are int64 class indices — one per sample, or
 * one per position (a language model's next tokens) — or float targets; a batch is reshaped to the
 * model's input shape and fed as float32 or int64 as the model's input wants.
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
  /**
   * int64 class labels (`labelShape` per sample: [] for one label, [T] for one per position), or
   * float targets of `labelSize` elements per sample.
   */
  labels: { kind: 'class'; data: BigInt64Array; classes: number; labelShape: number[] } | { kind: 'float'; data: Float32Array; labelSize: number };
}

/** Label elements per sample. */
export function labelsPerSample(d: Dataset): number {
  return d.labels.kind === 'class' ? d.labels.labelShape.reduce((a, b) => a * b, 1) : d.labels.labelSize;
}

export interface Split {
  train: Dataset;
  validation?: Dataset;
  test?: Dataset;
}

export function subset(d: Dataset, start: number, end: number, name: string): Dataset {
  const k = labelsPerSample(d);
  const labels = d.labels.kind === 'class'
    ? { ...d.labels, data: d.labels.data.subarray(start * k, end * k) }
    : { ...d.labels, data: d.labels.data.subarray(start * k, end * k) };
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

/**
 * Gathers the samples `order[start..end)` into one batch tensor pair; `inputType` 'int64' feeds
 * token ids to an integer input (embedding lookups).
 */
export function makeBatch(d: Dataset, order: ArrayLike<number>, start: number, end: number, sampleShape: number[], inputType: 'float32' | 'int64' = 'float32'): Batch {
  const n = end - start;
  const size = d.sampleSize;
  const xf = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const s = order[start + i]!;
    xf.set(d.x.subarray(s * size, (s + 1) * size), i * size);
  }
  const x: Tensor = inputType === 'int64'
    ? { dtype: 'int64', dims: [n, ...sampleShape], data: BigInt64Array.from(xf, (v) => BigInt(v)) }
    : { dtype: 'float32', dims: [n, ...sampleShape], data: xf };
  const k = labelsPerSample(d);
  let labels: Tensor;
  if (d.labels.kind === 'class') {
    const l = new BigInt64Array(n * k);
    for (let i = 0; i < n; i++) l.set(d.labels.data.subarray(order[start + i]! * k, (order[start + i]! + 1) * k), i * k);
    labels = { dtype: 'int64', dims: [n, ...d.labels.labelShape], data: l };
  } else {
    const l = new Float32Array(n * k);
    for (let i = 0; i < n; i++) l.set(d.labels.data.subarray(order[start + i]! * k, (order[start + i]! + 1) * k), i * k);
    labels = { dtype: 'float32', dims: [n, k], data: l };
  }
  return { x, labels, size: n };
}
