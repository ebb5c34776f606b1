/**
 * Reductions and the softmax family. A reduction's dy has y's shape; "dyₖ" below is dy with the
 * reduced axes put back as 1s (the keepdims form), which broadcasts against x. Likewise yₖ.
 *
 *   y = Σ x                  dx = dyₖ  (expanded to x's shape)
 *   y = mean x = Σ x / n     dx = dyₖ / n,  n = |x| / |y|
 *   y = max x  (min x)       dx = dyₖ · [x = yₖ] / #{x = yₖ}   (ties share the gradient equally)
 *   y = Σ x²                 dx = 2·x·dyₖ
 *   y = √(Σ x²)              dx = x·dyₖ / yₖ   (0 where yₖ = 0, the subgradient PyTorch picks)
 *   y = log Σ eˣ             dx = dyₖ · e^(x − yₖ)
 *   y = softmax(x)           dx = y · (dy − Σ dy·y)      Σ along the softmax axis, kept
 *   y = log_softmax(x)       dx = dy − e^y · Σ dy
 *   y = einsum(t₀,…,tₙ → o)  dxₖ = einsum(o, tⱼ (j ≠ k) → tₖ), broadcast over letters only xₖ has
 *
 * Axes: ReduceSum takes them as an input from opset 13, the other reductions from opset 18 (an
 * attribute before). No axes means all of them, unless noop_with_empty_axes makes it an identity.
 * Softmax before opset 13 normalizes over all axes from `axis` on (input coerced to 2-D).
 */
import { attrInt, attrInts, attrString } from '../../../src/ir/attrs.js';
import type { GradContext, GradRule, GradRuleTable } from '../types.js';
import { constInts, rankOf, unsqueeze } from './shape.js';

/** Which axes a reduction reduced. */
interface Reduction {
  /** The axes as constants (possibly negative), or undefined when they come from a run-time input. */
  axes?: number[];
  /** The run-time axes input when not a constant. */
  axesInput?: string;
  /** No axes: every axis is reduced (and dy is a scalar, or all 1s with keepdims). */
  all: boolean;
  /** Empty axes with noop_with_empty_axes: y = x elementwise. */
  identity: boolean;
  keepdims: boolean;
}

function reduction(ctx: GradContext): Reduction {
  const { node, x } = ctx;
  const axesAsInput = node.opType === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  const keepdims = attrInt(node, 'keepdims', 1) !== 0;
  const noop = axesAsInput && attrInt(node, 'noop_with_empty_axes', 0) !== 0;
  let axes: number[] | undefined;
  let axesInput: string | undefined;
  if (axesAsInput) {
    if (x[1]) {
      axes = constInts(ctx, x[1]);
      if (!axes) axesInput = x[1];
    }
  } else {
    axes = attrInts(node, 'axes');
  }
  const empty = !axesInput && (!axes || axes.length === 0);
  return { axes: empty ? undefined : axes, axesInput, all: empty && !noop, identity: empty && noop, keepdims };
}

/** `v` (shaped like y) in keepdims form, so that it broadcasts against x. */
function kept(ctx: GradContext, r: Reduction, v: string): string {
  // keepdims, an identity, or a full reduction to a scalar: already broadcasts.
  if (r.keepdims || r.identity || r.all) return v;
  if (r.axesInput) return ctx.opset >= 13 ? ctx.b.op('Unsqueeze', [v, r.axesInput]) : ctx.fail('run-time axes need opset 13+');
  return unsqueeze(ctx, v, r.axes!);
}

/** ReduceSum of `v` (shaped like x) over the reduction's axes, keeping dims. */
function sumKept(ctx: GradContext, r: Reduction, v: string): string {
  if (r.identity) return v;
  if (r.all) return ctx.b.op('ReduceSum', [v], { keepdims: 1 });
  return reduceSum(ctx, v, r.axesInput ?? r.axes!);
}

/** ReduceSum with keepdims in the axes form of the graph's opset. */
function reduceSum(ctx: GradContext, v: string, axes: number[] | string): string {
  if (ctx.opset >= 13) return ctx.b.op('ReduceSum', [v, typeof axes === 'string' ? axes : ctx.ints(axes)], { keepdims: 1 });
  if (typeof axes === 'string') ctx.fail('run-time axes need opset 13+');
  return ctx.b.op('ReduceSum', [v], { axes, keepdims: 1 });
}

/** A bool mask as x's float type. */
function asFloat(ctx: GradContext, mask: string): string {
  return ctx.b.op('Cast', [mask], { to: ctx.elemType(ctx.x[0]!) ?? 1 });
}

/** dx = dyₖ · f(x, yₖ), with dyₖ broadcast to x's shape through the product. */
const times = (f: (ctx: GradContext, r: Reduction) => string): GradRule => (ctx) => {
  const r = reduction(ctx);
  return { 0: () => ctx.b.op('Mul', [kept(ctx, r, ctx.dy[0]!), f(ctx, r)]) };
};

/** Max/Min: the gradient goes to the elements equal to the extremum, split evenly among ties. */
const extremum: GradRule = (ctx) => {
  const r = reduction(ctx);
  return {
    0: () => {
      const { b } = ctx;
      const mask = asFloat(ctx, b.op('Equal', [ctx.x[0]!, kept(ctx, r, ctx.y[0]!)]));
      return b.op('Mul', [mask, b.op('Div', [kept(ctx, r, ctx.dy[0]!), sumKept(ctx, r, mask)])]);
    },
  };
};

/** The softmax axes: the one axis from opset 13, every axis from `axis` on before. */
function softmaxAxes(ctx: GradContext): number[] {
  const legacy = ctx.opset < 13;
  const axis = attrInt(ctx.node, 'axis', legacy ? 1 : -1);
  if (!legacy) return [axis];
  const rank = rankOf(ctx, ctx.x[0]!, `Softmax at opset ${ctx.opset}`);
  const a = axis < 0 ? axis + rank : axis;
  return Array.from({ length: rank - a }, (_, i) => a + i);
}

/**
 * Einsum backward: y is multilinear, so dxₖ contracts dy with every other operand onto xₖ's
 * letters. A letter that only xₖ carries was summed out of y, so dxₖ is constant along it:
 * leave it out of the equation, then unsqueeze and expand. Repeated letters within one term
 * (diagonals, traces) and '...' are refused.
 */
function einsumGrad(ctx: GradContext, k: number): string {
  const { b, x } = ctx;
  const eq = attrString(ctx.node, 'equation', '').replace(/\s+/g, '');
  if (eq.includes('.')) ctx.fail(`equation '${eq}': '...' has no gradient rule`);
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  const counts = new Map<string, number>();
  for (const t of terms) for (const c of t) counts.set(c, (counts.get(c) ?? 0) + 1);
  const out = rhs ?? [...counts].filter(([, n]) => n === 1).map(([c]) => c).sort().join('');
  if (terms.some((t) => new Set(t).size !== t.length)) ctx.fail(`equation '${eq}': a letter repeated within one operand has no gradient rule`);
  const others = terms.filter((_, j) => j !== k);
  const elsewhere = new Set([...out, ...others.join('')]);
  const term = terms[k]!;
  const kept = [...term].filter((c) => elsewhere.has(c)).join('');
  const operands = [ctx.dy[0]!, ...x.filter((_, j) => j !== k)];
  const identity = others.length === 0 && kept === out;
  let g = identity ? ctx.dy[0]! : b.op('Einsum', operands, { equation: `${[out, ...others].join(',')}->${kept}` });
  if (kept.length < term.length) {
    g = unsqueeze(ctx, g, [...term].flatMap((c, i) => (elsewhere.has(c) ? [] : [i])));
    g = b.op('Expand', [g, b.op('Shape', [x[k]!])]);
  }
  return g;
}

export const rules = {
  ReduceSum: (ctx) => {
    const r = reduction(ctx);
    return { 0: () => (r.identity ? ctx.dy[0]! : ctx.b.op('Expand', [kept(ctx, r, ctx.dy[0]!), ctx.b.op('Shape', [ctx.x[0]!])])) };
  },
  ReduceMean: (ctx) => {
    const r = reduction(ctx);
    return {
      0: () => {
        const { b } = ctx;
        const xs = ctx.shape(ctx.x[0]!);
        const ys = ctx.shape(ctx.y[0]!);
        let n: string;
        if (xs && ys && [...xs, ...ys].every((d) => typeof d === 'number')) {
          const count = (s: number[]) => s.reduce((p, d) => p * d, 1);
          n = ctx.scalar(count(xs as number[]) / count(ys as number[]));
        } else {
          // n = |x| / |y| at run time (a symbolic dim among the reduced ones).
          n = b.op('Cast', [b.op('Div', [b.op('Size', [ctx.x[0]!]), b.op('Size', [ctx.y[0]!])])], { to: ctx.elemType(ctx.x[0]!) ?? 1 });
        }
        return b.op('Expand', [b.op('Div', [kept(ctx, r, ctx.dy[0]!), n]), b.op('Shape', [ctx.x[0]!])]);
      },
    };
  },
  ReduceMax: extremum,
  ReduceMin: extremum,
  ReduceSumSquare: times((ctx) => ctx.b.op('Mul', [ctx.x[0]!, ctx.scalar(2)])),
  ReduceL2: times((ctx, r) => {
    const { b } = ctx;
    const yk = kept(ctx, r, ctx.y[0]!);
    const zero = ctx.scalar(0);
    // x / y, with 0 where the norm is 0 (x is 0 there too) instead of NaN.
    const isZero = b.op('Equal', [yk, zero]);
    const safe = b.op('Where', [isZero, ctx.scalar(1), yk]);
    return b.op('Where', [isZero, zero, b.op('Div', [ctx.x[0]!, safe])]);
  }),
  ReduceLogSumExp: times((ctx, r) => ctx.b.op('Exp', [ctx.b.op('Sub', [ctx.x[0]!, kept(ctx, r, ctx.y[0]!)])])),
  Softmax: (ctx) => ({
    0: () => {
      const { b } = ctx;
      const y = ctx.y[0]!;
      const dy = ctx.dy[0]!;
      const dot = reduceSum(ctx, b.op('Mul', [dy, y]), softmaxAxes(ctx));
      return b.op('Mul', [y, b.op('Sub', [dy, dot])]);
    },
  }),
  LogSoftmax: (ctx) => ({
    0: () => {
      const { b } = ctx;
      const dy = ctx.dy[0]!;
      return b.op('Sub', [dy, b.op('Mul', [b.op('Exp', [ctx.y[0]!]), reduceSum(ctx, dy, softmaxAxes(ctx))])]);
    },
  }),
  Einsum: (ctx) => Object.fromEntries(ctx.x.map((_, k) => [k, () => einsumGrad(ctx, k)])),
} satisfies GradRuleTable;
