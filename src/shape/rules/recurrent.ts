/**
 * Recurrent layers (LSTM, GRU, RNN). With X [seq, batch, input] (layout 0) or [batch, seq, input]
 * (layout 1, opset 14+), D = 2 for direction 'bidirectional' else 1, H = hidden_size:
 *   Y   [seq, D, batch, H]  (layout 1: [batch, seq, D, H])
 *   Y_h [D, batch, H]       (layout 1: [batch, D, H]);  LSTM's Y_c likewise
 */
import { attrInt, attrString } from '../../ir/attrs.js';
import type { Dim } from '../../ir/graph.js';
import { fmtShape } from '../helpers.js';
import type { ShapeInfo, ShapeRule, ShapeRuleTable } from '../types.js';

const recurrent: ShapeRule = (node, ctx) => {
  const x = ctx.input(0);
  const elemType = x.elemType;
  const layout = attrInt(node, 'layout', 0);
  const dirs: Dim = attrString(node, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
  const hidden: Dim = attrInt(node, 'hidden_size') ?? ctx.input(2).shape?.[2] ?? '?';
  if (x.shape && x.shape.length !== 3) ctx.fail(`input ${fmtShape(x.shape)} is not [seq, batch, input]`);
  const seq: Dim = x.shape ? x.shape[layout === 0 ? 0 : 1]! : '?';
  const batch: Dim = x.shape ? x.shape[layout === 0 ? 1 : 0]! : '?';
  const y: ShapeInfo = { elemType, shape: layout === 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden] };
  const state = (): ShapeInfo => ({ elemType, shape: layout === 0 ? [dirs, batch, hidden] : [batch, dirs, hidden] });
  return [y, state(), state()];
};

export const rules = {
  LSTM: recurrent,
  GRU: recurrent,
  RNN: recurrent,
} satisfies ShapeRuleTable;
