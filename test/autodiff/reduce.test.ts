/** Per-op gradient checks: reductions and softmax (central differences through onnxruntime). */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/builder.js';
import { differentiate } from '../../passes/autodiff/index.js';
import { rules } from '../../passes/autodiff/rules/reduce.js';
import { createSession } from '../../runtime/ort.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { opModel, type OpCase } from '../helpers/op-model.js';

/**
 * `symbolic`: float input dims other than 1 become symbols (Shape-based paths); `dynamic`: int
 * constants (axes) become fed graph inputs, so rules cannot read them as constants.
 */
type Case = OpCase;

const cases: Case[] = [
  { op: 'ReduceSum', attrs: { keepdims: 0 }, inputs: [[2, 3, 4], { ints: [1] }], label: 'ReduceSum (axes input, keepdims 0)' },
  { op: 'ReduceSum', inputs: [[2, 3, 4], { ints: [-1, 0] }], label: 'ReduceSum (negative axes, keepdims 1)' },
  { op: 'ReduceSum', attrs: { keepdims: 0 }, inputs: [[2, 3]], label: 'ReduceSum (no axes: all)' },
  { op: 'ReduceSum', attrs: { keepdims: 0 }, inputs: [[2, 3], { ints: [] }], label: 'ReduceSum (empty axes: all)' },
  { op: 'ReduceSum', attrs: { noop_with_empty_axes: 1 }, inputs: [[2, 3], { ints: [] }], label: 'ReduceSum (empty axes, noop)' },
  { op: 'ReduceSum', inputs: [[2, 3]], label: 'ReduceSum (no axes, keepdims 1)' },
  { op: 'ReduceSum', attrs: { noop_with_empty_axes: 1 }, inputs: [[2, 3]], label: 'ReduceSum (noop_with_empty_axes)' },
  { op: 'ReduceSum', attrs: { keepdims: 0 }, inputs: [[2, 3, 4], { ints: [2, 0] }], runtimeInts: true, symbolicDims: true, label: 'ReduceSum (run-time axes, symbolic)' },
  { op: 'ReduceMean', attrs: { axes: [1], keepdims: 0 }, inputs: [[2, 3, 4]], label: 'ReduceMean (axes, keepdims 0)' },
  { op: 'ReduceMean', attrs: { axes: [0, -1] }, inputs: [[2, 3, 4]], label: 'ReduceMean (negative axes, keepdims 1)' },
  { op: 'ReduceMean', attrs: { keepdims: 0 }, inputs: [[3, 4]], label: 'ReduceMean (all)' },
  { op: 'ReduceMean', attrs: { axes: [0], keepdims: 0 }, inputs: [[3, 4]], symbolicDims: true, label: 'ReduceMean (symbolic reduced dim)' },
  { op: 'ReduceMean', opset: 18, attrs: { keepdims: 0 }, inputs: [[2, 3, 4], { ints: [-1, 1] }], label: 'ReduceMean (opset 18 axes input)' },
  // Maxima are strict by a margin above ε = 1e-2 for these seeds, so the differences stay on one side of every kink.
  { op: 'ReduceMax', attrs: { axes: [1], keepdims: 0 }, inputs: [[2, 4, 2]], label: 'ReduceMax (axes, keepdims 0)' },
  { op: 'ReduceMax', attrs: { keepdims: 0 }, inputs: [[2, 3]], label: 'ReduceMax (all)' },
  { op: 'ReduceMin', attrs: { axes: [-1] }, inputs: [[3, 4]], label: 'ReduceMin (negative axis, keepdims 1)' },
  { op: 'ReduceMin', attrs: { axes: [0, 2], keepdims: 0 }, inputs: [[2, 3, 2]], symbolicDims: true, label: 'ReduceMin (two axes, symbolic)' },
  { op: 'ReduceMax', opset: 18, attrs: { keepdims: 0 }, inputs: [[2, 3, 2], { ints: [1] }], runtimeInts: true, label: 'ReduceMax (opset 18 run-time axes)' },
  { op: 'ReduceSumSquare', attrs: { axes: [1], keepdims: 0 }, inputs: [[2, 3, 2]], label: 'ReduceSumSquare' },
  { op: 'ReduceL2', attrs: { axes: [0] }, inputs: [[3, 4]], label: 'ReduceL2' },
  { op: 'ReduceL2', attrs: { keepdims: 0 }, inputs: [[2, 3]], label: 'ReduceL2 (all)' },
  { op: 'ReduceLogSumExp', attrs: { axes: [-1], keepdims: 0 }, inputs: [[3, 4]], label: 'ReduceLogSumExp' },
  { op: 'ReduceLogSumExp', attrs: { axes: [0, 1] }, inputs: [[2, 3, 2]], label: 'ReduceLogSumExp (two axes, keepdims 1)' },
  { op: 'Softmax', inputs: [[2, 3, 4]], label: 'Softmax (default axis -1)' },
  { op: 'Softmax', attrs: { axis: 1 }, inputs: [[2, 3, 4]], label: 'Softmax (axis 1)' },
  { op: 'Softmax', attrs: { axis: -3 }, inputs: [[2, 3, 4]], symbolicDims: true, label: 'Softmax (axis -3, symbolic)' },
  { op: 'Softmax', opset: 11, attrs: { axis: 1 }, inputs: [[2, 3, 4]], label: 'Softmax (opset 11: axes 1… coerced to 2-D)' },
  { op: 'LogSoftmax', inputs: [[3, 4]], label: 'LogSoftmax (default axis)' },
  { op: 'LogSoftmax', attrs: { axis: 0 }, inputs: [[3, 2, 2]], label: 'LogSoftmax (axis 0)' },
  { op: 'LogSoftmax', attrs: { axis: -2 }, inputs: [[2, 3, 2]], symbolicDims: true, label: 'LogSoftmax (axis -2, symbolic)' },
  { op: 'Einsum', attrs: { equation: 'bij,bjk->bik' }, inputs: [[2, 2, 3], [2, 3, 2]], label: 'Einsum (batched matmul)' },
  { op: 'Einsum', attrs: { equation: 'ij,jk' }, inputs: [[2, 3], [3, 4]], label: 'Einsum (implicit output)' },
  { op: 'Einsum', attrs: { equation: 'ij,k->kj' }, inputs: [[2, 3], [4]], symbolicDims: true, label: 'Einsum (letter only one operand has, symbolic)' },
  { op: 'Einsum', attrs: { equation: 'ijk->ki' }, inputs: [[2, 3, 4]], label: 'Einsum (one operand)' },
];


/** The analytic gradient of sum(op(x)) at `x`, from our backward graph. */
async function gradOfSum(op: string, attrs: Record<string, number | number[]>, dims: number[], x: number[]): Promise<number[]> {
  const b = new GraphBuilder(op, 17);
  const xin = b.input('x', 'float32', dims);
  const loss = b.op('ReduceSum', [b.op(op, [xin], attrs)], { keepdims: 0 });
  b.output(loss, 'float32');
  const { model, grads } = differentiate(b.build(), { loss, wrt: ['x'] });
  model.graph.outputs = [{ name: grads.get('x')!, elemType: 1 }];
  const s = await createSession(model);
  const out = await s.run({ x: { dtype: 'float32', dims, data: Float32Array.from(x) } });
  await s.release();
  return Array.from(out[grads.get('x')!]!.data as Float32Array);
}

describe('reduce gradient rules', () => {
  it.each(cases.map((c) => [c.label ?? c.op, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = opModel(c);
    const result = await gradcheck(model, { wrt, feeds });
    expect(result.worst).toBe('');
  });

  it('ReduceMax and ReduceMin share the gradient among tied extrema', async () => {
    expect(await gradOfSum('ReduceMax', { axes: [1], keepdims: 0 }, [2, 3], [1, 3, 3, 2, 2, 2])).toEqual([0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3].map(Math.fround));
    expect(await gradOfSum('ReduceMin', { keepdims: 0 }, [2, 2], [0, 1, 0, 5])).toEqual([0.5, 0, 0.5, 0]);
  });

  it('ReduceL2 has a zero (not NaN) gradient where the norm is 0', async () => {
    expect(await gradOfSum('ReduceL2', { axes: [1] }, [2, 2], [0, 0, 3, 4])).toEqual([0, 0, 0.6, 0.8].map(Math.fround));
  });

  it('refuses Einsum with a diagonal or an ellipsis', () => {
    for (const [equation, why] of [['ii->i', /repeated within one operand/], ['...ij->...ji', /'\.\.\.' has no gradient rule/]] as const) {
      const { model } = opModel({ op: 'Einsum', attrs: { equation }, inputs: [[3, 3]] });
      model.graph.nodes.push({ name: 'loss', opType: 'ReduceSum', domain: '', inputs: [model.graph.outputs[0]!.name], outputs: ['loss'], attrs: [] });
      expect(() => differentiate(model, { loss: 'loss', wrt: ['x0'] })).toThrow(why);
    }
  });

  it('has a test row for every rule', () => {
    const tested = new Set(cases.map((c) => c.op));
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });
});
