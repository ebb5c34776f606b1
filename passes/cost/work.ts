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
 *   memory  everything else: bound by the bytes read and written (inputs + outputs)
 *   loop    element-by-element index kernels (ScatterElements, GatherElements, MaxPool with its
 *           Indices output…): `steps` scalar steps, each an index computation and a load or store
 *   view    Shape, Size, Reshape, Squeeze, …: a kernel call, no data moved (metadata or an alias)
 *
 * `parallelWork` is what MLAS compares with its threading threshold (m·k·n of one product).
 */
import { attrInt, attrInts } from '../../src/ir/attrs.js';
import type { Node } from '../../src/ir/graph.js';
import { elementCount } from '../../src/onnx/tensor.js';

export type WorkKind = 'gemm' | 'memory' | 'loop' | 'view';

export interface OpWork {
  kind: WorkKind;
  /** Floating-point operations (a multiply-add counts 2). */
  flops: number;
  /** Bytes read and written (memory-bound ops; inputs + outputs). */
  bytes: number;
  /** loop: scalar steps. */
  steps?: number;
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
  ...Object.fromEntries([...VIEW_OPS].map((op) => [op, view])),
} satisfies Record<string, WorkRule>;

/** The node's work: its op's rule, or a memory-bound kernel for any other op. */
export function nodeWork(node: Node, shapes: NodeShapes): OpWork {
  const rule = (workRules as Record<string, WorkRule>)[node.opType];
  return rule ? rule(node, shapes) : memory(node, shapes);
}
