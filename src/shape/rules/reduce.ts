/**
 * Reductions over axes: a reduced axis becomes 1 (keepdims=1, the default) or disappears.
 *   Reduce*(X, axes): axes from the attribute, or from input 1 (ReduceSum from opset 13, the
 *                     others from 18); no axes → all, unless noop_with_empty_axes
 *   ArgMax/ArgMin:    one axis, int64 indices
 *   TopK:             Values and int64 Indices have X's shape with K along `axis`
 */
import { attrInt } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { listFromAttrOrInput, normAxis, unknownDims } from '../helpers.js';
import { dimAdd, dimCompare, dimMul } from '../symbolic.js';
import { ElemType, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

const reduce = (fold?: (a: Dim, b: Dim) => Dim): ShapeRule => (node, ctx) => {
  const x = ctx.input(0);
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  if (!x.shape) return [{ elemType: x.elemType }];
  const rank = x.shape.length;
  const axesArg = listFromAttrOrInput(node, ctx, 'axes', 1);
  if (axesArg.present && !axesArg.list) {
    if (keep) return [{ elemType: x.elemType, shape: unknownDims(rank) }];
    const n = ctx.input(1).shape?.[0];
    return [{ elemType: x.elemType, shape: typeof n === 'number' ? unknownDims(rank - n) : undefined }];
  }
  const list = axesArg.list ?? [];
  if (list.length === 0 && attrInt(node, 'noop_with_empty_axes', 0) !== 0) return [{ elemType: x.elemType, shape: [...x.shape], value: x.value }];
  const axes = new Set(list.length === 0 ? x.shape.map((_, i) => i) : list.map((a) => normAxis(ctx, a, rank)));
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.has(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  const out: ShapeInfo = { elemType: x.elemType, shape };
  // Values of a 1-D reduction (numel = ReduceProd(Shape(x)), ...).
  if (fold && x.value && rank <= 1 && x.value.length > 0) out.value = [x.value.reduce((a, b) => (a === '?' || b === '?' ? '?' : fold(a, b)))];
  return [out];
};

const pick = (want: -1 | 1) => (a: Dim, b: Dim): Dim => {
  const c = dimCompare(a, b);
  return c === undefined ? '?' : c === want || c === 0 ? a : b;
};

const argReduce: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: ElemType.INT64 }];
  const axis = normAxis(ctx, attrInt(node, 'axis', 0), x.shape.length);
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
  return [{ elemType: ElemType.INT64, shape }];
};

const topK: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }, { elemType: ElemType.INT64 }];
  const axis = normAxis(ctx, attrInt(node, 'axis', -1), x.shape.length);
  const k: Dim = ctx.opset < 10 ? attrInt(node, 'k', 0) : ctx.value(1)?.[0] ?? '?';
  const shape = x.shape.map((d, i) => (i === axis ? k : d));
  return [{ elemType: x.elemType, shape }, { elemType: ElemType.INT64, shape: [...shape] }];
};

export const rules = {
  ReduceMean: reduce(),
  ReduceSum: reduce(dimAdd),
  ReduceMax: reduce(pick(1)),
  ReduceMin: reduce(pick(-1)),
  ReduceProd: reduce(dimMul),
  ReduceL1: reduce(),
  ReduceL2: reduce(),
  ReduceLogSum: reduce(),
  ReduceLogSumExp: reduce(),
  ReduceSumSquare: reduce(),
  ArgMax: argReduce,
  ArgMin: argReduce,
  TopK: topK,
} satisfies ShapeRuleTable;
