/**
 * Movement ops: they rearrange, select or copy elements without arithmetic, so each backward
 * routes dY's elements back to the positions they came from (summing where one input element
 * reached several outputs). Integer inputs (shapes, axes, indices, repeats, pads) never get a
 * gradient: only the data input has a thunk.
 *
 *   y = reshape(x) / flatten / squeeze / unsqueeze     dx = reshape(dy, shape(x))
 *   y = transpose(x, p)                                 dx = transpose(dy, p⁻¹)   (p⁻¹[p[i]] = i)
 *   y = concat(x₀ … xₙ, a)                              dxₖ = dy[…, oₖ : oₖ + size(xₖ, a), …], oₖ = Σⱼ<ₖ size(xⱼ, a)
 *   y₀ … yₙ = split(x, a)                               dx = concat(dy₀ … dyₙ, a)  (zeros for an output off the loss path)
 *   y = x[s : e : t]  (slice)                           dx = dy at the selected positions, 0 elsewhere
 *   y = expand(x, shape)                                dx = Σ of dy over the broadcast axes (the driver does it)
 *   y = tile(x, r)                                      dx[i] = Σ over copies c of dy[c·d + i]
 *   y = pad(x, p, v)  (constant mode)                   dx = pad(dy, −p)   dv = Σ dy over the padded cells
 *   y = cast(x)  (float → float)                        dx = cast(dy, type(x))
 *   y = gather(x, idx, a)                               dx = scatter-add of dy into zeros(x) at idx along a
 *   y = gather_elements(x, idx, a)                      dx = scatter-add of dy into zeros(x) at idx along a
 */
import { attrInt, attrInts, attrString, attrTensor } from '../../../src/ir/attrs.js';
import type { Dim } from '../../../src/ir/graph.js';
import { float32Tensor, int64Tensor, tensorToNumbers } from '../../../src/onnx/tensor.js';
import type { GradContext, GradRule, GradRuleTable } from '../types.js';

/** The values of an int tensor that is a graph constant (initializer or Constant node), if it is one. */
export function constInts(ctx: GradContext, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const g = ctx.b.graph;
  const init = g.initializers.get(name);
  if (init) return init.tensor.dtype === 'string' ? undefined : tensorToNumbers(init.tensor);
  const producer = g.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name);
  if (!producer) return undefined;
  const t = attrTensor(producer, 'value');
  if (t) return t.dtype === 'string' ? undefined : tensorToNumbers(t);
  const ints = attrInts(producer, 'value_ints');
  if (ints) return ints;
  const i = attrInt(producer, 'value_int');
  return i === undefined ? undefined : [i];
}

/** Rank of a value from static shapes, or a clear failure. */
export function rankOf(ctx: GradContext, v: string, why: string): number {
  const s = ctx.shape(v);
  if (!s) ctx.fail(`the rank of '${v}' is unknown, and ${why} needs it`);
  return s.length;
}

const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

/** A [1]-shaped int64 tensor holding dim `axis` of `v`: a constant when static, else read from Shape. */
function dimOf(ctx: GradContext, v: string, axis: number): string {
  return shapeSlice(ctx, v, axis, axis + 1);
}

/** Dim `axis` of `v` as an int64 scalar. */
function scalarDim(ctx: GradContext, v: string, axis: number): string {
  const d = ctx.shape(v)?.[axis];
  if (typeof d === 'number') return ctx.constant('dim', int64Tensor([], [d]));
  return ctx.b.op('Squeeze', [shapeSlice(ctx, v, axis, axis + 1), ctx.ints([0])]);
}

/** Shape(v)[start:end] as an int64 vector (Shape's start/end attributes exist from opset 15). */
function shapeSlice(ctx: GradContext, v: string, start: number, end: number): string {
  const s = ctx.shape(v);
  if (s && s.slice(start, end).every((d) => typeof d === 'number')) return ctx.ints(s.slice(start, end) as number[]);
  if (ctx.opset >= 15) return ctx.b.op('Shape', [v], { start, end });
  return ctx.b.op('Slice', [ctx.b.op('Shape', [v]), ctx.ints([start]), ctx.ints([end]), ctx.ints([0])]);
}

/** Zeros with the shape and float type of `like`. */
function zerosLike(ctx: GradContext, like: string): string {
  const zeros = ctx.b.op('ConstantOfShape', [ctx.b.op('Shape', [like])], { value: float32Tensor([1], [0]) });
  const t = ctx.elemType(like);
  return t === undefined || t === 1 ? zeros : ctx.b.op('Cast', [zeros], { to: t });
}

/** Unsqueeze with the axes form of the graph's opset (attribute before 13, input after). */
export function unsqueeze(ctx: GradContext, v: string, axes: number[]): string {
  return ctx.opset >= 13 ? ctx.b.op('Unsqueeze', [v, ctx.ints(axes)]) : ctx.b.op('Unsqueeze', [v], { axes });
}

/** dx = reshape(dy, shape(x)): the gradient of any op that only relabels x's elements in order. */
const reshapeBack: GradRule = ({ x, dy, b }) => ({ 0: () => b.op('Reshape', [dy[0]!, b.op('Shape', [x[0]!])]) });

/** Sum dy over the copies a tile made: see Tile below. */
function tileGrad(ctx: GradContext): string {
  const { b, x } = ctx;
  const dy = ctx.dy[0]!;
  const xs = ctx.shape(x[0]!);
  const reps = constInts(ctx, x[1]);
  const rank = xs?.length ?? reps?.length;
  if (rank === undefined) ctx.fail('the rank of its input is unknown (and its repeats are not a constant)');
  if (reps && xs && xs.every((d) => typeof d === 'number')) {
    // Static: only axes that were actually repeated get a [r, d] pair; the others stay [d].
    const dims: number[] = [];
    const axes: number[] = [];
    reps.forEach((r, i) => {
      if (r !== 1) {
        axes.push(dims.length);
        dims.push(r);
      }
      dims.push(xs[i] as number);
    });
    if (axes.length === 0) return dy;
    return b.op('ReduceSum', [b.op('Reshape', [dy, ctx.ints(dims)]), ctx.ints(axes)], { keepdims: 0 });
  }
  // Dynamic: y's axis i has size rᵢ·dᵢ with copy index major, so reshape to [r₀, d₀, r₁, d₁, …]
  // (interleaving the repeats with shape(x) at run time) and sum the r axes.
  const col = (v: string) => unsqueeze(ctx, v, [1]);
  const pairs = b.op('Concat', [col(x[1]!), col(b.op('Shape', [x[0]!]))], { axis: 1 });
  const interleaved = b.op('Reshape', [pairs, ctx.ints([-1])]);
  const axes = Array.from({ length: rank }, (_, i) => 2 * i);
  return b.op('ReduceSum', [b.op('Reshape', [dy, interleaved]), ctx.ints(axes)], { keepdims: 0 });
}

/**
 * Slice backward. Steps of 1 with constant bounds on static dims: a Pad of dy. Anything else
 * (negative or >1 steps, symbolic dims, run-time bounds): slice an iota shaped like x with the
 * forward's own starts/ends/axes/steps, which yields the flat index of every selected element
 * (ONNX's clamping and INT64_MAX ends included), and scatter dy there. A slice selects each
 * element at most once, so a plain scatter is exact.
 */
function sliceGrad(ctx: GradContext): string {
  const { b, x, node } = ctx;
  const dy = ctx.dy[0]!;
  const xs = ctx.shape(x[0]!);
  const legacy = ctx.opset < 10;
  const starts = legacy ? attrInts(node, 'starts') : constInts(ctx, x[1]);
  const ends = legacy ? attrInts(node, 'ends') : constInts(ctx, x[2]);
  const axesIn = legacy ? attrInts(node, 'axes') : x[3] ? constInts(ctx, x[3]) : undefined;
  const axesGiven = legacy ? axesIn !== undefined : !!x[3];
  const steps = legacy ? undefined : x[4] ? constInts(ctx, x[4]) : undefined;
  const stepsOne = legacy || !x[4] || (steps !== undefined && steps.every((s) => s === 1));
  if (xs && starts && ends && stepsOne && (!axesGiven || axesIn)) {
    const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => normAxis(a, xs.length));
    if (axes.every((a) => typeof xs[a] === 'number')) {
      const pads = new Array<number>(2 * xs.length).fill(0);
      axes.forEach((a, i) => {
        const d = xs[a] as number;
        const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
        const s = clamp(starts[i]!);
        const e = Math.max(s, clamp(ends[i]!));
        pads[a] = s;
        pads[a + xs.length] = d - e;
      });
      if (pads.every((p) => p === 0)) return dy;
      return b.op('Pad', [dy, ctx.ints(pads)]);
    }
  }
  if (legacy) ctx.fail(`only steps of 1 on static dims are supported at opset ${ctx.opset}`);
  const n = b.op('Size', [x[0]!]);
  const iota = b.op('Range', [ctx.constant('zero', int64Tensor([], [0])), n, ctx.constant('one', int64Tensor([], [1]))]);
  const picked = b.op('Slice', [b.op('Reshape', [iota, b.op('Shape', [x[0]!])]), ...x.slice(1)]);
  const flat = (v: string) => b.op('Reshape', [v, ctx.ints([-1])]);
  const zeros = b.op('ConstantOfShape', [unsqueeze(ctx, n, [0])], { value: float32Tensor([1], [0]) });
  const t = ctx.elemType(x[0]!);
  const zerosT = t === undefined || t === 1 ? zeros : b.op('Cast', [zeros], { to: t });
  const scattered = b.op('ScatterElements', [zerosT, flat(picked), flat(dy)], { axis: 0 });
  return b.op('Reshape', [scattered, b.op('Shape', [x[0]!])]);
}

/**
 * Gather backward: dy's slices are added back at the gathered rows; `reduction='add'` makes
 * repeated indices accumulate. Axis 0 (embeddings): ScatterND with the indices as 1-tuples,
 * updates = dy as is. Other axes: ScatterElements along the axis, after flattening the index
 * dims of dy into one and expanding the indices to dy's shape.
 */
function gatherGrad(ctx: GradContext): string {
  const { b, x, node } = ctx;
  const dy = ctx.dy[0]!;
  if (ctx.opset < 16) ctx.fail(`the backward needs scatter with reduction='add' (opset 16+), the graph is opset ${ctx.opset}`);
  const data = x[0]!;
  const indices = x[1]!;
  const r = rankOf(ctx, data, 'Gather\'s backward');
  const a = normAxis(attrInt(node, 'axis', 0), r);
  if (a === 0) {
    // ScatterND takes int64 indices only (Gather also allows int32), and its spec has no negative
    // indices (onnxruntime's CPU kernel accepts them, other providers need not): normalize both.
    const idx64 = ctx.elemType(indices) === 7 ? indices : b.op('Cast', [indices], { to: 7 });
    const idx = b.op('Where', [
      b.op('Less', [idx64, ctx.constant('zero', int64Tensor([], [0]))]),
      b.op('Add', [idx64, scalarDim(ctx, data, 0)]),
      idx64,
    ]);
    return b.op('ScatterND', [zerosLike(ctx, data), unsqueeze(ctx, idx, [-1]), dy], { reduction: 'add' });
  }
  // ScatterElements takes int32 or int64 indices in [−d, d), as Gather does.
  const parts: string[] = [shapeSlice(ctx, data, 0, a), ctx.ints([-1])];
  if (a + 1 < r) parts.push(shapeSlice(ctx, data, a + 1, r));
  const dyFlat = b.op('Reshape', [dy, b.op('Concat', parts, { axis: 0 })]);
  const column = Array.from({ length: r }, (_, i) => (i === a ? -1 : 1));
  const idxFull = b.op('Expand', [b.op('Reshape', [indices, ctx.ints(column)]), b.op('Shape', [dyFlat])]);
  return b.op('ScatterElements', [zerosLike(ctx, data), idxFull, dyFlat], { axis: a, reduction: 'add' });
}

export const rules = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: (ctx) => {
    const perm = attrInts(ctx.node, 'perm');
    // Without perm the axes are reversed, which is its own inverse.
    if (!perm) return { 0: () => ctx.b.op('Transpose', [ctx.dy[0]!]) };
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return { 0: () => ctx.b.op('Transpose', [ctx.dy[0]!], { perm: inverse }) };
  },
  Concat: (ctx) => {
    const { b, x, node } = ctx;
    const rank = ctx.shape(ctx.y[0]!)?.length ?? x.map((v) => ctx.shape(v)?.length).find((r) => r !== undefined);
    const rawAxis = attrInt(node, 'axis', 1);
    // Slice takes negative axes; the size lookups need a normalized one when the rank is known.
    const axis = rank === undefined ? rawAxis : normAxis(rawAxis, rank);
    const size = (v: string): Dim => ctx.shape(v)?.[axis] ?? '?';
    const sizeTensor = (v: string): string => (rank === undefined ? b.op('Gather', [b.op('Shape', [v]), ctx.ints([axis])]) : dimOf(ctx, v, axis));
    const thunk = (k: number) => (): string => {
      const before = x.slice(0, k);
      let start: string;
      let end: string;
      if (before.every((v) => typeof size(v) === 'number') && typeof size(x[k]!) === 'number') {
        const s = before.reduce((acc, v) => acc + (size(v) as number), 0);
        start = ctx.ints([s]);
        end = ctx.ints([s + (size(x[k]!) as number)]);
      } else {
        start = before.length === 0 ? ctx.ints([0]) : before.map(sizeTensor).reduce((acc, v) => b.op('Add', [acc, v]));
        end = b.op('Add', [start, sizeTensor(x[k]!)]);
      }
      return b.op('Slice', [ctx.dy[0]!, start, end, ctx.ints([axis])]);
    };
    return Object.fromEntries(x.map((_, k) => [k, thunk(k)]));
  },
  Split: (ctx) => ({
    // Concatenating every output's gradient (zeros for those off the loss path) inverts the
    // split whatever the sizes were (split input, attribute, equal parts or num_outputs).
    0: () => ctx.b.op('Concat', ctx.y.map((_, k) => ctx.dyOrZeros(k)), { axis: attrInt(ctx.node, 'axis', 0) }),
  }),
  Slice: (ctx) => ({ 0: () => sliceGrad(ctx) }),
  // Expand is in BROADCASTING: the driver sums dy back to x's shape.
  Expand: ({ dy }) => ({ 0: () => dy[0]! }),
  Tile: (ctx) => ({ 0: () => tileGrad(ctx) }),
  Pad: (ctx) => {
    const { b, x, node } = ctx;
    const mode = attrString(node, 'mode', 'constant');
    if (mode === 'reflect' || mode === 'edge') return { 0: () => foldedPadGrad(ctx, mode) };
    if (mode !== 'constant') ctx.fail(`mode '${mode}' has no gradient rule (constant, reflect and edge have one)`);
    const dx = (): string => {
      // Padding by −p undoes padding by p: cells that were added are cropped, cells that a
      // negative pad cropped come back as zeros.
      if (ctx.opset < 11) return b.op('Pad', [ctx.dy[0]!], { pads: attrInts(node, 'pads')!.map((p) => -p) });
      const pads = constInts(ctx, x[1]);
      const neg = pads ? ctx.ints(pads.map((p) => -p)) : b.op('Neg', [x[1]!]);
      return b.op('Pad', x[3] ? [ctx.dy[0]!, neg, '', x[3]] : [ctx.dy[0]!, neg]);
    };
    let memo: string | undefined;
    const dxOnce = () => (memo ??= dx());
    return {
      0: dxOnce,
      // The constant value fills every cell that did not come from x: Σ dy − Σ dx.
      2: () => b.op('Sub', [b.op('ReduceSum', [ctx.dy[0]!], { keepdims: 0 }), b.op('ReduceSum', [dxOnce()], { keepdims: 0 })]),
    };
  },
  Cast: (ctx) => ({
    // Only reached for float → float casts: an integer output is never live (driver's isFloat).
    0: () => {
      const t = ctx.elemType(ctx.x[0]!);
      return t === undefined ? ctx.b.op('CastLike', [ctx.dy[0]!, ctx.x[0]!]) : ctx.b.op('Cast', [ctx.dy[0]!], { to: t });
    },
  }),
  Gather: (ctx) => ({ 0: () => gatherGrad(ctx) }),
  GatherElements: (ctx) => ({
    0: () => {
      if (ctx.opset < 16) ctx.fail(`the backward needs ScatterElements with reduction='add' (opset 16+), the graph is opset ${ctx.opset}`);
      return ctx.b.op('ScatterElements', [zerosLike(ctx, ctx.x[0]!), ctx.x[1]!, ctx.dy[0]!], { axis: attrInt(ctx.node, 'axis', 0), reduction: 'add' });
    },
  }),
} satisfies GradRuleTable;

/**
 * Reflect and edge padding copy input cells into the border, so their gradient folds back:
 * per padded axis (input length L, pads pb/pe), dx = dy[pb : pb+L] plus
 *   reflect: dy[pb−1 … 0] added onto x[1 … pb], dy[end … pb+L] onto x[L−1−pe … L−2]
 *   edge:    Σ dy[0 : pb] added onto x[0],      Σ dy[pb+L : end] onto x[L−1]
 * Needs constant pads and the input's static length on every padded axis.
 */
function foldedPadGrad(ctx: GradContext, mode: 'reflect' | 'edge'): string {
  const { b, x } = ctx;
  if (ctx.opset < 11 || x[3]) ctx.fail(`${mode} padding's gradient needs the opset-11 form without an axes input`);
  const pads = constInts(ctx, x[1]);
  const shape = ctx.shape(x[0]!);
  if (!pads || !shape) return ctx.fail(`${mode} padding's gradient needs constant pads and a known input rank`);
  const rank = shape.length;
  const slice = (g: string, axis: number, start: number, end: number, step = 1) =>
    b.op('Slice', [g, ctx.ints([start]), ctx.ints([end]), ctx.ints([axis]), ctx.ints([step])]);
  const padAxis = (g: string, axis: number, before: number, after: number) => {
    const p = new Array<number>(2 * rank).fill(0);
    p[axis] = before;
    p[rank + axis] = after;
    return b.op('Pad', [g, ctx.ints(p)]);
  };
  let g = ctx.dy[0]!;
  for (let axis = 0; axis < rank; axis++) {
    const pb = pads[axis]!;
    const pe = pads[rank + axis]!;
    if (pb === 0 && pe === 0) continue;
    const len = shape[axis];
    if (typeof len !== 'number') return ctx.fail(`${mode} padding's gradient needs a static size on padded axis ${axis}`);
    if (pb < 0 || pe < 0) return ctx.fail(`${mode} padding with negative pads has no gradient rule`);
    let acc = slice(g, axis, pb, pb + len);
    if (mode === 'reflect') {
      // Slice with a negative step ends "before index 0" at INT64_MIN.
      if (pb > 0) acc = b.op('Add', [acc, padAxis(slice(g, axis, pb - 1, Number.MIN_SAFE_INTEGER, -1), axis, 1, len - 1 - pb)]);
      if (pe > 0) acc = b.op('Add', [acc, padAxis(slice(g, axis, pb + len + pe - 1, pb + len - 1, -1), axis, len - 1 - pe, 1)]);
    } else {
      const sum = (start: number, end: number) => b.op('ReduceSum', [slice(g, axis, start, end), ctx.ints([axis])], { keepdims: 1 });
      if (pb > 0) acc = b.op('Add', [acc, padAxis(sum(0, pb), axis, 0, len - 1)]);
      if (pe > 0) acc = b.op('Add', [acc, padAxis(sum(pb + len, pb + len + pe), axis, len - 1, 0)]);
    }
    g = acc;
  }
  return g;
}
