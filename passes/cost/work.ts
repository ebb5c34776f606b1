/**
 * The work one node does, from its bound (all-numeric) shapes: one rule per op, looked up by op
 * type (STYLE.md §2), with families as named sets. Three kinds, after how onnxruntime's CPU EP
 * spends the time (passes/cost/machine.ts turns work into seconds):
 *
 *   gemm    MatMul, Gemm, Conv, ConvTranspose: MLAS kernels, bound by FLOPs
 *           (each also pays per result element: a short inner dimension k does not amortize it)
 *           MatMul  [..., m, k]·[..., k, n]      flops 2·batch·m·k·n
 *           Gemm    op(A) [M, K]·op(B) [K, N]     flops 2·M·K·N (+ M·N with C)
 *           Conv    W [Cout, Cin/g, k…]           flops 2·N·Cout·∏out·(Cin/g)·∏k
 *           ConvTranspose W [Cin, Cout/g, k…]     flops 2·N·Cin·∏in·(Cout/g)·∏k
 *           A convolution is one product per image and group (`calls`), each behind an
 *           copy: Conv expands the patches of its input (im2col: Cin/g·∏k × ∏out elements, in rows
 *           of the output's last axis, element by element when a stride or dilation spaces them;
 *           none for a pointwise Conv), and MLAS spreads the calls over its threads; ConvTranspose scatters its product back (col2im: Cout/g·∏k × ∏in, in rows
 *           of the input's last axis), one call after another.
 *   memory  everything else: bound by the bytes read and written (inputs + outputs); a
 *           broadcasting elementwise op (Add, Mul, Where, …) also pays per span: onnxruntime's
 *           broadcaster calls its kernel once per run of the output along which every input is
 *           either contiguous or one repeated value (`spans`, loop 'broadcast': [R, W] + [W] is R
 *           spans of W, [R, W] + [R, 1] is R spans; same shapes or a scalar: one)
 *   loop    element-by-element index kernels (ScatterElements, GatherElements, MaxPool with its
 *           Indices output…): `steps` scalar steps, each an index computation and a load or store
 *   copy    layout kernels that copy one contiguous span at a time, each span with its loop's
 *           fixed cost (more than its bytes below a few hundred bytes a span), by which loop:
 *             slice    Slice (unit steps): spans of the output's innermost sliced axis; a non-unit
 *                      step on it copies element by element (`steps`)
 *             pad      Pad: one span per output row
 *             concat   Concat: one span per input per index of the axes before the concat axis
 *             strided  Transpose moving blocks of more than 8 bytes (a strided copy) or a general
 *                      permutation with an unmoved suffix: one span per block; a general
 *                      permutation without one copies element by element (`steps`)
 *           A Transpose moving one axis of 1-, 2- or 4-byte elements is onnxruntime's
 *           MlasTranspose, one call per index of the axes outside the move (`transposeCalls`),
 *           each handed to the thread pool: with two or more threads a call costs a pool hand-off.
 *   view    Shape, Size, Reshape, Squeeze, …: a kernel call, no data moved (metadata or an alias)
 *
 * `parallelWork` is what MLAS compares with its threading threshold (m·k·n of one product).
 */
import { attrInt, attrInts } from '../../src/ir/attrs.js';
import type { Node } from '../../src/ir/graph.js';
import { elementCount } from '../../src/onnx/tensor.js';

export type WorkKind = 'gemm' | 'memory' | 'loop' | 'copy' | 'view';

/** Which of onnxruntime's span loops a kernel runs (module comment): each has its cost per span. */
export type SpanLoop = 'broadcast' | 'slice' | 'pad' | 'concat' | 'strided';

export interface OpWork {
  kind: WorkKind;
  /** Floating-point operations (a multiply-add counts 2). */
  flops: number;
  /** Bytes read and written (memory-bound ops; inputs + outputs). */
  bytes: number;
  /** loop, copy: scalar steps (elements copied one at a time). */
  steps?: number;
  /** memory, copy: contiguous spans the kernel's loop handles one at a time, and which loop. */
  spans?: number;
  loop?: SpanLoop;
  /** copy: MlasTranspose calls (a Transpose moving one axis of small elements). */
  transposeCalls?: number;
  /** gemm: m·k·n of one call's product (MLAS's threading test); a MatMul's batch is one call. */
  parallelWork?: number;
  /** gemm: elements of all products' results (each a dot product's start and store: what short inner dimensions pay for). */
  outputs?: number;
  /**
   * Products run as separate calls (a convolution per image and group, a MatMul per batch entry
   * when both operands are batched), and how the calls share the threads.
   */
  calls?: {
    count: number;
    /** Elements each call copies through im2col (Conv) or col2im (ConvTranspose), and in how many contiguous rows. */
    copied: number;
    rows: number;
    /** Conv, batched MatMul: the calls are spread over the threads (each single-threaded); ConvTranspose: one after another. */
    spread: boolean;
    /**
     * A 2-D Conv without groups: its channels, for onnxruntime's NCHWc layout (machine.ts), which
     * convolves directly (no im2col) when the output channels fill its blocks.
     */
    direct?: { in: number; out: number };
  };
}

/** Shapes and element sizes of a node's inputs and outputs ('' inputs: undefined). */
export interface NodeShapes {
  inputs: (readonly number[] | undefined)[];
  outputs: (readonly number[] | undefined)[];
  inputBytes: number[];
  outputBytes: number[];
  /** Values of the inputs that are initializers (a Slice's starts and steps), where known. */
  constants?: (readonly number[] | undefined)[];
}

export type WorkRule = (node: Node, s: NodeShapes) => OpWork;

/** Ops that read or write no tensor data: metadata or a view of their input. */
export const VIEW_OPS = new Set(['Shape', 'Size', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten']);

/** Ops onnxruntime's graph optimizer removes before running (level 'all'). */
export const ELIMINATED_OPS = new Set(['Identity', 'Dropout']);

const product = (a: readonly number[]) => elementCount(a);

/** Every tensor a node reads and writes, in bytes (the default: a memory-bound kernel). */
export function movedBytes(s: NodeShapes): number {
  let bytes = 0;
  s.inputs.forEach((d, i) => d && (bytes += product(d) * s.inputBytes[i]!));
  s.outputs.forEach((d, i) => d && (bytes += product(d) * s.outputBytes[i]!));
  return bytes;
}

const memory: WorkRule = (_n, s) => ({ kind: 'memory', flops: s.outputs[0] ? product(s.outputs[0]) : 0, bytes: movedBytes(s) });
const view: WorkRule = () => ({ kind: 'view', flops: 0, bytes: 0 });

const loop = (steps: number): OpWork => ({ kind: 'loop', flops: 0, bytes: 0, steps });

/** A layout kernel: its bytes, and `spans` contiguous spans through `loop` (or `steps` single elements). */
const copy = (s: NodeShapes, loop: SpanLoop, spans: number, extra: Partial<OpWork> = {}): OpWork => ({ kind: 'copy', flops: 0, bytes: movedBytes(s), spans, loop, ...extra });

/**
 * A broadcasting elementwise op (module comment): the output's spans along which each input is
 * contiguous or one repeated value. An input of one element is a scalar (one span), unless the
 * output's last axis is 1 (onnxruntime then walks it element by element).
 */
function broadcastWork(n: Node, s: NodeShapes): OpWork {
  const y = s.outputs[0];
  const ins = s.inputs.filter((d): d is readonly number[] => d !== undefined);
  const base = memory(n, s);
  if (!y || y.length === 0 || ins.length !== s.inputs.length) return base;
  const rank = y.length;
  const full = ins.filter((d) => !(product(d) === 1 && y[rank - 1]! > 1));
  // Per output axis: which inputs run along it (their dim equals the output's) and which repeat.
  const pattern = (a: number) => full.map((d) => (d[a - rank + d.length] ?? 1) === y[a]).join();
  let span = 1;
  for (let a = rank - 1; a >= 0 && pattern(a) === pattern(rank - 1); a--) span *= y[a]!;
  const spans = product(y) / span;
  // A variadic Sum/Max/Min/Mean combines its inputs pairwise: one pass per extra input.
  const passes = VARIADIC_OPS.has(n.opType) ? Math.max(1, ins.length - 1) : 1;
  return spans > 1 ? { ...base, spans: spans * passes, loop: 'broadcast' } : base;
}

const VARIADIC_OPS = new Set(['Sum', 'Max', 'Min', 'Mean']);

/** onnxruntime's broadcasting elementwise kernels. */
export const BROADCAST_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mean', 'Sum', 'Mod', 'PRelu', 'Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'And', 'Or', 'Xor', 'Where', 'BitShift']);

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Slice: the output's runs along its innermost sliced axis (an axis cut short or stepped). */
function sliceWork(_n: Node, s: NodeShapes): OpWork {
  const [x] = s.inputs;
  const y = s.outputs[0];
  if (!x || !y || x.length !== y.length) return memory(_n, s);
  const rank = y.length;
  // steps per axis from the constant axes/steps inputs (absent: 1 on every sliced axis)
  const axes = s.constants?.[3] ?? (s.inputs[3] ? undefined : Array.from({ length: rank }, (_, i) => i));
  const stepsIn = s.constants?.[4];
  const step = new Array<number>(rank).fill(1);
  if (axes && stepsIn) axes.forEach((a, i) => (step[normAxis(a, rank)] = stepsIn[i] ?? 1));
  let inner = -1;
  for (let a = 0; a < rank; a++) if (y[a] !== x[a] || step[a] !== 1) inner = a;
  if (inner < 0) return copy(s, 'slice', 1);
  const elements = product(y);
  // A step along the innermost sliced axis breaks its runs into single elements.
  if (step[inner] !== 1) return inner === rank - 1 ? { ...copy(s, 'slice', elements / y[rank - 1]!), steps: elements } : copy(s, 'slice', elements / product(y.slice(inner + 1)));
  return copy(s, 'slice', elements / product(y.slice(inner)));
}

/**
 * Transpose as onnxruntime's CPU kernel runs it: one axis moved (IsTransposeMovingSingleAxis) in
 * blocks of 1, 2 or 4 bytes through MlasTranspose (one call per outer index), of 8 bytes in a
 * plain loop, of more through a strided copy; any other permutation copies its unmoved suffix
 * in blocks, or element by element when there is none.
 */
function transposeWork(n: Node, s: NodeShapes): OpWork {
  const x = s.inputs[0];
  if (!x) return memory(n, s);
  const rank = x.length;
  const perm = attrInts(n, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const elements = product(x);
  const element = s.inputBytes[0] ?? 4;
  const moved = singleAxisMove(perm);
  if (moved) {
    const [from, to] = moved;
    const loops = product(x.slice(0, Math.min(from, to)));
    const block = product(x.slice(Math.max(from, to) + 1));
    const blockBytes = block * element;
    if (blockBytes === 1 || blockBytes === 2 || blockBytes === 4) return copy(s, 'strided', 0, { transposeCalls: loops });
    if (blockBytes === 8) return copy(s, 'strided', 0);
    return copy(s, 'strided', elements / block);
  }
  let suffix = 1;
  for (let i = rank - 1; i >= 0 && perm[i] === i; i--) suffix *= x[i]!;
  if (suffix === elements) return copy(s, 'strided', 1);
  return suffix === 1 ? copy(s, 'strided', 0, { steps: elements }) : copy(s, 'strided', elements / suffix);
}

/** [from, to] when `perm` moves exactly one axis (onnxruntime's IsTransposeMovingSingleAxis), else undefined. */
export function singleAxisMove(perm: readonly number[]): [number, number] | undefined {
  const i = perm.findIndex((a, k) => a !== k);
  if (i < 0) return undefined;
  // The identity with axis `from` taken out and put back at slot `to`.
  const moves = (from: number, to: number) => {
    const p = perm.map((_, k) => k).filter((k) => k !== from);
    p.splice(to, 0, from);
    return p.every((a, k) => a === perm[k]);
  };
  if (moves(perm[i]!, i)) return [perm[i]!, i];
  const to = perm.indexOf(i);
  return moves(i, to) ? [i, to] : undefined;
}

function gemm(flops: number, parallelWork: number, outputs: number): OpWork {
  return { kind: 'gemm', flops, bytes: 0, parallelWork, outputs };
}

export const workRules = {
  // [..., m, k]·[..., k, n]: 1-D operands gain and lose a unit axis (numpy matmul). A 2-D B is one
  // product over A's rows; a batched B is one product per batch entry, spread over the threads.
  MatMul: (_n, s) => {
    const [a, b] = s.inputs;
    const y = s.outputs[0];
    if (!a || !b || !y) return memory(_n, s);
    const k = a[a.length - 1]!;
    const m = a.length >= 2 ? a[a.length - 2]! : 1;
    const n = b.length >= 2 ? b[b.length - 1]! : 1;
    const batch = product(y) / (m * n);
    if (batch > 1 && product(b.slice(0, -2)) > 1) return { ...gemm(2 * batch * m * k * n, m * k * n, batch * m * n), calls: { count: batch, copied: 0, rows: 0, spread: true } };
    return gemm(2 * batch * m * k * n, batch * m * k * n, batch * m * n);
  },
  Gemm: (n, s) => {
    const [a, b, c] = s.inputs;
    if (!a || !b) return memory(n, s);
    const [M, K] = attrInt(n, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
    const N = attrInt(n, 'transB', 0) ? b[0]! : b[1]!;
    return gemm(2 * M * K * N + (c ? M * N : 0), M * K * N, M * N);
  },
  Conv: (n, s) => {
    const [x, w] = s.inputs;
    const y = s.outputs[0];
    if (!x || !w || !y) return memory(n, s);
    const groups = attrInt(n, 'group', 1);
    const calls = x[0]! * groups;
    const [M, K, S] = [w[0]! / groups, product(w.slice(1)), product(y.slice(2))];
    const strides = attrInts(n, 'strides') ?? [];
    const pointwise = product(w.slice(2)) === 1 && !strides.some((v) => v !== 1) && !(attrInts(n, 'pads') ?? []).some((v) => v !== 0);
    // Rows of the output's last axis copy as runs, unless a stride or dilation along it spaces the elements.
    const spaced = (strides.at(-1) ?? 1) !== 1 || (attrInts(n, 'dilations')?.at(-1) ?? 1) !== 1;
    const rows = spaced ? K * S : K * product(y.slice(2, -1));
    const direct = groups === 1 && x.length === 4 ? { in: x[1]!, out: w[0]! } : undefined;
    return { ...gemm(2 * calls * M * K * S, M * K * S, calls * M * S), calls: { count: calls, copied: pointwise ? 0 : K * S, rows: pointwise ? 0 : rows, spread: true, ...(direct ? { direct } : {}) } };
  },
  ConvTranspose: (n, s) => {
    const [x, w] = s.inputs;
    if (!x || !w) return memory(n, s);
    const groups = attrInt(n, 'group', 1);
    const calls = x[0]! * groups;
    // Per call: Wᵀ [Cout/g·∏k, Cin/g] · X [Cin/g, ∏in], then col2im of the [Cout/g·∏k, ∏in] result.
    const [M, K, S] = [product(w.slice(1)), w[0]! / groups, product(x.slice(2))];
    return { ...gemm(2 * calls * M * K * S, M * K * S, calls * M * S), calls: { count: calls, copied: M * S, rows: M * product(x.slice(2, -1)), spread: false } };
  },
  // Index kernels: one scalar step per update (scatter) or per output element (gather).
  ScatterElements: (n, s) => (s.inputs[2] ? loop(product(s.inputs[2])) : memory(n, s)),
  ScatterND: (n, s) => (s.inputs[2] ? loop(product(s.inputs[2])) : memory(n, s)),
  GatherElements: (n, s) => (s.outputs[0] ? loop(product(s.outputs[0])) : memory(n, s)),
  GatherND: (n, s) => (s.outputs[0] ? loop(product(s.outputs[0])) : memory(n, s)),
  // With its Indices output, MaxPool leaves MLAS for a loop over every window element.
  MaxPool: (n, s) => {
    const y = s.outputs[0];
    const kernel = attrInts(n, 'kernel_shape');
    return n.outputs[1] && y && kernel ? loop(product(y) * product(kernel)) : memory(n, s);
  },
  ...Object.fromEntries([...BROADCAST_OPS].map((op) => [op, broadcastWork])),
  // Layout kernels (module comment).
  Slice: sliceWork,
  Pad: (n, s) => (s.outputs[0] && s.outputs[0].length ? copy(s, 'pad', product(s.outputs[0]) / s.outputs[0].at(-1)!) : memory(n, s)),
  Concat: (n, s) => {
    const y = s.outputs[0];
    if (!y || s.inputs.some((d) => !d)) return memory(n, s);
    const axis = normAxis(attrInt(n, 'axis', 0), y.length);
    return copy(s, 'concat', s.inputs.reduce((a, d) => a + product(d!.slice(0, axis)), 0));
  },
  Transpose: transposeWork,
  ...Object.fromEntries([...VIEW_OPS].map((op) => [op, view])),
} satisfies Record<string, WorkRule>;

/** The node's work: its op's rule, or a memory-bound kernel for any other op. */
export function nodeWork(node: Node, shapes: NodeShapes): OpWork {
  const rule = (workRules as Record<string, WorkRule>)[node.opType];
  return rule ? rule(node, shapes) : memory(node, shapes);
}
