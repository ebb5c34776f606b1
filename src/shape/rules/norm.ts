/**
 * Normalizations and softmaxes: Y has X's shape.
 *   BatchNormalization: extra outputs (running/saved mean and var) are [C]
 *   LayerNormalization: Mean, InvStdDev are X's shape with the normalized axes (axis..) set to 1,
 *                       of type stash_type (float by default)
 */
import { attrInt } from '../../ir/attrs.js';
import { normAxis, sameAs } from '../helpers.js';
import { type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

const same: ShapeRule = (_n, ctx) => [sameAs(ctx)];

const batchNorm: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  const channels = ctx.input(1).shape ?? (x.shape && x.shape.length > 1 ? [x.shape[1]!] : undefined);
  const stat: ShapeInfo = { elemType: ctx.input(3).elemType ?? x.elemType, shape: channels && [...channels] };
  const out: ShapeInfo[] = [sameAs(ctx)];
  for (let k = 1; k < ctx.numOutputs; k++) out.push({ ...stat, shape: stat.shape && [...stat.shape] });
  return out;
};

const layerNorm: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const stashType = attrInt(node, 'stash_type', 1);
  if (!x.shape) return [sameAs(ctx), { elemType: stashType }, { elemType: stashType }];
  const axis = normAxis(ctx, attrInt(node, 'axis', -1), x.shape.length);
  const reduced = x.shape.map((d, i) => (i < axis ? d : 1));
  return [sameAs(ctx), { elemType: stashType, shape: reduced }, { elemType: stashType, shape: [...reduced] }];
};

export const rules = {
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  InstanceNormalization: same,
  GroupNormalization: same,
  LpNormalization: same,
  LRN: same,
  MeanVarianceNormalization: same,
  Softmax: same,
  LogSoftmax: same,
  Hardmax: same,
} satisfies ShapeRuleTable;
