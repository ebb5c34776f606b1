/** Per-op gradient checks: movement ops (central differences through onnxruntime). */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/builder.js';
import { differentiate } from '../../passes/autodiff/index.js';
import { rules } from '../../passes/autodiff/rules/shape.js';
import type { Model } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { opModel, type OpCase } from '../helpers/op-model.js';

const INT64_MAX = Number.MAX_SAFE_INTEGER; // above any dim: ONNX clamps it like INT64_MAX

/**
 * `symbolic`: every float input's dims other than 1 become distinct symbols, so rules see no static sizes and
 * take their Shape-based paths. `dynamic`: int constants become fed graph inputs, so rules cannot
 * read shapes, axes, pads or repeats as constants.
 */
type Case = OpCase;

/** A hand-built model for what a one-op row cannot express. */
interface Custom { label: string; op: string; build: () => { model: Model; feeds: Record<string, Tensor>; wrt: string[] } }

const cases: Case[] = [
  { op: 'Reshape', inputs: [[2, 3, 4], { ints: [0, -1] }], label: 'Reshape (0 and -1)' },
  { op: 'Reshape', inputs: [[2, 3, 4], { ints: [4, 0, 2] }], symbolicDims: true, runtimeInts: true, label: 'Reshape (symbolic, run-time shape)' },
  { op: 'Flatten', inputs: [[2, 3, 4]], label: 'Flatten (default axis)' },
  { op: 'Flatten', attrs: { axis: 0 }, inputs: [[2, 3, 4]], label: 'Flatten (axis 0)' },
  { op: 'Flatten', attrs: { axis: -1 }, inputs: [[2, 3, 4]], symbolicDims: true, label: 'Flatten (axis -1, symbolic)' },
  { op: 'Transpose', attrs: { perm: [2, 0, 1] }, inputs: [[2, 3, 4]], label: 'Transpose (perm)' },
  { op: 'Transpose', inputs: [[2, 3, 4]], label: 'Transpose (reversed)' },
  { op: 'Squeeze', inputs: [[2, 1, 3, 1], { ints: [1, -1] }], label: 'Squeeze (axes, negative)' },
  { op: 'Squeeze', inputs: [[2, 1, 3, 1]], label: 'Squeeze (all 1s)' },
  { op: 'Unsqueeze', inputs: [[2, 3], { ints: [0, -1] }], label: 'Unsqueeze (negative axis)' },
  { op: 'Concat', attrs: { axis: 1 }, inputs: [[2, 1, 3], [2, 2, 3], [2, 3, 3]], label: 'Concat (axis 1, unequal sizes)' },
  { op: 'Concat', attrs: { axis: -1 }, inputs: [[2, 2], [2, 3]], label: 'Concat (axis -1)' },
  { op: 'Concat', attrs: { axis: 0 }, inputs: [[1, 3], [2, 3], [3, 3]], symbolicDims: true, label: 'Concat (symbolic sizes)' },
  { op: 'Split', attrs: { axis: 1 }, inputs: [[2, 3, 2], { ints: [1, 2] }], outputs: 2, output: 1, label: 'Split (split input, one output used)' },
  { op: 'Split', inputs: [[6, 2]], outputs: 3, output: 0, label: 'Split (equal parts)' },
  { op: 'Split', attrs: { axis: -1 }, inputs: [[2, 5], { ints: [3, 2] }], outputs: 2, symbolicDims: true, label: 'Split (axis -1, symbolic)' },
  { op: 'Split', opset: 18, attrs: { axis: 1, num_outputs: 3 }, inputs: [[2, 5]], outputs: 3, output: 2, label: 'Split (opset 18 num_outputs, uneven)' },
  { op: 'Slice', inputs: [[4, 5], { ints: [1, -4] }, { ints: [3, INT64_MAX] }], label: 'Slice (step 1: Pad)' },
  { op: 'Slice', inputs: [[3, 4, 5], { ints: [-1, 0] }, { ints: [-INT64_MAX, 5] }, { ints: [2, 0] }, { ints: [-2, 2] }], label: 'Slice (negative and >1 steps)' },
  { op: 'Slice', inputs: [[5, 4], { ints: [3] }, { ints: [0] }, { ints: [0] }, { ints: [-1] }], label: 'Slice (reverse, step -1)' },
  { op: 'Slice', inputs: [[3, 5], { ints: [1] }, { ints: [INT64_MAX] }, { ints: [-1] }], symbolicDims: true, label: 'Slice (symbolic dims)' },
  { op: 'Slice', inputs: [[4, 5], { ints: [0, 1] }, { ints: [3, 5] }, { ints: [0, 1] }, { ints: [2, 1] }], runtimeInts: true, label: 'Slice (run-time bounds)' },
  { op: 'Expand', inputs: [[3, 1], { ints: [2, 3, 4] }], label: 'Expand' },
  { op: 'Expand', inputs: [[3, 1], { ints: [2, 1, 4] }], symbolicDims: true, runtimeInts: true, label: 'Expand (symbolic, run-time shape)' },
  { op: 'Tile', inputs: [[2, 3, 2], { ints: [2, 1, 3] }], label: 'Tile (constant repeats)' },
  { op: 'Tile', inputs: [[2, 3], { ints: [3, 2] }], runtimeInts: true, label: 'Tile (run-time repeats)' },
  { op: 'Tile', inputs: [[2, 3], { ints: [2, 2] }], symbolicDims: true, label: 'Tile (symbolic dims)' },
  { op: 'Pad', inputs: [[2, 3], { ints: [1, 0, 2, 1] }], label: 'Pad (constant)' },
  { op: 'Pad', inputs: [[3, 4], { ints: [1, -1, -1, 2] }], label: 'Pad (negative pads)' },
  { op: 'Pad', inputs: [[2, 3], { ints: [0, 2, 1, 1] }, []], label: 'Pad (trainable constant value)' },
  { op: 'Pad', inputs: [[3, 4], { ints: [1, -2, 0, 1] }], runtimeInts: true, symbolicDims: true, label: 'Pad (run-time pads)' },
  { op: 'Pad', opset: 18, inputs: [[2, 3], { ints: [2, -1] }, '', { ints: [-1] }], label: 'Pad (opset 18 axes input)' },
  { op: 'Pad', attrs: { mode: 'reflect' }, inputs: [[2, 3, 5], { ints: [0, 1, 2, 0, 2, 3] }], label: 'Pad (reflect)' },
  { op: 'Pad', attrs: { mode: 'edge' }, inputs: [[2, 3, 4], { ints: [0, 2, 1, 0, 1, 3] }], label: 'Pad (edge)' },
  { op: 'Gather', inputs: [[5, 3], { ints: [0, 2, 4, 0, -1, 2], dims: [2, 3] }], label: 'Gather (embedding, repeated and negative indices)' },
  { op: 'Gather', attrs: { axis: 1 }, inputs: [[2, 4, 3], { ints: [3, -1, 3, 0] }], label: 'Gather (axis 1)' },
  { op: 'Gather', attrs: { axis: -1 }, inputs: [[2, 3, 4], { ints: [1, 1, 2, 0], dims: [2, 2] }], symbolicDims: true, label: 'Gather (axis -1, 2-D indices, symbolic)' },
  { op: 'Gather', attrs: { axis: 1 }, inputs: [[2, 4], { ints: [2], dims: [] }], label: 'Gather (scalar index)' },
  { op: 'Gather', inputs: [[4, 2, 3], { ints: [3, 3, 1] }], symbolicDims: true, label: 'Gather (rank 3 data, symbolic)' },
  { op: 'GatherElements', attrs: { axis: 1 }, inputs: [[2, 3], { ints: [0, 0, 2, 1, 1, 1, 2, -3], dims: [2, 4] }], label: 'GatherElements (repeated and negative indices)' },
  { op: 'GatherElements', inputs: [[3, 2], { ints: [2, 0, 2, 1], dims: [2, 2] }], label: 'GatherElements (axis 0)' },
];

/** Cast float → double → float: both casts' rules, the gradient crossing the type change. */
function castModel(): ReturnType<Custom['build']> {
  const b = new GraphBuilder('cast', 17);
  const x = b.input('x', 'float32', [2, 3]);
  const d = b.op('Cast', [x], { to: 11 });
  const y = b.op('Cast', [b.op('Mul', [d, d])], { to: 1 });
  b.output(y, 'float32');
  return { model: b.build(), feeds: { x: { dtype: 'float32', dims: [2, 3], data: Float32Array.from([0.3, -0.2, 0.7, 0.1, -0.9, 0.5]) } }, wrt: ['x'] };
}

/** y = x + float(int(x)): the cast to int has no gradient and must not be asked for one. */
function castToIntModel(): ReturnType<Custom['build']> {
  const b = new GraphBuilder('cast-int', 17);
  const x = b.input('x', 'float32', [2, 3]);
  const i = b.op('Cast', [x], { to: 7 });
  const y = b.op('Add', [x, b.op('Cast', [i], { to: 1 })]);
  b.output(y, 'float32');
  // Values in (1.2, 1.8): truncation is locally constant, so central differences see slope 1.
  return { model: b.build(), feeds: { x: { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1.3, 1.5, 1.7, 1.25, 1.6, 1.4]) } }, wrt: ['x'] };
}

/** Split into two, then concat them swapped: every output of the Split reaches the loss. */
function splitBothModel(): ReturnType<Custom['build']> {
  const b = new GraphBuilder('split-both', 17);
  const x = b.input('x', 'float32', [2, 5]);
  const [p, q] = b.opN('Split', [x, b.init('split', { dtype: 'int64', dims: [2], data: BigInt64Array.from([2n, 3n]) })], 2, { axis: 1 });
  const y = b.op('Concat', [q!, b.op('Mul', [p!, p!])], { axis: 1 });
  b.output(y, 'float32');
  return { model: b.build(), feeds: { x: { dtype: 'float32', dims: [2, 5], data: Float32Array.from({ length: 10 }, (_, i) => Math.sin(i + 1)) } }, wrt: ['x'] };
}

/** Gather with int32 indices (allowed by Gather; ScatterND needs int64). */
function gatherInt32Model(axis: number): () => ReturnType<Custom['build']> {
  return () => {
    const b = new GraphBuilder('gather-int32', 17);
    const x = b.input('x', 'float32', [3, 4]);
    const idx = b.init('idx', { dtype: 'int32', dims: [2, 2], data: Int32Array.from([2, -1, 0, 2]) });
    b.output(b.op('Gather', [x, idx], { axis }), 'float32');
    return { model: b.build(), feeds: { x: { dtype: 'float32', dims: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => Math.cos(i)) } }, wrt: ['x'] };
  };
}

const customs: Custom[] = [
  { label: 'Gather (int32 indices, axis 0)', op: 'Gather', build: gatherInt32Model(0) },
  { label: 'Gather (int32 indices, axis 1)', op: 'Gather', build: gatherInt32Model(1) },
  { label: 'Cast (float → double → float)', op: 'Cast', build: castModel },
  { label: 'Cast (to int64: no gradient path)', op: 'Cast', build: castToIntModel },
  { label: 'Split (both outputs used)', op: 'Split', build: splitBothModel },
];


describe('shape gradient rules', () => {
  it.each(cases.map((c) => [c.label ?? c.op, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = opModel(c);
    const result = await gradcheck(model, { wrt, feeds });
    expect(result.worst).toBe('');
  });

  it.each(customs.map((c) => [c.label, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = c.build();
    const result = await gradcheck(model, { wrt, feeds });
    expect(result.worst).toBe('');
  });

  it('refuses Pad in wrap mode', () => {
    const { model } = opModel({ op: 'Pad', opset: 19, attrs: { mode: 'wrap' }, inputs: [[2, 3], { ints: [0, 1, 0, 1] }] });
    model.graph.nodes.push({ name: 'loss', opType: 'ReduceSum', domain: '', inputs: [model.graph.outputs[0]!.name], outputs: ['loss'], attrs: [] });
    expect(() => differentiate(model, { loss: 'loss', wrt: ['x0'] })).toThrow(/mode 'wrap'/);
  });

  it('has a test row for every rule', () => {
    const tested = new Set([...cases.map((c) => c.op), ...customs.map((c) => c.op)]);
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });
});
