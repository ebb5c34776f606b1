/**
 * Pooling (sizes per src/shape/window.ts).
 *   MaxPool/AveragePool/LpPool: X[N, C, D...] → Y[N, C, out(D)...]; MaxPool's Indices (int64) has Y's shape
 *   Global*Pool:                X[N, C, D...] → Y[N, C, 1...]
 */
import { attrInt } from '../../ir/attrs.js';
import { fmtShape } from '../helpers.js';
import { ElemType, type ShapeRule, type ShapeRuleTable } from '../types.js';
import { windowAttrs, windowOutput } from '../window.js';

const pool: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }, { elemType: ElemType.INT64 }];
  if (x.shape.length < 3) ctx.fail(`input ${fmtShape(x.shape)} needs a batch, a channel and at least one spatial axis`);
  const attrs = windowAttrs(node, ctx, x.shape.length - 2);
  const spatial = windowOutput(x.shape.slice(2), attrs, { ceilMode: attrInt(node, 'ceil_mode', 0) !== 0, pool: true });
  const shape = [x.shape[0]!, x.shape[1]!, ...spatial];
  return [{ elemType: x.elemType, shape }, { elemType: ElemType.INT64, shape: [...shape] }];
};

const globalPool: ShapeRule = (_n, ctx) => {
  const x = ctx.input(0);
  if (!x.shape) return [{ elemType: x.elemType }];
  if (x.shape.length < 2) ctx.fail(`input ${fmtShape(x.shape)} needs a batch and a channel axis`);
  return [{ elemType: x.elemType, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] }];
};

export const rules = {
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
} satisfies ShapeRuleTable;
