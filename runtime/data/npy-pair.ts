/**
 * A dataset from an NPY pair: `x.npy` (float32/float64 or uint8 samples, or int32/int64 token ids;
 * first axis = sample) and `y.npy` (integer class labels [n] or [n, positions...], or float targets
 * [n, ...]). uint8 inputs are scaled to [0, 1]; integer inputs are kept as ids.
 */
import { SngdError } from '../../src/errors.js';
import { readNpy } from '../../src/data/npy.js';
import { elementCount } from '../../src/onnx/tensor.js';
import type { Dataset } from './dataset.js';

export function loadNpyPair(xFile: string, yFile: string, name: string): Dataset {
  const x = readNpy(xFile);
  const y = readNpy(yFile);
  const count = x.dims[0];
  if (count === undefined || x.dims.length < 2) throw new SngdError(`${xFile}: expected samples along the first axis (shape [n, ...]), got [${x.dims.join(', ')}]`);
  if (y.dims[0] !== count) throw new SngdError(`${yFile}: ${y.dims[0] ?? 0} labels for ${count} samples in ${xFile}`);
  const sampleShape = x.dims.slice(1);
  const sampleSize = elementCount(sampleShape);
  let xs: Float32Array;
  if (x.dtype === 'float32') xs = x.data as Float32Array;
  else if (x.dtype === 'uint8') xs = Float32Array.from(x.data as Uint8Array, (v) => v / 255);
  else if (x.dtype === 'float64') xs = Float32Array.from(x.data as Float64Array);
  else if (x.dtype === 'int64' || x.dtype === 'int32') {
    xs = Float32Array.from(x.data as ArrayLike<number | bigint>, (v) => Number(v));
    if (xs.some((v) => Math.abs(v) > 2 ** 24)) throw new SngdError(`${xFile}: token ids beyond 2^24 are not supported`);
  } else throw new SngdError(`${xFile}: samples must be float32, float64, uint8 or integer token ids, got ${x.dtype}`);
  const integer = ['int64', 'int32', 'uint8', 'int8', 'int16', 'uint16'].includes(y.dtype);
  if (integer) {
    const data = BigInt64Array.from(y.data as ArrayLike<number | bigint>, (v) => BigInt(v));
    let classes = 0;
    for (const v of data) {
      if (v < 0n) throw new SngdError(`${yFile}: class labels must be ≥ 0, found ${v}`);
      classes = Math.max(classes, Number(v) + 1);
    }
    return { name, sampleSize, sampleShape, count, x: xs, labels: { kind: 'class', data, classes, labelShape: y.dims.slice(1) } };
  }
  if (y.dtype !== 'float32' && y.dtype !== 'float64') throw new SngdError(`${yFile}: labels must be integer classes [n, ...] or float targets, got ${y.dtype} [${y.dims.join(', ')}]`);
  const labelSize = elementCount(y.dims.slice(1));
  return { name, sampleSize, sampleShape, count, x: xs, labels: { kind: 'float', data: Float32Array.from(y.data as ArrayLike<number>), labelSize } };
}
