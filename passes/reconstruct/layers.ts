/**
 * Weighted layers, one registry entry per op: how to recognise one (pattern + check with a
 * reason), how its weights map to the homogeneous matrix W̃ = [W b] ∈ R^{m×d̃} of SNGD.md §2/§5,
 * and how to wire a local Fisher layer in front of it on the weight side or the activation side.
 *
 *   weight side:      W_eff = W̃'·P, reshaped to the original weight/bias layout; original node kept.
 *   activation side:  x' = x̃·P (x̃ = [x 1]), then the layer with W̃' on x'; original node replaced.
 *
 * Both compute y = W̃' P x̃ = W̃ x̃, so the function is unchanged for any P with W̃' = W̃ P⁻¹.
 */
import { attrFloat, attrInt } from '../../src/ir/attrs.js';
import { FloatAttr, type Emitter } from '../../src/ir/emit.js';
import type { Graph, GraphIndex, Node } from '../../src/ir/graph.js';
import { mat, type Mat } from '../../src/numerics/linalg.js';
import { elementCount, int64Tensor, type DType, type Tensor } from '../../src/onnx/tensor.js';

export type LayerKind = 'Gemm' | 'MatMul' | 'Conv' | 'ConvTranspose';

/** Kind-specific facts needed to move between original tensors and W̃ (JSON-serialisable). */
export interface Layout {
  /** Gemm/MatMul: which operand is the constant weight. */
  weightOperand?: 'A' | 'B';
  /** Gemm: transA of the weight operand (A) or transB (B). MatMul: weight on the right is [d, m] (trans 0). */
  trans?: number;
  alpha?: number;
  beta?: number;
  /** Multiplier from W̃'s last column to the stored bias (alpha/beta for Gemm). */
  biasScale?: number;
  weightDims: number[];
  biasDims?: number[];
  /** Gemm: a scalar C becomes per-unit once trained; it folds back to a scalar while all units agree. */
  biasScalarDims?: number[];
  group?: number;
}

export interface LayerMatch {
  kind: LayerKind;
  node: Node;
  /** The Add that carries a MatMul's bias, fused into the layer. */
  biasNode?: Node;
  /** Activation input (x) of the layer. */
  x: string;
  weight: string;
  bias?: string;
  /** Output units m and input features d (without the homogeneous 1). */
  m: number;
  d: number;
  layout: Layout;
  /** The layer's final output value (the bias Add's output when fused). */
  output: string;
  /** true, or why the activation side is not available for this layer. */
  activationSide: true | string;
  /** Positions per sample that share the weights (conv output pixels, sequence length): cost model input. */
  positions: number;
}

export type MatchResult = { ok: true; match: LayerMatch } | { ok: false; reason: string };

export interface MatchContext {
  graph: Graph;
  index: GraphIndex;
  /** Graph output names (a value read by the outside world counts as a use). */
  graphOutputs: Set<string>;
}

export interface LayerRule {
  match(node: Node, ctx: MatchContext): MatchResult;
  /** Original tensors → W̃ (float64, m × d̃). */
  toMatrix(layout: Layout, m: number, d: number, weight: Tensor, bias?: Tensor): Mat;
  /** W̃ → tensors in the original layouts. */
  fromMatrix(layout: Layout, wt: Mat, d: number, dtype: DType): { weight: Tensor; bias?: Tensor };
  /** Rewires the layer to read W_eff = W̃'·P (value `weff`, shape m × d̃) in its original layout. */
  weightSide(e: Emitter, match: LayerMatch, weff: string): void;
  /** Emits x' = x̃·P and the layer on x' with W̃' (`wt`), producing `match.output`. */
  activationSide?(e: Emitter, match: LayerMatch, p: string, wt: string): void;
}

const fail = (reason: string): MatchResult => ({ ok: false, reason });

// ---------------------------------------------------------------------------------------------
// Shared checks and helpers

function constantInput(ctx: MatchContext, name: string | undefined): Tensor | undefined {
  if (!name) return undefined;
  return ctx.graph.initializers.get(name)?.tensor;
}

/** Why a weight initializer cannot be rebuilt, or undefined when it can. */
function weightProblem(ctx: MatchContext, name: string, node: Node, rank?: number): string | undefined {
  const t = constantInput(ctx, name);
  if (!t) {
    const producer = ctx.index.producer.get(name);
    return producer?.opType === 'Constant' ? `weight '${name}' comes from a Constant node, not an initializer` : `weight '${name}' is not a constant initializer`;
  }
  if (t.dtype !== 'float32') return `weight '${name}' is ${t.dtype}; only float32 weights are rebuilt`;
  if (rank !== undefined && t.dims.length !== rank) return `weight '${name}' has rank ${t.dims.length}, expected ${rank}`;
  return sharedProblem(ctx, name, node);
}

function sharedProblem(ctx: MatchContext, name: string, node: Node): string | undefined {
  const users = ctx.index.consumers.get(name) ?? [];
  if (users.length > 1 || ctx.graphOutputs.has(name)) {
    return `'${name}' is shared with node '${users.find((u) => u !== node)?.name ?? 'a graph output'}'; shared weights are not rebuilt`;
  }
  return undefined;
}

function float64Of(t: Tensor): Float64Array {
  return Float64Array.from(t.data as Float32Array);
}

function tensorOf(dtype: DType, dims: number[], data: ArrayLike<number>): Tensor {
  if (dtype !== 'float32') throw new Error(`unsupported weight dtype ${dtype}`);
  return { dtype, dims: [...dims], data: Float32Array.from(data) };
}

/** Column `col` of W̃ scaled by `scale`. */
function column(wt: Mat, col: number, scale = 1): Float64Array {
  const out = new Float64Array(wt.rows);
  for (let i = 0; i < wt.rows; i++) out[i] = wt.data[i * wt.cols + col]! * scale;
  return out;
}

/** W̃ = [W | scale·b] from W as an m×d matrix given by an element accessor. */
function assemble(m: number, d: number, w: (row: number, col: number) => number, bias?: Float64Array, biasScale = 1): Mat {
  const dt = d + (bias ? 1 : 0);
  const out = mat(m, dt);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < d; j++) out.data[i * dt + j] = w(i, j);
    if (bias) out.data[i * dt + d] = bias[bias.length === 1 ? 0 : i]! * biasScale;
  }
  return out;
}

function int64s(e: Emitter, base: string, values: number[]): string {
  return e.init(base, int64Tensor([values.length], values));
}
function int64Scalar(e: Emitter, base: string, value: number): string {
  return e.init(base, int64Tensor([], [value]));
}

/** Columns [0, d) of an m×d̃ matrix value. */
function weightColumns(e: Emitter, weff: string, d: number): string {
  return e.op('Slice', [weff, int64s(e, 'starts', [0]), int64s(e, 'ends', [d]), int64s(e, 'axes', [1])]);
}

/** Column d (the bias column) of an m×d̃ matrix value, reshaped/scaled to the original bias layout. */
function biasColumn(e: Emitter, weff: string, d: number, layout: Layout): string {
  let b = e.op('Gather', [weff, int64Scalar(e, 'bias_col', d)], { axis: 1 });
  const scale = layout.biasScale ?? 1;
  if (scale !== 1) b = e.op('Mul', [b, e.init('bias_scale', { dtype: 'float32', dims: [], data: Float32Array.of(scale) })]);
  const dims = layout.biasDims ?? [];
  if (dims.length !== 1) b = e.op('Reshape', [b, int64s(e, 'bias_shape', dims.length === 0 || elementCount(dims) === 1 ? [-1] : dims)]);
  return b;
}

/**
 * x' = (P·x̃)ᵀ for rows x [..., d]: x·Pᵀ[0:d, :] + Pᵀ[d, :] with a bias, else x·Pᵀ.
 * P need not be symmetric (warm-started roots satisfy PᵀP = F⁻¹ only), so the activation side
 * applies Pᵀ to rows, exactly the map the weight side's W̃'·P applies to columns.
 */
function denseFisherInput(e: Emitter, x: string, p: string, d: number, hasBias: boolean): string {
  const pt = e.op('Transpose', [p], { perm: [1, 0] });
  if (!hasBias) return e.op('MatMul', [x, pt], {}, { name: `${e.prefix}/fisher` });
  const top = e.op('Slice', [pt, int64s(e, 'starts', [0]), int64s(e, 'ends', [d]), int64s(e, 'axes', [0])]);
  const last = e.op('Gather', [pt, int64Scalar(e, 'bias_row', d)], { axis: 0 });
  return e.op('Add', [e.op('MatMul', [x, top], {}, { name: `${e.prefix}/fisher` }), last]);
}

function replaceInput(node: Node, from: string, to: string): void {
  node.inputs = node.inputs.map((i) => (i === from ? to : i));
}

function innerPositions(ctx: MatchContext, x: string): number {
  const shape = ctx.graph.valueInfo.get(x)?.shape ?? ctx.graph.inputs.find((v) => v.name === x)?.shape;
  if (!shape || shape.length <= 2) return 1;
  const inner = shape.slice(1, -1);
  return inner.every((s) => typeof s === 'number') ? elementCount(inner as number[]) : 1;
}

// ---------------------------------------------------------------------------------------------
// Gemm: y = alpha·A'·B' + beta·C

const gemm: LayerRule = {
  match(node, ctx) {
    const [a, b, c] = node.inputs;
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const transA = attrInt(node, 'transA', 0);
    const transB = attrInt(node, 'transB', 0);
    const aConst = constantInput(ctx, a);
    const bConst = constantInput(ctx, b);
    if (aConst && bConst) return fail('both Gemm operands are constants; nothing to train through');
    if (!aConst && !bConst) return fail('neither Gemm operand is a constant weight');
    if (alpha === 0) return fail('alpha is 0: the weight does not affect the output');
    const operand = bConst ? 'B' : 'A';
    const weight = (bConst ? b : a)!;
    const problem = weightProblem(ctx, weight, node, 2);
    if (problem) return fail(problem);
    const wt = bConst ?? aConst!;
    const trans = operand === 'B' ? transB : transA;
    // B' is [d, m]; A' is [m, d].
    const [m, d] = operand === 'B' ? (trans ? wt.dims : [wt.dims[1]!, wt.dims[0]!]) : trans ? [wt.dims[1]!, wt.dims[0]!] : wt.dims;
    const layout: Layout = { weightOperand: operand, trans, alpha, beta, weightDims: [...wt.dims] };
    let bias: string | undefined;
    // C is a per-unit bias when it is a constant that broadcasts along the batch ([m], [1, m], or a scalar).
    const cConst = constantInput(ctx, c);
    if (operand === 'B' && c && cConst && beta !== 0 && cConst.dtype === 'float32' && !sharedProblem(ctx, c, node)) {
      const n = elementCount(cConst.dims);
      const rowLike = cConst.dims.length <= 1 || (cConst.dims.length === 2 && cConst.dims[0] === 1);
      if ((n === m || n === 1) && rowLike) {
        bias = c;
        layout.biasDims = n === 1 ? [m] : [...cConst.dims];
        if (n === 1) layout.biasScalarDims = [...cConst.dims];
        layout.biasScale = alpha / beta;
      }
    }
    const activationSide = operand === 'A' ? 'the weight is Gemm operand A: only the weight side applies' : c && !bias ? 'C is not a per-unit bias' : true;
    return {
      ok: true,
      match: { kind: 'Gemm', node, x: (operand === 'B' ? a : b)!, weight, bias, m: m!, d: d!, layout, output: node.outputs[0]!, activationSide, positions: 1 },
    };
  },
  toMatrix(layout, m, d, weight, bias) {
    const w = float64Of(weight);
    const c = layout.weightDims[1]!;
    // Stored [m, d] when (B, transB=1) or (A, transA=0); otherwise stored [d, m].
    const rowMajorMD = (layout.weightOperand === 'B') === (layout.trans === 1);
    const at = rowMajorMD ? (i: number, j: number) => w[i * c! + j]! : (i: number, j: number) => w[j * c! + i]!;
    return assemble(m, d, at, bias ? float64Of(bias) : undefined, 1 / (layout.biasScale ?? 1));
  },
  fromMatrix(layout, wt, d, dtype) {
    const [r, c] = layout.weightDims as [number, number];
    const rowMajorMD = (layout.weightOperand === 'B') === (layout.trans === 1);
    const out = new Float64Array(r * c);
    for (let i = 0; i < wt.rows; i++) {
      for (let j = 0; j < d; j++) out[rowMajorMD ? i * c + j : j * c + i] = wt.data[i * wt.cols + j]!;
    }
    const weight = tensorOf(dtype, layout.weightDims, out);
    if (!layout.biasDims) return { weight };
    const bias = column(wt, d, layout.biasScale ?? 1);
    if (layout.biasScalarDims && bias.every((v) => v === bias[0])) return { weight, bias: tensorOf(dtype, layout.biasScalarDims, bias.subarray(0, 1)) };
    return { weight, bias: tensorOf(dtype, layout.biasDims, bias) };
  },
  weightSide(e, match, weff) {
    const { layout, node } = match;
    let w = weightColumns(e, weff, match.d);
    const rowMajorMD = (layout.weightOperand === 'B') === (layout.trans === 1);
    if (!rowMajorMD) w = e.op('Transpose', [w], { perm: [1, 0] });
    replaceInput(node, match.weight, w);
    if (match.bias) replaceInput(node, match.bias, biasColumn(e, weff, match.d, layout));
  },
  activationSide(e, match, p, wt) {
    const { node, layout } = match;
    const x = attrInt(node, 'transA', 0) ? e.op('Transpose', [match.x], { perm: [1, 0] }) : match.x;
    const xp = denseFisherInput(e, x, p, match.d, match.bias !== undefined);
    const inputs = [xp, wt];
    const attrs: Record<string, number | FloatAttr> = { transB: 1 };
    if (layout.alpha !== 1) attrs.alpha = new FloatAttr(layout.alpha!);
    const c = node.inputs[2];
    if (c && !match.bias) {
      inputs.push(c);
      if (layout.beta !== 1) attrs.beta = new FloatAttr(layout.beta!);
    }
    e.op('Gemm', inputs, attrs, { name: `${e.prefix}/layer`, output: match.output });
  },
};


// ---------------------------------------------------------------------------------------------
// MatMul: y = x·W (W constant [d, m], x [..., d]) optionally followed by Add(b); or y = W·X.

const matmul: LayerRule = {
  match(node, ctx) {
    const [a, b] = node.inputs;
    const aConst = constantInput(ctx, a);
    const bConst = constantInput(ctx, b);
    if (aConst && bConst) return fail('both MatMul operands are constants; nothing to train through');
    if (!aConst && !bConst) return fail('neither MatMul operand is a constant weight');
    const operand = bConst ? 'B' : 'A';
    const weight = (bConst ? b : a)!;
    const problem = weightProblem(ctx, weight, node, 2);
    if (problem) return fail(problem);
    const wt = (bConst ?? aConst)!;
    const x = (operand === 'B' ? a : b)!;
    if (operand === 'A') {
      const [m, d] = wt.dims as [number, number];
      const layout: Layout = { weightOperand: 'A', trans: 0, weightDims: [...wt.dims] };
      return { ok: true, match: { kind: 'MatMul', node, x, weight, m, d, layout, output: node.outputs[0]!, activationSide: 'the weight is the left MatMul operand: only the weight side applies', positions: 1 } };
    }
    const [d, m] = wt.dims as [number, number];
    const layout: Layout = { weightOperand: 'B', trans: 0, weightDims: [...wt.dims] };
    const match: LayerMatch = { kind: 'MatMul', node, x, weight, m, d, layout, output: node.outputs[0]!, activationSide: true, positions: innerPositions(ctx, x) };
    // PyTorch exports Linear on a 3-D input as MatMul + Add(bias): fuse that bias into W̃.
    const users = ctx.index.consumers.get(node.outputs[0]!) ?? [];
    const add = users.length === 1 && !ctx.graphOutputs.has(node.outputs[0]!) ? users[0]! : undefined;
    if (add?.opType === 'Add' && add.inputs.length === 2) {
      const other = add.inputs[0] === node.outputs[0] ? add.inputs[1]! : add.inputs[0]!;
      const bt = constantInput(ctx, other);
      if (bt && bt.dtype === 'float32' && elementCount(bt.dims) === m && bt.dims[bt.dims.length - 1] === m && !sharedProblem(ctx, other, add)) {
        match.bias = other;
        match.biasNode = add;
        match.output = add.outputs[0]!;
        layout.biasDims = [...bt.dims];
      }
    }
    return { ok: true, match };
  },
  toMatrix(layout, m, d, weight, bias) {
    const w = float64Of(weight);
    // Right weight is [d, m]; left weight is [m, d].
    const at = layout.weightOperand === 'B' ? (i: number, j: number) => w[j * m + i]! : (i: number, j: number) => w[i * d + j]!;
    return assemble(m, d, at, bias ? float64Of(bias) : undefined);
  },
  fromMatrix(layout, wt, d, dtype) {
    const m = wt.rows;
    const out = new Float64Array(m * d);
    for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) out[layout.weightOperand === 'B' ? j * m + i : i * d + j] = wt.data[i * wt.cols + j]!;
    const weight = tensorOf(dtype, layout.weightDims, out);
    return layout.biasDims ? { weight, bias: tensorOf(dtype, layout.biasDims, column(wt, d)) } : { weight };
  },
  weightSide(e, match, weff) {
    let w = weightColumns(e, weff, match.d);
    if (match.layout.weightOperand === 'B') w = e.op('Transpose', [w], { perm: [1, 0] });
    replaceInput(match.node, match.weight, w);
    if (match.bias && match.biasNode) replaceInput(match.biasNode, match.bias, biasColumn(e, weff, match.d, match.layout));
  },
  activationSide(e, match, p, wt) {
    const xp = denseFisherInput(e, match.x, p, match.d, match.bias !== undefined);
    const wT = e.op('Transpose', [wt], { perm: [1, 0] });
    e.op('MatMul', [xp, wT], {}, { name: `${e.prefix}/layer`, output: match.output });
  },
};

// ---------------------------------------------------------------------------------------------
// Conv and ConvTranspose share their checks: a float32 weight of rank ≥ 3 used by this node only,
// and an optional constant bias.

function convParts(node: Node, ctx: MatchContext): { x: string; w: string; wt: Tensor; bias?: string; group: number } | { reason: string } {
  const [x, w, b] = node.inputs;
  const problem = weightProblem(ctx, w!, node);
  if (problem) return { reason: problem };
  const wt = constantInput(ctx, w)!;
  if (wt.dims.length < 3) return { reason: `weight '${w}' has rank ${wt.dims.length}; ${node.opType} weights have rank ≥ 3` };
  if (b) {
    const bt = constantInput(ctx, b);
    const why = !bt ? `bias '${b}' is not a constant initializer` : bt.dtype !== 'float32' ? `bias '${b}' is ${bt.dtype}` : sharedProblem(ctx, b, node);
    if (why) return { reason: why };
  }
  return { x: x!, w: w!, wt, bias: b || undefined, group: attrInt(node, 'group', 1) };
}

/** Weight and (when the layer has one) bias tensors of a conv-like layer, from W̃'s columns. */
function convTensors(layout: Layout, wt: Mat, d: number, dtype: DType, weightData: Float64Array): { weight: Tensor; bias?: Tensor } {
  const weight = tensorOf(dtype, layout.weightDims, weightData);
  return layout.biasDims ? { weight, bias: tensorOf(dtype, layout.biasDims, column(wt, d)) } : { weight };
}

// ---------------------------------------------------------------------------------------------
// Conv: W [C_out, C_in/g, k...]; x̃ is the patch vector (C_in/g·∏k, plus 1 for the bias).

const conv: LayerRule = {
  match(node, ctx) {
    const parts = convParts(node, ctx);
    if ('reason' in parts) return fail(parts.reason);
    const { x, w, wt, bias, group } = parts;
    const m = wt.dims[0]!;
    const d = elementCount(wt.dims.slice(1));
    const layout: Layout = { weightDims: [...wt.dims], biasDims: bias ? [m] : undefined, group };
    const out = ctx.graph.valueInfo.get(node.outputs[0]!)?.shape;
    const spatial = out?.slice(2);
    const positions = spatial && spatial.every((s) => typeof s === 'number') ? elementCount(spatial as number[]) : Number.POSITIVE_INFINITY;
    return { ok: true, match: { kind: 'Conv', node, x, weight: w, bias, m, d, layout, output: node.outputs[0]!, activationSide: true, positions } };
  },
  toMatrix(_layout, m, d, weight, bias) {
    const w = float64Of(weight);
    return assemble(m, d, (i, j) => w[i * d + j]!, bias ? float64Of(bias) : undefined);
  },
  fromMatrix(layout, wt, d, dtype) {
    const out = new Float64Array(wt.rows * d);
    for (let i = 0; i < wt.rows; i++) for (let j = 0; j < d; j++) out[i * d + j] = wt.data[i * wt.cols + j]!;
    return convTensors(layout, wt, d, dtype, out);
  },
  weightSide(e, match, weff) {
    const w = e.op('Reshape', [weightColumns(e, weff, match.d), int64s(e, 'weight_shape', match.layout.weightDims)]);
    replaceInput(match.node, match.weight, w);
    if (match.bias) replaceInput(match.node, match.bias, biasColumn(e, weff, match.d, match.layout));
  },
  activationSide(e, match, p, wt) {
    const { node, layout, d } = match;
    const group = layout.group ?? 1;
    const [, cig, ...kernel] = layout.weightDims as [number, number, ...number[]];
    const k = elementCount(kernel);
    const hasBias = match.bias !== undefined;
    const dt = d + (hasBias ? 1 : 0);
    // Patch extraction: a Conv whose kernel is the identity over the C_in/g·∏k patch elements.
    const eye = new Float32Array(group * d * cig * k);
    for (let gi = 0; gi < group; gi++) {
      for (let ci = 0; ci < cig; ci++) for (let kk = 0; kk < k; kk++) eye[((gi * d + ci * k + kk) * cig + ci) * k + kk] = 1;
    }
    const kernelInit = e.init('patch_kernel', { dtype: 'float32', dims: [group * d, cig, ...kernel], data: eye });
    const patchAttrs = node.attrs.filter((a) => ['strides', 'pads', 'dilations', 'auto_pad', 'kernel_shape', 'group'].includes(a.name ?? ''));
    const patches = e.op('Conv', [match.x, kernelInit], {}, { name: `${e.prefix}/patches` });
    e.nodes[e.nodes.length - 1]!.attrs = patchAttrs.map((a) => ({ ...a }));
    // x' = P·x̃ per position and group: a grouped 1×1 conv with weight P[:, 0:d] and bias P[:, d].
    const ones = kernel.map(() => 1);
    let q = e.op('Slice', [p, int64s(e, 'starts', [0]), int64s(e, 'ends', [d]), int64s(e, 'axes', [1])]);
    if (group > 1) q = e.op('Tile', [q, int64s(e, 'repeats', [group, 1])]);
    q = e.op('Reshape', [q, int64s(e, 'fisher_kernel_shape', [group * dt, d, ...ones])]);
    const fisherInputs = [patches, q];
    if (hasBias) {
      let last = e.op('Gather', [p, int64Scalar(e, 'bias_col', d)], { axis: 1 });
      if (group > 1) last = e.op('Tile', [last, int64s(e, 'bias_repeats', [group])]);
      fisherInputs.push(last);
    }
    const xp = e.op('Conv', fisherInputs, { group, kernel_shape: ones }, { name: `${e.prefix}/fisher` });
    const core = e.op('Reshape', [wt, int64s(e, 'layer_kernel_shape', [match.m, dt, ...ones])]);
    e.op('Conv', [xp, core], { group, kernel_shape: ones }, { name: `${e.prefix}/layer`, output: match.output });
  },
};

// ---------------------------------------------------------------------------------------------
// ConvTranspose: W [C_in, C_out/g, k...]. Row co of W̃ (in group gi) holds W[gi·C_in/g + ci, co_local, kk]
// over (ci, kk): the input patch that output channel sees.

function convTransposeIndex(layout: Layout): (row: number, col: number) => number {
  const [cin, cog, ...kernel] = layout.weightDims as [number, number, ...number[]];
  const group = layout.group ?? 1;
  const cig = cin / group;
  const k = elementCount(kernel);
  return (row, col) => {
    const gi = Math.floor(row / cog);
    const co = row % cog;
    const ci = Math.floor(col / k);
    const kk = col % k;
    return ((gi * cig + ci) * cog + co) * k + kk;
  };
}

const convTranspose: LayerRule = {
  match(node, ctx) {
    const parts = convParts(node, ctx);
    if ('reason' in parts) return fail(parts.reason);
    const { x, w, wt, bias, group } = parts;
    const [cin, cog, ...kernel] = wt.dims as [number, number, ...number[]];
    const m = cog * group;
    const d = (cin / group) * elementCount(kernel);
    const layout: Layout = { weightDims: [...wt.dims], biasDims: bias ? [m] : undefined, group };
    return {
      ok: true,
      match: { kind: 'ConvTranspose', node, x, weight: w, bias, m, d, layout, output: node.outputs[0]!, activationSide: 'ConvTranspose patches overlap scattered outputs: only the weight side applies', positions: Number.POSITIVE_INFINITY },
    };
  },
  toMatrix(layout, m, d, weight, bias) {
    const w = float64Of(weight);
    const idx = convTransposeIndex(layout);
    return assemble(m, d, (i, j) => w[idx(i, j)]!, bias ? float64Of(bias) : undefined);
  },
  fromMatrix(layout, wt, d, dtype) {
    const idx = convTransposeIndex(layout);
    const out = new Float64Array(elementCount(layout.weightDims));
    for (let i = 0; i < wt.rows; i++) for (let j = 0; j < d; j++) out[idx(i, j)] = wt.data[i * wt.cols + j]!;
    return convTensors(layout, wt, d, dtype, out);
  },
  weightSide(e, match, weff) {
    const [cin, cog, ...kernel] = match.layout.weightDims as [number, number, ...number[]];
    const group = match.layout.group ?? 1;
    const k = elementCount(kernel);
    let w = weightColumns(e, weff, match.d);
    w = e.op('Reshape', [w, int64s(e, 'grouped_shape', [group, cog, cin / group, k])]);
    w = e.op('Transpose', [w], { perm: [0, 2, 1, 3] });
    w = e.op('Reshape', [w, int64s(e, 'weight_shape', match.layout.weightDims)]);
    replaceInput(match.node, match.weight, w);
    if (match.bias) replaceInput(match.node, match.bias, biasColumn(e, weff, match.d, match.layout));
  },
};

export const layerRules: Record<LayerKind, LayerRule> = { Gemm: gemm, MatMul: matmul, Conv: conv, ConvTranspose: convTranspose };

/**
 * Weighted ops found but not rebuilt yet, with the reason shown in the manifest (none at present:
 * LSTM/GRU/RNN are rebuilt by ./recurrent.ts; embedding Gathers are reported by `isEmbedding`).
 */
export const deferredOps: Record<string, string> = {};

/** An embedding lookup: Gather whose data is a float initializer (SNGD.md §5: a per-row scale, deferred). */
export function isEmbedding(node: Node, graph: Graph): boolean {
  if (node.opType !== 'Gather') return false;
  const t = graph.initializers.get(node.inputs[0] ?? '')?.tensor;
  return t !== undefined && t.dims.length === 2 && (t.dtype === 'float32' || t.dtype === 'float64');
}
