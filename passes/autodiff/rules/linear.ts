/**
 * Linear ops: matrix products and convolutions. None of them is in BROADCASTING, so every rule
 * returns its gradients in the input's own shape (MatMul sums over broadcast batch axes itself).
 *
 *   MatMul  Y = A·B (numpy: batch axes broadcast; a 1-D A is a row [1,k], a 1-D B a column [k,1],
 *           the added axis removed from Y)
 *           dA = Σ_broadcast dY·Bᵀ         dB = Σ_broadcast Aᵀ·dY
 *           1-D A:  dA[k]   = Σ_{b,n} B[b,k,n]·dY[b,n]      dB[...,k,n] = A[k]·dY[...,n]
 *           1-D B:  dA[...,m,k] = dY[...,m]·B[k]            dB[k] = Σ_{b,m} dY[b,m]·A[b,m,k]
 *           both:   dA = dY·B, dB = dY·A (Y is a scalar)
 *   Gemm    Y = α·op(A)·op(B) + β·C, op = ᵀ where transA / transB, C broadcast to [M, N]
 *           d op(A) = α·dY·op(B)ᵀ          d op(B) = α·op(A)ᵀ·dY       dC = β·Σ_broadcast dY
 *   Conv    Y[n,m,o] = Σ_{c∈grp(m), j} X[n,c, o·s + j·d − pb]·W[m,c',j] + B[m]
 *           dX = ConvTranspose(dY, W)  (same strides, dilations, group, begin pads; the end pad
 *                and output_padding chosen so dX has exactly X's shape, see convInputGrad)
 *           dW[m,c',j] = Σ_{n,o} dY[n,m,o]·X[n,c, o·s + j·d − pb]  (a Conv, see weightGrad)
 *           dB[m] = Σ_{n,o} dY[n,m,o]
 *   ConvTranspose  Y[n,m, i·s + j·d − pb] += X[n,c,i]·W[c,m',j] (+ B[m]), cropped to Y's extent
 *           dX[n,c,i] = Σ_{m', j} dY[n,m, i·s + j·d − pb]·W[c,m',j]  = Conv(dY, W), same s, d, group
 *           dW[c,m',j] = Σ_{n,i} X[n,c,i]·dY[n,m, i·s + j·d − pb]   (a Conv, see weightGrad)
 *           dB[m] = Σ_{n,o} dY[n,m,o]
 *
 * Sizes per spatial axis (D input, k kernel, s stride, d dilation, dk = d·(k−1) + 1, pb/pe the
 * begin/end pads onnxruntime applies):
 *   Conv:           O = ⌊(D + pb + pe − dk)/s⌋ + 1; the r = (D + pb + pe − dk) mod s trailing
 *                   input positions past the last window get no gradient.
 *   ConvTranspose:  full = s·(D − 1) + dk, Oy = full + output_padding − pb − pe (or output_shape),
 *                   T = full − pb − Oy is the crop at the end (negative: zero rows appended).
 * onnxruntime 1.30 facts these rely on (checked against its kernels): Conv SAME_* pads
 * (⌈D/s⌉−1)·s + dk − D in total, ⌊·/2⌋ at the begin for SAME_UPPER, ⌈·/2⌉ for SAME_LOWER (and
 * rejects dilation ≠ 1 with SAME); ConvTranspose SAME_* pads max(0, full + op − D·s) and an
 * explicit output_shape pads full + op − Oy (ignoring `pads`), ⌊·/2⌋ at the begin for SAME_UPPER
 * and ⌈·/2⌉ otherwise; ConvTranspose output_padding must be < max(stride, dilation).
 */
import { attrFloat, attrInt, attrInts, attrString } from '../../../src/ir/attrs.js';
import { float, type AttrValue } from '../../../src/ir/emit.js';
import type { Dim } from '../../../src/ir/graph.js';
import { sumToShape } from '../broadcast.js';
import type { GradContext, GradRuleTable, GradThunks } from '../types.js';

// ---------------------------------------------------------------------------------------------
// Shape vectors that stay dynamic only where a dim is symbolic.

/** A literal dim, or the dims [from, to) of a value's runtime shape. */
type ShapePart = number | { of: string; from: number; to: number };

/** Dims [from, to) of `value`: literals when statically known, else one runtime Shape slice. */
function dimsOf(ctx: GradContext, value: string, from: number, to: number): ShapePart[] {
  const dims = ctx.shape(value)?.slice(from, to);
  if (dims && dims.length === to - from && dims.every((d) => typeof d === 'number')) return dims as number[];
  return [{ of: value, from, to }];
}

/** An int64 shape vector from parts: one constant when all are literal. */
function shapeVector(ctx: GradContext, parts: ShapePart[]): string {
  const pieces: string[] = [];
  let run: number[] = [];
  const flush = (): void => {
    if (run.length) pieces.push(ctx.ints(run));
    run = [];
  };
  for (const p of parts) {
    if (typeof p === 'number') {
      run.push(p);
      continue;
    }
    flush();
    pieces.push(ctx.opset >= 15
      ? ctx.b.op('Shape', [p.of], { start: p.from, end: p.to })
      : ctx.b.op('Slice', [ctx.b.op('Shape', [p.of]), ctx.ints([p.from]), ctx.ints([p.to])]));
  }
  flush();
  return pieces.length === 1 ? pieces[0]! : ctx.b.op('Concat', pieces, { axis: 0 });
}

function rankOf(ctx: GradContext, value: string): number {
  const s = ctx.shape(value);
  if (!s) return ctx.fail(`the rank of '${value}' is unknown (shape inference gave no shape)`);
  return s.length;
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Transpose of the last two axes. */
function transposeLast2(ctx: GradContext, v: string, rank: number): string {
  return ctx.b.op('Transpose', [v], { perm: [...range(0, rank - 2), rank - 1, rank - 2] });
}

// ---------------------------------------------------------------------------------------------
// MatMul and Gemm

function matmulRule(ctx: GradContext): GradThunks {
  const { b } = ctx;
  const [a, w] = [ctx.x[0]!, ctx.x[1]!];
  const dy = ctx.dy[0]!;
  const ra = rankOf(ctx, a);
  const rb = rankOf(ctx, w);
  if (ra === 0 || rb === 0) ctx.fail('MatMul does not take scalars');

  if (ra === 1 && rb === 1) return { 0: () => b.op('Mul', [dy, w]), 1: () => b.op('Mul', [dy, a]) };

  if (ra === 1) {
    // Y[...,n] = Σ_k A[k]·B[...,k,n]
    return {
      0: () => {
        if (rb === 2) return b.op('MatMul', [w, dy]);
        // B[...,k,n]·dY[...,n,1] → [...,k,1], then sum the batch axes and the 1.
        const prod = b.op('MatMul', [w, b.op('Unsqueeze', [dy, ctx.ints([-1])])]);
        return b.op('ReduceSum', [prod, ctx.ints([...range(0, rb - 2), rb - 1])], { keepdims: 0 });
      },
      1: () => b.op('Mul', [b.op('Unsqueeze', [a, ctx.ints([-1])]), b.op('Unsqueeze', [dy, ctx.ints([-2])])]),
    };
  }

  if (rb === 1) {
    // Y[...,m] = Σ_k A[...,m,k]·B[k]
    return {
      0: () => b.op('Mul', [b.op('Unsqueeze', [dy, ctx.ints([-1])]), w]),
      1: () => {
        if (ra === 2) return b.op('MatMul', [dy, a]);
        // Fold every batch axis and m into one: dB = flat(dY)·flat(A), a vector–matrix product.
        const flatDy = b.op('Reshape', [dy, ctx.ints([-1])]);
        const flatA = b.op('Reshape', [a, shapeVector(ctx, [-1, ...dimsOf(ctx, a, ra - 1, ra)])]);
        return b.op('MatMul', [flatDy, flatA]);
      },
    };
  }

  // Both at least 2-D: Y[...,m,n] with the broadcast batch of A and B.
  const yShape = ctx.shape(ctx.y[0]!);
  const aShape = ctx.shape(a);
  const bShape = ctx.shape(w);
  return {
    0: () => {
      const dA = b.op('MatMul', [dy, transposeLast2(ctx, w, rb)]);
      // A 2-D B has no batch, so Y's batch is A's: nothing to sum.
      if (rb === 2) return dA;
      const from = yShape && aShape ? [...yShape.slice(0, -1), aShape[ra - 1]!] : undefined;
      return sumToShape(b, dA, from, aShape, a);
    },
    1: () => {
      if (rb === 2) {
        // A weight shared over A's batch: dB = flat(A)ᵀ·flat(dY) in one GEMM, no [batch,k,n]
        // intermediate to reduce.
        const flatA = ra === 2 ? a : b.op('Reshape', [a, shapeVector(ctx, [-1, ...dimsOf(ctx, a, ra - 1, ra)])]);
        const flatDy = ra === 2 ? dy : b.op('Reshape', [dy, shapeVector(ctx, [-1, ...dimsOf(ctx, w, 1, 2)])]);
        return b.op('Gemm', [flatA, flatDy], { transA: 1 });
      }
      const dB = b.op('MatMul', [transposeLast2(ctx, a, ra), dy]);
      const from = yShape && bShape ? [...yShape.slice(0, -2), bShape[rb - 2]!, yShape[yShape.length - 1]!] : undefined;
      return sumToShape(b, dB, from, bShape, w);
    },
  };
}

function gemmRule(ctx: GradContext): GradThunks {
  const { b, node } = ctx;
  const [a, w, c] = [ctx.x[0]!, ctx.x[1]!, ctx.x[2]];
  const dy = ctx.dy[0]!;
  const transA = attrInt(node, 'transA', 0);
  const transB = attrInt(node, 'transB', 0);
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const scale: Record<string, AttrValue> = alpha === 1 ? {} : { alpha: float(alpha) };
  return {
    // transA = 0: dA = α·dY·op(B)ᵀ.  transA = 1: dA = (α·dY·op(B)ᵀ)ᵀ = α·op(B)·dYᵀ.
    0: () => transA
      ? b.op('Gemm', [w, dy], { transA: transB, transB: 1, ...scale })
      : b.op('Gemm', [dy, w], { transA: 0, transB: 1 - transB, ...scale }),
    // transB = 0: dB = α·op(A)ᵀ·dY.  transB = 1: dB = (α·op(A)ᵀ·dY)ᵀ = α·dYᵀ·op(A).
    1: () => transB
      ? b.op('Gemm', [dy, a], { transA: 1, transB: transA, ...scale })
      : b.op('Gemm', [a, dy], { transA: 1 - transA, transB: 0, ...scale }),
    2: () => {
      // C was unidirectionally broadcast to [M, N]; Gemm is not in BROADCASTING, so sum back here.
      const scaled = beta === 1 ? dy : b.op('Mul', [dy, ctx.scalar(beta)]);
      return sumToShape(b, scaled, ctx.shape(ctx.y[0]!), ctx.shape(c!), c!);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Convolutions

/** Per-axis window geometry of a Conv or ConvTranspose node, pads as onnxruntime applies them. */
interface ConvGeometry {
  /** Spatial rank. */
  n: number;
  group: number;
  k: number[];
  s: number[];
  d: number[];
  /** Begin pads. */
  pb: number[];
}

function baseGeometry(ctx: GradContext): ConvGeometry & { xShape: Dim[]; wShape: Dim[] | undefined } {
  const { node } = ctx;
  const xShape = ctx.shape(ctx.x[0]!);
  const wShape = ctx.shape(ctx.x[1]!);
  const rank = xShape?.length ?? wShape?.length;
  if (!xShape || rank === undefined) return ctx.fail(`the shape of the input '${ctx.x[0]}' is unknown`);
  const n = rank - 2;
  if (n < 1) ctx.fail(`input of rank ${rank} has no spatial axis`);
  const kernel = attrInts(node, 'kernel_shape') ?? wShape?.slice(2);
  if (!kernel || kernel.length !== n || !kernel.every((v) => typeof v === 'number')) {
    return ctx.fail('the kernel size is unknown (no kernel_shape and no static weight shape)');
  }
  const list = (name: string, fill: number, len = n): number[] => {
    const v = attrInts(node, name);
    return v && v.length > 0 ? v : new Array<number>(len).fill(fill);
  };
  return { n, group: attrInt(node, 'group', 1), k: kernel as number[], s: list('strides', 1), d: list('dilations', 1), pb: [], xShape, wShape };
}

const dilated = (g: ConvGeometry, i: number): number => g.d[i]! * (g.k[i]! - 1) + 1;

/**
 * Conv: begin/end pads as onnxruntime applies them (auto_pad resolved) and, per axis, the tail
 * r = (D + pb + pe − dk) mod s that no window reaches (undefined when D is symbolic and s > 1).
 */
function convGeometry(ctx: GradContext): ConvGeometry & { pe: number[]; r: (number | undefined)[]; xShape: Dim[] } {
  const g = baseGeometry(ctx);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const spatial = g.xShape.slice(2);
  const pads = attrInts(ctx.node, 'pads');
  const pe: number[] = [];
  for (let i = 0; i < g.n; i++) {
    const D = spatial[i]!;
    const s = g.s[i]!;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      // total = (⌈D/s⌉ − 1)·s + dk − D; with s = 1 that is dk − 1 whatever D is.
      if (typeof D !== 'number' && s !== 1) ctx.fail(`auto_pad=${autoPad} with stride ${s} needs a static spatial size, got '${D}'`);
      const total = Math.max(0, s === 1 ? dilated(g, i) - 1 : (Math.ceil((D as number) / s) - 1) * s + dilated(g, i) - (D as number));
      g.pb.push(autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2));
      pe.push(total - g.pb[i]!);
    } else if (autoPad === 'VALID') {
      g.pb.push(0);
      pe.push(0);
    } else {
      g.pb.push(pads?.[i] ?? 0);
      pe.push(pads?.[i + g.n] ?? 0);
    }
  }
  const r = spatial.map((D, i) => {
    if (g.s[i] === 1) return 0;
    return typeof D === 'number' ? (D + g.pb[i]! + pe[i]! - dilated(g, i)) % g.s[i]! : undefined;
  });
  return { ...g, pe, r };
}

/** ConvTranspose: begin pads as onnxruntime applies them and, per axis, the end crop T = full − pb − Oy. */
function convTransposeGeometry(ctx: GradContext): ConvGeometry & { T: number[] } {
  const g = baseGeometry(ctx);
  const { node } = ctx;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const spatial = g.xShape.slice(2);
  const outputPadding = attrInts(node, 'output_padding') ?? [];
  const outputShape = attrInts(node, 'output_shape') ?? [];
  if (outputShape.length > 0 && outputShape.length !== g.n && outputShape.length !== g.n + 2) {
    ctx.fail(`output_shape has ${outputShape.length} entries for ${g.n} spatial axes`);
  }
  const pads = attrInts(node, 'pads');
  const T: number[] = [];
  for (let i = 0; i < g.n; i++) {
    const op = outputPadding[i] ?? 0;
    const dk = dilated(g, i);
    const s = g.s[i]!;
    if (outputShape.length > 0) {
      const D = spatial[i]!;
      if (typeof D !== 'number') ctx.fail(`output_shape with a symbolic input size '${D}' is not supported`);
      const oy = outputShape[outputShape.length === g.n ? i : i + 2]!;
      const full = s * (D - 1) + dk;
      const total = full + op - oy;
      g.pb.push(total <= 0 ? 0 : autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2));
      T.push(full - g.pb[i]! - oy);
    } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      // total = max(0, full + op − D·s) = max(0, dk + op − s): independent of D.
      const total = Math.max(0, dk + op - s);
      g.pb.push(autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2));
      T.push(total - g.pb[i]! - op);
    } else {
      const [pb, pe] = autoPad === 'VALID' ? [0, 0] : [pads?.[i] ?? 0, pads?.[i + g.n] ?? 0];
      g.pb.push(pb);
      T.push(pe - op);
    }
  }
  return { ...g, T };
}

/** Window attributes for an emitted Conv/ConvTranspose (group only when not 1). */
function windowAttrs(g: { group: number }, strides: number[], dilations: number[], pb: number[], pe: number[]): Record<string, number[] | number> {
  return { strides, dilations, pads: [...pb, ...pe], ...(g.group === 1 ? {} : { group: g.group }) };
}

/** Slices the spatial axes of `v` to `sizes` (literal or runtime dims of another value). */
function sliceSpatial(ctx: GradContext, v: string, n: number, sizes: ShapePart[]): string {
  return ctx.b.op('Slice', [v, ctx.ints(new Array<number>(n).fill(0)), shapeVector(ctx, sizes), ctx.ints(range(2, n + 2))]);
}

/** dB = Σ over batch and spatial axes of dY. */
function biasGrad(ctx: GradContext, n: number): string {
  return ctx.b.op('ReduceSum', [ctx.dy[0]!, ctx.ints([0, ...range(2, n + 2)])], { keepdims: 0 });
}

/**
 * v[N, G·a, S...] → [a, G·N, S...], channel index g·N + n: the layout a grouped Conv needs to see
 * group g's slices of all N samples as its input channels.
 */
function channelsToBatch(ctx: GradContext, v: string, group: number, a: ShapePart[], n: number): string {
  const { b } = ctx;
  if (group === 1) return b.op('Transpose', [v], { perm: [1, 0, ...range(2, n + 2)] });
  const spatial = dimsOf(ctx, v, 2, n + 2);
  const split = b.op('Reshape', [v, shapeVector(ctx, [0, group, ...a, ...spatial])]);
  const moved = b.op('Transpose', [split], { perm: [2, 1, 0, ...range(3, n + 3)] });
  return b.op('Reshape', [moved, shapeVector(ctx, [...a, -1, ...spatial])]);
}

/**
 * The weight gradient of a (transposed) convolution as one Conv over the batch:
 *   dW[G·b, a, j] = Σ_{n,t} data[n, g·a + a', j·d + t·s − pb] · kern[n, g·b + b', t]
 * with `data` the padded side (Conv: X; ConvTranspose: dY) and `kern` the other (Conv: dY;
 * ConvTranspose: X). Swapping batch and channel axes turns the sum over n into the Conv's sum
 * over input channels and the sum over t into its kernel window: strides become the forward
 * dilations and dilations the forward strides, and `group` carries over (channelsToBatch).
 *
 * Chosen over patch extraction (an identity-kernel Conv then a MatMul) because that costs
 * C·∏k/M times the FLOPs of dW and materialises an [N, C·∏k, O] patch tensor; this Conv does
 * exactly dW's multiply–adds and needs only a transposed copy of X and dY.
 *
 * `needEnd[i]` is the end pad that makes the output exactly k long; when it is negative (or
 * unknown) the Conv yields up to ⌊−needEnd/d⌋ extra trailing taps, which are sliced off.
 */
function weightGrad(ctx: GradContext, g: ConvGeometry, data: string, kern: string, a: ShapePart[], needEnd: (number | undefined)[], padIfUnknown: number[]): string {
  const { b } = ctx;
  const n = g.n;
  const input = channelsToBatch(ctx, data, g.group, a, n);
  const weight = b.op('Transpose', [kern], { perm: [1, 0, ...range(2, n + 2)] });
  const pe = needEnd.map((e, i) => (e === undefined ? padIfUnknown[i]! : Math.max(0, e)));
  let out = b.op('Conv', [input, weight], windowAttrs(g, g.d, g.s, g.pb, pe));
  // Extra taps: ⌊(pe − needEnd)/d⌋ > 0. With needEnd unknown, the excess is < s, so only s − 1 ≥ d can overshoot.
  const overshoot = needEnd.some((e, i) => (e === undefined ? g.s[i]! - 1 >= g.d[i]! : pe[i]! - e >= g.d[i]!));
  if (overshoot) out = sliceSpatial(ctx, out, n, g.k);
  return b.op('Transpose', [out], { perm: [1, 0, ...range(2, n + 2)] });
}

/**
 * dX of Conv: ConvTranspose(dY, W) with the forward strides, dilations, group and pads; its length
 * s·(O−1) + op + dk − pb − pe equals D exactly for op = r, the tail the forward windows skipped.
 * With a symbolic D and s > 1, r is unknown: op = s − 1 (the largest valid) gives ≥ D rows and a
 * runtime Slice trims them to X's shape.
 */
function convInputGrad(ctx: GradContext, g: ReturnType<typeof convGeometry>): string {
  const { b } = ctx;
  const known = g.r.every((r) => r !== undefined);
  const op = g.r.map((r, i) => r ?? g.s[i]! - 1);
  const attrs = { ...windowAttrs(g, g.s, g.d, g.pb, g.pe), ...(op.some((v) => v !== 0) ? { output_padding: op } : {}) };
  const dx = b.op('ConvTranspose', [ctx.dy[0]!, ctx.x[1]!], attrs);
  return known ? dx : sliceSpatial(ctx, dx, g.n, dimsOf(ctx, ctx.x[0]!, 2, g.n + 2));
}

function convRule(ctx: GradContext): GradThunks {
  const g = convGeometry(ctx);
  return {
    0: () => convInputGrad(ctx, g),
    // Conv's needed end pad is pe − r (the forward's last window ends r short of the padded end).
    1: () => weightGrad(ctx, g, ctx.x[0]!, ctx.dy[0]!, dimsOf(ctx, ctx.x[1]!, 1, 2), g.r.map((r, i) => (r === undefined ? undefined : g.pe[i]! - r)), g.pe),
    2: () => biasGrad(ctx, g.n),
  };
}

function convTransposeRule(ctx: GradContext): GradThunks {
  const g = convTransposeGeometry(ctx);
  return {
    // Conv(dY, W) needs pads [pb, T] to produce exactly D outputs; a negative T (output_shape
    // beyond the full extent) means zero rows to skip: pad 0 and slice any extra outputs.
    0: () => {
      const dx = ctx.b.op('Conv', [ctx.dy[0]!, ctx.x[1]!], windowAttrs(g, g.s, g.d, g.pb, g.T.map((t) => Math.max(0, t))));
      const extra = g.T.some((t, i) => -t >= g.s[i]!);
      return extra ? sliceSpatial(ctx, dx, g.n, dimsOf(ctx, ctx.x[0]!, 2, g.n + 2)) : dx;
    },
    1: () => weightGrad(ctx, g, ctx.dy[0]!, ctx.x[0]!, dimsOf(ctx, ctx.x[1]!, 1, 2), g.T, g.T),
    2: () => biasGrad(ctx, g.n),
  };
}

export const rules = {
  MatMul: matmulRule,
  Gemm: gemmRule,
  Conv: convRule,
  ConvTranspose: convTransposeRule,
} satisfies GradRuleTable;
