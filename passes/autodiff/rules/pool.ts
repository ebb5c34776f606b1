/**
 * Pooling. X is [N, C, D₁…Dₙ]; a window w of output position o covers the input positions
 * p = o·s − pad_begin + j·dilation (j < k) that lie in [0, D). N and C may be symbolic: every
 * rule works per (n, c) image with shapes read at run time.
 *
 *   MaxPool            y[w] = x[i(w)], i(w) = argmax over w  dx = Σ_w dy[w]·[p = i(w)]
 *                      (scatter-add of dy at the forward Indices output, which onnxruntime
 *                      numbers flat over the whole tensor, N and C included)
 *   AveragePool        y[w] = Σ_{p∈w} x[p] / d(w)            dx[p] = Σ_{w∋p} dy[w] / d(w)
 *                      = ConvTranspose of dy/d with an all-ones kernel (the adjoint of the
 *                      window sum), where d(w) is
 *                        count_include_pad=0: the number of input positions in w
 *                        count_include_pad=1: the window clipped to the padded input
 *                                             [−pad_begin, D + pad_end): ∏k except for the
 *                                             extra partial window of ceil_mode
 *   GlobalAveragePool  y = Σ_spatial x / n                    dx = dy / n  (broadcast)
 *   GlobalMaxPool      y = max_spatial x                      dx = dy·[x = y] / #{x = y}
 *                      (ties share dy equally, as TensorFlow and PyTorch's amax do)
 */
import { attrInt, attrInts, attrString } from '../../../src/ir/attrs.js';
import type { Dim } from '../../../src/ir/graph.js';
import { float32Tensor } from '../../../src/onnx/tensor.js';
import type { GradContext, GradRuleTable } from '../types.js';

const isStatic = (dims: Dim[] | undefined): dims is number[] => dims !== undefined && dims.every((d) => typeof d === 'number');

/** X's shape as an int64 vector: a constant when static, else Shape(X). */
function shapeOf(ctx: GradContext, v: string): string {
  const s = ctx.shape(v);
  return isStatic(s) ? ctx.ints(s) : ctx.b.op('Shape', [v]);
}

function rankOf(ctx: GradContext, v: string): number {
  const s = ctx.shape(v);
  if (!s) ctx.fail(`the rank of '${v}' is unknown (shape inference could not tell)`);
  return s.length;
}

/**
 * The per-axis geometry of a (non-global) pooling window as onnxruntime computes it
 * (onnxruntime/core/providers/cpu/nn/pool_attributes.h): explicit pads, or auto_pad's
 * pad_needed = (⌈D/s⌉ − 1)·s + k − D (undilated k), split floor-first for SAME_UPPER.
 */
interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  begin: number[];
  end: number[];
}

function windowOf(ctx: GradContext, spatial: number[]): Window {
  const n = spatial.length;
  const kernel = attrInts(ctx.node, 'kernel_shape');
  if (!kernel || kernel.length !== n) ctx.fail(`kernel_shape ${JSON.stringify(kernel)} does not match ${n} spatial axes`);
  const list = (name: string, len: number, fill: number): number[] => {
    const v = attrInts(ctx.node, name);
    return v && v.length === len ? v : new Array<number>(len).fill(fill);
  };
  const strides = list('strides', n, 1);
  const dilations = list('dilations', n, 1);
  const pads = list('pads', 2 * n, 0);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  let begin = pads.slice(0, n);
  let end = pads.slice(n);
  if (autoPad === 'VALID') {
    begin = begin.map(() => 0);
    end = end.map(() => 0);
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const needed = spatial.map((d, i) => (Math.ceil(d / strides[i]!) - 1) * strides[i]! + kernel[i]! - d);
    // C++ integer division truncates toward zero.
    begin = needed.map((p) => Math.trunc(autoPad === 'SAME_UPPER' ? p / 2 : (p + 1) / 2));
    end = needed.map((p, i) => p - begin[i]!);
  } else if (autoPad !== 'NOTSET') {
    ctx.fail(`unknown auto_pad '${autoPad}'`);
  }
  if (begin.some((p) => p < 0)) ctx.fail(`negative begin padding ${JSON.stringify(begin)} (auto_pad with a kernel smaller than the stride)`);
  return { kernel, strides, dilations, begin, end };
}

/**
 * 1/d(w) per output position along one axis (onnxruntime's pool_functors.h: the window ends at
 * min(start + k·dilation, D + pad_end); with count_include_pad it counts 1 + (end − start − 1)/dilation
 * slots, else the slots inside [0, D)). A window with no input position gets 0: its output is 0
 * and nothing flows back through it.
 */
function inverseCounts(w: Window, axis: number, d: number, out: number, includePad: boolean): number[] {
  const k = w.kernel[axis]!;
  const s = w.strides[axis]!;
  const dl = w.dilations[axis]!;
  return Array.from({ length: out }, (_, o) => {
    const start = o * s - w.begin[axis]!;
    const stop = Math.min(start + k * dl, d + w.end[axis]!);
    let real = 0;
    for (let j = 0; j < k; j++) {
      const p = start + j * dl;
      if (p >= 0 && p < d) real++;
    }
    if (real === 0) return 0;
    return 1 / (includePad ? 1 + Math.floor((stop - start - 1) / dl) : real);
  });
}

export const rules = {
  MaxPool: (ctx) => {
    if (attrInt(ctx.node, 'storage_order', 0) !== 0) ctx.fail('storage_order=1 (column-major Indices) is not supported');
    if (ctx.opset < 16) ctx.fail(`needs ScatterElements with reduction='add' (opset 16+); the graph is at opset ${ctx.opset}`);
    const { b } = ctx;
    return {
      0: () => {
        const x = ctx.x[0]!;
        const flatIndices = b.op('Reshape', [ctx.forwardOutput(1), ctx.ints([-1])]);
        const flatX = b.op('Reshape', [x, ctx.ints([-1])]);
        const zeros = b.op('ConstantOfShape', [b.op('Shape', [flatX])], { value: float32Tensor([1], [0]) });
        // 'add': overlapping windows (stride < kernel) can pick the same element more than once.
        const scattered = b.op('ScatterElements', [zeros, flatIndices, b.op('Reshape', [ctx.dy[0]!, ctx.ints([-1])])], { axis: 0, reduction: 'add' });
        return b.op('Reshape', [scattered, shapeOf(ctx, x)]);
      },
    };
  },

  AveragePool: (ctx) => {
    const { b } = ctx;
    return {
      0: () => {
        const x = ctx.x[0]!;
        const xs = ctx.shape(x);
        const ys = ctx.shape(ctx.y[0]!);
        const spatial = xs?.slice(2);
        const outSpatial = ys?.slice(2);
        if (!isStatic(spatial) || !isStatic(outSpatial)) {
          return ctx.fail(`needs static spatial sizes (input ${JSON.stringify(xs)}, output ${JSON.stringify(ys)}); only N and C may be symbolic`);
        }
        const w = windowOf(ctx, spatial);
        const includePad = attrInt(ctx.node, 'count_include_pad', 0) !== 0;

        // dy / d(w): d is separable, so 1/d is an outer product of per-axis factors.
        const perAxis = spatial.map((d, i) => inverseCounts(w, i, d, outSpatial[i]!, includePad));
        let inv = [1];
        for (const f of perAxis) inv = inv.flatMap((a) => f.map((c) => a * c));
        const uniform = inv.every((v) => v === inv[0]);
        const factor = uniform ? ctx.scalar(inv[0]!) : ctx.constant('inv_count', float32Tensor([1, 1, ...outSpatial], inv));
        const scaled = b.op('Mul', [ctx.dy[0]!, factor]);

        // One single-channel image per (n, c), so the ones kernel is [1, 1, k…] whatever C is.
        const images = b.op('Reshape', [scaled, ctx.ints([-1, 1, ...outSpatial])]);
        const ones = ctx.constant('ones', float32Tensor([1, 1, ...w.kernel], new Array<number>(w.kernel.reduce((a, c) => a * c, 1)).fill(1)));
        // ConvTranspose spans s·(out − 1) + dk − begin − end'; choose end' so that it spans D.
        // A negative end' means trailing inputs no window reached: output_padding adds them (as 0s).
        const endPad = spatial.map((d, i) => w.strides[i]! * (outSpatial[i]! - 1) + w.dilations[i]! * (w.kernel[i]! - 1) + 1 - w.begin[i]! - d);
        const attrs: Record<string, number[]> = {
          kernel_shape: w.kernel,
          strides: w.strides,
          pads: [...w.begin, ...endPad.map((p) => Math.max(p, 0))],
        };
        if (w.dilations.some((dl) => dl !== 1)) attrs.dilations = w.dilations;
        if (endPad.some((p) => p < 0)) attrs.output_padding = endPad.map((p) => Math.max(-p, 0));
        const dx = b.op('ConvTranspose', [images, ones], attrs);
        return b.op('Reshape', [dx, shapeOf(ctx, x)]);
      },
    };
  },

  GlobalAveragePool: (ctx) => {
    const { b } = ctx;
    return {
      0: () => {
        const x = ctx.x[0]!;
        const spatial = ctx.shape(x)?.slice(2);
        // n = size(X) / size(Y) when the spatial sizes are symbolic.
        const n = isStatic(spatial)
          ? ctx.scalar(1 / spatial.reduce((a, c) => a * c, 1))
          : b.op('Reciprocal', [b.op('Div', [b.op('Cast', [b.op('Size', [x])], { to: 1 }), b.op('Cast', [b.op('Size', [ctx.y[0]!])], { to: 1 })])]);
        return b.op('Expand', [b.op('Mul', [ctx.dy[0]!, n]), b.op('Shape', [x])]);
      },
    };
  },

  GlobalMaxPool: (ctx) => {
    const { b } = ctx;
    return {
      0: () => {
        const x = ctx.x[0]!;
        const rank = rankOf(ctx, x);
        const mask = b.op('Cast', [b.op('Equal', [x, ctx.y[0]!])], { to: 1 });
        const axes = Array.from({ length: rank - 2 }, (_, i) => i + 2);
        const count = b.op('ReduceSum', [mask, ctx.ints(axes)], { keepdims: 1 });
        return b.op('Mul', [mask, b.op('Div', [ctx.dy[0]!, count])]);
      },
    };
  },
} satisfies GradRuleTable;
