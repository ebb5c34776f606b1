/**
 * Elementwise arithmetic and activations. Broadcasting ops return gradients in the output's
 * shape; the driver sums them back (src/ir/ops.ts BROADCASTING).
 *
 *   y = a + b        da = dy                 db = dy
 *   y = a − b        da = dy                 db = −dy
 *   y = a·b          da = dy·b               db = dy·a
 *   y = a / b        da = dy / b             db = −dy·y / b
 *   y = a^p          da = dy·p·a^(p−1)       dp = dy·y·ln a
 *   y = √x           dx = dy / (2y)
 *   y = eˣ           dx = dy·y
 *   y = ln x         dx = dy / x
 *   y = −x           dx = −dy
 *   y = |x|          dx = dy·sign(x)
 *   y = 1/x          dx = −dy·y²
 *   y = relu(x)      dx = dy·[x > 0]
 *   y = leaky(x)     dx = dy·(x > 0 ? 1 : α)
 *   y = elu(x)       dx = dy·(x > 0 ? 1 : y + α)
 *   y = selu(x)      dx = dy·γ·(x > 0 ? 1 : α·eˣ)
 *   y = prelu(x, s)  dx = dy·(x > 0 ? 1 : s)   ds = dy·min(x, 0)
 *   y = σ(x)         dx = dy·y·(1 − y)
 *   y = tanh(x)      dx = dy·(1 − y²)
 *   y = softplus(x)  dx = dy·σ(x)
 *   y = erf(x)       dx = dy·(2/√π)·e^(−x²)
 *   y = gelu(x)      dx = dy·(Φ(x) + x·φ(x))      (approximate='tanh': derivative of the tanh form)
 *   y = clip(x,l,h)  dx = dy·[l ≤ x ≤ h]
 *   y = min/max(…)   d(input i) = dy·[input i is the selected one]
 *   y = where(c,a,b) da = dy·c                db = dy·¬c
 *   y = Σᵢ xᵢ        dxᵢ = dy;  mean: dy / n
 *   y = identity     dx = dy
 */
import { attrFloat, attrString } from '../../../src/ir/attrs.js';
import type { GradContext, GradRule, GradRuleTable } from '../types.js';

const relu: GradRule = ({ x, dy, b }) => ({
  0: () => b.op('Where', [b.op('Greater', [x[0]!, zero(b)]), dy[0]!, b.op('Mul', [dy[0]!, zero(b)])]),
});

function zero(b: GradContext['b']): string {
  return b.init('zero', { dtype: 'float32', dims: [], data: Float32Array.of(0) });
}

/** dy·f where f is a mask-like factor; keeps dy's dtype and shape. */
function scaled(ctx: GradContext, factor: string): string {
  return ctx.b.op('Mul', [ctx.dy[0]!, factor]);
}

/** Selects dy where `cond`, else 0. */
function masked(ctx: GradContext, cond: string): string {
  return ctx.b.op('Where', [cond, ctx.dy[0]!, ctx.b.op('Mul', [ctx.dy[0]!, ctx.scalar(0)])]);
}

export const rules = {
  Add: ({ dy }) => ({ 0: () => dy[0]!, 1: () => dy[0]! }),
  Sub: ({ dy, b }) => ({ 0: () => dy[0]!, 1: () => b.op('Neg', [dy[0]!]) }),
  Mul: ({ x, dy, b }) => ({ 0: () => b.op('Mul', [dy[0]!, x[1]!]), 1: () => b.op('Mul', [dy[0]!, x[0]!]) }),
  Div: ({ x, y, dy, b }) => ({
    0: () => b.op('Div', [dy[0]!, x[1]!]),
    1: () => b.op('Neg', [b.op('Div', [b.op('Mul', [dy[0]!, y[0]!]), x[1]!])]),
  }),
  Pow: (ctx) => {
    const { x, y, dy, b } = ctx;
    return {
      0: () => b.op('Mul', [dy[0]!, b.op('Mul', [x[1]!, b.op('Pow', [x[0]!, b.op('Sub', [x[1]!, ctx.scalar(1)])])])]),
      1: () => b.op('Mul', [dy[0]!, b.op('Mul', [y[0]!, b.op('Log', [x[0]!])])]),
    };
  },
  Sqrt: (ctx) => ({ 0: () => ctx.b.op('Div', [ctx.dy[0]!, ctx.b.op('Mul', [ctx.y[0]!, ctx.scalar(2)])]) }),
  Exp: (ctx) => ({ 0: () => scaled(ctx, ctx.y[0]!) }),
  Log: (ctx) => ({ 0: () => ctx.b.op('Div', [ctx.dy[0]!, ctx.x[0]!]) }),
  Neg: (ctx) => ({ 0: () => ctx.b.op('Neg', [ctx.dy[0]!]) }),
  Abs: (ctx) => ({ 0: () => scaled(ctx, ctx.b.op('Sign', [ctx.x[0]!])) }),
  Reciprocal: (ctx) => ({ 0: () => ctx.b.op('Neg', [scaled(ctx, ctx.b.op('Mul', [ctx.y[0]!, ctx.y[0]!]))]) }),
  Identity: ({ dy }) => ({ 0: () => dy[0]! }),
  Relu: relu,
  LeakyRelu: (ctx) => {
    const alpha = attrFloat(ctx.node, 'alpha', 0.01);
    return { 0: () => ctx.b.op('Where', [ctx.b.op('Greater', [ctx.x[0]!, ctx.scalar(0)]), ctx.dy[0]!, ctx.b.op('Mul', [ctx.dy[0]!, ctx.scalar(alpha)])]) };
  },
  Elu: (ctx) => {
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    return { 0: () => ctx.b.op('Where', [ctx.b.op('Greater', [ctx.x[0]!, ctx.scalar(0)]), ctx.dy[0]!, scaled(ctx, ctx.b.op('Add', [ctx.y[0]!, ctx.scalar(alpha)]))]) };
  },
  Selu: (ctx) => {
    const alpha = attrFloat(ctx.node, 'alpha', 1.67326319217681884765625);
    const gamma = attrFloat(ctx.node, 'gamma', 1.05070102214813232421875);
    const { b, x } = ctx;
    return {
      0: () => {
        const neg = b.op('Mul', [b.op('Exp', [x[0]!]), ctx.scalar(alpha * gamma)]);
        return scaled(ctx, b.op('Where', [b.op('Greater', [x[0]!, ctx.scalar(0)]), ctx.scalar(gamma), neg]));
      },
    };
  },
  PRelu: (ctx) => {
    const { b, x } = ctx;
    const positive = () => b.op('Greater', [x[0]!, ctx.scalar(0)]);
    return {
      // The slope broadcasts up to x's shape first, so the result has the output's shape.
      0: () => b.op('Where', [positive(), ctx.dy[0]!, b.op('Mul', [ctx.dy[0]!, x[1]!])]),
      1: () => scaled(ctx, b.op('Min', [x[0]!, ctx.scalar(0)])),
    };
  },
  Sigmoid: (ctx) => ({ 0: () => scaled(ctx, ctx.b.op('Mul', [ctx.y[0]!, ctx.b.op('Sub', [ctx.scalar(1), ctx.y[0]!])])) }),
  Tanh: (ctx) => ({ 0: () => scaled(ctx, ctx.b.op('Sub', [ctx.scalar(1), ctx.b.op('Mul', [ctx.y[0]!, ctx.y[0]!])])) }),
  Softplus: (ctx) => ({ 0: () => scaled(ctx, ctx.b.op('Sigmoid', [ctx.x[0]!])) }),
  Erf: (ctx) => {
    const { b, x } = ctx;
    return { 0: () => scaled(ctx, b.op('Mul', [ctx.scalar(2 / Math.sqrt(Math.PI)), b.op('Exp', [b.op('Neg', [b.op('Mul', [x[0]!, x[0]!])])])])) };
  },
  Gelu: (ctx) => {
    const { b } = ctx;
    const x = ctx.x[0]!;
    if (attrString(ctx.node, 'approximate', 'none') === 'tanh') {
      // y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³); dy/dx = ½(1 + t) + ½x(1 − t²)·u'
      const c = Math.sqrt(2 / Math.PI);
      return {
        0: () => {
          const x2 = b.op('Mul', [x, x]);
          const u = b.op('Mul', [ctx.scalar(c), b.op('Add', [x, b.op('Mul', [ctx.scalar(0.044715), b.op('Mul', [x2, x])])])]);
          const t = b.op('Tanh', [u]);
          const du = b.op('Mul', [ctx.scalar(c), b.op('Add', [ctx.scalar(1), b.op('Mul', [ctx.scalar(3 * 0.044715), x2])])]);
          const left = b.op('Mul', [ctx.scalar(0.5), b.op('Add', [ctx.scalar(1), t])]);
          const right = b.op('Mul', [b.op('Mul', [ctx.scalar(0.5), x]), b.op('Mul', [b.op('Sub', [ctx.scalar(1), b.op('Mul', [t, t])]), du])]);
          return scaled(ctx, b.op('Add', [left, right]));
        },
      };
    }
    // Φ(x) = ½(1 + erf(x/√2)), φ(x) = e^(−x²/2)/√(2π)
    return {
      0: () => {
        const cdf = b.op('Mul', [ctx.scalar(0.5), b.op('Add', [ctx.scalar(1), b.op('Erf', [b.op('Mul', [x, ctx.scalar(Math.SQRT1_2)])])])]);
        const pdf = b.op('Mul', [ctx.scalar(1 / Math.sqrt(2 * Math.PI)), b.op('Exp', [b.op('Mul', [ctx.scalar(-0.5), b.op('Mul', [x, x])])])]);
        return scaled(ctx, b.op('Add', [cdf, b.op('Mul', [x, pdf])]));
      },
    };
  },
  Clip: (ctx) => {
    const { b, x } = ctx;
    return {
      0: () => {
        let inside = undefined as string | undefined;
        if (x[1]) inside = b.op('GreaterOrEqual', [x[0]!, x[1]]);
        if (x[2]) {
          const upper = b.op('LessOrEqual', [x[0]!, x[2]]);
          inside = inside ? b.op('And', [inside, upper]) : upper;
        }
        return inside ? masked(ctx, inside) : ctx.dy[0]!;
      },
    };
  },
  Min: (ctx) => selectGrad(ctx),
  Max: (ctx) => selectGrad(ctx),
  Where: (ctx) => ({
    1: () => masked(ctx, ctx.x[0]!),
    2: () => masked(ctx, ctx.b.op('Not', [ctx.x[0]!])),
  }),
  Sum: ({ x, dy }) => Object.fromEntries(x.map((_, k) => [k, () => dy[0]!])),
  Mean: (ctx) => Object.fromEntries(ctx.x.map((_, k) => [k, () => ctx.b.op('Div', [ctx.dy[0]!, ctx.scalar(ctx.x.length)])])),
} satisfies GradRuleTable;

/** Min/Max: the gradient flows to the input equal to the output (ties share it, as in tfjs). */
function selectGrad(ctx: GradContext): ReturnType<GradRule> {
  return Object.fromEntries(ctx.x.map((xi, k) => [k, () => masked(ctx, ctx.b.op('Equal', [xi, ctx.y[0]!]))]));
}
