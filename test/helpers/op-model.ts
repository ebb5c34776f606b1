/** Single-op models for per-op gradient tests: `[op, attrs, input specs]` rows become a model + feeds. */
import { GraphBuilder } from '../../models/builder.js';
import type { AttrValue } from '../../src/ir/emit.js';
import type { Model } from '../../src/ir/graph.js';
import { Rng } from '../../src/numerics/random.js';
import { elementCount, int64Tensor, type Tensor } from '../../src/onnx/tensor.js';

/**
 * An input: a float tensor (`[2, 3]`), a float tensor kept away from 0 or strictly positive
 * (`{ shape, kind: 'positive' }`), an int64 constant (`{ ints: [...], dims }`), a bool tensor,
 * or '' for an omitted optional input. Float inputs are model inputs (checked); constants are initializers.
 */
export type InputSpec =
  | number[]
  | { shape: number[]; kind: 'float' | 'positive' | 'nonzero' | 'const'; lo?: number; hi?: number }
  | { ints: number[]; dims?: number[] }
  | { bools: boolean[]; dims: number[] }
  | '';

export interface OpCase {
  op: string;
  attrs?: Record<string, AttrValue>;
  inputs: InputSpec[];
  /** Number of outputs the node produces (default 1); the first is checked unless `output` says. */
  outputs?: number;
  output?: number;
  opset?: number;
  label?: string;
  /** Per-case finite-difference settings (each use needs a comment saying why). */
  check?: { eps?: number; rtol?: number; atol?: number };
  /** Declare float inputs' dims symbolic (dims of 1 stay static: shape inference takes a symbol to be a size that is not 1, like a batch). */
  symbolicDims?: boolean;
  /** Feed int64 constants (shapes, axes, pads…) as graph inputs instead of initializers: rules must handle values known only at run time. */
  runtimeInts?: boolean;
}

export function opModel(c: OpCase, seed = 3): { model: Model; feeds: Record<string, Tensor>; wrt: string[] } {
  const rng = new Rng(seed);
  const b = new GraphBuilder(c.op, c.opset ?? 17);
  const feeds: Record<string, Tensor> = {};
  const wrt: string[] = [];
  const names = c.inputs.map((spec, k) => {
    if (spec === '') return '';
    if (Array.isArray(spec) || ('shape' in spec && spec.kind !== 'const')) {
      const shape = Array.isArray(spec) ? spec : spec.shape;
      const kind = Array.isArray(spec) ? 'float' : spec.kind;
      const lo = Array.isArray(spec) ? -1 : spec.lo ?? (kind === 'positive' ? 0.5 : -1);
      const hi = Array.isArray(spec) ? 1 : spec.hi ?? (kind === 'positive' ? 2 : 1);
      const data = rng.floats(elementCount(shape), lo, hi);
      if (kind === 'nonzero') for (let i = 0; i < data.length; i++) data[i] = (data[i]! >= 0 ? 0.3 : -0.3) + data[i]!;
      const name = b.input(`x${k}`, 'float32', shape);
      feeds[name] = { dtype: 'float32', dims: shape, data };
      wrt.push(name);
      return name;
    }
    if ('shape' in spec) {
      return b.init(`c${k}`, { dtype: 'float32', dims: spec.shape, data: rng.floats(elementCount(spec.shape), spec.lo ?? -1, spec.hi ?? 1) });
    }
    if ('ints' in spec) return b.init(`i${k}`, int64Tensor(spec.dims ?? [spec.ints.length], spec.ints));
    return b.init(`b${k}`, { dtype: 'bool', dims: spec.dims, data: Uint8Array.from(spec.bools, (v) => (v ? 1 : 0)) });
  });
  const outs = b.opN(c.op, names, c.outputs ?? 1, c.attrs ?? {}, { name: 'op' });
  b.output(outs[c.output ?? 0]!, 'float32');
  const model = b.build();
  const g = model.graph;
  if (c.symbolicDims) {
    g.inputs.forEach((v, k) => {
      if (v.elemType === 1) v.shape = v.shape?.map((d, i) => (d === 1 ? 1 : `s${k}_${i}`));
    });
  }
  if (c.runtimeInts) {
    for (const [name, init] of [...g.initializers]) {
      if (init.tensor.dtype !== 'int64') continue;
      g.initializers.delete(name);
      g.inputs.push({ name, elemType: 7, shape: [...init.tensor.dims] });
      feeds[name] = init.tensor;
    }
  }
  return { model, feeds, wrt };
}
