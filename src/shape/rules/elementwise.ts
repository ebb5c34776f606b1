/**
 * Elementwise ops: y has x's shape (unary) or the numpy broadcast of the inputs' shapes.
 *   unary:       y = f(x)                    shape(y) = shape(x)
 *   binary:      y = f(a, b)                 shape(y) = broadcast(shape(a), shape(b))
 *   comparisons: bool output; Where takes its type from X; Cast from `to`
 * Element values are carried through the integer arithmetic of shape computations.
 */
import { attrFloat, attrInt } from '../../ir/attrs.js';
import type { Dim, Node } from '../../ir/graph.js';
import { broadcastShapes, isIntType, mapValues, sameAs } from '../helpers.js';
import { dimAdd, dimCompare, dimDiv, dimFloorDiv, dimMul, dimSub } from '../symbolic.js';
import { ElemType, type ShapeContext, type ShapeInfo, type ShapeRule, type ShapeRuleTable } from '../types.js';

const unary: ShapeRule = (_n, ctx) => [sameAs(ctx)];

/** Unary op that also maps known element values; `sym` maps a symbolic one ('?' by default). */
const unaryValue = (f: (x: number) => number, sym: (d: Dim) => Dim = () => '?'): ShapeRule => (_n, ctx) => {
  const out = sameAs(ctx);
  const v = ctx.value(0);
  if (v) out.value = v.map((d) => (typeof d === 'number' ? f(d) : sym(d)));
  return [out];
};
const keep = (d: Dim): Dim => d;

/** Broadcasting op over all inputs; `elemType` picks the output type, `fn` maps element values. */
function broadcasting(opts: { elemType?: (ctx: ShapeContext) => number | undefined; fn?: (xs: Dim[], node: Node, ctx: ShapeContext) => Dim } = {}): ShapeRule {
  return (node, ctx) => {
    const ins: ShapeInfo[] = [];
    for (let i = 0; i < ctx.numInputs; i++) if (ctx.has(i)) ins.push(ctx.input(i));
    const shape = broadcastShapes(ctx, ins.map((x) => x.shape));
    const out: ShapeInfo = { elemType: opts.elemType ? opts.elemType(ctx) : ins[0]?.elemType, shape };
    const fn = opts.fn;
    if (fn) {
      const value = mapValues(ins, shape, (xs) => fn(xs, node, ctx));
      if (value) out.value = value;
    }
    return [out];
  };
}

const num = (f: (a: number, b: number) => number) => (xs: Dim[]): Dim =>
  typeof xs[0] === 'number' && typeof xs[1] === 'number' ? f(xs[0], xs[1]) : '?';

/** a / b: integer division truncates (and symbolic dims are non-negative, so floor = trunc). */
function divide(xs: Dim[], _n: Node, ctx: ShapeContext): Dim {
  const [a, b] = xs as [Dim, Dim];
  if (!isIntType(ctx.input(0).elemType)) return typeof a === 'number' && typeof b === 'number' ? a / b : dimDiv(a, b);
  if (typeof a === 'number' && typeof b === 'number') return b === 0 ? '?' : Math.trunc(a / b);
  return typeof b === 'number' && b > 0 ? dimFloorDiv(a, b) : '?';
}

const bool = (x: boolean | undefined): Dim => (x === undefined ? '?' : x ? 1 : 0);
const compare = (test: (c: -1 | 0 | 1) => boolean) => (xs: Dim[]): Dim => {
  const c = dimCompare(xs[0]!, xs[1]!);
  return bool(c === undefined ? undefined : test(c));
};

const BOOL = () => ElemType.BOOL;

/** ONNX Round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const where: ShapeRule = broadcasting({
  elemType: (ctx) => ctx.input(1).elemType ?? ctx.input(2).elemType,
  fn: ([c, x, y]) => (typeof c === 'number' ? (c !== 0 ? x! : y!) : '?'),
});

/** Cast: values convert (float → int truncates, → bool tests ≠ 0). */
const cast: ShapeRule = (node, ctx) => {
  const to = attrInt(node, 'to');
  const out: ShapeInfo = { elemType: to, shape: ctx.input(0).shape && [...ctx.input(0).shape!] };
  const v = ctx.value(0);
  if (v && to !== undefined) {
    out.value = v.map((d) => {
      if (typeof d !== 'number') return to === ElemType.BOOL ? '?' : d;
      if (to === ElemType.BOOL) return d !== 0 ? 1 : 0;
      return isIntType(to) ? Math.trunc(d) : d;
    });
  }
  return [out];
};

const castLike: ShapeRule = (_n, ctx) => {
  const out: ShapeInfo = { elemType: ctx.input(1).elemType, shape: ctx.input(0).shape && [...ctx.input(0).shape!] };
  const v = ctx.value(0);
  if (v) out.value = isIntType(out.elemType) ? v.map((d) => (typeof d === 'number' ? Math.trunc(d) : d)) : v;
  return [out];
};

/** Clip: y has x's shape; values clamp when min/max are known. */
const clip: ShapeRule = (node, ctx) => {
  const out = sameAs(ctx);
  const v = ctx.value(0);
  const lo = ctx.opset < 11 ? attrFloat(node, 'min') : ctx.has(1) ? ctx.ints(1)?.[0] : undefined;
  const hi = ctx.opset < 11 ? attrFloat(node, 'max') : ctx.has(2) ? ctx.ints(2)?.[0] : undefined;
  const known = (ctx.opset < 11 || !ctx.has(1) || lo !== undefined) && (ctx.opset < 11 || !ctx.has(2) || hi !== undefined);
  if (v && known) out.value = v.map((d) => (typeof d === 'number' ? Math.min(hi ?? Infinity, Math.max(lo ?? -Infinity, d)) : '?'));
  return [out];
};

/** PRelu: y has x's shape (slope broadcasts to x). */
const prelu: ShapeRule = (_n, ctx) => [sameAs(ctx)];

export const rules = {
  Identity: (_n, ctx) => [{ ...sameAs(ctx), value: ctx.value(0) }],
  Relu: unary, LeakyRelu: unary, Elu: unary, Selu: unary, Celu: unary, ThresholdedRelu: unary,
  Sigmoid: unary, HardSigmoid: unary, HardSwish: unary, Tanh: unary, Softplus: unary, Softsign: unary,
  Gelu: unary, Mish: unary, Shrink: unary, PRelu: prelu,
  Sqrt: unary, Exp: unary, Log: unary, Erf: unary, Reciprocal: unary,
  Sin: unary, Cos: unary, Tan: unary, Asin: unary, Acos: unary, Atan: unary,
  Sinh: unary, Cosh: unary, Asinh: unary, Acosh: unary, Atanh: unary,
  Neg: unaryValue((x) => -x, (d) => dimMul(d, -1)), Abs: unaryValue(Math.abs), Sign: unaryValue(Math.sign),
  // Symbolic values are integers already.
  Floor: unaryValue(Math.floor, keep), Ceil: unaryValue(Math.ceil, keep), Round: unaryValue(roundHalfEven, keep),
  Not: (_n, ctx) => [{ ...unaryValue((x) => (x ? 0 : 1))(_n, ctx)[0], elemType: ElemType.BOOL }],
  IsNaN: (_n, ctx) => [{ ...sameAs(ctx), elemType: ElemType.BOOL }],
  IsInf: (_n, ctx) => [{ ...sameAs(ctx), elemType: ElemType.BOOL }],
  BitwiseNot: unary,
  Clip: clip,
  Cast: cast,
  CastLike: castLike,

  Add: broadcasting({ fn: ([a, b]) => dimAdd(a!, b!) }),
  Sub: broadcasting({ fn: ([a, b]) => dimSub(a!, b!) }),
  Mul: broadcasting({ fn: ([a, b]) => dimMul(a!, b!) }),
  Div: broadcasting({ fn: divide }),
  Mod: broadcasting({ fn: ([a, b], node) => (typeof a === 'number' && typeof b === 'number' && b !== 0 ? (attrInt(node, 'fmod', 0) ? a % b : a - b * Math.floor(a / b)) : '?') }),
  Pow: broadcasting({ elemType: (ctx) => ctx.input(0).elemType }),
  Min: broadcasting({ fn: (xs) => xs.reduce((a, b) => (dimCompare(a, b) === undefined ? '?' : dimCompare(a, b)! <= 0 ? a : b)) }),
  Max: broadcasting({ fn: (xs) => xs.reduce((a, b) => (dimCompare(a, b) === undefined ? '?' : dimCompare(a, b)! >= 0 ? a : b)) }),
  Sum: broadcasting({ fn: (xs) => xs.reduce(dimAdd) }),
  Mean: broadcasting(),
  BitShift: broadcasting(),
  BitwiseAnd: broadcasting(), BitwiseOr: broadcasting(), BitwiseXor: broadcasting(),

  And: broadcasting({ elemType: BOOL, fn: num((a, b) => (a && b ? 1 : 0)) }),
  Or: broadcasting({ elemType: BOOL, fn: num((a, b) => (a || b ? 1 : 0)) }),
  Xor: broadcasting({ elemType: BOOL, fn: num((a, b) => (!a !== !b ? 1 : 0)) }),
  Equal: broadcasting({ elemType: BOOL, fn: compare((c) => c === 0) }),
  Less: broadcasting({ elemType: BOOL, fn: compare((c) => c < 0) }),
  LessOrEqual: broadcasting({ elemType: BOOL, fn: compare((c) => c <= 0) }),
  Greater: broadcasting({ elemType: BOOL, fn: compare((c) => c > 0) }),
  GreaterOrEqual: broadcasting({ elemType: BOOL, fn: compare((c) => c >= 0) }),
  Where: where,
} satisfies ShapeRuleTable;
