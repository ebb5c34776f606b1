/**
 * Elementwise ops.
 *
 *   consumed_inputs (opsets 1–5, an in-place hint) was removed at 6 from the unary ops, the
 *   arithmetic binary ops, Sum/Max/Min/Mean, Clip and PRelu.
 *   broadcast=1 + axis (legacy broadcasting) became numpy broadcasting at 7:
 *     Add-6(a[N,C,H,W], b[C]; broadcast=1, axis=1) → Add(a, b[C,1,1]).
 *   PRelu-6 applied a [C] slope along the channel axis 1; PRelu-7 broadcasts numpy-style:
 *     PRelu-6(x[N,C,H,W], s[C]) → PRelu(x, s[C,1,1]).
 *   Clip-6 min/max attributes became optional inputs at 11; Cast-1's string `to` an enum at 6.
 *   Equal/Greater/Less accept float inputs from 11 (Equal) / 9 (Greater, Less): the new opset
 *   alone makes such old exports valid.
 */
import { attrFloat, attrString, getAttr, removeAttr, setAttr, intAttr } from '../../../src/ir/attrs.js';
import { DataType } from '../../../src/onnx/tensor.js';
import { AttrType } from '../../../src/onnx/proto.js';
import { appendOnes, consumedInputs, floatLike, legacyBroadcast, same, setInput, step } from '../helpers.js';
import type { UpgradeStep, UpgradeTable } from '../types.js';

const unary = [consumedInputs()];
const arithmetic = [consumedInputs(), legacyBroadcast];
const variadic = [consumedInputs(), same(8, 'multidirectional broadcasting; old inputs had equal shapes')];

/** PRelu-7: a [C] slope meant channel axis 1; numpy broadcasting needs [C,1,...,1]. */
const prelu7: UpgradeStep = step(7, (n, ctx) => {
  const [x, slope] = n.inputs as [string, string];
  const shape = ctx.shape(slope);
  const rank = shape?.length ?? ctx.rank(slope);
  if (rank === undefined) return ctx.fail(`the shape of slope '${slope}' is unknown, so its broadcasting cannot be made explicit; declare it in value_info`);
  if (rank !== 1) return; // a scalar, or already laid out for numpy broadcasting
  const c = shape?.[0];
  if (c === 1) return; // one slope shared by all channels
  const rx = ctx.rank(x);
  if (rx === undefined) return ctx.fail(`the rank of input X '${x}' is unknown, so the [C] slope cannot be laid out along channel axis 1; declare X's shape in value_info`);
  if (rx <= 2) return;
  const channels = ctx.shape(x)?.[1];
  if (typeof channels === 'number' && typeof c === 'number' && channels !== c) {
    return ctx.fail(`slope has ${c} values but X '${x}' has ${channels} channels (axis 1)`);
  }
  n.inputs[1] = appendOnes(ctx, slope, rx - 2, 'slope');
});

/** Clip-11: min/max attributes → optional inputs of X's type. */
const clip11: UpgradeStep = step(11, (n, ctx) => {
  const x = n.inputs[0]!;
  const min = attrFloat(n, 'min');
  const max = attrFloat(n, 'max');
  removeAttr(n, 'min');
  removeAttr(n, 'max');
  if (min !== undefined) setInput(n, 1, floatLike(ctx, x, 'min', [min]));
  if (max !== undefined) setInput(n, 2, floatLike(ctx, x, 'max', [max]));
});

const TYPE_NAMES: Record<string, number> = {
  ...DataType, FLOAT32: DataType.FLOAT, FLOAT64: DataType.DOUBLE, COMPLEX64: 14, COMPLEX128: 15,
};

/** Cast-6: `to` is a TensorProto.DataType code instead of its name ('FLOAT', 'INT64', ...). */
const cast6: UpgradeStep = step(6, (n, ctx) => {
  const to = getAttr(n, 'to');
  if (!to) return ctx.fail("Cast has no 'to' attribute");
  if (to.type !== AttrType.STRING && !to.s?.length) return; // already an enum
  const name = attrString(n, 'to', '');
  const code = TYPE_NAMES[name.toUpperCase()];
  if (code === undefined) return ctx.fail(`Cast to '${name}' names no TensorProto data type (expected FLOAT, INT64, ...)`);
  setAttr(n, intAttr('to', code));
});

export const rules = {
  Abs: unary,
  Ceil: unary,
  Elu: unary,
  Exp: unary,
  Floor: unary,
  HardSigmoid: unary,
  LeakyRelu: unary,
  Log: unary,
  Neg: unary,
  Reciprocal: unary,
  Relu: unary,
  Selu: unary,
  Sigmoid: unary,
  Sqrt: unary,
  Tanh: unary,

  Add: arithmetic,
  Sub: arithmetic,
  Mul: arithmetic,
  Div: arithmetic,
  Pow: [legacyBroadcast],
  And: [legacyBroadcast],
  Or: [legacyBroadcast],
  Xor: [legacyBroadcast],
  Equal: [legacyBroadcast, same(11, 'float inputs allowed')],
  Greater: [legacyBroadcast, same(9, 'float inputs allowed')],
  Less: [legacyBroadcast, same(9, 'float inputs allowed')],

  Sum: variadic,
  Max: variadic,
  Min: variadic,
  Mean: variadic,

  PRelu: [consumedInputs(), prelu7],
  Clip: [consumedInputs(), clip11],
  Cast: [cast6],
} satisfies UpgradeTable;
