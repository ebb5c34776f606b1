/**
 * LSTM, GRU and RNN are differentiated by unrolling them (passes/recurrent/decompose.ts). Each row
 * (a) runs the unrolled model and onnxruntime's own kernel on the same feeds and compares Y, Y_h
 * and Y_c (layout = 1, which onnxruntime's CPU kernels refuse, against the kernel on the
 * transposed layout-0 model), then (b) checks the gradients w.r.t. X, W, R, B, P and the initial
 * states against central differences. The zoo's recurrent models then build whole training graphs.
 */
import { describe, expect, it } from 'vitest';
import { float, GraphBuilder, type AttrValue } from '../../models/builder.js';
import { differentiate } from '../../passes/autodiff/index.js';
import { rules } from '../../passes/autodiff/rules/recurrent.js';
import { compileModel } from '../../passes/compile.js';
import { decomposeRecurrent, hasRecurrent } from '../../passes/recurrent/decompose.js';
import { readLayerRecords } from '../../passes/reconstruct/record.js';
import { buildTrainingGraphs, trainableTensors } from '../../passes/training/index.js';
import type { Model } from '../../src/ir/graph.js';
import { AttrType, type AttributeProto } from '../../src/onnx/proto.js';
import { Rng } from '../../src/numerics/random.js';
import { elementCount, float32Tensor, type Tensor } from '../../src/onnx/tensor.js';
import { runModel } from '../../runtime/ort.js';
import { zooModels } from '../fixtures/zoo.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { checkStepGradients } from '../helpers/step-check.js';
import { relError } from '../helpers/compare.js';

type Op = 'LSTM' | 'GRU' | 'RNN';

interface RecCase {
  label: string;
  op: Op;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  /** Sequence length (default 4). */
  T?: number;
  /** Bias B (default true). */
  bias?: boolean;
  h0?: boolean;
  c0?: boolean;
  peepholes?: boolean;
  /** sequence_lens, one per batch row (batch is 2). */
  lens?: number[];
  attrs?: Record<string, AttrValue>;
  layout?: 0 | 1;
  /** Outputs the node produces (default all). */
  outputs?: number;
  /** false: forward comparison only. */
  grad?: boolean;
  check?: { eps?: number; rtol?: number; atol?: number };
}

const BATCH = 2;
const INPUT = 3;
const HIDDEN = 4;
const GATES: Record<Op, number> = { LSTM: 4, GRU: 3, RNN: 1 };

/** A STRINGS attribute (the emitter's AttrValue has no string-list form). */
const acts = (...names: string[]): AttributeProto => ({ type: AttrType.STRINGS, strings: names.map((n) => Buffer.from(n, 'utf8')) });

const cases: RecCase[] = [
  { label: 'LSTM forward, bias', op: 'LSTM' },
  { label: 'LSTM reverse, initial states', op: 'LSTM', direction: 'reverse', h0: true, c0: true },
  { label: 'LSTM bidirectional, initial states, peepholes', op: 'LSTM', direction: 'bidirectional', h0: true, c0: true, peepholes: true },
  { label: 'LSTM forward, peepholes, no bias, initial h only', op: 'LSTM', bias: false, h0: true, peepholes: true },
  { label: 'LSTM forward, sequence_lens', op: 'LSTM', T: 5, lens: [3, 5], h0: true, c0: true },
  { label: 'LSTM reverse, sequence_lens', op: 'LSTM', direction: 'reverse', T: 5, lens: [2, 5], h0: true, c0: true },
  { label: 'LSTM bidirectional, sequence_lens, no initial states', op: 'LSTM', direction: 'bidirectional', T: 5, lens: [4, 1] },
  { label: 'LSTM bidirectional, a zero-length sequence, initial states', op: 'LSTM', direction: 'bidirectional', T: 3, lens: [0, 3], h0: true, c0: true },
  { label: 'LSTM input_forget', op: 'LSTM', h0: true, c0: true, peepholes: true, attrs: { input_forget: 1 } },
  // c0 reaches ±0.8, past the clip, so the forward shows h(C_t) is not clipped. Most gate inputs
  // lie past ±0.3: a step of 1e-4 keeps the quotient off the clip's kinks.
  { label: 'LSTM clip', op: 'LSTM', h0: true, c0: true, attrs: { clip: float(0.3) }, check: { eps: 1e-4 } },
  { label: 'LSTM Keras HardSigmoid', op: 'LSTM', direction: 'bidirectional', attrs: { activations: acts('HardSigmoid', 'Tanh', 'Tanh', 'HardSigmoid', 'Tanh', 'Tanh'), activation_alpha: float([0.2, 0.2]), activation_beta: float([0.5, 0.5]) } },
  { label: 'LSTM Softsign/ScaledTanh/Elu, alphas consumed in order', op: 'LSTM', attrs: { activations: acts('Softsign', 'ScaledTanh', 'Elu'), activation_alpha: float([1.5, 0.7]), activation_beta: float([0.8]) } },
  { label: 'LSTM layout 1 bidirectional', op: 'LSTM', direction: 'bidirectional', layout: 1, h0: true, c0: true, peepholes: true },
  { label: 'LSTM layout 1 sequence_lens', op: 'LSTM', layout: 1, T: 5, lens: [5, 2], h0: true },
  { label: 'LSTM Y only, T = 1', op: 'LSTM', T: 1, outputs: 1, h0: true, c0: true },
  { label: 'GRU forward, linear_before_reset 0', op: 'GRU', h0: true },
  { label: 'GRU forward, linear_before_reset 1', op: 'GRU', h0: true, attrs: { linear_before_reset: 1 } },
  { label: 'GRU linear_before_reset 1, no bias, no initial h', op: 'GRU', bias: false, attrs: { linear_before_reset: 1 } },
  { label: 'GRU linear_before_reset 0, no initial h', op: 'GRU' },
  { label: 'GRU bidirectional, initial h', op: 'GRU', direction: 'bidirectional', h0: true },
  { label: 'GRU reverse, sequence_lens, linear_before_reset 1', op: 'GRU', direction: 'reverse', T: 5, lens: [3, 4], h0: true, attrs: { linear_before_reset: 1 } },
  { label: 'GRU bidirectional, sequence_lens', op: 'GRU', direction: 'bidirectional', T: 5, lens: [5, 2] },
  { label: 'GRU a zero-length sequence, initial h', op: 'GRU', T: 3, lens: [3, 0], h0: true },
  { label: 'GRU clip', op: 'GRU', h0: true, attrs: { clip: float(0.3) } },
  { label: 'GRU HardSigmoid/Softsign', op: 'GRU', h0: true, attrs: { activations: acts('HardSigmoid', 'Softsign'), activation_alpha: float([0.25]), activation_beta: float([0.45]) } },
  { label: 'GRU layout 1', op: 'GRU', direction: 'bidirectional', layout: 1, h0: true, attrs: { linear_before_reset: 1 } },
  { label: 'RNN forward', op: 'RNN' },
  { label: 'RNN reverse, no bias, initial h', op: 'RNN', direction: 'reverse', bias: false, h0: true },
  { label: 'RNN bidirectional, sequence_lens', op: 'RNN', direction: 'bidirectional', T: 5, lens: [2, 5], h0: true },
  { label: 'RNN reverse, a zero-length sequence, initial h', op: 'RNN', direction: 'reverse', T: 3, lens: [0, 2], h0: true },
  { label: 'RNN Relu', op: 'RNN', h0: true, attrs: { activations: acts('Relu') } },
  { label: 'RNN LeakyRelu (default α)', op: 'RNN', h0: true, attrs: { activations: acts('LeakyRelu') } },
  { label: 'RNN Sigmoid/Softplus', op: 'RNN', direction: 'bidirectional', h0: true, attrs: { activations: acts('Sigmoid', 'Softplus') } },
  { label: 'RNN Affine/ScaledTanh', op: 'RNN', direction: 'bidirectional', attrs: { activations: acts('Affine', 'ScaledTanh'), activation_alpha: float([0.8, 1.2]), activation_beta: float([0.1, 0.9]) } },
  { label: 'RNN ThresholdedRelu', op: 'RNN', h0: true, attrs: { activations: acts('ThresholdedRelu'), activation_alpha: float([0.1]) } },
  // Clip's kinks at ±0.5 lie within a step of 1e-3 of some pre-activation here: a smaller one.
  { label: 'RNN Elu (default α), clip', op: 'RNN', h0: true, attrs: { activations: acts('Elu'), clip: float(0.5) }, check: { eps: 1e-4 } },
  { label: 'RNN Affine without α/β (onnxruntime: 0, 0)', op: 'RNN', attrs: { activations: acts('Affine') }, grad: false },
  { label: 'RNN layout 1 reverse', op: 'RNN', direction: 'reverse', layout: 1, h0: true },
];

interface Built {
  model: Model;
  feeds: Record<string, Tensor>;
  /** Float inputs to differentiate. */
  wrt: string[];
  outputs: string[];
}

/**
 * The node as a model. Layout 1 transposes the layout-0 feeds, so that both layouts of one case
 * see the same numbers. With `combined`, a further output concatenates every output flattened
 * (gradcheck weights one output).
 */
function build(c: RecCase, layout: 0 | 1, combined: boolean): Built {
  const rng = new Rng(7);
  const T = c.T ?? 4;
  const D = c.direction === 'bidirectional' ? 2 : 1;
  const G = GATES[c.op];
  const b = new GraphBuilder('rec', 17);
  const feeds: Record<string, Tensor> = {};
  const wrt: string[] = [];
  const input = (name: string, dims0: number[], perm: number[] | undefined, scale: number): string => {
    const t = float32Tensor(dims0, rng.floats(elementCount(dims0), -scale, scale));
    const fed = perm ? permute(t, perm) : t;
    b.input(name, 'float32', fed.dims);
    feeds[name] = fed;
    wrt.push(name);
    return name;
  };
  const seqPerm = layout === 1 ? [1, 0, 2] : undefined;
  const inputs = [
    input('X', [T, BATCH, INPUT], seqPerm, 1),
    input('W', [D, G * HIDDEN, INPUT], undefined, 0.7),
    input('R', [D, G * HIDDEN, HIDDEN], undefined, 0.7),
    c.bias === false ? '' : input('B', [D, 2 * G * HIDDEN], undefined, 0.5),
    c.lens ? b.init('lens', { dtype: 'int32', dims: [BATCH], data: Int32Array.from(c.lens) }) : '',
    c.h0 ? input('h0', [D, BATCH, HIDDEN], seqPerm, 0.8) : '',
    c.c0 ? input('c0', [D, BATCH, HIDDEN], seqPerm, 0.8) : '',
    c.peepholes ? input('P', [D, 3 * HIDDEN], undefined, 0.6) : '',
  ];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const attrs: Record<string, AttrValue> = { hidden_size: HIDDEN, ...c.attrs };
  if (c.direction) attrs.direction = c.direction;
  if (layout === 1) attrs.layout = 1;
  const nOut = c.outputs ?? (c.op === 'LSTM' ? 3 : 2);
  const outs = b.opN(c.op, inputs, nOut, attrs, { name: 'rec' });
  if (combined) {
    const flat = outs.map((o) => b.op('Reshape', [o, b.init('flat', { dtype: 'int64', dims: [1], data: BigInt64Array.from([-1n]) })]));
    b.output(flat.length === 1 ? flat[0]! : b.op('Concat', flat, { axis: 0 }, { output: 'all' }), 'float32');
  }
  for (const o of outs) b.output(o, 'float32');
  return { model: b.build(), feeds, wrt, outputs: outs };
}

/** Transposes a small float tensor. */
function permute(t: Tensor, perm: number[]): Tensor {
  const dims = perm.map((p) => t.dims[p]!);
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  const strides = t.dims.map((_, i) => t.dims.slice(i + 1).reduce((a, d) => a * d, 1));
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < out.length; k++) {
    let s = 0;
    for (let i = 0; i < dims.length; i++) s += idx[i]! * strides[perm[i]!]!;
    out[k] = src[s]!;
    for (let i = dims.length - 1; i >= 0 && ++idx[i]! === dims[i]; i--) idx[i] = 0;
  }
  return { dtype: 'float32', dims, data: out };
}

/** onnxruntime's kernel on the layout-0 model, outputs brought to `layout`. */
async function reference(c: RecCase, layout: 0 | 1): Promise<Tensor[]> {
  const ref = build(c, 0, false);
  const out = await runModel(ref.model, ref.feeds);
  return ref.outputs.map((name, k) => {
    const t = out[name]!;
    if (layout === 0) return t;
    return permute(t, k === 0 ? [2, 0, 1, 3] : [1, 0, 2]);
  });
}

describe('recurrent ops, unrolled', () => {
  it.each(cases.map((c) => [c.label, c] as const))('%s: forward matches onnxruntime, gradients match central differences', async (_label, c) => {
    const layout = c.layout ?? 0;
    const { model, feeds, wrt, outputs } = build(c, layout, true);
    const unrolled = decomposeRecurrent(model);
    expect(hasRecurrent(unrolled)).toBe(false);
    const want = await reference(c, layout);
    const got = await runModel(unrolled, feeds);
    outputs.forEach((name, k) => expect(relError(got[name]!, want[k]!), `${name}`).toBeLessThanOrEqual(1e-5));
    if (c.grad === false) return;
    // ε = 1e-3, not gradcheck's 1e-2: a direction moves X, W, R, B and the states at once (~100
    // coordinates, |v| ≈ 10), and the recurrence compounds the second-order term over T steps, so
    // ε = 1e-2 left truncation errors of a few percent (each tensor alone agreed to 1e-4); 1e-3 also
    // keeps the quotient off most kinks of Relu, Clip and HardSigmoid.
    const result = await gradcheck(unrolled, { wrt, feeds, output: model.graph.outputs[0]!.name, eps: 1e-3, ...c.check });
    expect(result.worst, result.worst).toBe('');
  });

  it('has a test row for every rule', () => {
    const tested = new Set<string>(cases.map((c) => c.op));
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });

  it('the driver, given a recurrent node, says to unroll first', () => {
    const { model, wrt } = build(cases[0]!, 0, false);
    expect(() => differentiate(model, { loss: model.graph.outputs[0]!.name, wrt })).toThrow(/decomposeRecurrent/);
  });

  it('refuses a symbolic sequence length, and unrolls it once bound with dims', async () => {
    const b = new GraphBuilder('sym', 17);
    const x = b.input('x', 'float32', ['T', 'N', 3]);
    const rng = new Rng(5);
    const w = b.init('W', float32Tensor([1, 4, 3], rng.floats(12)));
    const r = b.init('R', float32Tensor([1, 4, 4], rng.floats(16)));
    const [y] = b.opN('RNN', [x, w, r], 1, { hidden_size: 4 });
    b.output(y!, 'float32', ['T', 1, 'N', 4]);
    const model = b.build();
    expect(() => decomposeRecurrent(model)).toThrow(/sequence length 'T' is symbolic/);
    const bound = decomposeRecurrent(model, { dims: { T: 3 } });
    expect(bound.graph.inputs[0]!.shape).toEqual([3, 'N', 3]);
    // The batch stays symbolic: any batch size runs.
    const feeds = { x: float32Tensor([3, 5, 3], rng.floats(45)) };
    expect(relError((await runModel(bound, feeds))[y!]!, (await runModel(model, feeds))[y!]!)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses unknown activations and miscounted activation lists', () => {
    const c: RecCase = { label: '', op: 'RNN', attrs: { activations: acts('Swish') } };
    expect(() => decomposeRecurrent(build(c, 0, false).model)).toThrow(/activation 'Swish'/);
    const d: RecCase = { label: '', op: 'GRU', attrs: { activations: acts('Sigmoid') } };
    expect(() => decomposeRecurrent(build(d, 0, false).model)).toThrow(/activations lists 1 functions; GRU with 1 direction\(s\) takes 2/);
  });
});

describe('zoo models with recurrent layers: training graphs', () => {
  // text_rnn's sequence length is the symbol T; its feeds use 7 steps.
  const dims: Record<string, Record<string, number>> = { text_rnn: { T: 7 } };
  const zoo = zooModels().filter((z) => hasRecurrent(z.model));
  it('covers text_rnn and fixed_rnn', () => expect(zoo.map((z) => z.name).sort()).toEqual(['fixed_rnn', 'text_rnn']));
  it.each(zoo.map((z) => [z.name, z] as const))('%s: unrolled forward matches, all gradients match finite differences', async (name, z) => {
    const { model: rebuilt } = compileModel(z.model, {});
    const unrolled = decomposeRecurrent(rebuilt, { dims: dims[name] });
    const feeds = z.feeds(3);
    const want = await runModel(rebuilt, feeds);
    const got = await runModel(unrolled, feeds);
    for (const o of rebuilt.graph.outputs) expect(relError(got[o.name]!, want[o.name]!)).toBeLessThanOrEqual(1e-5);
    const first = want[rebuilt.graph.outputs[0]!.name]!;
    const labels = float32Tensor(first.dims, new Rng(21).floats(elementCount(first.dims)));
    const graphs = buildTrainingGraphs(unrolled, { loss: 'mse' });
    // W, R, B keep their names: the trained values drop back into the recurrent nodes.
    const params = graphs.trainContract.inputs.filter((i) => i.role === 'param').map((i) => i.name);
    expect(params.sort()).toEqual(trainableTensors(rebuilt, readLayerRecords(rebuilt)).sort());
    expect(await checkStepGradients(unrolled, graphs, { ...feeds, labels }, { seed: 21 })).toEqual([]);
  });
});
