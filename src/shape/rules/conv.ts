/**
 * Convolutions (sizes per src/shape/window.ts).
 *   Conv:          X[N, C, D...] * W[M, C/group, k...] → Y[N, M, out(D)...]
 *   ConvTranspose: X[N, C, D...] * W[C, M/group, k...] → Y[N, M, out(D)...], out from output_shape
 *                  when given, else s·(D−1) + output_padding + dk − pads
 */
import { attrInts } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { fmtShape } from '../helpers.js';
import { dimMul, isStaticShape } from '../symbolic.js';
import { ElemType, type ShapeContext, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';
import { groupOf, transposedOutput, windowAttrs, windowOutput } from '../window.js';

/** X and W shapes with the spatial rank, or undefined when X's rank is unknown. */
function operands(ctx: ShapeContext): { x: Dim[]; w?: Dim[]; n: number } | undefined {
  const x = ctx.input(0).shape;
  const w = ctx.input(1).shape;
  if (!x) return undefined;
  if (x.length < 3) ctx.fail(`input ${fmtShape(x)} needs a batch, a channel and at least one spatial axis`);
  if (w && w.length !== x.length) ctx.fail(`weight ${fmtShape(w)} and input ${fmtShape(x)} differ in rank`);
  return { x, w, n: x.length - 2 };
}

function kernelOf(w: Dim[] | undefined): number[] | undefined {
  const k = w?.slice(2);
  return isStaticShape(k) ? k : undefined;
}

const conv = (elemType?: number): ShapeRule => (node, ctx) => {
  const type = elemType ?? ctx.input(0).elemType;
  const ops = operands(ctx);
  if (!ops) return [{ elemType: type }];
  const { x, w, n } = ops;
  const attrs = windowAttrs(node, ctx, n, kernelOf(w));
  const group = groupOf(node);
  if (w && typeof x[1] === 'number' && typeof w[1] === 'number' && x[1] !== w[1] * group) {
    ctx.fail(`input has ${x[1]} channels but weight ${fmtShape(w)} with group=${group} expects ${w[1] * group}`);
  }
  const out: ShapeInfo = { elemType: type, shape: [x[0]!, w ? w[0]! : '?', ...windowOutput(x.slice(2), attrs)] };
  return [out];
};

const convTranspose: ShapeRule = (node, ctx) => {
  const elemType = ctx.input(0).elemType;
  const ops = operands(ctx);
  if (!ops) return [{ elemType }];
  const { x, w, n } = ops;
  const attrs = windowAttrs(node, ctx, n, kernelOf(w));
  const channels = w ? dimMul(w[1]!, groupOf(node)) : '?';
  const outputShape = attrInts(node, 'output_shape');
  let spatial: Dim[];
  if (outputShape && outputShape.length > 0) {
    if (outputShape.length === n) spatial = outputShape;
    else if (outputShape.length === n + 2) spatial = outputShape.slice(2);
    else return ctx.fail(`output_shape has ${outputShape.length} entries for ${n} spatial axes`);
  } else {
    spatial = transposedOutput(x.slice(2), attrs, attrInts(node, 'output_padding') ?? []);
  }
  return [{ elemType, shape: [x[0]!, channels, ...spatial] }];
};

export const rules = {
  Conv: conv(),
  ConvInteger: conv(ElemType.INT32),
  ConvTranspose: convTranspose,
} satisfies ShapeRuleTable;
