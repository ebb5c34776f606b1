/**
 * Recurrent layers (LSTM, GRU, RNN; SNGD.md §5): one local Fisher layer per input stream and per
 * direction. For direction d of a node with G gates, hidden size H and input size I:
 *
 *   input stream      W̃_W = [W_d, Wb_d]  (G·H × (I+1))  sees x̃_t = [x_t; 1]
 *   recurrent stream  W̃_R = [R_d, Rb_d]  (G·H × (H+1))  sees h̃_{t−1} = [h_{t−1}; 1]
 *
 * (without B neither stream has the homogeneous coordinate). Only the weight side applies: W, R
 * and B are recomputed in their packed ONNX layouts from W̃'·P (Slice, Reshape, Unsqueeze,
 * Concat) and fed to the ORIGINAL node, so onnxruntime's own kernel runs inference and the
 * recurrent unrolling of the training graph (passes/recurrent) sees an ordinary node whose W, R,
 * B inputs are computed values. The node's Y output, which the recurrent stream's statistic reads,
 * is added when the model left it unused.
 *
 * One LayerRecord per (node, stream, direction), named `<node>/W/forward`, `<node>/R/reverse`, …;
 * all share the node's serialized original, so folding restores the node once.
 */
import { attrInt, attrString } from '../../src/ir/attrs.js';
import { Emitter } from '../../src/ir/emit.js';
import { isDefaultDomain, type Graph, type Model, type NameAuthority, type Node } from '../../src/ir/graph.js';
import { identity, mat, matmul } from '../../src/numerics/linalg.js';
import { int64Tensor, type Tensor } from '../../src/onnx/tensor.js';
import { SngdError } from '../../src/errors.js';
import type { MatchContext } from './layers.js';
import { serializeNode, type LayerRecord } from './record.js';

export const RECURRENT_GATES: Record<string, number> = { LSTM: 4, GRU: 3, RNN: 1 };

export interface RecurrentMatch {
  node: Node;
  gates: number;
  hidden: number;
  input: number;
  directions: number;
  /** Direction of each index: reverse or not. */
  reverse: boolean[];
  W: string;
  R: string;
  B?: string;
}

export type RecurrentMatchResult = { ok: true; match: RecurrentMatch } | { ok: false; reason: string };

export function isRecurrentNode(node: Node): boolean {
  return isDefaultDomain(node.domain) && RECURRENT_GATES[node.opType] !== undefined;
}

function initializerProblem(ctx: MatchContext, name: string, node: Node, what: string): string | undefined {
  const t = ctx.graph.initializers.get(name)?.tensor;
  if (!t) return `${what} '${name}' is not a constant initializer`;
  if (t.dtype !== 'float32') return `${what} '${name}' is ${t.dtype}; only float32 weights are rebuilt`;
  const users = ctx.index.consumers.get(name) ?? [];
  if (users.length > 1 || users.some((u) => u !== node) || ctx.graphOutputs.has(name)) {
    return `${what} '${name}' is shared with node '${users.find((u) => u !== node)?.name ?? 'a graph output'}'; shared weights are not rebuilt`;
  }
  if (node.inputs.filter((i) => i === name).length > 1) return `${what} '${name}' feeds the node twice`;
  return undefined;
}

export function matchRecurrent(node: Node, ctx: MatchContext): RecurrentMatchResult {
  const fail = (reason: string): RecurrentMatchResult => ({ ok: false, reason });
  const G = RECURRENT_GATES[node.opType]!;
  const [, w, r, b] = node.inputs;
  if (!w || !r) return fail('W and R are required');
  for (const [name, what] of [[w, 'W'], [r, 'R'], ...(b ? [[b, 'B']] : [])] as [string, string][]) {
    const problem = initializerProblem(ctx, name, node, what);
    if (problem) return fail(problem);
  }
  const direction = attrString(node, 'direction', 'forward');
  if (!['forward', 'reverse', 'bidirectional'].includes(direction)) return fail(`unknown direction '${direction}'`);
  const layoutAttr = attrInt(node, 'layout', 0);
  if (layoutAttr !== 0 && layoutAttr !== 1) return fail(`unknown layout ${layoutAttr}`);
  const D = direction === 'bidirectional' ? 2 : 1;
  const wt = ctx.graph.initializers.get(w)!.tensor;
  const rt = ctx.graph.initializers.get(r)!.tensor;
  const H = attrInt(node, 'hidden_size') ?? rt.dims[2];
  if (wt.dims.length !== 3 || rt.dims.length !== 3 || H === undefined) return fail('W and R must have rank 3');
  const I = wt.dims[2]!;
  if (wt.dims[0] !== D || wt.dims[1] !== G * H || rt.dims.join() !== [D, G * H, H].join()) {
    return fail(`W [${wt.dims}] and R [${rt.dims}] do not match ${node.opType} with ${D} direction(s) and hidden size ${H}`);
  }
  if (b) {
    const bt = ctx.graph.initializers.get(b)!.tensor;
    if (bt.dims.join() !== [D, 2 * G * H].join()) return fail(`B [${bt.dims}] is not [${D}, ${2 * G * H}]`);
  }
  const reverse = D === 2 ? [false, true] : [direction === 'reverse'];
  return { ok: true, match: { node, gates: G, hidden: H, input: I, directions: D, reverse, W: w, R: r, B: b || undefined } };
}

const dirName = (reverse: boolean) => (reverse ? 'reverse' : 'forward');

/** The record name of one stream and direction of a recurrent node: `<node>/W/forward`, `<node>/R/reverse`, … */
const streamName = (node: Node, stream: 'W' | 'R', reverse: boolean) => `${node.name || node.opType}/${stream}/${dirName(reverse)}`;

/** The Fisher layers a recurrent node becomes: one per stream and direction, with their d̃ (input or hidden size, + 1 with a bias). */
export function recurrentStreams(match: RecurrentMatch): { name: string; fisherDim: number }[] {
  const bias = match.B ? 1 : 0;
  return Array.from({ length: match.directions }, (_, d) => (['W', 'R'] as const).map((stream) => ({
    name: streamName(match.node, stream, match.reverse[d]!),
    fisherDim: (stream === 'W' ? match.input : match.hidden) + bias,
  }))).flat();
}

/**
 * Rebuilds one recurrent node on the weight side; returns its records (stream W then R, per
 * direction). `graphInputIndex` locates initializers an old exporter also listed as graph inputs.
 */
export function rebuildRecurrent(g: Graph, names: NameAuthority, match: RecurrentMatch, originalIndex: number, graphInputIndex: (name: string) => number | undefined): LayerRecord[] {
  const { node, gates: G, hidden: H, input: I, directions: D } = match;
  const original = [{ index: originalIndex, node: serializeNode(node) }];
  const GH = G * H;
  const w = g.initializers.get(match.W)!.tensor.data as Float32Array;
  const r = g.initializers.get(match.R)!.tensor.data as Float32Array;
  const bias = match.B ? (g.initializers.get(match.B)!.tensor.data as Float32Array) : undefined;
  const hasBias = bias !== undefined;
  // The recurrent stream's statistic reads Y: make sure the node produces it.
  if (!node.outputs[0]) {
    const y = names.fresh(`${node.name || node.opType}/Y`);
    if (node.outputs.length === 0) node.outputs.push(y);
    else node.outputs[0] = y;
  }
  const layoutAttr = attrInt(node, 'layout', 0);
  const initialH = node.inputs[5] || undefined;
  const nodeName = node.name || node.opType;
  const records: LayerRecord[] = [];
  const parts: Record<'W' | 'R' | 'B', string[]> = { W: [], R: [], B: [] };
  // Shared assembly nodes (bias concatenation, direction stacking).
  const assemble = new Emitter(g, names, `sngd/${nodeName}`);
  for (let d = 0; d < D; d++) {
    const biasParts: string[] = [];
    for (const stream of ['W', 'R'] as const) {
      const dim = stream === 'W' ? I : H;
      const fisherDim = dim + (hasBias ? 1 : 0);
      const src = stream === 'W' ? w : r;
      // W̃ = [W_d | Wb_d] (or [R_d | Rb_d]): row j holds gate row j's weights and bias.
      const wt = new Float32Array(GH * fisherDim);
      for (let j = 0; j < GH; j++) {
        for (let k = 0; k < dim; k++) wt[j * fisherDim + k] = src[(d * GH + j) * dim + k]!;
        if (bias) wt[j * fisherDim + dim] = bias[d * 2 * GH + (stream === 'W' ? 0 : GH) + j]!;
      }
      const name = streamName(node, stream, match.reverse[d]!);
      const prefix = `sngd/${name}`;
      const e = new Emitter(g, names, prefix);
      const eye = identity(fisherDim);
      const W = e.init('W', { dtype: 'float32', dims: [GH, fisherDim], data: wt });
      const P = e.init('P', { dtype: 'float32', dims: [fisherDim, fisherDim], data: Float32Array.from(eye.data) });
      const S = e.init('S', { dtype: 'float32', dims: [fisherDim, fisherDim], data: Float32Array.from(eye.data) });
      const weff = e.op('MatMul', [W, P], {}, { name: `${prefix}/fisher` });
      const ints = (base: string, v: number[]) => e.init(base, int64Tensor([v.length], v));
      const cols = e.op('Slice', [weff, ints('starts', [0]), ints('ends', [dim]), ints('axes', [1])]);
      parts[stream].push(e.op('Unsqueeze', [cols, ints('axes0', [0])]));
      if (hasBias) {
        const col = e.op('Slice', [weff, ints('bias_starts', [dim]), ints('bias_ends', [dim + 1]), ints('axes', [1])]);
        biasParts.push(e.op('Reshape', [col, ints('bias_shape', [1, GH])]));
      }
      const ref = stream === 'W' ? match.W : match.R;
      records.push({
        name,
        op: node.opType,
        kind: 'Recurrent',
        side: 'weight',
        sideReason: "recurrent layer: the weight side keeps onnxruntime's own kernel",
        m: GH,
        d: dim,
        fisherDim,
        hasBias,
        x: stream === 'W' ? node.inputs[0]! : node.outputs[0]!,
        weight: { name: ref, graphInputIndex: graphInputIndex(ref) },
        bias: match.B ? { name: match.B, graphInputIndex: graphInputIndex(match.B) } : undefined,
        layout: { weightDims: [D, GH, dim] },
        params: { W, P, S },
        added: { nodes: e.nodes.map((n) => n.name), initializers: e.initializers },
        recurrent: {
          stream,
          direction: d,
          directions: D,
          reverse: match.reverse[d]!,
          gates: G,
          hidden: H,
          input: I,
          layoutAttr,
          x: node.inputs[0]!,
          y: node.outputs[0]!,
          initialH,
          W: match.W,
          R: match.R,
          B: match.B,
        },
        original,
      });
    }
    // B_d = [Wb_d, Rb_d] as [1, 2·G·H].
    if (hasBias) parts.B.push(assemble.op('Concat', biasParts, { axis: 1 }));
  }
  // Directions stacked on axis 0 ([D, G·H, I], [D, G·H, H], [D, 2·G·H]), fed to the original node.
  const stack = (vs: string[]) => (vs.length === 1 ? vs[0]! : assemble.op('Concat', vs, { axis: 0 }));
  node.inputs[1] = stack(parts.W);
  node.inputs[2] = stack(parts.R);
  if (hasBias) node.inputs[3] = stack(parts.B);
  // The shared assembly nodes belong to the node's first record (fold removes them with it).
  records[0]!.added.nodes.push(...assemble.nodes.map((n) => n.name));
  records[0]!.added.initializers.push(...assemble.initializers);
  for (const name of [match.W, match.R, ...(match.B ? [match.B] : [])]) {
    g.initializers.delete(name);
    g.valueInfo.delete(name);
  }
  g.inputs = g.inputs.filter((v) => v.name !== match.W && v.name !== match.R && v.name !== match.B);
  return records;
}

/**
 * The original W, R and B of one recurrent node from its records: W̃ = W̃'·P per stream and
 * direction, split into the weight rows and the bias column.
 */
export function foldRecurrent(model: Model, records: LayerRecord[]): Map<string, Tensor> {
  const info = records[0]!.recurrent!;
  const { gates: G, hidden: H, input: I, directions: D } = info;
  const GH = G * H;
  const w = new Float32Array(D * GH * I);
  const r = new Float32Array(D * GH * H);
  const b = info.B ? new Float32Array(D * 2 * GH) : undefined;
  const get = (rec: LayerRecord, name: string): Tensor => {
    const t = model.graph.initializers.get(name)?.tensor;
    if (!t) throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}' needs initializer '${name}', which is missing`);
    return t;
  };
  const seen = new Set<string>();
  for (const rec of records) {
    const ri = rec.recurrent!;
    const fd = rec.fisherDim;
    const wPrime = get(rec, rec.params.W);
    const p = get(rec, rec.params.P);
    if (wPrime.dims.join() !== [GH, fd].join() || p.dims.join() !== [fd, fd].join()) {
      throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}': W̃' is [${wPrime.dims}] and P is [${p.dims}], expected [${GH},${fd}] and [${fd},${fd}]`);
    }
    const wt = matmul(mat(GH, fd, wPrime.data as Float32Array), mat(fd, fd, p.data as Float32Array));
    const dim = ri.stream === 'W' ? I : H;
    const dst = ri.stream === 'W' ? w : r;
    for (let j = 0; j < GH; j++) {
      for (let k = 0; k < dim; k++) dst[(ri.direction * GH + j) * dim + k] = wt.data[j * fd + k]!;
      if (b && rec.hasBias) b[ri.direction * 2 * GH + (ri.stream === 'W' ? 0 : GH) + j] = wt.data[j * fd + dim]!;
    }
    seen.add(`${ri.stream}/${ri.direction}`);
  }
  if (seen.size !== 2 * D) throw new SngdError(`${model.source ?? 'model'}: recurrent node '${String(records[0]!.original[0]!.node.name)}' has ${seen.size} of its ${2 * D} Fisher layers`);
  const out = new Map<string, Tensor>();
  out.set(info.W, { dtype: 'float32', dims: [D, GH, I], data: w });
  out.set(info.R, { dtype: 'float32', dims: [D, GH, H], data: r });
  if (info.B && b) out.set(info.B, { dtype: 'float32', dims: [D, 2 * GH], data: b });
  return out;
}
