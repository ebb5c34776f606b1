/**
 * Output sizes of sliding-window ops (Conv, ConvTranspose, pooling), per spatial axis, as
 * onnxruntime computes them. With dk = dilation·(k−1) + 1:
 *   explicit pads:  out = floor((D + pb + pe − dk) / s) + 1      (ceil with ceil_mode)
 *   VALID:          pads 0
 *   SAME_*:         out = ceil(D / s)
 *   transposed:     out = s·(D − 1) + output_padding + dk − pb − pe
 */
import { attrInt, attrInts, attrString } from '../ir/attrs.js';
import type { Dim, Node } from '../ir/graph.js';
import { dimAdd, dimCeilDiv, dimCompare, dimFloorDiv, dimMul, dimSub } from './symbolic.js';
import type { ShapeContext } from './types.js';

export interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin_1..begin_n, end_1..end_n] */
  pads: number[];
  autoPad: string;
}

/** Reads kernel_shape (or `kernel` when given), strides, dilations, pads and auto_pad for `n` spatial axes. */
export function windowAttrs(node: Node, ctx: ShapeContext, n: number, kernel?: number[]): WindowAttrs {
  const k = attrInts(node, 'kernel_shape') ?? kernel;
  if (!k) ctx.fail('kernel_shape is missing and the weight shape is unknown');
  if (k.length !== n) ctx.fail(`kernel_shape has ${k.length} entries for ${n} spatial axes`);
  const list = (name: string, len: number, fill: number): number[] => {
    const v = attrInts(node, name);
    if (v && v.length > 0 && v.length !== len) ctx.fail(`${name} has ${v.length} entries, expected ${len}`);
    return v && v.length > 0 ? v : new Array<number>(len).fill(fill);
  };
  return {
    kernel: k,
    strides: list('strides', n, 1),
    dilations: list('dilations', n, 1),
    pads: list('pads', 2 * n, 0),
    autoPad: attrString(node, 'auto_pad', 'NOTSET'),
  };
}

/** Output spatial sizes of a convolution or pooling window. */
export function windowOutput(spatial: Dim[], w: WindowAttrs, opts: { ceilMode?: boolean; pool?: boolean } = {}): Dim[] {
  const n = spatial.length;
  return spatial.map((d, i) => {
    const k = w.kernel[i]!;
    const s = w.strides[i]!;
    const dl = w.dilations[i]!;
    const dk = dl * (k - 1) + 1;
    if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
      const target = dimCeilDiv(d, s);
      if (!opts.pool || dl === 1) return target;
      // onnxruntime's pooling pads (target−1)·s + k − D and then applies the dilated window.
      return dimAdd(dimFloorDiv(dimAdd(dimMul(dimSub(target, 1), s), k - dk), s), 1);
    }
    const pads = w.autoPad === 'VALID' ? 0 : w.pads[i]! + w.pads[i + n]!;
    const span = dimSub(dimAdd(d, pads), dk);
    if (!opts.ceilMode) return dimAdd(dimFloorDiv(span, s), 1);
    const out = dimAdd(dimCeilDiv(span, s), 1);
    // The last window must start inside the input or its begin padding.
    const lastStart = dimMul(dimSub(out, 1), s);
    const beyond = dimCompare(lastStart, dimAdd(d, w.autoPad === 'VALID' ? 0 : w.pads[i]!));
    if (beyond === undefined && typeof out !== 'number') return '?';
    return beyond !== undefined && beyond >= 0 ? dimSub(out, 1) : out;
  });
}

/** Output spatial sizes of ConvTranspose without an explicit output_shape. */
export function transposedOutput(spatial: Dim[], w: WindowAttrs, outputPadding: number[]): Dim[] {
  const n = spatial.length;
  return spatial.map((d, i) => {
    const s = w.strides[i]!;
    const dk = w.dilations[i]! * (w.kernel[i]! - 1) + 1;
    const adj = outputPadding[i] ?? 0;
    const full = dimAdd(dimMul(dimSub(d, 1), s), adj + dk);
    if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') return dimSub(full, Math.max(0, adj + dk - s));
    const pads = w.autoPad === 'VALID' ? 0 : w.pads[i]! + w.pads[i + n]!;
    return dimSub(full, pads);
  });
}

/** group attribute (default 1). */
export function groupOf(node: Node): number {
  return attrInt(node, 'group', 1);
}
