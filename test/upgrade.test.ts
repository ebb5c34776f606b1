/**
 * Opset upgrade (passes/upgrade): each rule turns a small OLD-opset model into an opset-17 one
 * that onnxruntime runs, and its outputs are checked against an independent reference: values
 * computed here in TypeScript, a hand-built opset-17 model, or (where onnxruntime still runs the
 * old op) the original model itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Long from 'long';
import { describe, expect, it } from 'vitest';
import { GraphBuilder, float } from '../models/builder.js';
import { FAMILIES, RULES, UNCHANGED } from '../passes/upgrade/rules/index.js';
import { MAX_TARGET, upgradeOpset } from '../passes/upgrade/index.js';
import { createSession, runModel } from '../runtime/ort.js';
import { SngdError } from '../src/errors.js';
import { attrInt, getAttr } from '../src/ir/attrs.js';
import { defaultOpset, type Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { encodeModel } from '../src/onnx/codec.js';
import { graphToProto, modelToProto } from '../src/onnx/export.js';
import { loadModel } from '../src/onnx/import.js';
import { AttrType, type AttributeProto, type TensorProto } from '../src/onnx/proto.js';
import { TensorProtoType } from '../src/onnx/schema.js';
import { elementCount, float32Tensor, int64Tensor, tensorFromProto, type Tensor } from '../src/onnx/tensor.js';

const rng = new Rng(20240607);
const rand = (dims: number[], lo = -1, hi = 1): Tensor => float32Tensor(dims, rng.floats(elementCount(dims), lo, hi));
const nums = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, Number);

/** Upgrades to 17, checks the bookkeeping, runs in onnxruntime. */
async function upgradeAndRun(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const up = upgradeOpset(model);
  expect(defaultOpset(up)).toBe(17);
  expect(up.irVersion).toBeGreaterThanOrEqual(8);
  return runModel(up, feeds);
}

function expectClose(actual: Tensor, dims: number[], expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  expect(actual.dims).toEqual(dims);
  const a = nums(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    const e = expected[i]!;
    if (Math.abs(a[i]! - e) > atol + rtol * Math.abs(e)) throw new Error(`element ${i}: got ${a[i]}, expected ${e}`);
  }
}

const upgradeError = (model: Model): string => {
  try {
    upgradeOpset(model);
  } catch (err) {
    expect(err).toBeInstanceOf(SngdError);
    return (err as Error).message;
  }
  throw new Error('upgradeOpset did not throw');
};

describe('upgradeOpset: elementwise', () => {
  it('Gemm-6 broadcast=1: C [N] broadcast over rows (onnxruntime refuses the original)', async () => {
    const b = new GraphBuilder('gemm', 6);
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.init('w', rand([4, 3]));
    const c = b.init('c', rand([4]));
    b.output(b.op('Gemm', [x, w, c], { broadcast: 1, transB: 1, alpha: float(0.5), beta: float(2) }, { output: 'y' }), 'float32');
    const model = b.build();
    const xv = rand([2, 3]);
    await expect(runModel(model, { x: xv })).rejects.toThrow(SngdError);
    const out = await upgradeAndRun(model, { x: xv });
    const W = b.graph.initializers.get(w)!.tensor.data as Float32Array;
    const C = b.graph.initializers.get(c)!.tensor.data as Float32Array;
    const X = xv.data as Float32Array;
    const ref: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += X[i * 3 + k]! * W[j * 3 + k]!;
      ref.push(0.5 * s + 2 * C[j]!);
    }
    expectClose(out.y!, [2, 4], ref);
  });

  it('Add-6 broadcast=1 axis=1: constant B [3,4] on A [2,3,4,5]', async () => {
    const b = new GraphBuilder('add', 6);
    b.input('a', 'float32', [2, 3, 4, 5]);
    const bias = b.init('bias', rand([3, 4]));
    b.output(b.op('Add', ['a', bias], { broadcast: 1, axis: 1, consumed_inputs: [0, 0] }, { output: 'y' }), 'float32');
    const av = rand([2, 3, 4, 5]);
    const up = upgradeOpset(b.build());
    expect(up.graph.initializers.has(bias)).toBe(false); // replaced by its [3,4,1] copy
    expect([...up.graph.initializers.values()].map((i) => i.tensor.dims)).toEqual([[3, 4, 1]]);
    const res = await upgradeAndRun(b.build(), { a: av });
    const A = av.data as Float32Array;
    const B = b.graph.initializers.get(bias)!.tensor.data as Float32Array;
    const ref = Array.from(A, (v, i) => v + B[Math.floor(i / 5) % 12]!);
    expectClose(res.y!, [2, 3, 4, 5], ref);
  });

  it('Mul-6 broadcast=1 axis=1 with B a graph input (Unsqueeze at run time), and Sub-6 suffix broadcast', async () => {
    const b = new GraphBuilder('mul', 6);
    const a = b.input('a', 'float32', [2, 3, 2]);
    const s = b.input('s', 'float32', [3]);
    const t = b.init('t', rand([2]));
    const m = b.op('Mul', [a, s], { broadcast: 1, axis: 1 });
    b.output(b.op('Sub', [m, t], { broadcast: 1 }, { output: 'y' }), 'float32');
    const av = rand([2, 3, 2]);
    const sv = rand([3]);
    const out = await upgradeAndRun(b.build(), { a: av, s: sv });
    const A = av.data as Float32Array;
    const S = sv.data as Float32Array;
    const T = b.graph.initializers.get(t)!.tensor.data as Float32Array;
    const ref = Array.from(A, (v, i) => v * S[Math.floor(i / 2) % 3]! - T[i % 2]!);
    expectClose(out.y!, [2, 3, 2], ref);
  });

  it('PRelu-6 with a [C] slope initializer on NCHW input applies it along channels', async () => {
    const b = new GraphBuilder('prelu', 6);
    const x = b.input('x', 'float32', [2, 3, 2, 2]);
    const slope = b.init('slope', float32Tensor([3], [0.1, 0.2, 0.3]));
    b.output(b.op('PRelu', [x, slope], { consumed_inputs: [0, 0] }, { output: 'y' }), 'float32');
    const xv = rand([2, 3, 2, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    const ref = Array.from(xv.data as Float32Array, (v, i) => (v >= 0 ? v : v * [0.1, 0.2, 0.3][Math.floor(i / 4) % 3]!));
    expectClose(out.y!, [2, 3, 2, 2], ref);
  });

  it('PRelu-6 after a Conv (rank from the Conv input) with a slope fed at run time', async () => {
    const b = new GraphBuilder('prelu_conv', 6);
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    const slope = b.input('slope', 'float32', [4]);
    const w = b.init('w', rand([4, 2, 1, 1]));
    const h = b.op('Conv', [x, w], { kernel_shape: [1, 1] });
    b.output(b.op('PRelu', [h, slope], {}, { output: 'y' }), 'float32');
    const xv = rand([1, 2, 3, 3]);
    const sv = float32Tensor([4], [0.5, -1, 2, 0]);
    const out = await upgradeAndRun(b.build(), { x: xv, slope: sv });
    const X = xv.data as Float32Array;
    const W = b.graph.initializers.get(w)!.tensor.data as Float32Array;
    const ref: number[] = [];
    for (let o = 0; o < 4; o++) for (let p = 0; p < 9; p++) {
      const v = W[o * 2]! * X[p]! + W[o * 2 + 1]! * X[9 + p]!;
      ref.push(v >= 0 ? v : v * (sv.data as Float32Array)[o]!);
    }
    expectClose(out.y!, [1, 4, 3, 3], ref);
  });

  it('PRelu-6 with a size-1 slope is left as it is; an unknown X rank is refused', async () => {
    const b = new GraphBuilder('prelu1', 6);
    const x = b.input('x', 'float32', [2, 3, 2]);
    const slope = b.init('slope', float32Tensor([1], [0.25]));
    b.output(b.op('PRelu', [x, slope], {}, { output: 'y' }), 'float32');
    const xv = rand([2, 3, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.y!, [2, 3, 2], Array.from(xv.data as Float32Array, (v) => (v >= 0 ? v : 0.25 * v)));

    const u = new GraphBuilder('prelu_unknown', 6);
    const ux = u.input('x', 'float32', [2, 3]);
    const mystery = u.op('Foo', [ux], {}, { domain: 'com.example', name: 'foo' });
    u.output(u.op('PRelu', [mystery, u.init('slope', float32Tensor([3], [1, 2, 3]))], {}, { name: 'act' }), 'float32');
    expect(upgradeError(u.build({ opsets: { 'com.example': 1 } }))).toMatch(/cannot upgrade node 'act' \(PRelu\) from opset 6: the rank of input X .* is unknown/);
  });

  it('Equal-10 on float inputs (invalid before 11) runs after the upgrade', async () => {
    const b = new GraphBuilder('eq', 10);
    const x = b.input('x', 'float32', [5]);
    const y = b.input('y', 'float32', [5]);
    b.output(b.op('Equal', [x, y], {}, { output: 'z' }), 'bool');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([5], [1, 2.5, 3, -1, 0]), y: float32Tensor([5], [1, 2, 3, 1, -0]) });
    expect(nums(out.z!)).toEqual([1, 0, 1, 0, 1]);
  });

  it('Clip-6 min/max attributes become inputs; Clip-1 with consumed_inputs and only max', async () => {
    const b = new GraphBuilder('clip', 6);
    const x = b.input('x', 'float32', [8]);
    b.output(b.op('Clip', [x], { min: float(-0.5), max: float(0.25) }, { output: 'y' }), 'float32');
    const xv = rand([8]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.y!, [8], Array.from(xv.data as Float32Array, (v) => Math.min(0.25, Math.max(-0.5, v))));

    const b1 = new GraphBuilder('clip1', 1);
    const x1 = b1.input('x', 'float32', [8]);
    b1.output(b1.op('Clip', [x1], { max: float(0.1), consumed_inputs: [0] }, { output: 'y' }), 'float32');
    const out1 = await upgradeAndRun(b1.build(), { x: xv });
    expectClose(out1.y!, [8], Array.from(xv.data as Float32Array, (v) => Math.min(0.1, v)));
  });

  it("Cast-1 with to='INT32' (a string) becomes the enum", async () => {
    const b = new GraphBuilder('cast', 1);
    const x = b.input('x', 'float32', [4]);
    b.output(b.op('Cast', [x], { to: 'INT32' }, { output: 'y' }), 'int32');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([4], [1.7, -2.3, 0, 5]) });
    expect(out.y!.dtype).toBe('int32');
    expect(nums(out.y!)).toEqual([1, -2, 0, 5]);
  });

  it('experimental ImageScaler-8 becomes Mul + Add', async () => {
    const b = new GraphBuilder('scaler', 8);
    const x = b.input('x', 'float32', [1, 3, 2, 2]);
    b.output(b.op('ImageScaler', [x], { scale: float(2), bias: float([1, 2, 3]) }, { output: 'y' }), 'float32');
    const xv = rand([1, 3, 2, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.y!, [1, 3, 2, 2], Array.from(xv.data as Float32Array, (v, i) => 2 * v + [1, 2, 3][Math.floor(i / 4)]!));
  });
});

describe('upgradeOpset: layers', () => {
  it('BatchNormalization-6 with is_test=1 and consumed_inputs', async () => {
    const b = new GraphBuilder('bn', 6);
    const x = b.input('x', 'float32', [2, 3, 2, 2]);
    const scale = b.init('scale', float32Tensor([3], [1, 0.5, 2]));
    const bias = b.init('bias', float32Tensor([3], [0, 1, -1]));
    const mean = b.init('mean', float32Tensor([3], [0.1, -0.2, 0.3]));
    const vari = b.init('var', float32Tensor([3], [1, 0.25, 4]));
    b.output(b.op('BatchNormalization', [x, scale, bias, mean, vari], { is_test: 1, epsilon: float(1e-3), momentum: float(0.9), consumed_inputs: [0, 0, 0, 1, 1] }, { output: 'y' }), 'float32');
    const xv = rand([2, 3, 2, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    const S = [1, 0.5, 2], B = [0, 1, -1], M = [0.1, -0.2, 0.3], V = [1, 0.25, 4];
    const ref = Array.from(xv.data as Float32Array, (v, i) => {
      const c = Math.floor(i / 4) % 3;
      return S[c]! * (v - M[c]!) / Math.sqrt(V[c]! + 1e-3) + B[c]!;
    });
    expectClose(out.y!, [2, 3, 2, 2], ref, 1e-5, 1e-4);
  });

  it('BatchNormalization refuses is_test=0 and spatial=0; drops unread training outputs', async () => {
    const make = (opset: number, attrs: Record<string, number>, nOut = 1): Model => {
      const b = new GraphBuilder('bn', opset);
      const x = b.input('x', 'float32', [1, 2, 2]);
      const p = ['s', 'b', 'm', 'v'].map((n, k) => b.init(n, float32Tensor([2], k === 0 || k === 3 ? [1, 1] : [0, 0])));
      const outs = b.opN('BatchNormalization', [x, ...p], nOut, attrs, { name: 'bn' });
      b.output(outs[0]!, 'float32');
      return b.build();
    };
    expect(upgradeError(make(6, { is_test: 0 }))).toMatch(/cannot upgrade node 'bn' \(BatchNormalization\) from opset 6: is_test=0 .*inference \(eval\) mode/);
    expect(upgradeError(make(7, { spatial: 0 }))).toMatch(/node 'bn' \(BatchNormalization\) from opset 7: spatial=0/);
    const up = upgradeOpset(make(9, {}, 5));
    expect(up.graph.nodes[0]!.outputs).toHaveLength(1);
    const xv = rand([1, 2, 2]);
    const out = await runModel(up, { x: xv });
    expectClose(out[up.graph.outputs[0]!.name]!, [1, 2, 2], Array.from(xv.data as Float32Array, (v) => v / Math.sqrt(1 + 1e-5)));
  });

  it('AveragePool-1 (excludes padding; onnxruntime has no AveragePool-1 kernel)', async () => {
    const b = new GraphBuilder('avg', 1);
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    b.output(b.op('AveragePool', [x], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }, { output: 'y' }), 'float32');
    const xv = rand([1, 2, 5, 5]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    const X = xv.data as Float32Array;
    const ref: number[] = [];
    for (let c = 0; c < 2; c++) for (let oy = 0; oy < 3; oy++) for (let ox = 0; ox < 3; ox++) {
      let s = 0, n = 0;
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
        if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
        s += X[c * 25 + iy * 5 + ix]!;
        n++;
      }
      ref.push(s / n);
    }
    expectClose(out.y!, [1, 2, 3, 3], ref);
  });

  it('GlobalLpPool-1 float p becomes an int', async () => {
    const b = new GraphBuilder('lp', 1);
    const x = b.input('x', 'float32', [1, 2, 2, 2]);
    b.output(b.op('GlobalLpPool', [x], { p: float(2) }, { output: 'y' }), 'float32');
    const xv = rand([1, 2, 2, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    const X = xv.data as Float32Array;
    const ref = [0, 1].map((c) => Math.sqrt(X.slice(c * 4, c * 4 + 4).reduce((s, v) => s + v * v, 0)));
    expectClose(out.y!, [1, 2, 1, 1], ref);
  });

  it('Softmax-11 axis=1 on a 4-D input keeps the flatten-to-2-D semantics', async () => {
    const b = new GraphBuilder('softmax', 11);
    const x = b.input('x', 'float32', [2, 3, 2, 2]);
    b.output(b.op('Softmax', [x], { axis: 1 }, { output: 'y' }), 'float32');
    const model = b.build();
    const xv = rand([2, 3, 2, 2], -3, 3);
    const out = await upgradeAndRun(model, { x: xv });
    const X = xv.data as Float32Array;
    const ref: number[] = [];
    for (let n = 0; n < 2; n++) {
      const row = Array.from(X.slice(n * 12, n * 12 + 12));
      const mx = Math.max(...row);
      const e = row.map((v) => Math.exp(v - mx));
      const s = e.reduce((p, v) => p + v, 0);
      ref.push(...e.map((v) => v / s));
    }
    expectClose(out.y!, [2, 3, 2, 2], ref);
    // onnxruntime still runs Softmax-11: the original model agrees.
    const old = await runModel(model, { x: xv });
    expectClose(out.y!, [2, 3, 2, 2], nums(old.y!));
  });

  it('Softmax-1 default axis on an input of unknown rank, LogSoftmax on the last axis, Hardmax-11 axis=1', async () => {
    const b = new GraphBuilder('softmaxes', 1);
    const x = b.input('x', 'float32', [2, 3, 2]);
    b.graph.inputs.push({ name: 'z', elemType: 1 }); // no shape: the Flatten/Reshape form works at any rank
    b.output(b.op('Softmax', ['z'], {}, { output: 'p' }), 'float32');
    b.output(b.op('LogSoftmax', [x], { axis: 2 }, { output: 'l' }), 'float32');
    const up = upgradeOpset(b.build());
    expect(up.graph.nodes.filter((n) => n.opType === 'Flatten')).toHaveLength(1); // only Softmax (axis 1 of 3) needs it
    const xv = rand([2, 3, 2], -2, 2);
    const out = await runModel(up, { x: xv, z: xv });
    const X = Array.from(xv.data as Float32Array);
    const softmax = (row: number[]): number[] => {
      const e = row.map((v) => Math.exp(v));
      const s = e.reduce((p, v) => p + v, 0);
      return e.map((v) => v / s);
    };
    expectClose(out.p!, [2, 3, 2], [...softmax(X.slice(0, 6)), ...softmax(X.slice(6))]);
    const lref: number[] = [];
    for (let r = 0; r < 6; r++) lref.push(...softmax(X.slice(r * 2, r * 2 + 2)).map(Math.log));
    expectClose(out.l!, [2, 3, 2], lref);

    const h = new GraphBuilder('hardmax', 11);
    const hx = h.input('x', 'float32', [2, 3, 2]);
    h.output(h.op('Hardmax', [hx], { axis: 1 }, { output: 'y' }), 'float32');
    const hout = await upgradeAndRun(h.build(), { x: xv });
    const href: number[] = [];
    for (let n = 0; n < 2; n++) {
      const row = X.slice(n * 6, n * 6 + 6);
      const k = row.indexOf(Math.max(...row));
      href.push(...row.map((_, i) => (i === k ? 1 : 0)));
    }
    expectClose(hout.y!, [2, 3, 2], href);
  });

  it('Dropout-6 (is_test, ratio, consumed_inputs) is the identity at inference', async () => {
    const b = new GraphBuilder('dropout', 6);
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.op('Dropout', [x], { is_test: 1, ratio: float(0.3), consumed_inputs: [0] }, { output: 'y' }), 'float32');
    const xv = rand([2, 3]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.y!, [2, 3], nums(xv));
  });

  it('Dropout-10 ratio attribute → input; its bool mask is all true at inference', async () => {
    const b = new GraphBuilder('dropout10', 10);
    const x = b.input('x', 'float32', [2, 3]);
    const [y, mask] = b.opN('Dropout', [x], 2, { ratio: float(0.2) }, { name: 'drop' });
    b.output(y!, 'float32');
    b.output(mask!, 'bool');
    const up = upgradeOpset(b.build());
    expect(getAttr(up.graph.nodes.find((n) => n.opType === 'Dropout')!, 'ratio')).toBeUndefined();
    const xv = rand([2, 3]);
    const out = await runModel(up, { x: xv });
    expectClose(out[y!]!, [2, 3], nums(xv));
    expect(nums(out[mask!]!)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('Dropout-7 mask of type T that is read gets a CastLike of the bool mask', async () => {
    const b = new GraphBuilder('dropout7', 7);
    const x = b.input('x', 'float32', [3]);
    const [y, mask] = b.opN('Dropout', [x], 2, {});
    b.output(b.op('Mul', [y!, mask!], {}, { output: 'z' }), 'float32');
    const xv = rand([3]);
    const up = upgradeOpset(b.build());
    expect(up.graph.nodes.map((n) => n.opType)).toEqual(['Dropout', 'CastLike', 'Mul']);
    const out = await runModel(up, { x: xv });
    expectClose(out.z!, [3], nums(xv));
  });

  it('LSTM-1 output_sequence is dropped (reference: the same LSTM built at opset 17)', async () => {
    const build = (opset: number, attrs: Record<string, number>): Model => {
      const r = new Rng(5);
      const b = new GraphBuilder('lstm', opset);
      const x = b.input('x', 'float32', [3, 1, 2]);
      const w = b.init('w', float32Tensor([1, 12, 2], r.floats(24)));
      const rr = b.init('r', float32Tensor([1, 12, 3], r.floats(36)));
      const [y, yh] = b.opN('LSTM', [x, w, rr], 2, { hidden_size: 3, ...attrs });
      b.output(y!, 'float32');
      b.output(yh!, 'float32');
      return b.build();
    };
    const xv = rand([3, 1, 2]);
    const got = await upgradeAndRun(build(1, { output_sequence: 1 }), { x: xv });
    const want = await runModel(build(17, {}), { x: xv });
    for (const k of Object.keys(want)) expectClose(got[k]!, want[k]!.dims, nums(want[k]!));
  });
});

describe('upgradeOpset: shapes and data movement', () => {
  it('Reshape-1 shape attribute (with consumed_inputs) becomes an input', async () => {
    const b = new GraphBuilder('reshape', 1);
    const x = b.input('x', 'float32', [2, 3, 2]);
    b.output(b.op('Reshape', [x], { shape: [3, -1], consumed_inputs: [1] }, { output: 'y' }), 'float32');
    const xv = rand([2, 3, 2]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.y!, [3, 4], nums(xv));
  });

  it('Concat-1 without axis concatenates along axis 1', async () => {
    const b = new GraphBuilder('concat', 1);
    const x = b.input('x', 'float32', [2, 1]);
    const y = b.input('y', 'float32', [2, 2]);
    b.output(b.op('Concat', [x, y], {}, { output: 'z' }), 'float32');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([2, 1], [1, 2]), y: float32Tensor([2, 2], [3, 4, 5, 6]) });
    expectClose(out.z!, [2, 3], [1, 3, 4, 2, 5, 6]);
  });

  it('Slice-1 starts/ends/axes attributes (INT64_MAX end included) become inputs', async () => {
    const b = new GraphBuilder('slice', 1);
    const x = b.input('x', 'float32', [3, 4]);
    const intMax: AttributeProto = { type: AttrType.INTS, ints: [3, Long.fromString('9223372036854775807')] };
    const s1 = b.op('Slice', [x], { starts: [1, 1], ends: intMax, axes: [0, 1] }, { output: 'a' });
    b.output(s1, 'float32');
    b.output(b.op('Slice', [x], { starts: [0, -3], ends: [2, -1] }, { output: 'c' }), 'float32');
    const xv = float32Tensor([3, 4], Array.from({ length: 12 }, (_, i) => i));
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.a!, [2, 3], [5, 6, 7, 9, 10, 11]);
    expectClose(out.c!, [2, 2], [1, 2, 5, 6]);
  });

  it('Squeeze-11 and Unsqueeze-11 axes attributes become inputs', async () => {
    const b = new GraphBuilder('squeeze', 11);
    const x = b.input('x', 'float32', [2, 1, 3]);
    const s = b.op('Squeeze', [x], { axes: [1] }, { output: 's' });
    b.output(s, 'float32');
    b.output(b.op('Unsqueeze', [s], { axes: [0, -1] }, { output: 'u' }), 'float32');
    const xv = rand([2, 1, 3]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.s!, [2, 3], nums(xv));
    expectClose(out.u!, [1, 2, 3, 1], nums(xv));
  });

  it('Split-2 split attribute becomes an input; Split-1 split input becomes constant sizes', async () => {
    const b = new GraphBuilder('split', 2);
    const x = b.input('x', 'float32', [2, 5]);
    const [p, q] = b.opN('Split', [x], 2, { axis: 1, split: [2, 3] });
    b.output(p!, 'float32');
    b.output(q!, 'float32');
    const xv = float32Tensor([2, 5], Array.from({ length: 10 }, (_, i) => i));
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out[p!]!, [2, 2], [0, 1, 5, 6]);
    expectClose(out[q!]!, [2, 3], [2, 3, 4, 7, 8, 9]);

    const b1 = new GraphBuilder('split1', 1);
    const x1 = b1.input('x', 'float32', [2, 5]);
    const sizes = b1.op('Constant', [], { value: int64Tensor([2], [4, 1]) });
    const [r, s] = b1.opN('Split', [x1, sizes], 2, { axis: 1 });
    b1.output(r!, 'float32');
    b1.output(s!, 'float32');
    const out1 = await upgradeAndRun(b1.build(), { x: xv });
    expectClose(out1[r!]!, [2, 4], [0, 1, 2, 3, 5, 6, 7, 8]);
    expectClose(out1[s!]!, [2, 1], [4, 9]);
  });

  it('Pad-2 pads/value attributes become inputs; Pad-1 paddings in edge mode', async () => {
    const b = new GraphBuilder('pad', 2);
    const x = b.input('x', 'float32', [1, 2, 2]);
    b.output(b.op('Pad', [x], { pads: [0, 1, 0, 0, 0, 2], value: float(1.5) }, { output: 'y' }), 'float32');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([1, 2, 2], [1, 2, 3, 4]) });
    expectClose(out.y!, [1, 3, 4], [1.5, 1.5, 1.5, 1.5, 1, 2, 1.5, 1.5, 3, 4, 1.5, 1.5]);

    const b1 = new GraphBuilder('pad1', 1);
    const x1 = b1.input('x', 'float32', [2, 2]);
    b1.output(b1.op('Pad', [x1], { paddings: [0, 1, 0, 1], mode: 'edge' }, { output: 'y' }), 'float32');
    const out1 = await upgradeAndRun(b1.build(), { x: float32Tensor([2, 2], [1, 2, 3, 4]) });
    expectClose(out1.y!, [2, 4], [1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it('TopK-1 k attribute becomes an input', async () => {
    const b = new GraphBuilder('topk', 1);
    const x = b.input('x', 'float32', [2, 4]);
    const [v, i] = b.opN('TopK', [x], 2, { k: 2 });
    b.output(v!, 'float32');
    b.output(i!, 'int64');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([2, 4], [3, 1, 4, 1.5, -1, 9, 2, 6]) });
    expectClose(out[v!]!, [2, 2], [4, 3, 9, 6]);
    expect(nums(out[i!]!)).toEqual([2, 0, 1, 3]);
  });

  it('Tile-1 (tiles and axis inputs) becomes Tile with repeats', async () => {
    const b = new GraphBuilder('tile', 1);
    const x = b.input('x', 'float32', [2, 2]);
    const tiles = b.op('Constant', [], { value: int64Tensor([], [3]) });
    const axis = b.op('Constant', [], { value: int64Tensor([], [1]) });
    b.output(b.op('Tile', [x, tiles, axis], {}, { output: 'y' }), 'float32');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([2, 2], [1, 2, 3, 4]) });
    expectClose(out.y!, [2, 6], [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]);
  });

  it('ReduceSum-11 axes become an input at 17; ReduceMean keeps its attribute until 18', async () => {
    const b = new GraphBuilder('reduce', 11);
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.op('ReduceSum', [x], { axes: [1], keepdims: 0 }, { output: 's' }), 'float32');
    b.output(b.op('ReduceMean', [x], { axes: [0] }, { output: 'm' }), 'float32');
    const xv = float32Tensor([2, 3], [1, 2, 3, 4, 5, 6]);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.s!, [2], [6, 15]);
    expectClose(out.m!, [1, 3], [2.5, 3.5, 4.5]);
    const at17 = upgradeOpset(b.build());
    expect(at17.graph.nodes.find((n) => n.opType === 'ReduceMean')!.inputs).toHaveLength(1);
    const at18 = upgradeOpset(b.build(), 18);
    expect(at18.graph.nodes.find((n) => n.opType === 'ReduceMean')!.inputs).toHaveLength(2);
    const out18 = await runModel(at18, { x: xv });
    expectClose(out18.m!, [1, 3], [2.5, 3.5, 4.5]);
  });

  it('Upsample-9 nearest ×2 becomes Resize (asymmetric, floor)', async () => {
    const b = new GraphBuilder('upsample', 9);
    const x = b.input('x', 'float32', [1, 1, 2, 2]);
    const scales = b.init('scales', float32Tensor([4], [1, 1, 2, 2]));
    b.output(b.op('Upsample', [x, scales], { mode: 'nearest' }, { output: 'y' }), 'float32');
    const out = await upgradeAndRun(b.build(), { x: float32Tensor([1, 1, 2, 2], [1, 2, 3, 4]) });
    expectClose(out.y!, [1, 1, 4, 4], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  it('Upsample-7 linear and Resize-10 nearest downsampling match onnxruntime on the original models', async () => {
    const u = new GraphBuilder('upsample7', 7);
    const ux = u.input('x', 'float32', [1, 1, 2, 3]);
    u.output(u.op('Upsample', [ux], { mode: 'linear', scales: float([1, 1, 1.5, 2.5]) }, { output: 'y' }), 'float32');
    // Reference: the same resize as opset-10 Resize, which onnxruntime still runs.
    const r10 = new GraphBuilder('resize10', 10);
    const rx = r10.input('x', 'float32', [1, 1, 2, 3]);
    r10.output(r10.op('Resize', [rx, r10.init('s', float32Tensor([4], [1, 1, 1.5, 2.5]))], { mode: 'linear' }, { output: 'y' }), 'float32');
    const xv = rand([1, 1, 2, 3]);
    const got = await upgradeAndRun(u.build(), { x: xv });
    const want = await runModel(r10.build(), { x: xv });
    expectClose(got.y!, want.y!.dims, nums(want.y!));

    const d = new GraphBuilder('down', 10);
    const dx = d.input('x', 'float32', [1, 1, 4, 5]);
    d.output(d.op('Resize', [dx, d.init('s', float32Tensor([4], [1, 1, 0.6, 0.6]))], { mode: 'nearest' }, { output: 'y' }), 'float32');
    const xd = rand([1, 1, 4, 5]);
    const gotd = await upgradeAndRun(d.build(), { x: xd });
    const wantd = await runModel(d.build(), { x: xd });
    expectClose(gotd.y!, wantd.y!.dims, nums(wantd.y!));
  });

  it('Scatter-9 becomes ScatterElements (reference: onnxruntime on the original)', async () => {
    const b = new GraphBuilder('scatter', 9);
    const x = b.input('x', 'float32', [3, 4]);
    const idx = b.init('idx', int64Tensor([2, 2], [1, 0, 3, 2]));
    const upd = b.init('upd', float32Tensor([2, 2], [9, 8, 7, 6]));
    b.output(b.op('Scatter', [x, idx, upd], { axis: 1 }, { output: 'y' }), 'float32');
    const xv = rand([3, 4]);
    const up = upgradeOpset(b.build());
    expect(up.graph.nodes[0]!.opType).toBe('ScatterElements');
    const got = await runModel(up, { x: xv });
    const want = await runModel(b.build(), { x: xv });
    expectClose(got.y!, [3, 4], nums(want.y!));
  });
});

describe('upgradeOpset: experimental ops and later opsets', () => {
  it('rewrites Affine, Scale, ScaledTanh, ParametricSoftplus, DynamicSlice and Upsample-1 (opset 1 experimental)', async () => {
    const b = new GraphBuilder('experimental', 1);
    const x = b.input('x', 'float32', [1, 1, 2, 3]);
    b.output(b.op('Affine', [x], { alpha: float(2), beta: float(0.5) }, { output: 'affine' }), 'float32');
    b.output(b.op('Scale', [x], { scale: float(-3) }, { output: 'scale' }), 'float32');
    b.output(b.op('ScaledTanh', [x], { alpha: float(1.5), beta: float(0.7) }, { output: 'tanh' }), 'float32');
    b.output(b.op('ParametricSoftplus', [x], { alpha: float(0.5), beta: float(2) }, { output: 'softplus' }), 'float32');
    const starts = b.init('starts', int64Tensor([1], [1]));
    const ends = b.init('ends', int64Tensor([1], [3]));
    const axes = b.init('axes', int64Tensor([1], [3]));
    b.output(b.op('DynamicSlice', [x, starts, ends, axes], {}, { output: 'slice' }), 'float32');
    b.output(b.op('Upsample', [x], { height_scale: float(2), width_scale: float(1), mode: 'nearest' }, { output: 'up' }), 'float32');
    const xv = rand([1, 1, 2, 3], -2, 2);
    const X = nums(xv);
    const out = await upgradeAndRun(b.build(), { x: xv });
    expectClose(out.affine!, [1, 1, 2, 3], X.map((v) => 2 * v + 0.5));
    expectClose(out.scale!, [1, 1, 2, 3], X.map((v) => -3 * v));
    expectClose(out.tanh!, [1, 1, 2, 3], X.map((v) => 1.5 * Math.tanh(0.7 * v)));
    expectClose(out.softplus!, [1, 1, 2, 3], X.map((v) => 0.5 * Math.log(1 + Math.exp(2 * v))));
    expectClose(out.slice!, [1, 1, 2, 2], [X[1]!, X[2]!, X[4]!, X[5]!]);
    expectClose(out.up!, [1, 1, 4, 3], [...X.slice(0, 3), ...X.slice(0, 3), ...X.slice(3), ...X.slice(3)]);
  });

  it('deprecated Upsample and Scatter left in opset-12 models still become Resize and ScatterElements', async () => {
    const b = new GraphBuilder('deprecated', 12);
    const x = b.input('x', 'float32', [1, 1, 2, 2]);
    const scales = b.init('scales', float32Tensor([4], [1, 1, 2, 1]));
    b.output(b.op('Upsample', [x, scales], {}, { output: 'up' }), 'float32');
    const idx = b.init('idx', int64Tensor([1, 1, 1, 1], [1]));
    const upd = b.init('upd', float32Tensor([1, 1, 1, 1], [9]));
    b.output(b.op('Scatter', [x, idx, upd], { axis: 3 }, { output: 'sc' }), 'float32');
    const up = upgradeOpset(b.build());
    expect(up.graph.nodes.map((n) => n.opType)).toEqual(['Resize', 'ScatterElements']);
    const out = await runModel(up, { x: float32Tensor([1, 1, 2, 2], [1, 2, 3, 4]) });
    expectClose(out.up!, [1, 1, 4, 2], [1, 2, 1, 2, 3, 4, 3, 4]);
    expectClose(out.sc!, [1, 1, 2, 2], [1, 9, 3, 4]);
  });

  it('refuses experimental ops without a rewrite (Crop), naming the node', () => {
    const b = new GraphBuilder('crop', 7);
    b.output(b.op('Crop', [b.input('x', 'float32', [1, 1, 4, 4])], { border: [1, 1, 1, 1] }, { name: 'crop' }), 'float32');
    expect(upgradeError(b.build())).toMatch(/node 'crop' \(Crop\) from opset 7: Crop was an experimental op, removed at opset 10/);
  });

  // onnxruntime still runs these old versions, so the original model is the reference.
  const sameAsOriginal = async (b: GraphBuilder, feeds: Record<string, Tensor>, target: number): Promise<Model> => {
    const up = upgradeOpset(b.build(), target);
    expect(defaultOpset(up)).toBe(target);
    const got = await runModel(up, feeds);
    const want = await runModel(b.build(), feeds);
    for (const k of Object.keys(want)) expectClose(got[k]!, want[k]!.dims, nums(want[k]!));
    return up;
  };

  it('RoiAlign-10 keeps output_half_pixel coordinates at 17', async () => {
    const b = new GraphBuilder('roi', 10);
    const x = b.input('x', 'float32', [1, 1, 4, 4]);
    const rois = b.init('rois', float32Tensor([1, 4], [0.5, 0.5, 3.2, 2.9]));
    const idx = b.init('idx', int64Tensor([1], [0]));
    b.output(b.op('RoiAlign', [x, rois, idx], { output_height: 2, output_width: 2, sampling_ratio: 2 }, { output: 'y' }), 'float32');
    await sameAsOriginal(b, { x: rand([1, 1, 4, 4]) }, 17);
  });

  it('Split-13 without sizes gets num_outputs at 18', async () => {
    const b = new GraphBuilder('split13', 13);
    const x = b.input('x', 'float32', [2, 6]);
    for (const o of b.opN('Split', [x], 3, { axis: 1 })) b.output(o, 'float32');
    const up = await sameAsOriginal(b, { x: rand([2, 6]) }, 18);
    expect(attrInt(up.graph.nodes[0]!, 'num_outputs')).toBe(3);
  });

  it('DFT-17 axis attribute becomes an input at 20; GridSample-16 bicubic becomes cubic', async () => {
    const d = new GraphBuilder('dft', 17);
    d.output(d.op('DFT', [d.input('x', 'float32', [1, 8, 1])], { axis: 1, onesided: 0 }, { output: 'y' }), 'float32');
    await sameAsOriginal(d, { x: rand([1, 8, 1]) }, 20);

    const g = new GraphBuilder('grid', 16);
    const gx = g.input('x', 'float32', [1, 1, 3, 3]);
    g.output(g.op('GridSample', [gx, g.init('grid', rand([1, 2, 2, 2]))], { mode: 'bicubic' }, { output: 'y' }), 'float32');
    await sameAsOriginal(g, { x: rand([1, 1, 3, 3]) }, 20);
  });

  it('GroupNormalization-18 per-group scale/bias become per-channel at 21', async () => {
    const b = new GraphBuilder('gn', 18);
    const x = b.input('x', 'float32', [2, 4, 3]);
    const scale = b.init('scale', float32Tensor([2], [1.5, -0.5]));
    const bias = b.init('bias', float32Tensor([2], [0.1, 0.2]));
    b.output(b.op('GroupNormalization', [x, scale, bias], { num_groups: 2 }, { output: 'y' }), 'float32');
    const up = await sameAsOriginal(b, { x: rand([2, 4, 3]) }, 21);
    const scale21 = up.graph.initializers.get(up.graph.nodes[0]!.inputs[1]!)!.tensor;
    expect(nums(scale21)).toEqual([1.5, 1.5, -0.5, -0.5]);
  });
});

describe('upgradeOpset: contract', () => {
  it('returns an unchanged copy of a model already at opset 17', () => {
    const b = new GraphBuilder('m17', 17);
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Relu', [x], {}, { output: 'y' }), 'float32');
    const m = b.build();
    const up = upgradeOpset(m);
    expect(up).not.toBe(m);
    expect(up.graph).not.toBe(m.graph);
    expect(encodeModel(modelToProto(up))).toEqual(encodeModel(modelToProto(m)));
  });

  it('never mutates its input', () => {
    const b = new GraphBuilder('old', 6);
    const x = b.input('x', 'float32', [1, 3, 2, 2]);
    const slope = b.init('slope', float32Tensor([3], [0.1, 0.2, 0.3]));
    const h = b.op('PRelu', [x, slope], { consumed_inputs: [0, 0] });
    const s = b.op('Softmax', [h], { axis: 1 });
    b.output(b.op('Reshape', [s], { shape: [-1] }, { output: 'y' }), 'float32');
    const m = b.build();
    const before = encodeModel(modelToProto(m));
    const nodes = m.graph.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: [...n.attrs] }));
    const up = upgradeOpset(m);
    expect(up.graph.nodes.length).toBeGreaterThan(m.graph.nodes.length);
    expect(encodeModel(modelToProto(m))).toEqual(before);
    expect(m.graph.nodes).toEqual(nodes);
    expect(m.opsets.get('')).toBe(6);
    expect([...m.graph.initializers.keys()]).toEqual([slope]);
  });

  it('refuses an op without a rule, naming the node, the op and the opset', () => {
    const b = new GraphBuilder('unknown', 6);
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('FrobnicateOp', [x], {}, { name: 'frob' }), 'float32');
    expect(upgradeError(b.build())).toMatch(/^cannot upgrade node 'frob' \(FrobnicateOp\) from opset 6: no upgrade rule for FrobnicateOp/);
  });

  it('refuses Scan-8 and out-of-range targets with clear errors', () => {
    const b = new GraphBuilder('scan', 8);
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Scan', [x], {}, { name: 'scan' }), 'float32');
    expect(upgradeError(b.build())).toMatch(/node 'scan' \(Scan\) from opset 8: Scan-8 .*re-export/);
    const ok = new GraphBuilder('ok', 6);
    ok.output(ok.op('Relu', [ok.input('x', 'float32', [1])]), 'float32');
    expect(() => upgradeOpset(ok.build(), 16)).toThrow(/target must be an integer from 17 to 21, got 16/);
    expect(() => upgradeOpset(ok.build(), MAX_TARGET + 1)).toThrow(SngdError);
  });

  it('leaves other domains alone (com.microsoft Gelu at opset 9)', async () => {
    const b = new GraphBuilder('ms', 9);
    const x = b.input('x', 'float32', [4]);
    const g = b.op('Gelu', [x], {}, { domain: 'com.microsoft' });
    b.output(b.op('Relu', [g], {}, { output: 'y' }), 'float32');
    const m = b.build({ opsets: { 'com.microsoft': 1 } });
    const up = upgradeOpset(m);
    expect(up.graph.nodes[0]).toEqual(m.graph.nodes[0]);
    expect(up.opsets.get('com.microsoft')).toBe(1);
    const xv = float32Tensor([4], [-1, 0, 0.5, 2]);
    const out = await runModel(up, { x: xv });
    const erf = (z: number): number => {
      // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7)
      const t = 1 / (1 + 0.3275911 * Math.abs(z));
      const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
      return z >= 0 ? y : -y;
    };
    expectClose(out.y!, [4], nums(xv).map((v) => Math.max(0, 0.5 * v * (1 + erf(v / Math.SQRT2)))), 1e-5);
  });

  it('upgrades If branches (Unsqueeze-11 inside) and names body nodes in errors', async () => {
    const branch = (name: string, axes: number[], opType = 'Unsqueeze'): AttributeProto => {
      const g = new GraphBuilder(`${name}_body`, 11);
      g.output(g.op(opType, ['x'], { axes }, { name: `${name}_op`, output: `${name}_y` }), 'float32');
      return { type: AttrType.GRAPH, g: graphToProto(g.graph) };
    };
    const b = new GraphBuilder('if', 11);
    b.input('x', 'float32', [2, 3]); // read by both branches
    const c = b.input('c', 'bool', []);
    b.output(b.op('If', [c], { then_branch: branch('then', [0]), else_branch: branch('else', [2]) }, { output: 'y', name: 'if' }), 'float32');
    const up = upgradeOpset(b.build());
    const xv = rand([2, 3]);
    const yes = await runModel(up, { x: xv, c: { dtype: 'bool', dims: [], data: Uint8Array.of(1) } });
    expectClose(yes.y!, [1, 2, 3], nums(xv));
    const no = await runModel(up, { x: xv, c: { dtype: 'bool', dims: [], data: Uint8Array.of(0) } });
    expectClose(no.y!, [2, 3, 1], nums(xv));

    const bad = new GraphBuilder('ifbad', 11);
    bad.input('x', 'float32', [2, 3]);
    const bc = bad.input('c', 'bool', []);
    bad.output(bad.op('If', [bc], { then_branch: branch('then', [0], 'Wibble'), else_branch: branch('else', [2]) }, { name: 'if' }), 'float32');
    expect(upgradeError(bad.build())).toMatch(/node 'then_op' \(Wibble\) in the 'then_branch' subgraph of node 'if' \(If\) from opset 11: no upgrade rule/);
  });
});

describe('upgrade registry', () => {
  it('names each op in one family table or in UNCHANGED, never twice', () => {
    const seen = new Map<string, string>();
    for (const [family, table] of Object.entries(FAMILIES)) {
      for (const op of Object.keys(table)) {
        expect(seen.get(op), `${op} in ${family} and ${seen.get(op)}`).toBeUndefined();
        expect(UNCHANGED.has(op), `${op} is in ${family} and in UNCHANGED`).toBe(false);
        seen.set(op, family);
      }
    }
    expect(Object.keys(RULES).length).toBe(seen.size);
  });

  it('lists steps in increasing opset order within 2..MAX_TARGET', () => {
    for (const [op, steps] of Object.entries(RULES)) {
      let last = 1;
      for (const s of steps) {
        expect(s.at, `${op} step at ${s.at}`).toBeGreaterThan(last);
        expect(s.at).toBeLessThanOrEqual(MAX_TARGET);
        last = s.at;
      }
    }
  });

  it('covers the ops the brief requires', () => {
    const required = [
      'Relu', 'LeakyRelu', 'Elu', 'Sigmoid', 'Tanh', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal',
      'Floor', 'Ceil', 'Clip', 'BatchNormalization', 'PRelu', 'Selu', 'HardSigmoid', 'Sum', 'Max', 'Min', 'Mean', 'Pow', 'And',
      'Or', 'Xor', 'Equal', 'Greater', 'Less', 'Gemm', 'Dropout', 'AveragePool', 'MaxPool', 'Reshape', 'Cast', 'Concat',
      'Softmax', 'LogSoftmax', 'Hardmax', 'Slice', 'Pad', 'Squeeze', 'Unsqueeze', 'Split', 'ReduceSum', 'TopK', 'Upsample',
      'Flatten', 'Gather', 'Transpose', 'Conv', 'ConvTranspose', 'MatMul', 'Identity', 'Constant', 'Shape', 'LSTM', 'GRU', 'RNN',
    ];
    for (const op of required) expect(op in RULES || UNCHANGED.has(op), op).toBe(true);
  });

  it('drops Gemm-6 broadcast', () => {
    const b = new GraphBuilder('attr', 6);
    b.output(b.op('Gemm', [b.input('a', 'float32', [1, 1]), b.input('b', 'float32', [1, 1])], { broadcast: 1 }), 'float32');
    const up = upgradeOpset(b.build());
    expect(attrInt(up.graph.nodes[0]!, 'broadcast')).toBeUndefined();
  });
});

describe('corpus', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  // SNGD_CORPUS points elsewhere (e.g. a local copy); shared/ sits in or beside the checkout.
  const candidates = [process.env.SNGD_CORPUS, path.join(root, 'shared', 'corpus'), path.join(root, '..', 'shared', 'corpus')];
  const corpus = candidates.find((p): p is string => !!p && fs.existsSync(p));
  if (!corpus) {
    console.warn('shared/corpus not found: corpus upgrade checks skipped');
    it.skip('shared/corpus not found: corpus upgrade checks skipped', () => {});
    return;
  }
  const models: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.onnx')) models.push(p);
    }
  };
  walk(corpus);
  const readPb = (file: string): { name?: string; tensor: Tensor } => {
    const proto = TensorProtoType.decode(fs.readFileSync(file)) as unknown as TensorProto;
    return { name: proto.name || undefined, tensor: tensorFromProto(proto, { source: file }) };
  };
  const numbered = (dir: string, prefix: string): string[] =>
    fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
      .sort((a, b) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3))).map((f) => path.join(dir, f));

  it.each(models.map((m) => [path.relative(corpus, m), m]))('%s upgrades, loads and matches its reference outputs', async (_rel, file) => {
    const up = upgradeOpset(loadModel(file));
    expect(defaultOpset(up)).toBeGreaterThanOrEqual(17);
    const session = await createSession(up, {}, file);
    try {
      const data = path.join(path.dirname(file), 'test_data_set_0');
      if (!fs.existsSync(data)) return;
      const inputs = numbered(data, 'input_').map(readPb);
      const outputs = numbered(data, 'output_').map(readPb);
      const feedNames = up.graph.inputs.filter((v) => !up.graph.initializers.has(v.name)).map((v) => v.name);
      const feeds: Record<string, Tensor> = {};
      inputs.forEach((t, k) => (feeds[t.name ?? feedNames[k]!] = t.tensor));
      const got = await session.run(feeds);
      outputs.forEach((want, k) => {
        const name = want.name ?? up.graph.outputs[k]!.name;
        expect(got[name], `output '${name}'`).toBeDefined();
        expectClose(got[name]!, want.tensor.dims, nums(want.tensor), 1e-5, 1e-4);
      });
    } finally {
      await session.release();
    }
  });
});
