/**
 * Ops that compute or rearrange shapes. Element values ride through, so a shape read by Shape
 * can come back as a Reshape or Expand target.
 *   Shape:      [rank] int64, value = dims            Size: [] int64, value = numel
 *   Reshape:    target from input 1 (attr `shape` before opset 5); 0 copies the input dim unless
 *               allowzero, −1 is numel / product(other dims)
 *   Flatten:    [prod(d[:axis]), prod(d[axis:])]      Transpose: dims permuted (reversed by default)
 *   Unsqueeze/Squeeze: axes from the attribute (< 13) or input 1; Squeeze without axes takes
 *               symbolic dims for sizes other than 1
 *   Expand:     broadcast(shape(x), target)           Tile: d·repeats
 *   ConstantOfShape: shape = input values; type from `value` (float by default)
 *   Range:      [max(0, ceil((limit − start) / delta))]
 *   DepthToSpace / SpaceToDepth: C / b², H·b, W·b and back
 *   Resize / Upsample: sizes, else floor(d · scale)
 */
import { attrInt, attrInts, attrString, attrTensor, attrFloats } from '../../ir/attrs.js';
import type { Dim, Node } from '../../ir/graph.js';
import { dtypeCode, tensorToNumbers } from '../../onnx/tensor.js';
import { broadcastShapes, elementCount, fmtShape, listFromAttrOrInput, mapValues, normAxis, unknownDims } from '../helpers.js';
import { dimAdd, dimCeilDiv, dimDiv, dimMul, dimProduct, dimSub, isStaticShape } from '../symbolic.js';
import { ElemType, MAX_TRACKED_VALUES, type ShapeContext, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

const shapeOp: ShapeRule = (node, ctx) => {
  const x = ctx.input(0).shape;
  if (!x) return [{ elemType: ElemType.INT64, shape: ['?'] }];
  const r = x.length;
  const clampIdx = (i: number): number => Math.min(r, Math.max(0, i < 0 ? i + r : i));
  const dims = x.slice(clampIdx(attrInt(node, 'start', 0)), clampIdx(attrInt(node, 'end', r)));
  return [{ elemType: ElemType.INT64, shape: [dims.length], value: dims }];
};

const size: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0).shape;
  return [{ elemType: ElemType.INT64, shape: [], value: x ? [dimProduct(x)] : undefined }];
};

/** The target of a Reshape/Expand/ConstantOfShape-like input: its values, or '?' dims when only its length is known. */
function targetDims(ctx: ShapeContext, i: number): Dim[] | undefined {
  const v = ctx.value(i);
  if (v) return [...v];
  const len = ctx.input(i).shape?.[0];
  return typeof len === 'number' ? unknownDims(len) : undefined;
}

const reshape: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const target = ctx.opset < 5 ? attrInts(node, 'shape') : targetDims(ctx, 1);
  if (!target) return [{ elemType: x.elemType }];
  const allowZero = attrInt(node, 'allowzero', 0) !== 0;
  const out = target.map((d, i): Dim => (d === 0 && !allowZero ? x.shape?.[i] ?? '?' : d));
  const minus = out.findIndex((d) => d === -1);
  if (minus >= 0) {
    const others = out.filter((_, i) => i !== minus);
    const total = x.shape ? dimProduct(x.shape) : '?';
    const known = dimProduct(others);
    out[minus] = total === '?' || known === '?' || known === 0 ? '?' : dimDiv(total, known);
  }
  return [{ elemType: x.elemType, shape: out, value: x.value }];
};

const flatten: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType, shape: ['?', '?'] }];
  const r = x.shape.length;
  const raw = attrInt(node, 'axis', 1);
  const axis = raw < 0 ? raw + r : raw;
  if (axis < 0 || axis > r) ctx.fail(`axis ${raw} is out of range for rank ${r}`);
  return [{ elemType: x.elemType, shape: [dimProduct(x.shape.slice(0, axis)), dimProduct(x.shape.slice(axis))], value: x.value }];
};

const unsqueeze: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const { list } = listFromAttrOrInput(node, ctx, 'axes', 1);
  if (!x.shape) return [{ elemType: x.elemType }];
  if (!list) {
    const k = ctx.input(1).shape?.[0];
    return [{ elemType: x.elemType, shape: typeof k === 'number' ? unknownDims(x.shape.length + k) : undefined }];
  }
  const rank = x.shape.length + list.length;
  const axes = new Set(list.map((a) => normAxis(ctx, a, rank)));
  if (axes.size !== list.length) ctx.fail(`axes [${list.join(', ')}] repeat an axis`);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(axes.has(i) ? 1 : x.shape[j++]!);
  return [{ elemType: x.elemType, shape: out, value: x.value }];
};

const squeeze: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const arg = listFromAttrOrInput(node, ctx, 'axes', 1);
  if (!x.shape) return [{ elemType: x.elemType }];
  const r = x.shape.length;
  if (arg.present && !arg.list) {
    const k = ctx.input(1).shape?.[0];
    return [{ elemType: x.elemType, shape: typeof k === 'number' ? unknownDims(r - k) : undefined }];
  }
  if (!arg.list || arg.list.length === 0) {
    // No axes: every dim equal to 1 goes. A symbol is taken for a size other than 1 (as a batch of
    // one would break the model's own later ops); an unknown '?' leaves the rank unknown.
    if (x.shape.includes('?')) return [{ elemType: x.elemType }];
    return [{ elemType: x.elemType, shape: x.shape.filter((d) => d !== 1), value: x.value }];
  }
  const axes = new Set(arg.list.map((a) => normAxis(ctx, a, r)));
  for (const a of axes) {
    const d = x.shape[a]!;
    if (typeof d === 'number' && d !== 1) ctx.fail(`cannot squeeze axis ${a} of size ${d} in ${fmtShape(x.shape)}`);
  }
  return [{ elemType: x.elemType, shape: x.shape.filter((_, i) => !axes.has(i)), value: x.value }];
};

const transpose: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }];
  const r = x.shape.length;
  const perm = attrInts(node, 'perm') ?? x.shape.map((_, i) => r - 1 - i);
  if (perm.length !== r) ctx.fail(`perm [${perm.join(', ')}] does not fit rank ${r}`);
  const out: ShapeInfo = { elemType: x.elemType, shape: perm.map((p) => x.shape![normAxis(ctx, p, r)]!) };
  if (r <= 1) out.value = x.value;
  return [out];
};

const expand: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  const target = targetDims(ctx, 1);
  const shape = target && x.shape ? broadcastShapes(ctx, [x.shape, target]) : undefined;
  const out: ShapeInfo = { elemType: x.elemType, shape };
  out.value = mapValues([x], shape, (xs) => xs[0]!);
  return [out];
};

const tile: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }];
  const reps = ctx.value(1);
  if (reps && reps.length !== x.shape.length) ctx.fail(`repeats has ${reps.length} entries for rank ${x.shape.length}`);
  return [{ elemType: x.elemType, shape: reps ? x.shape.map((d, i) => dimMul(d, reps[i]!)) : unknownDims(x.shape.length) }];
};

const constantOfShape: ShapeRule = (node, ctx) => {
  const t = attrTensor(node, 'value');
  const elemType = t ? dtypeCode(t.dtype) : ElemType.FLOAT;
  const fill: Dim = t && t.dtype !== 'string' && t.dtype !== 'float16' && t.dtype !== 'bfloat16' ? tensorToNumbers(t)[0] ?? 0 : '?';
  const shape = targetDims(ctx, 0);
  const out: ShapeInfo = { elemType, shape };
  if (isStaticShape(shape) && elementCount(shape) <= MAX_TRACKED_VALUES) out.value = new Array<Dim>(elementCount(shape)).fill(fill);
  return [out];
};

const range: ShapeRule = (_n, ctx) => {
  const elemType = ctx.input(0).elemType;
  const [start, limit, delta] = [0, 1, 2].map((i) => ctx.value(i)?.[0] ?? '?') as [Dim, Dim, Dim];
  let n: Dim = '?';
  if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0) {
    n = Math.max(0, Math.ceil((limit - start) / delta));
  } else if (typeof delta === 'number' && Number.isInteger(delta) && delta > 0 && start !== '?' && limit !== '?') {
    n = dimCeilDiv(dimSub(limit, start), delta);
  }
  const out: ShapeInfo = { elemType, shape: [n] };
  if (typeof n === 'number' && n <= MAX_TRACKED_VALUES && typeof delta === 'number') {
    out.value = Array.from({ length: n }, (_, i) => dimAdd(start, i * delta));
  }
  return [out];
};

const depthToSpace: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const b = attrInt(node, 'blocksize', 1);
  if (!x.shape) return [{ elemType: x.elemType }];
  if (x.shape.length !== 4) ctx.fail(`input ${fmtShape(x.shape)} is not 4-D`);
  const [n, c, h, w] = x.shape as [Dim, Dim, Dim, Dim];
  return [{ elemType: x.elemType, shape: [n, dimDiv(c, b * b), dimMul(h, b), dimMul(w, b)] }];
};

const spaceToDepth: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const b = attrInt(node, 'blocksize', 1);
  if (!x.shape) return [{ elemType: x.elemType }];
  if (x.shape.length !== 4) ctx.fail(`input ${fmtShape(x.shape)} is not 4-D`);
  const [n, c, h, w] = x.shape as [Dim, Dim, Dim, Dim];
  return [{ elemType: x.elemType, shape: [n, dimMul(c, b * b), dimDiv(h, b), dimDiv(w, b)] }];
};

/** floor(d · scale) in float32, as onnxruntime computes it. */
function scaleDim(d: Dim, scale: number): Dim {
  if (typeof d === 'number') return Math.floor(Math.fround(Math.fround(scale) * Math.fround(d)));
  return Number.isInteger(scale) ? dimMul(d, scale) : '?';
}

/** Resize (opset 10: X, scales; 11+: X, roi, scales, sizes; 18: `axes`) and Upsample (scales attr, then input). */
function resizeShape(node: Node, ctx: ShapeContext, scalesAt: number, sizesAt: number, attrScales?: number[]): Dim[] | undefined {
  const x = ctx.input(0).shape;
  if (!x) return undefined;
  const r = x.length;
  const axes = (attrInts(node, 'axes') ?? x.map((_, i) => i)).map((a) => normAxis(ctx, a, r));
  const out = [...x];
  const sizes = sizesAt >= 0 && ctx.has(sizesAt) ? ctx.value(sizesAt) : undefined;
  const scales = attrScales ?? (ctx.has(scalesAt) ? ctx.value(scalesAt) : undefined);
  if (sizes && sizes.length > 0) {
    if (sizes.length !== axes.length) ctx.fail(`sizes has ${sizes.length} entries for ${axes.length} axes`);
    const policy = attrString(node, 'keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch') {
      axes.forEach((a, k) => (out[a] = sizes[k]!));
      return out;
    }
    const ratios = axes.map((a, k) => (typeof sizes[k] === 'number' && typeof x[a] === 'number' ? (sizes[k] as number) / (x[a] as number) : NaN));
    if (ratios.some(Number.isNaN)) return axes.reduce((o, a) => ((o[a] = '?'), o), out);
    const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((a) => (out[a] = Math.round(scale * (x[a] as number))));
    return out;
  }
  if (scales && scales.length > 0) {
    if (scales.length !== axes.length) ctx.fail(`scales has ${scales.length} entries for ${axes.length} axes`);
    axes.forEach((a, k) => (out[a] = typeof scales[k] === 'number' ? scaleDim(x[a]!, scales[k] as number) : '?'));
    return out;
  }
  for (const a of axes) out[a] = '?';
  return out;
}

const resize: ShapeRule = (node, ctx) => {
  const shape = ctx.opset < 11 ? resizeShape(node, ctx, 1, -1) : resizeShape(node, ctx, 2, 3);
  return [{ elemType: ctx.input(0).elemType, shape }];
};

const upsample: ShapeRule = (node, ctx) => {
  const shape = resizeShape(node, ctx, 1, -1, ctx.opset < 9 ? attrFloats(node, 'scales') : undefined);
  return [{ elemType: ctx.input(0).elemType, shape }];
};

export const rules = {
  Shape: shapeOp,
  Size: size,
  Reshape: reshape,
  Flatten: flatten,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Transpose: transpose,
  Expand: expand,
  Tile: tile,
  ConstantOfShape: constantOfShape,
  Range: range,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  Resize: resize,
  Upsample: upsample,
} satisfies ShapeRuleTable;
