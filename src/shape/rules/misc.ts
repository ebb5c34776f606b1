/**
 * Everything else: constants, data-dependent ops, scatters and shape-preserving odds and ends.
 *   Constant:        the attribute's tensor (values tracked when small)
 *   Dropout:         output = X; mask = X's shape, bool
 *   NonZero:         [rank, nnz] int64, nnz unknown unless X's values are
 *   Compress:        the selected axis (or the flattened input) gets the number of true conditions
 *   OneHot:          depth inserted at `axis`, type of `values`
 *   Scatter*, Trilu, CumSum, ReverseSequence: output = data
 *   QuantizeLinear / DequantizeLinear: X's shape, type of the zero point / the scale
 *   Det: [*, M, M] → [*]      GridSample: [N, C, Ho, Wo] from grid [N, Ho, Wo, 2]
 *   RoiAlign: [num_rois, C, output_height, output_width]
 *   NonMaxSuppression, Unique: data dependent
 */
import { attrFloat, attrFloats, attrInt, attrInts, attrStrings, attrTensor, hasAttr } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { dtypeCode, tensorToNumbers } from '../../onnx/tensor.js';
import { normAxis, sameAs } from '../helpers.js';
import { dimProduct } from '../symbolic.js';
import { ElemType, MAX_TRACKED_VALUES, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

const STRING = 8;

const constant: ShapeRule = (node) => {
  const t = attrTensor(node, 'value');
  if (t) {
    const out: ShapeInfo = { elemType: dtypeCode(t.dtype), shape: [...t.dims] };
    if (!['string', 'float16', 'bfloat16'].includes(t.dtype) && t.data.length <= MAX_TRACKED_VALUES) out.value = tensorToNumbers(t);
    return [out];
  }
  if (hasAttr(node, 'value_int')) return [{ elemType: ElemType.INT64, shape: [], value: [attrInt(node, 'value_int', 0)] }];
  if (hasAttr(node, 'value_float')) return [{ elemType: ElemType.FLOAT, shape: [], value: [attrFloat(node, 'value_float', 0)] }];
  const ints = attrInts(node, 'value_ints');
  if (ints) return [{ elemType: ElemType.INT64, shape: [ints.length], value: ints }];
  const floats = attrFloats(node, 'value_floats');
  if (floats) return [{ elemType: ElemType.FLOAT, shape: [floats.length], value: floats }];
  if (hasAttr(node, 'value_string')) return [{ elemType: STRING, shape: [] }];
  const strings = attrStrings(node, 'value_strings');
  if (strings) return [{ elemType: STRING, shape: [strings.length] }];
  return [{}]; // sparse_value
};

const dropout: ShapeRule = (_n, ctx) => {
  const y = sameAs(ctx);
  return [y, { elemType: ctx.opset >= 10 ? ElemType.BOOL : y.elemType, shape: y.shape && [...y.shape] }];
};

const nonZero: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: ElemType.INT64, shape: ['?', '?'] }];
  const v = ctx.ints(0);
  return [{ elemType: ElemType.INT64, shape: [x.shape.length, v ? v.filter((e) => e !== 0).length : '?'] }];
};

const compress: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const cond = ctx.ints(1);
  const axisAttr = attrInt(node, 'axis');
  if (!x.shape) return [{ elemType: x.elemType }];
  const along = axisAttr === undefined ? dimProduct(x.shape) : x.shape[normAxis(ctx, axisAttr, x.shape.length)]!;
  let count: Dim = '?';
  if (cond && typeof along === 'number') count = cond.slice(0, along).filter((c) => c !== 0).length;
  if (axisAttr === undefined) return [{ elemType: x.elemType, shape: [count] }];
  const axis = normAxis(ctx, axisAttr, x.shape.length);
  return [{ elemType: x.elemType, shape: x.shape.map((d, i) => (i === axis ? count : d)) }];
};

const oneHot: ShapeRule = (node, ctx) => {
  const idx = ctx.input(0).shape;
  const elemType = ctx.input(2).elemType;
  if (!idx) return [{ elemType }];
  const depth = ctx.value(1)?.[0];
  const axis = normAxis(ctx, attrInt(node, 'axis', -1), idx.length + 1);
  const shape = [...idx];
  shape.splice(axis, 0, typeof depth === 'number' ? Math.trunc(depth) : depth ?? '?');
  return [{ elemType, shape }];
};

/** Type from a `dtype` attribute, else from input 0. */
const likeInput: ShapeRule = (node, ctx) => [{ ...sameAs(ctx), elemType: attrInt(node, 'dtype') ?? ctx.input(0).elemType }];

const randomWithShape: ShapeRule = (node) => [{ elemType: attrInt(node, 'dtype', ElemType.FLOAT), shape: attrInts(node, 'shape') }];

const same: ShapeRule = (_n, ctx) => [sameAs(ctx)];

const UINT8 = 2;

const quantize: ShapeRule = (node, ctx) => [{ ...sameAs(ctx), elemType: attrInt(node, 'output_dtype') || ctx.input(2).elemType || UINT8 }];

const dequantize: ShapeRule = (_n, ctx) => [{ ...sameAs(ctx), elemType: ctx.input(1).elemType }];

const dynamicQuantize: ShapeRule = (_n, ctx) => [{ ...sameAs(ctx), elemType: UINT8 }, { elemType: ElemType.FLOAT, shape: [] }, { elemType: UINT8, shape: [] }];

const det: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  return [{ elemType: x.elemType, shape: x.shape && x.shape.slice(0, -2) }];
};

const gridSample: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0).shape;
  const grid = ctx.input(1).shape;
  if (!x || !grid) return [{ elemType: ctx.input(0).elemType }];
  return [{ elemType: ctx.input(0).elemType, shape: [x[0]!, x[1]!, ...grid.slice(1, -1)] }];
};

const roiAlign: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const rois = ctx.input(1).shape?.[0] ?? ctx.input(2).shape?.[0] ?? '?';
  return [{ elemType: x.elemType, shape: [rois, x.shape?.[1] ?? '?', attrInt(node, 'output_height', 1), attrInt(node, 'output_width', 1)] }];
};

const nonMaxSuppression: ShapeRule = () => [{ elemType: ElemType.INT64, shape: ['?', 3] }];

const unique: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const axisAttr = attrInt(node, 'axis');
  if (!x.shape) return [{ elemType: x.elemType }, { elemType: ElemType.INT64, shape: ['?'] }, { elemType: ElemType.INT64, shape: ['?'] }, { elemType: ElemType.INT64, shape: ['?'] }];
  const axis = axisAttr === undefined ? undefined : normAxis(ctx, axisAttr, x.shape.length);
  const y = axis === undefined ? ['?'] : x.shape.map((d, i) => (i === axis ? '?' : d));
  const inverse = axis === undefined ? dimProduct(x.shape) : x.shape[axis]!;
  return [{ elemType: x.elemType, shape: y }, { elemType: ElemType.INT64, shape: ['?'] }, { elemType: ElemType.INT64, shape: [inverse] }, { elemType: ElemType.INT64, shape: ['?'] }];
};

export const rules = {
  Constant: constant,
  Dropout: dropout,
  NonZero: nonZero,
  Compress: compress,
  OneHot: oneHot,
  ScatterElements: same,
  Scatter: same,
  ScatterND: same,
  Trilu: same,
  CumSum: same,
  ReverseSequence: same,
  EyeLike: likeInput,
  RandomNormalLike: likeInput,
  RandomUniformLike: likeInput,
  Bernoulli: likeInput,
  RandomNormal: randomWithShape,
  RandomUniform: randomWithShape,
  QuantizeLinear: quantize,
  DequantizeLinear: dequantize,
  DynamicQuantizeLinear: dynamicQuantize,
  Det: det,
  GridSample: gridSample,
  RoiAlign: roiAlign,
  NonMaxSuppression: nonMaxSuppression,
  Unique: unique,
} satisfies ShapeRuleTable;

