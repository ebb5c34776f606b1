/** Shared pieces for shape rules: axes, broadcasting, element-value arithmetic, attr-or-input reads. */
import { attrInts } from '../ir/attrs.js';
import type { Dim, Node } from '../ir/graph.js';
import { dimNormalize, isStaticShape } from './symbolic.js';
import { MAX_TRACKED_VALUES, type ShapeContext, type ShapeInfo } from './types.js';

/** Normalizes a possibly negative axis against `rank`; fails when out of range. */
export function normAxis(ctx: ShapeContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) ctx.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Two dims under numpy broadcasting; undefined when they cannot broadcast. */
export function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') return a === b ? a : undefined;
  if (typeof a === 'number') return a; // b is a symbol or '?': it must be 1 or a
  if (typeof b === 'number') return b;
  if (a === '?') return b;
  if (b === '?') return a;
  return dimNormalize(a) === dimNormalize(b) ? a : '?';
}

/** Multidirectional (numpy) broadcast of several shapes; undefined if any rank is unknown. */
export function broadcastShapes(ctx: ShapeContext, shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const list = shapes as Dim[][];
  const rank = Math.max(0, ...list.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of list) {
      const x = s[s.length - rank + i] ?? 1;
      const r = broadcastDim(d, x);
      if (r === undefined) ctx.fail(`shapes ${list.map(fmtShape).join(' and ')} cannot broadcast`);
      d = r;
    }
    out.push(d);
  }
  return out;
}

export function fmtShape(s: readonly Dim[] | undefined): string {
  return s === undefined ? '(unknown rank)' : `[${s.join(', ')}]`;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Element values of a broadcasting elementwise op, when every input's shape is static and its
 * values known. `fn` gets one element per input.
 */
export function mapValues(inputs: ShapeInfo[], outShape: Dim[] | undefined, fn: (xs: Dim[]) => Dim): Dim[] | undefined {
  if (!isStaticShape(outShape) || elementCount(outShape) > MAX_TRACKED_VALUES) return undefined;
  for (const x of inputs) if (!x.value || !isStaticShape(x.shape)) return undefined;
  const rank = outShape.length;
  const n = elementCount(outShape);
  const out: Dim[] = new Array(n);
  const idx = new Array<number>(rank).fill(0);
  for (let k = 0; k < n; k++) {
    const xs = inputs.map((x) => {
      const s = x.shape as number[];
      let flat = 0;
      for (let i = 0; i < s.length; i++) {
        const j = idx[rank - s.length + i]!;
        flat = flat * s[i]! + (s[i] === 1 ? 0 : j);
      }
      return x.value![flat]!;
    });
    out[k] = fn(xs);
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i]! < outShape[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

/** Values restricted to tensors small enough to track; undefined otherwise. */
export function tracked(shape: Dim[] | undefined, value: Dim[] | undefined): Dim[] | undefined {
  if (!value || !isStaticShape(shape) || elementCount(shape) !== value.length || value.length > MAX_TRACKED_VALUES) return undefined;
  return value;
}

/**
 * A list (axes, pads, split sizes, ...) that an op takes as an attribute in older opsets and as an
 * input later: `{ present: false }` when neither is given, `{ present: true, list: undefined }`
 * when it comes from an input whose values are not known.
 */
export function listFromAttrOrInput(node: Node, ctx: ShapeContext, attr: string, input: number): { present: boolean; list?: number[] } {
  if (ctx.has(input)) return { present: true, list: ctx.ints(input) };
  const a = attrInts(node, attr);
  return a ? { present: true, list: a } : { present: false };
}

/** An all-'?' shape of the given rank. */
export function unknownDims(rank: number): Dim[] {
  return new Array<Dim>(rank).fill('?');
}

/** Output info that copies input `i`'s type and shape. */
export function sameAs(ctx: ShapeContext, i = 0): ShapeInfo {
  const x = ctx.input(i);
  return { elemType: x.elemType, shape: x.shape && [...x.shape] };
}

/** Integer-valued data types (values from integer ops truncate). */
export function isIntType(elemType: number | undefined): boolean {
  return elemType !== undefined && [2, 3, 4, 5, 6, 7, 12, 13].includes(elemType);
}
