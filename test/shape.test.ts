/**
 * Shape inference against onnxruntime: every value of every zoo model (batch 1 and 3), of the
 * shared corpus when present, and of one small model per registry entry must get the shape
 * onnxruntime actually produces. Symbols bind to the fed dims ('N' = batch); '?' passes only
 * downstream of data-dependent ops (NonZero, Compress) or ops without a rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GraphBuilder, float, type AttrValue } from '../models/builder.js';
import { runModel } from '../runtime/ort.js';
import { SngdError, errorText } from '../src/errors.js';
import { cloneModel, dataInputs, defaultOpset, type Dim, type Model } from '../src/ir/graph.js';
import { loadModel } from '../src/onnx/import.js';
import { dtypeCode, dtypeFromCode, float32Tensor, int64Tensor, type DType, type Tensor } from '../src/onnx/tensor.js';
import { Rng } from '../src/numerics/random.js';
import { analyzeShapes, evalDim, inferShapes, missingShapeRules } from '../src/shape/index.js';
import { dimAdd, dimDiv, dimFloorDiv, dimMul } from '../src/shape/symbolic.js';
import { ruleFamilies, shapeRules } from '../src/shape/rules/index.js';
import { zooModels } from './fixtures/zoo.js';

// ---------- the checker ----------

/** Ops whose output sizes depend on data. */
const DATA_DEPENDENT = new Set(['NonZero', 'Compress', 'Unique', 'NonMaxSuppression']);

interface CheckResult {
  checked: number;
  unknownAllowed: number;
  problems: string[];
}

/** Values downstream of a data-dependent op or an op without a rule: there '?' is allowed. */
function mayBeUnknown(model: Model): Set<string> {
  const missing = new Set(missingShapeRules(model));
  const out = new Set<string>();
  for (const n of model.graph.nodes) {
    const opKey = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType;
    if (DATA_DEPENDENT.has(n.opType) || missing.has(opKey) || n.inputs.some((i) => out.has(i))) for (const o of n.outputs) out.add(o);
  }
  return out;
}

/** Ops whose outputs are sequences or optionals, which onnxruntime-node cannot hand back. */
const NON_TENSOR = new Set(['SequenceConstruct', 'SequenceEmpty', 'SequenceInsert', 'SequenceErase', 'SplitToSequence', 'Optional']);

/** Runs `model` in onnxruntime with every node output fetched and compares each against inference. */
async function checkAgainstOrt(model: Model, feeds: Record<string, Tensor>): Promise<CheckResult> {
  const inferred = inferShapes(model);
  const nonTensor = (name: string): boolean => {
    const t = model.graph.valueInfo.get(name)?.extra?.type;
    return t !== undefined && t.tensorType === undefined;
  };
  const names = [...new Set(model.graph.nodes.filter((n) => !NON_TENSOR.has(n.opType)).flatMap((n) => n.outputs.filter((o) => o !== '' && !nonTensor(o))))];
  const probe = cloneModel(model);
  probe.graph.outputs = names.map((name) => ({ name }));
  const actual = await runModel(probe, feeds, { graphOptimizationLevel: 'disabled' });

  const env = new Map<string, number>();
  const problems: string[] = [];
  for (const v of dataInputs(model.graph)) {
    const fed = feeds[v.name];
    v.shape?.forEach((d, i) => {
      if (typeof d === 'string' && d !== '?' && fed) env.set(d, fed.dims[i]!);
    });
  }
  const allowed = mayBeUnknown(model);
  let unknownAllowed = 0;
  for (const name of names) {
    const got = actual[name];
    if (!got) continue;
    const info = inferred.graph.valueInfo.get(name);
    const where = `'${name}'`;
    if (info?.elemType !== undefined && info.elemType !== dtypeCode(got.dtype)) {
      problems.push(`${where}: type ${dtypeFromCode(info.elemType) ?? info.elemType}, onnxruntime gave ${got.dtype}`);
    }
    if (!info?.shape) {
      if (allowed.has(name)) unknownAllowed++;
      else problems.push(`${where}: shape unknown, onnxruntime gave [${got.dims.join(', ')}]`);
      continue;
    }
    if (info.shape.length !== got.dims.length) {
      problems.push(`${where}: inferred [${info.shape.join(', ')}], onnxruntime gave [${got.dims.join(', ')}]`);
      continue;
    }
    info.shape.forEach((d, i) => {
      const real = got.dims[i]!;
      const bad = (): number => problems.push(`${where} dim ${i}: inferred ${d} in [${info.shape!.join(', ')}], onnxruntime gave [${got.dims.join(', ')}]`);
      if (d === '?') {
        if (allowed.has(name)) unknownAllowed++;
        else bad();
        return;
      }
      let value = evalDim(d, env);
      if (value === undefined && typeof d === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(d)) {
        env.set(d, real); // a fresh symbol binds on first sight and must agree afterwards
        value = real;
      }
      if (value !== real) bad();
    });
  }
  return { checked: names.length, unknownAllowed, problems };
}

// ---------- zoo ----------

describe('shape inference on the zoo matches onnxruntime', () => {
  for (const entry of zooModels()) {
    it(`${entry.name}`, async () => {
      expect(missingShapeRules(entry.model)).toEqual([]);
      for (const batch of [1, 3]) {
        const r = await checkAgainstOrt(entry.model, entry.feeds(batch));
        expect(r.problems, `batch ${batch}`).toEqual([]);
        expect(r.unknownAllowed).toBe(0);
        expect(r.checked).toBeGreaterThan(0);
      }
      // The annotated model still loads: onnxruntime accepts the value_info it now carries.
      const out = await runModel(inferShapes(entry.model), entry.feeds(2));
      expect(Object.keys(out).length).toBe(entry.model.graph.outputs.length);
    });
  }

  it('leaves the input model untouched and fills graph outputs', () => {
    const entry = zooModels().find((e) => e.name === 'cnn')!;
    const before = entry.model.graph.valueInfo.size;
    entry.model.graph.outputs[0]!.shape = undefined;
    const out = inferShapes(entry.model);
    expect(entry.model.graph.valueInfo.size).toBe(before);
    expect(entry.model.graph.outputs[0]!.shape).toBeUndefined();
    expect(out.graph.outputs[0]!.shape).toEqual(['N', 10]);
    expect(out.graph.valueInfo.size).toBe(new Set(entry.model.graph.nodes.flatMap((n) => n.outputs)).size);
  });

  it('sorts nodes that are out of order', () => {
    for (const entry of zooModels()) {
      const sorted = inferShapes(entry.model);
      const shuffled = cloneModel(entry.model);
      shuffled.graph.nodes.reverse();
      const out = inferShapes(shuffled);
      for (const [name, info] of sorted.graph.valueInfo) expect(out.graph.valueInfo.get(name)?.shape, `${entry.name}: ${name}`).toEqual(info.shape);
    }
  });

  it("fills what it cannot infer from the model's own value_info", () => {
    const b = new GraphBuilder('declared');
    const x = b.input('x', 'float32', ['N', 4]);
    const y = b.op('Mystery', [x]);
    const z = b.op('Relu', [y]);
    b.output(z);
    const m = b.build();
    m.graph.valueInfo.set(y, { name: y, elemType: 1, shape: ['N', 7] });
    const out = inferShapes(m);
    expect(out.graph.valueInfo.get(z)).toMatchObject({ elemType: 1, shape: ['N', 7] });
    expect(out.graph.outputs[0]).toMatchObject({ elemType: 1, shape: ['N', 7] });
  });
});

// ---------- registry ----------

describe('shape rule registry', () => {
  it('has no op in two family files', () => {
    const seen = new Map<string, string>();
    const dupes: string[] = [];
    for (const [family, table] of Object.entries(ruleFamilies)) {
      for (const op of Object.keys(table)) {
        if (seen.has(op)) dupes.push(`${op} in ${seen.get(op)} and ${family}`);
        seen.set(op, family);
      }
    }
    expect(dupes).toEqual([]);
  });

  it('reports ops without a rule and keeps going', () => {
    const b = new GraphBuilder('custom');
    const x = b.input('x', 'float32', ['N', 4]);
    const y = b.op('FancyOp', [x], {}, { domain: 'com.example' });
    const z = b.op('Relu', [b.op('Mystery', [y])]);
    const w = b.op('Relu', [x]);
    b.output(z);
    b.output(w);
    const m = b.build({ opsets: { 'com.example': 1 } });
    expect(missingShapeRules(m)).toEqual(['Mystery', 'com.example::FancyOp']);
    const out = inferShapes(m);
    expect(out.graph.valueInfo.get(z)!.shape).toBeUndefined();
    expect(out.graph.valueInfo.get(w)!.shape).toEqual(['N', 4]);
  });
});

// ---------- one row per registry entry, checked against onnxruntime ----------

interface InSpec {
  shape: Dim[];
  dtype: DType;
  /** Constant initializer values (row-major); absent: a graph input fed random data. */
  values?: number[];
  /** Integer feeds are drawn from [lo, max). */
  max?: number;
  lo?: number;
}
type In = InSpec | '';

/** A fed input; symbolic dims get N = 3. */
const t = (shape: Dim[], dtype: DType = 'float32', max = 2, lo = 0): InSpec => ({ shape, dtype, max, lo });
/** A constant (int64 by default). */
const k = (values: number[], dims: number[] = [values.length], dtype: DType = 'int64'): InSpec => ({ shape: dims, dtype, values });
const kf = (values: number[], dims: number[] = [values.length]): InSpec => k(values, dims, 'float32');

interface OpRow {
  op: string;
  inputs: In[];
  attrs?: Record<string, AttrValue>;
  outputs?: number;
  opset?: number;
  note?: string;
}
const row = (op: string, inputs: In[], attrs: Record<string, AttrValue> = {}, extra: Partial<OpRow> = {}): OpRow => ({ op, inputs, attrs, ...extra });

function makeTensor(dtype: DType, dims: number[], values: ArrayLike<number>): Tensor {
  switch (dtype) {
    case 'float32': return float32Tensor(dims, values);
    case 'int64': {
      // ±2^63 (INT64_MAX / INT64_MIN written as JS numbers) saturate instead of wrapping.
      const big = (v: number): bigint => (v >= 2 ** 63 ? 2n ** 63n - 1n : v <= -(2 ** 63) ? -(2n ** 63n) : BigInt(v));
      return { dtype, dims, data: BigInt64Array.from(Array.from(values), big) };
    }
    case 'float64': return { dtype, dims, data: Float64Array.from(values) };
    case 'int32': return { dtype, dims, data: Int32Array.from(values) };
    case 'uint8': case 'bool': return { dtype, dims, data: Uint8Array.from(values) };
    case 'int8': return { dtype, dims, data: Int8Array.from(values) };
    case 'uint32': return { dtype, dims, data: Uint32Array.from(values) };
    default: throw new Error(`no test tensors of ${dtype}`);
  }
}

const BATCH = 3;
/** Sizes fed for symbolic dims other than the batch. */
const SYMBOL_SIZES: Record<string, number> = { H: 9, W: 10, T: 5 };

function buildRow(r: OpRow): { model: Model; feeds: Record<string, Tensor> } {
  const b = new GraphBuilder(r.op, r.opset ?? 17);
  const rng = new Rng(17);
  const feeds: Record<string, Tensor> = {};
  const names = r.inputs.map((spec, i) => {
    if (spec === '') return '';
    if (spec.values) return b.init(`const${i}`, makeTensor(spec.dtype, spec.shape as number[], spec.values));
    const name = b.input(`in${i}`, spec.dtype, spec.shape);
    const dims = spec.shape.map((d) => (typeof d === 'number' ? d : SYMBOL_SIZES[d] ?? BATCH));
    const n = dims.reduce((a, c) => a * c, 1);
    const isFloat = spec.dtype === 'float32' || spec.dtype === 'float64';
    const vals = Array.from({ length: n }, () => (isFloat ? rng.uniform(-1, 1) : (spec.lo ?? 0) + rng.int((spec.max ?? 2) - (spec.lo ?? 0))));
    feeds[name] = makeTensor(spec.dtype, dims, vals);
    return name;
  });
  for (const o of b.opN(r.op, names, r.outputs ?? 1, r.attrs)) b.output(o);
  return { model: b.build(), feeds };
}

const N = 'N';
const UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Softplus', 'Softsign', 'HardSwish', 'Sqrt', 'Exp', 'Log', 'Erf', 'Reciprocal', 'Neg', 'Abs',
  'Sign', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'IsNaN', 'IsInf', 'Identity'];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Min', 'Max', 'Sum', 'Mean', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'];

const OP_ROWS: OpRow[] = [
  // elementwise
  ...UNARY.map((op) => row(op, [t([N, 3, 4])])),
  ...BINARY.map((op) => row(op, [t([N, 1, 4]), t([3, 1])])),
  row('Min', [t([N, 1, 4]), t([3, 1]), t([4])]),
  row('Mod', [t([N, 1, 4], 'int64', 9), t([3, 1], 'int64', 5, 1)]), row('Mod', [t([N, 4]), t([4])], { fmod: 1 }),
  row('Sum', [t([2, 1]), t([N, 1, 4]), t([1])]),
  row('LeakyRelu', [t([N, 4])], { alpha: float(0.1) }),
  row('Elu', [t([N, 4])]), row('Selu', [t([N, 4])]), row('Celu', [t([N, 4])]), row('ThresholdedRelu', [t([N, 4])]),
  row('HardSigmoid', [t([N, 4])]), row('Shrink', [t([N, 4])]),
  row('Gelu', [t([N, 4])], { approximate: 'tanh' }, { opset: 20 }),
  row('Mish', [t([N, 4])], {}, { opset: 18 }),
  row('PRelu', [t([N, 3, 4, 4]), t([3, 1, 1])]),
  row('Not', [t([N, 4], 'bool')]), row('And', [t([N, 4], 'bool'), t([4], 'bool')]), row('Or', [t([N, 1], 'bool'), t([4], 'bool')]),
  row('Xor', [t([N, 4], 'bool'), t([1], 'bool')]),
  row('BitShift', [t([N, 4], 'uint32', 8), t([4], 'uint32', 3)], { direction: 'LEFT' }),
  row('BitwiseNot', [t([N, 4], 'int32')], {}, { opset: 18 }),
  row('BitwiseAnd', [t([N, 4], 'int32'), t([4], 'int32')], {}, { opset: 18 }),
  row('BitwiseOr', [t([N, 4], 'int32'), t([4], 'int32')], {}, { opset: 18 }),
  row('BitwiseXor', [t([N, 4], 'int32'), t([4], 'int32')], {}, { opset: 18 }),
  row('Clip', [t([N, 4]), kf([0], []), kf([0.5], [])]), row('Clip', [t([N, 4]), '', kf([0.5], [])]),
  row('Clip', [t([N, 4])], { min: float(-0.5), max: float(0.5) }, { opset: 6 }),
  row('Cast', [t([N, 4])], { to: 7 }), row('Cast', [t([N, 4], 'int64', 5)], { to: 9 }),
  row('CastLike', [t([N, 4]), t([1], 'int32')]),
  row('Where', [t([N, 1, 4], 'bool'), t([3, 1]), kf([0], [])]),
  // contractions
  row('MatMul', [t([N, 2, 3, 4]), t([2, 4, 5])]), row('MatMul', [t([4]), t([N, 4, 5])]), row('MatMul', [t([N, 2, 4]), t([4])]),
  row('MatMul', [t([4]), t([4])]), row('MatMul', [t([N, 1, 2, 4]), t([3, 4, 6])]),
  row('MatMulInteger', [t([N, 4], 'uint8', 255), t([4, 3], 'uint8', 255)]),
  row('Gemm', [t([4, N]), t([5, 4])], { transA: 1, transB: 1 }), row('Gemm', [t([N, 4]), t([4, 5]), t([5])]),
  row('Gemm', [t([N, 4]), t([5, 4]), t([N, 1])], { transB: 1, alpha: float(0.5) }),
  row('Einsum', [t([N, 2, 3]), t([N, 3, 4])], { equation: 'bij,bjk->bik' }),
  row('Einsum', [t([N, 3, 4])], { equation: 'bij->bji' }), row('Einsum', [t([N, 5, 3, 4])], { equation: '...ij->...ji' }),
  row('Einsum', [t([3, 4]), t([4, 5])], { equation: 'ij,jk' }), row('Einsum', [t([N, 4]), t([N, 4])], { equation: 'ij,ij->i' }),
  row('Einsum', [t([N, 2, 3]), t([3, 4])], { equation: '...j,jk->...k' }),
  // convolutions
  row('Conv', [t([N, 3, 9, 10]), t([4, 3, 3, 4])], { auto_pad: 'SAME_LOWER', strides: [2, 3] }),
  row('Conv', [t([N, 4, 11]), t([6, 2, 4])], { group: 2, pads: [2, 1], strides: [3], dilations: [2] }),
  row('Conv', [t([N, 2, 7, 7]), t([4, 2, 3, 3])], { auto_pad: 'VALID', strides: [2, 2] }),
  row('Conv', [t([N, 2, 5, 6, 7]), t([3, 2, 2, 3, 2]), t([3])], { pads: [1, 0, 1, 1, 0, 0] }),
  row('ConvInteger', [t([N, 2, 6, 6], 'uint8', 255), t([3, 2, 3, 3], 'uint8', 255)]),
  row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 3, 3, 3])], { strides: [2, 2], output_shape: [10, 11] }),
  row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 3, 3, 3])], { strides: [2, 2], auto_pad: 'SAME_UPPER' }),
  row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 3, 2, 2])], { strides: [3, 3], auto_pad: 'SAME_LOWER' }),
  row('ConvTranspose', [t([N, 4, 5]), t([4, 3, 3])], { strides: [2], dilations: [2], pads: [1, 2], output_padding: [1] }),
  row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 1, 3, 3])], { strides: [1, 2], auto_pad: 'VALID', group: 4 }),
  // pooling
  row('MaxPool', [t([N, 3, 9, 10])], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, { outputs: 2 }),
  row('MaxPool', [t([N, 3, 10, 10])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, storage_order: 1 }, { outputs: 2 }),
  row('MaxPool', [t([N, 3, 5, 5])], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
  row('AveragePool', [t([N, 3, 5])], { kernel_shape: [2], strides: [2], pads: [1, 1], ceil_mode: 1 }),
  row('MaxPool', [t([N, 3, 11, 11])], { kernel_shape: [2, 3], dilations: [2, 2], strides: [1, 2] }),
  row('MaxPool', [t([N, 3, 11])], { kernel_shape: [3], strides: [2], auto_pad: 'SAME_LOWER' }),
  row('MaxPool', [t([N, 3, 6, 6, 6])], { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }),
  row('AveragePool', [t([N, 3, 8, 9])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1, ceil_mode: 1 }),
  row('AveragePool', [t([N, 3, 7, 7])], { kernel_shape: [2, 2], auto_pad: 'SAME_UPPER', strides: [2, 2] }),
  row('LpPool', [t([N, 3, 7, 7])], { kernel_shape: [2, 2], strides: [2, 2] }),
  row('GlobalAveragePool', [t([N, 3, 5, 4])]), row('GlobalMaxPool', [t([N, 3, 5])]), row('GlobalLpPool', [t([N, 3, 5, 4])]),
  // normalization
  row('BatchNormalization', [t([N, 3, 4, 4]), t([3]), t([3]), t([3]), t([3], 'float32', 2, 1)]),
  row('BatchNormalization', [t([N, 3, 4]), t([3]), t([3]), t([3]), t([3], 'float32', 2, 1)], { training_mode: 1 }, { outputs: 3 }),
  row('LayerNormalization', [t([N, 3, 4]), t([3, 4]), t([3, 4])], { axis: 1 }, { outputs: 3 }),
  row('LayerNormalization', [t([N, 3, 4]), t([4])], {}, { outputs: 3 }),
  row('InstanceNormalization', [t([N, 3, 4, 4]), t([3]), t([3])]),
  row('GroupNormalization', [t([N, 4, 3, 3]), t([4]), t([4])], { num_groups: 2 }, { opset: 21 }),
  row('LpNormalization', [t([N, 4])]), row('LRN', [t([N, 4, 3, 3])], { size: 3 }), row('MeanVarianceNormalization', [t([N, 3, 4, 4])]),
  row('Softmax', [t([N, 3, 4])], { axis: 1 }), row('LogSoftmax', [t([N, 3, 4])]), row('Hardmax', [t([N, 3, 4])], { axis: 0 }),
  row('Softmax', [t([N, 3, 4])], { axis: 1 }, { opset: 11 }),
  // shape computations
  row('Shape', [t([N, 3, 4])]), row('Shape', [t([N, 3, 4, 5])], { start: 1, end: -1 }), row('Size', [t([N, 3])]),
  row('Reshape', [t([N, 3, 4]), k([0, -1])]), row('Reshape', [t([N, 4, 4]), k([-1, 2, 0])]), row('Reshape', [t([N, 3, 4]), k([2, 3, -1, 1])]),
  row('Reshape', [t([2, 0, 4]), k([0, 4, 0])], { allowzero: 1 }, { opset: 14 }),
  row('Reshape', [t([N, 3, 4])], { shape: [0, 12] }, { opset: 1 }),
  row('Flatten', [t([N, 3, 4, 5])], { axis: 2 }), row('Flatten', [t([N, 3, 4])], { axis: 0 }), row('Flatten', [t([N, 3, 4])], { axis: -1 }),
  row('Unsqueeze', [t([N, 3]), k([0, -1])]), row('Unsqueeze', [t([N, 3])], { axes: [1, 3] }, { opset: 11 }),
  row('Squeeze', [t([N, 1, 3, 1]), k([1, -1])]), row('Squeeze', [t([N, 1, 3, 1])], { axes: [3] }, { opset: 11 }), row('Squeeze', [t([2, 1, 3, 1])]), row('Squeeze', [t([N, 1, 3, 1])]),
  row('Transpose', [t([N, 3, 4])], { perm: [2, 0, 1] }), row('Transpose', [t([N, 3, 4])]),
  row('Expand', [t([N, 1, 4]), k([2, 1, 3, 1])]), row('Expand', [t([3, 1]), k([1])]),
  row('Tile', [t([N, 3]), k([2, 3])]),
  row('ConstantOfShape', [k([2, 3])], { value: int64Tensor([1], [7]) }), row('ConstantOfShape', [k([2, 0, 3])]),
  row('Range', [k([1], []), k([10], []), k([3], [])]), row('Range', [kf([0.5], []), kf([-2], []), kf([-0.75], [])]),
  row('DepthToSpace', [t([N, 8, 2, 3])], { blocksize: 2, mode: 'CRD' }), row('SpaceToDepth', [t([N, 2, 4, 6])], { blocksize: 2 }),
  row('Resize', [t([N, 3, 5, 7]), '', kf([1, 1, 2, 0.5])], { mode: 'nearest' }),
  row('Resize', [t([N, 3, 5, 7]), '', '', k([3, 3, 4, 9])], { mode: 'linear' }),
  row('Resize', [t([N, 3, 5, 7]), '', '', k([10, 10])], { axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' }, { opset: 18 }),
  row('Resize', [t([N, 3, 5, 7]), '', kf([1.5, 1.5])], { axes: [2, 3] }, { opset: 18 }),
  row('Resize', [t([N, 3, 5, 7]), kf([1, 1, 2, 3])], { mode: 'nearest' }, { opset: 10 }),
  row('Upsample', [t([N, 3, 5, 7]), kf([1, 1, 2, 3])], { mode: 'nearest' }, { opset: 9 }),
  row('Upsample', [t([N, 3, 5, 7])], { mode: 'nearest', scales: float([1, 1, 2, 1.5]) }, { opset: 8 }),
  // indexing
  row('Gather', [t([N, 5, 4]), t([2, 3], 'int64', 5)], { axis: 1 }), row('Gather', [t([N, 5]), k([-1], [])], { axis: 1 }),
  row('GatherElements', [t([N, 5]), t([N, 2], 'int64', 5)], { axis: 1 }),
  row('GatherND', [t([N, 4, 5]), t([N, 2, 1], 'int64', 4)], { batch_dims: 1 }), row('GatherND', [t([3, 4, 5]), t([2, 2], 'int64', 3)]),
  row('Concat', [t([N, 2]), t([N, 3]), t([N, 1])], { axis: -1 }), row('Concat', [t([N, 2]), t([1, 2])], { axis: 0 }),
  row('Slice', [t([N, 10, 8]), k([-1, 7]), k([-9223372036854775807, 1]), k([1, 2]), k([-2, -3])]),
  row('Slice', [t([N, 10, 8]), k([2]), k([9223372036854775807]), k([-1])]),
  row('Slice', [t([N, 10, 8]), k([1, 20]), k([-1, 30]), k([0, 2])]),
  row('Slice', [t([N, 10, 8]), k([-3]), k([-1])]),
  row('Slice', [t([N, 10, 8])], { starts: [1, 0], ends: [1000, -2], axes: [1, 2] }, { opset: 9 }),
  row('Split', [t([N, 10]), k([3, 7])], { axis: 1 }, { outputs: 2 }), row('Split', [t([N, 9])], { axis: 1 }, { outputs: 3 }),
  row('Split', [t([N, 10])], { axis: 1, split: [4, 6] }, { outputs: 2, opset: 11 }),
  row('Split', [t([N, 10])], { axis: 1, num_outputs: 3 }, { outputs: 3, opset: 18 }),
  row('Pad', [t([N, 3, 4]), k([0, 1, 2, 0, 3, 0])], { mode: 'constant' }), row('Pad', [t([N, 3, 4]), k([1, 2, 0, 3]), '', k([0, 2])], {}, { opset: 18 }),
  row('Pad', [t([N, 3, 4])], { pads: [0, 0, 1, 0, 0, 2] }, { opset: 2 }),
  // reductions
  ...['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']
    .flatMap((op) => [row(op, [t([N, 3, 4])], { axes: [1], keepdims: 0 }), row(op, [t([N, 3, 4]), k([-1, 0])], {}, { opset: 18 })]),
  row('ReduceSum', [t([N, 3, 4]), k([1])], { keepdims: 0 }), row('ReduceSum', [t([N, 3, 4])]), row('ReduceSum', [t([N, 3, 4]), k([], [0])], { noop_with_empty_axes: 1 }),
  row('ReduceSum', [t([N, 3, 4])], { axes: [0, 2] }, { opset: 11 }), row('ReduceMean', [t([N, 3, 4])], { keepdims: 0 }),
  row('ArgMax', [t([N, 3, 4])], { axis: 1 }), row('ArgMin', [t([N, 3, 4])], { axis: -1, keepdims: 0 }),
  row('TopK', [t([N, 6, 4]), k([3])], { axis: 1 }, { outputs: 2 }), row('TopK', [t([N, 6])], { k: 2 }, { outputs: 2, opset: 9 }),
  // recurrent
  row('LSTM', [t([5, N, 4]), t([2, 12, 4]), t([2, 12, 3]), t([2, 24]), '', t([2, N, 3]), t([2, N, 3])], { hidden_size: 3, direction: 'bidirectional' }, { outputs: 3 }),
  row('GRU', [t([5, N, 4]), t([1, 9, 4]), t([1, 9, 3])], { hidden_size: 3 }, { outputs: 2 }),
  row('RNN', [t([5, N, 4]), t([1, 3, 4]), t([1, 3, 3])], { hidden_size: 3, direction: 'reverse' }, { outputs: 2 }),
  // symbolic spatial dims
  row('Conv', [t([N, 3, 'H', 'W']), t([4, 3, 3, 3])], { auto_pad: 'SAME_LOWER', strides: [2, 3] }),
  row('Conv', [t([N, 3, 'H', 'W']), t([4, 3, 3, 2])], { pads: [1, 0, 1, 1], strides: [2, 2], dilations: [1, 2] }),
  row('MaxPool', [t([N, 3, 'H', 'W'])], { kernel_shape: [3, 3], strides: [2, 2] }),
  row('ConvTranspose', [t([N, 4, 'H', 'W']), t([4, 3, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] }),
  row('Resize', [t([N, 3, 'H', 'W']), '', kf([1, 1, 2, 3])], { mode: 'nearest' }),
  row('Slice', [t([N, 'T', 'W']), k([-1, 1]), k([-9223372036854775807, -1]), k([1, 2]), k([-2, 1])]),
  row('Slice', [t([N, 'T', 'W']), k([2]), k([9223372036854775807]), k([2]), k([3])]),
  row('Reshape', [t([N, 'T', 4, 'W']), k([0, -1, 2])]), row('Flatten', [t([N, 'T', 4])], { axis: 2 }),
  row('Split', [t([N, 'T', 6])], { axis: 2 }, { outputs: 2 }),
  row('SpaceToDepth', [t([N, 2, 'T', 'T'])], { blocksize: 1 }),
  // misc
  row('Constant', [], { value: float32Tensor([2, 2], [1, 2, 3, 4]) }), row('Constant', [], { value_ints: [1, 2, 3] }), row('Constant', [], { value_float: float(1.5) }),
  row('Dropout', [t([N, 4]), kf([0.3], [])], {}, { outputs: 2 }),
  row('NonZero', [t([N, 4], 'int64')]), row('NonZero', [k([0, 1, 1, 0, 3], [5])]),
  row('Compress', [t([N, 4]), k([1, 0, 1], [3], 'bool')], { axis: 1 }), row('Compress', [t([N, 4]), k([1, 0, 1], [3], 'bool')]),
  row('Compress', [t([N, 4]), t([4], 'bool')], { axis: 1 }),
  row('OneHot', [t([N, 3], 'int64', 4), k([5], []), kf([0, 1])], { axis: 1 }),
  row('ScatterElements', [t([N, 5]), t([N, 2], 'int64', 5), t([N, 2])], { axis: 1 }),
  row('ScatterND', [t([N, 5]), k([0, 1], [1, 2]), t([1])]),
  row('Scatter', [t([N, 5]), t([N, 2], 'int64', 5), t([N, 2])], { axis: 1 }, { opset: 10 }),
  row('Trilu', [t([N, 4, 5]), k([1], [])]), row('CumSum', [t([N, 4]), k([1], [])]),
  row('ReverseSequence', [t([4, N, 3]), k([4, 3, 2], [3])], { batch_axis: 1, time_axis: 0 }),
  row('EyeLike', [t([4, 5])]), row('RandomNormalLike', [t([N, 3])]), row('RandomUniformLike', [t([N, 3])], { dtype: 11 }),
  row('Bernoulli', [t([N, 3])]), row('RandomNormal', [], { shape: [2, 3] }), row('RandomUniform', [], { shape: [4] }),
  row('QuantizeLinear', [t([N, 4]), kf([0.1], []), k([3], [], 'int8')]), row('QuantizeLinear', [t([N, 4]), kf([0.1], [])]),
  row('DequantizeLinear', [t([N, 4], 'uint8', 255), kf([0.1], []), k([3], [], 'uint8')]),
  row('DynamicQuantizeLinear', [t([N, 4])], {}, { outputs: 3 }),
  row('Det', [t([N, 3, 3])]), row('GridSample', [t([N, 2, 5, 6]), t([N, 3, 4, 2])], {}, { opset: 16 }),
  row('RoiAlign', [t([2, 3, 8, 8]), kf([0, 0, 3, 3, 1, 1, 6, 6, 2, 2, 7, 7], [3, 4]), k([0, 1, 1])], { output_height: 2, output_width: 3 }),
  row('NonMaxSuppression', [t([1, 6, 4]), t([1, 2, 6]), k([2], [1])], {}),
  row('Unique', [t([N, 4], 'int64', 3)], {}, { outputs: 4 }), row('Unique', [t([N, 4], 'int64', 3)], { axis: 1 }, { outputs: 4 }),
];

/** Registry entries that no row runs, with the reason. */
const NO_ROW: Record<string, string> = {};

describe('every shape rule agrees with onnxruntime', () => {
  it('has a row for every registry entry', () => {
    const covered = new Set(OP_ROWS.map((r) => r.op));
    const missing = Object.keys(shapeRules).filter((op) => !covered.has(op) && !(op in NO_ROW));
    expect(missing).toEqual([]);
  });

  it.each(OP_ROWS.map((r, i) => [`${r.op}#${i}${r.opset ? ` (opset ${r.opset})` : ''}`, r] as const))('%s', async (_label, r) => {
    const { model, feeds } = buildRow(r);
    const res = await checkAgainstOrt(model, feeds);
    expect(res.problems).toEqual([]);
  });
});

// ---------- tricky rules, with the expected shapes spelled out ----------

function inferRow(r: OpRow): (Dim[] | undefined)[] {
  const { model } = buildRow(r);
  const out = inferShapes(model);
  return model.graph.nodes[0]!.outputs.map((o) => out.graph.valueInfo.get(o)?.shape);
}

const INT64_MAX = 9223372036854775807;

describe('tricky shape rules', () => {
  it('Conv auto_pad SAME_LOWER with odd total padding: ceil(D / stride)', () => {
    expect(inferRow(row('Conv', [t([N, 3, 9, 10]), t([4, 3, 3, 4])], { auto_pad: 'SAME_LOWER', strides: [2, 3] }))).toEqual([[N, 4, 5, 4]]);
    expect(inferRow(row('Conv', [t([N, 3, 'H', 'W']), t([4, 3, 3, 3])], { auto_pad: 'SAME_LOWER', strides: [2, 1] }))).toEqual([[N, 4, 'floor((H+1)/2)', 'W']]);
  });

  it('Conv with explicit pads on symbolic dims', () => {
    expect(inferRow(row('Conv', [t([N, 3, 'H', 'W']), t([4, 3, 3, 2])], { pads: [1, 0, 1, 1], strides: [2, 2], dilations: [1, 2] })))
      .toEqual([[N, 4, 'floor((H-1)/2)+1', 'floor(W/2)']]);
  });

  it('ConvTranspose: output_shape wins over strides and pads', () => {
    expect(inferRow(row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 3, 3, 3])], { strides: [2, 2], output_shape: [10, 11] }))).toEqual([[N, 3, 10, 11]]);
    expect(inferRow(row('ConvTranspose', [t([N, 4, 5, 5]), t([4, 1, 3, 3])], { strides: [2, 2], group: 4, output_shape: [3, 4, 12, 12] }))).toEqual([[N, 4, 12, 12]]);
    expect(inferRow(row('ConvTranspose', [t([N, 4, 'H']), t([4, 3, 3])], { strides: [2], pads: [1, 1], output_padding: [1] }))).toEqual([[N, 3, 'H*2']]);
  });

  it('pooling ceil_mode drops a last window that starts in the end padding', () => {
    expect(inferRow(row('MaxPool', [t([N, 3, 5, 5])], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, { outputs: 2 })))
      .toEqual([[N, 3, 3, 3], [N, 3, 3, 3]]);
    expect(inferRow(row('AveragePool', [t([N, 3, 9, 10])], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }))).toEqual([[N, 3, 4, 5]]);
    expect(inferRow(row('AveragePool', [t([N, 3, 9, 10])], { kernel_shape: [3, 3], strides: [2, 2] }))).toEqual([[N, 3, 4, 4]]);
  });

  it('Reshape: 0 copies, -1 infers (symbolically too), allowzero keeps zeros', () => {
    expect(inferRow(row('Reshape', [t([N, 3, 4]), k([0, -1])]))).toEqual([[N, 12]]);
    expect(inferRow(row('Reshape', [t([N, 'T', 4, 'W']), k([0, -1, 2])]))).toEqual([[N, 'T*W*2', 2]]);
    expect(inferRow(row('Reshape', [t([N, 'T', 4]), k([-1, 4])]))).toEqual([['N*T', 4]]);
    expect(inferRow(row('Reshape', [t([2, 0, 4]), k([0, 4, 0])], { allowzero: 1 }, { opset: 14 }))).toEqual([[0, 4, 0]]);
    expect(inferRow(row('Reshape', [t([N, 3, 4])], { shape: [0, -1] }, { opset: 1 }))).toEqual([[N, 12]]);
  });

  it('Slice with negative steps and INT64_MAX / INT64_MIN ends', () => {
    expect(inferRow(row('Slice', [t([N, 10, 8]), k([-1, 7]), k([-INT64_MAX, 1]), k([1, 2]), k([-2, -3])]))).toEqual([[N, 5, 2]]);
    expect(inferRow(row('Slice', [t([N, 10, 8]), k([INT64_MAX]), k([-INT64_MAX]), k([1]), k([-1])]))).toEqual([[N, 10, 8]]);
    expect(inferRow(row('Slice', [t([N, 10, 8]), k([0]), k([INT64_MAX]), k([1]), k([-1])]))).toEqual([[N, 0, 8]]);
    expect(inferRow(row('Slice', [t([N, 'T']), k([1]), k([INT64_MAX]), k([1])]))).toEqual([[N, 'T-1']]);
    expect(inferRow(row('Slice', [t([N, 'T']), k([-1]), k([-INT64_MAX]), k([1]), k([-1])]))).toEqual([[N, 'T']]);
  });

  it('Gemm with transA / transB', () => {
    expect(inferRow(row('Gemm', [t([4, N]), t([5, 4])], { transA: 1, transB: 1 }))).toEqual([[N, 5]]);
    expect(inferRow(row('Gemm', [t([N, 4]), t([4, 5]), t([5])]))).toEqual([[N, 5]]);
    expect(() => inferRow(row('Gemm', [t([N, 4]), t([5, 4])]))).toThrow(/inner dimensions/);
  });

  it('MatMul with 1-D operands', () => {
    expect(inferRow(row('MatMul', [t([4]), t([N, 4, 5])]))).toEqual([[N, 5]]);
    expect(inferRow(row('MatMul', [t([N, 2, 4]), t([4])]))).toEqual([[N, 2]]);
    expect(inferRow(row('MatMul', [t([4]), t([4])]))).toEqual([[]]);
    expect(inferRow(row('MatMul', [t([N, 1, 2, 4]), t([3, 4, 6])]))).toEqual([[N, 3, 2, 6]]);
  });

  // onnxruntime's CPU kernels refuse layout=1 ("Batchwise recurrent operations are not supported"), so these are spelled out.
  it('LSTM / GRU with layout 1', () => {
    expect(inferRow(row('LSTM', [t([N, 5, 4]), t([1, 12, 4]), t([1, 12, 3])], { hidden_size: 3, layout: 1 }, { outputs: 3 })))
      .toEqual([[N, 5, 1, 3], [N, 1, 3], [N, 1, 3]]);
    expect(inferRow(row('GRU', [t([N, 'T', 4]), t([2, 9, 4]), t([2, 9, 3])], { layout: 1, direction: 'bidirectional' }, { outputs: 2 })))
      .toEqual([[N, 'T', 2, 3], [N, 2, 3]]);
  });

  it('NonZero is data dependent unless its input is known', () => {
    expect(inferRow(row('NonZero', [t([N, 4], 'int64')]))).toEqual([[2, '?']]);
    expect(inferRow(row('NonZero', [k([0, 1, 1, 0, 3], [5])]))).toEqual([[1, 3]]);
  });

  it('tracks shape values through Shape → Gather → Unsqueeze → Concat', () => {
    const b = new GraphBuilder('chain');
    const x = b.input('x', 'float32', [N, 'T', 8]);
    const shape = b.op('Shape', [x]);
    const n = b.op('Unsqueeze', [b.op('Gather', [shape, b.init('i0', int64Tensor([], [0]))]), b.init('ax', int64Tensor([1], [0]))]);
    const tt = b.op('Slice', [shape, b.init('s1', int64Tensor([1], [1])), b.init('s2', int64Tensor([1], [2]))]);
    const target = b.op('Concat', [b.op('Mul', [n, tt]), b.init('m1', int64Tensor([1], [-1]))], { axis: 0 });
    const y = b.op('Reshape', [x, target]);
    const filled = b.op('ConstantOfShape', [b.op('Concat', [tt, n], { axis: 0 })]);
    b.output(y);
    b.output(filled);
    const analysis = analyzeShapes(b.build());
    expect(analysis.infos.get(target)!.value).toEqual(['N*T', -1]);
    expect(analysis.infos.get(y)!.shape).toEqual(['N*T', 8]);
    expect(analysis.infos.get(filled)!.shape).toEqual(['T', N]);
  });
});

describe('symbolic dims', () => {
  it('multiplies, divides and floors in one canonical form', () => {
    expect(dimMul('N', 3)).toBe('N*3');
    expect(dimMul(3, 'N')).toBe('N*3');
    expect(dimAdd('H', -2)).toBe('H-2');
    expect(dimMul(dimAdd('N', 1), 2)).toBe('N*2+2');
    expect(dimDiv('N*T*64', 'N*4')).toBe('T*16');
    expect(dimDiv('N*3', 2)).toBe('?');
    expect(dimFloorDiv('N*6+1', 3)).toBe('N*2');
    expect(dimFloorDiv('H-1', 2)).toBe('floor((H-1)/2)');
    expect(dimMul('?', 3)).toBe('?');
    expect(evalDim('floor((H-1)/2)+1', new Map([['H', 9]]))).toBe(5);
    expect(evalDim('N*T*2', new Map([['N', 3], ['T', 5]]))).toBe(30);
  });

  it('reads foreign symbols as atoms', () => {
    expect(dimMul('batch size', 2)).toBe('[batch size]*2');
    expect(evalDim('[batch size]*2', new Map([['batch size', 4]]))).toBe(8);
    expect(dimMul('2*s0', 's1')).toBe('s0*s1*2');
  });
});

// ---------- the shared corpus ----------

/** shared/corpus beside the repository (SNGD_SHAPE_CORPUS points elsewhere, for trying a folder of models). */
const CORPUS_DIR = process.env.SNGD_SHAPE_CORPUS ?? fileURLToPath(new URL('../../shared/corpus', import.meta.url));
const CORPUS_FILES = fs.existsSync(CORPUS_DIR)
  ? (fs.readdirSync(CORPUS_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.onnx')).sort()
  : [];

type Upgrade = (model: Model, target?: number) => Model;

/** passes/upgrade's upgradeOpset, when that pass exists and loads. */
async function loadUpgrade(): Promise<Upgrade | undefined> {
  const url = new URL('../passes/upgrade/index.ts', import.meta.url);
  if (!fs.existsSync(url)) return undefined;
  try {
    const mod = (await import(url.href)) as { upgradeOpset?: Upgrade };
    return mod.upgradeOpset;
  } catch (err) {
    console.warn(`passes/upgrade/index.ts did not load (${errorText(err)}): corpus models run at their own opset`);
    return undefined;
  }
}

/** Random feeds for a model's data inputs: symbolic dims 2, floats in [-1, 1), integers and bools in [0, 2). */
function corpusFeeds(model: Model): Record<string, Tensor> | string {
  const rng = new Rng(5);
  const feeds: Record<string, Tensor> = {};
  for (const v of dataInputs(model.graph)) {
    const dtype = v.elemType === undefined ? undefined : dtypeFromCode(v.elemType);
    if (!v.shape || !dtype) return `input '${v.name}' has no tensor type or shape`;
    const dims = v.shape.map((d) => (typeof d === 'number' ? d : 2));
    const n = dims.reduce((a, c) => a * c, 1);
    const isFloat = dtype === 'float32' || dtype === 'float64';
    if (!isFloat && !['int64', 'int32', 'bool', 'uint8', 'int8'].includes(dtype)) return `input '${v.name}' is ${dtype}`;
    feeds[v.name] = makeTensor(dtype, dims, Array.from({ length: n }, () => (isFloat ? rng.uniform(-1, 1) : rng.int(2))));
  }
  return feeds;
}

/** Names every '?' input dim (as `<input>_dim<i>`), so that it binds to the fed size like a symbol. */
function nameUnknownInputDims(model: Model): Model {
  const out = cloneModel(model);
  out.graph.inputs = out.graph.inputs.map((v) => ({
    ...v,
    shape: v.shape?.map((d, i) => (d === '?' ? `${v.name.replace(/[^A-Za-z0-9_]/g, '_')}_dim${i}` : d)),
  }));
  return out;
}

describe.skipIf(CORPUS_FILES.length === 0)('shape inference on shared/corpus matches onnxruntime', () => {
  let upgrade: Upgrade | undefined;
  let upgradeLoaded = false;

  it.each(CORPUS_FILES)('%s', async (file) => {
    if (!upgradeLoaded) {
      upgrade = await loadUpgrade();
      upgradeLoaded = true;
    }
    let model = loadModel(path.join(CORPUS_DIR, file));
    if (upgrade && defaultOpset(model) < 17) {
      try {
        model = upgrade(model, 17);
      } catch (err) {
        console.warn(`${file}: skipped, the opset upgrade refused it: ${errorText(err)}`);
        return;
      }
    }
    model = nameUnknownInputDims(model);
    const feeds = corpusFeeds(model);
    if (typeof feeds === 'string') {
      console.warn(`${file}: skipped, ${feeds}`);
      return;
    }
    let res: CheckResult;
    try {
      res = await checkAgainstOrt(model, feeds);
    } catch (err) {
      if (err instanceof SngdError && /onnxruntime (could not load|failed to run)/.test(err.message)) {
        console.warn(`${file}: skipped, ${err.message}`);
        return;
      }
      throw err;
    }
    console.info(`${file}: ${res.checked} values checked, ${res.unknownAllowed} unknown dims allowed${upgrade ? '' : ' (no opset upgrade)'}`);
    expect(res.problems).toEqual([]);
  });
});

if (CORPUS_FILES.length === 0) {
  describe('shared/corpus', () => {
    const why = fs.existsSync(CORPUS_DIR) ? 'shared/corpus holds no .onnx files' : 'shared/corpus not found';
    it.skip(`${why}: corpus shape checks skipped`, () => {});
  });
}
