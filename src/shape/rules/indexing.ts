/**
 * Indexing and joining along axes. Element values ride through 1-D shape tensors.
 *   Gather(axis):   d[:axis] + shape(indices) + d[axis+1:]   GatherElements: shape(indices)
 *   GatherND(b):    shape(indices)[:-1] + d[b + last:]
 *   Concat(axis):   dims add along axis                        Split: sizes from `split` or equal parts
 *   Slice:          per axis, ceil((end − start) / step) after ONNX's clamping; ±2^63−1 mean "to the end"
 *   Pad:            d + begin + end
 * A symbolic dim sliced by constant bounds is assumed at least as long as the bounds.
 */
import { attrInt, attrInts } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { fmtShape, listFromAttrOrInput, normAxis, unknownDims } from '../helpers.js';
import { dimAdd, dimCeilDiv, dimDiv, dimNormalize, dimSub } from '../symbolic.js';
import type { ShapeInfo, ShapeRule, ShapeRuleTable } from '../types.js';

/** Bounds this large stand for ±infinity (INT64_MAX, INT64_MIN, INT32_MAX ...). */
const HUGE = 2 ** 31 - 1;

const gather: ShapeRule = (node, ctx) => {
  const data = ctx.input(0);
  const idx = ctx.input(1);
  if (!data.shape || !idx.shape) return [{ elemType: data.elemType }];
  const axis = normAxis(ctx, attrInt(node, 'axis', 0), data.shape.length);
  const shape = [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
  const out: ShapeInfo = { elemType: data.elemType, shape };
  const iv = ctx.ints(1);
  if (data.value && data.shape.length === 1 && iv) {
    const n = data.value.length;
    out.value = iv.map((i) => data.value![i < 0 ? i + n : i] ?? '?');
  }
  return [out];
};

const gatherElements: ShapeRule = (_n, ctx) => [{ elemType: ctx.input(0).elemType, shape: ctx.input(1).shape && [...ctx.input(1).shape!] }];

const gatherND: ShapeRule = (node, ctx) => {
  const data = ctx.input(0);
  const idx = ctx.input(1).shape;
  const b = attrInt(node, 'batch_dims', 0);
  const last = idx?.[idx.length - 1];
  if (!data.shape || !idx || typeof last !== 'number') return [{ elemType: data.elemType }];
  return [{ elemType: data.elemType, shape: [...idx.slice(0, -1), ...data.shape.slice(b + last)] }];
};

const concat: ShapeRule = (node, ctx) => {
  const ins: ShapeInfo[] = [];
  for (let i = 0; i < ctx.numInputs; i++) if (ctx.has(i)) ins.push(ctx.input(i));
  const elemType = ins.find((x) => x.elemType !== undefined)?.elemType;
  const first = ins.find((x) => x.shape)?.shape;
  if (!first) return [{ elemType }];
  const r = first.length;
  const axis = normAxis(ctx, attrInt(node, 'axis', 0), r);
  const shape: Dim[] = [...first];
  let along: Dim = 0;
  for (const x of ins) {
    if (x.shape && x.shape.length !== r) ctx.fail(`inputs of ranks ${r} and ${x.shape.length} cannot concatenate`);
    along = x.shape ? dimAdd(along, x.shape[axis]!) : '?';
    x.shape?.forEach((d, i) => {
      if (i === axis) return;
      const cur = shape[i]!;
      if (typeof cur === 'number' && typeof d === 'number' && cur !== d) ctx.fail(`inputs ${fmtShape(first)} and ${fmtShape(x.shape)} differ off axis ${axis}`);
      if (cur === '?' || (typeof d === 'number' && typeof cur !== 'number')) shape[i] = d;
    });
  }
  shape[axis] = along;
  const out: ShapeInfo = { elemType, shape };
  if (r === 1 && ins.every((x) => x.value)) out.value = ins.flatMap((x) => x.value!);
  return [out];
};

/** Number of elements a numeric slice takes from a dim of size d (ONNX clamping rules). */
function sliceCount(d: number, start: number, end: number, step: number): number {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  if (step > 0) {
    const s = clamp(start < 0 ? start + d : start, 0, d);
    const e = clamp(end < 0 ? end + d : end, 0, d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  const s = clamp(start < 0 ? start + d : start, 0, d - 1);
  const e = clamp(end < 0 ? end + d : end, -1, d - 1);
  return Math.max(0, Math.ceil((s - e) / -step));
}

/** First index and count of a numeric slice, for slicing element values. */
function sliceIndices(d: number, start: number, end: number, step: number): number[] {
  const n = sliceCount(d, start, end, step);
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  const s = step > 0 ? clamp(start < 0 ? start + d : start, 0, d) : clamp(start < 0 ? start + d : start, 0, d - 1);
  return Array.from({ length: n }, (_, k) => s + k * step);
}

/** Output size of slicing a (possibly symbolic) dim. */
export function sliceDim(d: Dim, start: Dim, end: Dim, step: Dim): Dim {
  if (typeof step !== 'number' || step === 0 || start === '?' || end === '?') return '?';
  if (typeof d === 'number' && typeof start === 'number' && typeof end === 'number') return sliceCount(d, start, end, step);
  if (d === '?') {
    // Bounds of one sign (and finite) give the count without the dim.
    if (typeof start !== 'number' || typeof end !== 'number' || Math.abs(start) >= HUGE || Math.abs(end) >= HUGE || (start < 0) !== (end < 0)) return '?';
    return Math.max(0, Math.ceil((end - start) / step));
  }
  const pos = (v: Dim, ifHuge: Dim, ifMinusHuge: Dim): Dim => {
    if (typeof v !== 'number') return v;
    if (v >= HUGE) return ifHuge;
    if (v <= -HUGE) return ifMinusHuge;
    return v < 0 ? dimAdd(d, v) : v;
  };
  const n = step > 0
    ? dimCeilDiv(dimSub(pos(end, d, 0), pos(start, d, 0)), step)
    : dimCeilDiv(dimSub(pos(start, dimSub(d, 1), 0), pos(end, dimSub(d, 1), -1)), -step);
  return typeof n === 'number' ? Math.max(0, n) : n;
}

const slice: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }];
  const r = x.shape.length;
  const old = ctx.opset < 10;
  const starts = old ? attrInts(node, 'starts') : ctx.value(1);
  const ends = old ? attrInts(node, 'ends') : ctx.value(2);
  const axesArg = old ? attrInts(node, 'axes') : ctx.has(3) ? ctx.ints(3) : undefined;
  const axesKnown = old || !ctx.has(3) || axesArg !== undefined;
  const steps: Dim[] | undefined = old || !ctx.has(4) ? undefined : ctx.value(4);
  if (!starts || !ends || !axesKnown || (ctx.has(4) && !old && !steps)) {
    // Unknown bounds: sliced axes (all, if the axes are unknown too) get unknown sizes.
    const shape = [...x.shape];
    if (axesArg && axesKnown) for (const a of axesArg) shape[normAxis(ctx, a, r)] = '?';
    else shape.fill('?');
    return [{ elemType: x.elemType, shape }];
  }
  if (starts.length !== ends.length) ctx.fail(`starts has ${starts.length} entries and ends ${ends.length}`);
  const axes = axesArg ?? starts.map((_, i) => i);
  const shape = [...x.shape];
  const plan = axes.map((a, j) => ({ axis: normAxis(ctx, a, r), start: starts[j]!, end: ends[j]!, step: steps?.[j] ?? 1 }));
  for (const p of plan) shape[p.axis] = sliceDim(x.shape[p.axis]!, p.start, p.end, p.step);
  const out: ShapeInfo = { elemType: x.elemType, shape };
  const p = plan[0];
  if (x.value && r === 1 && plan.length === 1 && p && typeof p.start === 'number' && typeof p.end === 'number' && typeof p.step === 'number' && p.step !== 0) {
    out.value = sliceIndices(x.value.length, p.start, p.end, p.step).map((i) => x.value![i]!);
  }
  return [out];
};

const split: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const n = ctx.numOutputs;
  if (!x.shape) return Array.from({ length: n }, () => ({ elemType: x.elemType }));
  const axis = normAxis(ctx, attrInt(node, 'axis', 0), x.shape.length);
  const d = x.shape[axis]!;
  const arg = listFromAttrOrInput(node, ctx, 'split', 1);
  let sizes: Dim[];
  if (arg.list && arg.list.length > 0) {
    if (arg.list.length !== n) ctx.fail(`split has ${arg.list.length} sizes for ${n} outputs`);
    sizes = arg.list;
  } else if (arg.present && !arg.list) {
    sizes = unknownDims(n);
  } else if (typeof d === 'number') {
    // Opset 18 (num_outputs): parts of ceil(d / n), the last one smaller.
    const chunk = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, k) => (k < n - 1 ? chunk : d - chunk * (n - 1)));
  } else {
    sizes = unknownDims(n).map(() => dimDiv(d, n));
  }
  const outs = sizes.map((s): ShapeInfo => ({ elemType: x.elemType, shape: x.shape!.map((v, i) => (i === axis ? s : v)) }));
  if (x.value && x.shape.length === 1 && sizes.every((s) => typeof s === 'number')) {
    let at = 0;
    outs.forEach((o, k) => {
      o.value = x.value!.slice(at, at + (sizes[k] as number));
      at += sizes[k] as number;
    });
  }
  return outs;
};

const pad: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }];
  const r = x.shape.length;
  const pads: Dim[] | undefined = ctx.opset < 11 ? attrInts(node, 'pads') ?? attrInts(node, 'paddings') : ctx.value(1);
  const axesArg = ctx.opset >= 18 && ctx.has(3) ? ctx.ints(3) : undefined;
  if (ctx.opset >= 18 && ctx.has(3) && !axesArg) return [{ elemType: x.elemType, shape: unknownDims(r) }];
  const axes = (axesArg ?? x.shape.map((_, i) => i)).map((a) => normAxis(ctx, a, r));
  const shape = [...x.shape];
  if (!pads) {
    for (const a of axes) shape[a] = '?';
    return [{ elemType: x.elemType, shape }];
  }
  if (pads.length !== 2 * axes.length) ctx.fail(`pads has ${pads.length} entries for ${axes.length} axes`);
  axes.forEach((a, k) => (shape[a] = dimNormalize(dimAdd(dimAdd(shape[a]!, pads[k]!), pads[k + axes.length]!))));
  return [{ elemType: x.elemType, shape }];
};

export const rules = {
  Gather: gather,
  GatherElements: gatherElements,
  GatherND: gatherND,
  Concat: concat,
  Slice: slice,
  Split: split,
  Pad: pad,
} satisfies ShapeRuleTable;
