/**
 * Undoing numpy broadcasting in the backward pass: the gradient of an input that was broadcast
 * from shape `to` up to shape `from` is the output gradient summed over the broadcast axes.
 */
import type { Emitter } from '../../src/ir/emit.js';
import type { Dim } from '../../src/ir/graph.js';
import { int64Tensor } from '../../src/onnx/tensor.js';

/** Axes of `from` that broadcasting created or stretched from 1; undefined if shapes are too unknown to tell. */
export function broadcastAxes(from: Dim[], to: Dim[]): number[] | undefined {
  const lead = from.length - to.length;
  if (lead < 0) return undefined;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const t = to[i - lead]!;
    const f = from[i]!;
    if (t === 1 && f !== 1) axes.push(i);
    else if (t !== f && (t === '?' || f === '?')) return undefined;
  }
  return axes;
}

/**
 * Sums `grad` (shaped `from`) down to the shape of `like` (shaped `to`). Emits nothing when no
 * axis was broadcast.
 */
export function sumToShape(b: Emitter, grad: string, from: Dim[] | undefined, to: Dim[] | undefined, like: string): string {
  if (!from || !to) return dynamicSumToShape(b, grad, like);
  const axes = broadcastAxes(from, to);
  if (!axes) return dynamicSumToShape(b, grad, like);
  if (axes.length === 0) return grad;
  const lead = from.length - to.length;
  const summed = b.op('ReduceSum', [grad, b.init('axes', int64Tensor([axes.length], axes))], { keepdims: 1 });
  // keepdims left the leading axes as 1s; drop them when the input had lower rank.
  if (lead === 0) return summed;
  return b.op('Reshape', [summed, b.op('Shape', [like])]);
}

/**
 * When static shapes cannot tell which axes were broadcast, compute them at run time:
 * pad the input's shape with leading 1s, then reduce over every axis where it is 1 and the
 * gradient is not. ReduceSum with `noop_with_empty_axes` keeps a no-broadcast case cheap.
 */
function dynamicSumToShape(b: Emitter, grad: string, like: string): string {
  const gShape = b.op('Shape', [grad]);
  const xShape = b.op('Shape', [like]);
  const gRank = b.op('Size', [gShape]);
  const xRank = b.op('Size', [xShape]);
  const padCount = b.op('Unsqueeze', [b.op('Sub', [gRank, xRank]), b.init('zero_axis', int64Tensor([1], [0]))]);
  const ones = b.op('ConstantOfShape', [padCount], { value: int64Tensor([1], [1]) });
  const padded = b.op('Concat', [ones, xShape], { axis: 0 });
  const isOne = b.op('Equal', [padded, b.init('one', int64Tensor([], [1]))]);
  const stretched = b.op('And', [isOne, b.op('Not', [b.op('Equal', [gShape, b.init('one', int64Tensor([], [1]))])])]);
  const axes = b.op('Squeeze', [b.op('NonZero', [stretched]), b.init('zero_axis', int64Tensor([1], [0]))]);
  const summed = b.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
  return b.op('Reshape', [summed, xShape]);
}
