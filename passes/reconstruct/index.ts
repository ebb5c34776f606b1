/**
 * The reconstruction pass (SNGD.md §2, §5): finds every weighted layer and puts a local Fisher
 * layer in front of it. P and S start as the identity, so W̃' = W̃·S = W̃ and the function is
 * unchanged; the trainer later refreshes P, S and remaps W̃'.
 *
 *   reconstruct(model, { side: 'auto' | 'weight' | 'activation', batchSize })
 *     → { model, layers: LayerRecord[], skipped: SkippedLayer[] }
 *
 * The rebuilt model records each layer (metadata `sngd.layers`) so `fold` can restore the original
 * graph from the model file alone.
 *
 * LSTM/GRU/RNN nodes get one Fisher layer per input stream (W sees x_t, R sees h_{t−1}) and per
 * direction, on the weight side, feeding the original node (passes/reconstruct/recurrent.ts).
 *
 * Fisher-layer forms: dense (d̃ × d̃ roots), Nyström above `maxFisherDim` or where `fisherForms`
 * says so (./nystrom.ts; the choice of `--max-fisher-dim auto` is passes/cost/choose.ts), and with
 * `fisherBlocks: 'unit'` one dense block per output unit for the hidden dense layers that qualify
 * (./units.ts); every layer then says in `blocksReason` why it has the blocks it has.
 */
import { cloneModel, defaultOpset, indexGraph, NameAuthority, type Graph, type Model, type Node } from '../../src/ir/graph.js';
import { Emitter } from '../../src/ir/emit.js';
import { identity } from '../../src/numerics/linalg.js';
import { toposort } from '../toposort.js';
import { deferredOps, isEmbedding, layerRules, type LayerKind, type LayerMatch, type MatchContext } from './layers.js';
import { isReconstructed, serializeNode, withLayerRecords, type FisherForm, type LayerRecord, type Side } from './record.js';
import { emitNystromWeff, layerSeed, uniformLandmarks } from './nystrom.js';
import { int64Tensor } from '../../src/onnx/tensor.js';
import { SngdError } from '../../src/errors.js';
import { isRecurrentNode, matchRecurrent, rebuildRecurrent, type RecurrentMatch } from './recurrent.js';
import { checkUnitBlocks, DEFAULT_MAX_UNIT_DIM, emitUnitWeff, identityBlocks, layerPositions, type UnitCheck } from './units.js';

export interface ReconstructOptions {
  /** Where to apply P. 'auto' picks the cheaper side per layer at `batchSize`. Defaults to 'auto'. */
  side?: 'auto' | Side;
  /** Batch size the cost model assumes. Defaults to 32. */
  batchSize?: number;
  /** Only rebuild these layers (node names); default: all that qualify. */
  only?: string[];
  /**
   * The training graph will have an L2 penalty on the original weights, which computes W̃'·P
   * for every layer anyway: the weight side then costs nothing extra, so 'auto' picks it.
   */
  l2?: boolean;
  /**
   * Layers whose Fisher dimension d̃ exceeds this get a Nyström Fisher layer (SNGD.md §4; weight
   * side only); the others stay dense. Default Infinity: every layer dense. Recurrent streams
   * always stay dense.
   */
  maxFisherDim?: number;
  /**
   * An explicit form per layer, by node name (`--max-fisher-dim auto`: passes/cost/choose.ts):
   * 'nystrom' gets a Nyström Fisher layer, 'dense' and unnamed layers a dense one, and `reason`
   * becomes the record's `fisherReason`. Replaces `maxFisherDim`; recurrent streams stay dense.
   */
  fisherForms?: Readonly<Record<string, FormDecision>>;
  /** Rank k of a Nyström Fisher layer (capped at d̃). Default 64. */
  nystromRank?: number;
  /** How Nyström landmarks are chosen: seeded uniform at compile time, or from diag(F) at the first refresh. Default 'uniform'. */
  landmarks?: 'uniform' | 'diagonal';
  /** Seed of the uniform landmarks. Default 0. */
  landmarkSeed?: number;
  /**
   * 'unit': one Fisher block per output unit for hidden Gemm/MatMul layers followed by Relu,
   * Sigmoid or Tanh (SNGD.md §5; ./units.ts); the others keep one block and say why.
   * Default 'layer': one block per layer.
   */
  fisherBlocks?: 'layer' | 'unit';
  /** Largest d̃ that gets unit blocks. Default DEFAULT_MAX_UNIT_DIM (256). */
  maxUnitDim?: number;
}

/** A layer's Fisher form, decided outside the pass (passes/cost/choose.ts), and why. */
export interface FormDecision {
  kind: 'dense' | 'nystrom';
  reason: string;
}

export interface SkippedLayer {
  name: string;
  op: string;
  reason: string;
}

export interface ReconstructResult {
  model: Model;
  layers: LayerRecord[];
  skipped: SkippedLayer[];
}

/** Rank k of a Nyström Fisher layer unless `nystromRank` says otherwise. */
export const DEFAULT_NYSTROM_RANK = 64;

/** The Fisher-layer nodes use Slice/Gather/Reshape in their opset-13 forms. */
export const MIN_OPSET = 13;

const WEIGHTED_OPS = new Set<string>(['Gemm', 'MatMul', 'Conv', 'ConvTranspose']);

/**
 * Every weighted layer of a model, matched or skipped with a reason. Recurrent nodes (LSTM, GRU,
 * RNN) are listed apart: each becomes one Fisher layer per input stream and direction.
 */
export function findLayers(graph: Graph): { matches: LayerMatch[]; recurrent: RecurrentMatch[]; skipped: SkippedLayer[] } {
  const ctx: MatchContext = { graph, index: indexGraph(graph), graphOutputs: new Set(graph.outputs.map((v) => v.name)) };
  const matches: LayerMatch[] = [];
  const recurrent: RecurrentMatch[] = [];
  const skipped: SkippedLayer[] = [];
  for (const node of graph.nodes) {
    if (node.domain !== '') continue;
    if (isRecurrentNode(node)) {
      const result = matchRecurrent(node, ctx);
      if (result.ok) recurrent.push(result.match);
      else skipped.push({ name: node.name, op: node.opType, reason: result.reason });
      continue;
    }
    if (WEIGHTED_OPS.has(node.opType)) {
      const result = layerRules[node.opType as LayerKind].match(node, ctx);
      if (result.ok) matches.push(result.match);
      else if (hasConstantOperand(node, graph)) skipped.push({ name: node.name, op: node.opType, reason: result.reason });
    } else if (Object.hasOwn(deferredOps, node.opType)) {
      skipped.push({ name: node.name, op: node.opType, reason: deferredOps[node.opType]! });
    } else if (isEmbedding(node, graph)) {
      skipped.push({ name: node.name, op: 'Gather', reason: 'embedding lookups are found but not rebuilt yet (a per-row scale, SNGD.md §5)' });
    }
  }
  return { matches, recurrent, skipped };
}

/** A MatMul of two activations (attention scores, say) is not a weighted layer and is not listed. */
function hasConstantOperand(node: Node, graph: Graph): boolean {
  return node.inputs.slice(0, 2).some((i) => graph.initializers.has(i) || graph.nodes.some((n) => n.opType === 'Constant' && n.outputs.includes(i)));
}

export function reconstruct(model: Model, options: ReconstructOptions = {}): ReconstructResult {
  if (isReconstructed(model)) {
    throw new SngdError(`${model.source ?? 'model'}: already reconstructed (it has local Fisher layers); fold it with 'sngd export' first`);
  }
  if (defaultOpset(model) < MIN_OPSET) {
    throw new SngdError(`${model.source ?? 'model'}: uses opset ${defaultOpset(model)}; upgrade it to opset ${MIN_OPSET} or later first (sngd-compile does this)`);
  }
  const out = cloneModel(model);
  const g = out.graph;
  const { matches, recurrent, skipped } = findLayers(g);
  const names = new NameAuthority(g);
  const records: LayerRecord[] = [];
  const batch = options.batchSize ?? 32;
  const graphInputIndex = (name: string): number | undefined => {
    const i = g.inputs.findIndex((v) => v.name === name);
    return i >= 0 ? i : undefined;
  };
  const originalIndex = new Map(model.graph.nodes.map((n, i) => [n.name, i]));
  // Unit blocks are judged on the untouched graph (the loop below rewires it layer by layer).
  const units = options.fisherBlocks === 'unit' ? unitChecks(g, matches, recurrent, options.maxUnitDim ?? DEFAULT_MAX_UNIT_DIM) : undefined;

  for (const match of matches) {
    if (options.only && !options.only.includes(match.node.name)) continue;
    const rule = layerRules[match.kind];
    const fisherDim = match.d + (match.bias ? 1 : 0);
    const form = formOf(match.node.name, fisherDim, options);
    const nystrom = form?.kind === 'nystrom';
    const unit = nystrom ? undefined : units?.get(match);
    const { side, sideReason } = nystrom
      ? { side: 'weight' as const, sideReason: 'Nyström Fisher layer: weight side only' }
      : unit?.ok
        ? { side: 'weight' as const, sideReason: 'unit blocks: weight side only (the activation side would apply m roots to every row)' }
        : chooseSide(match, options.side ?? 'auto', batch, options.l2 ?? false);
    const prefix = `sngd/${match.node.name}`;
    const e = new Emitter(g, names, prefix);

    const weightT = g.initializers.get(match.weight)!.tensor;
    const biasT = match.bias ? g.initializers.get(match.bias)!.tensor : undefined;
    // P = S = I at the start, so W̃' = W̃·S = W̃.
    const wt = rule.toMatrix(match.layout, match.m, match.d, weightT, biasT);
    const W = e.init('W', { dtype: 'float32', dims: [match.m, fisherDim], data: Float32Array.from(wt.data) });
    let P: string;
    let S: string;
    let fisher: FisherForm = { kind: 'dense' };
    if (nystrom) {
      // P = S = I: U any orthonormal columns (the landmarks' unit vectors), a = b = 0, s = t = 1.
      const k = Math.min(options.nystromRank ?? DEFAULT_NYSTROM_RANK, fisherDim);
      const landmarks = uniformLandmarks(fisherDim, k, layerSeed(match.node.name, options.landmarkSeed ?? 0), match.bias !== undefined);
      const u = new Float32Array(fisherDim * k);
      landmarks.forEach((row, j) => (u[row * k + j] = 1));
      const f32 = (base: string, dims: number[], data: Float32Array) => e.init(base, { dtype: 'float32', dims, data });
      const U = f32('U', [fisherDim, k], u);
      const a = f32('a', [k], new Float32Array(k));
      const s = f32('s', [], Float32Array.of(1));
      const b = f32('b', [k], new Float32Array(k));
      const t = f32('t', [], Float32Array.of(1));
      const index = e.init('landmarks', int64Tensor([k], landmarks));
      fisher = { kind: 'nystrom', rank: k, landmarks: options.landmarks ?? 'uniform', U, a, s, b, t, index };
      P = U;
      S = b;
    } else if (unit?.ok) {
      const dims = [match.m, fisherDim, fisherDim];
      P = e.init('P', { dtype: 'float32', dims, data: identityBlocks(match.m, fisherDim) });
      S = e.init('S', { dtype: 'float32', dims, data: identityBlocks(match.m, fisherDim) });
      fisher = { kind: 'unit', units: match.m, activation: unit.activation, z: match.output };
    } else {
      const eye = identity(fisherDim);
      P = e.init('P', { dtype: 'float32', dims: [fisherDim, fisherDim], data: Float32Array.from(eye.data) });
      S = e.init('S', { dtype: 'float32', dims: [fisherDim, fisherDim], data: Float32Array.from(eye.data) });
    }

    const originals = [match.node, ...(match.biasNode ? [match.biasNode] : [])];
    const original = originals.map((n) => ({ index: originalIndex.get(n.name) ?? -1, node: serializeNode(n) }));
    if (fisher.kind === 'nystrom') {
      rule.weightSide(e, match, emitNystromWeff(e, W, fisher.U, fisher.a, fisher.s, `${prefix}/fisher`));
    } else if (fisher.kind === 'unit') {
      rule.weightSide(e, match, emitUnitWeff(e, W, P, `${prefix}/fisher`));
    } else if (side === 'weight') {
      const weff = e.op('MatMul', [W, P], {}, { name: `${prefix}/fisher` });
      rule.weightSide(e, match, weff);
    } else {
      g.nodes = g.nodes.filter((n) => !originals.includes(n));
      rule.activationSide!(e, match, P, W);
    }
    g.initializers.delete(match.weight);
    if (match.bias) g.initializers.delete(match.bias);
    // Older exporters also list initializers as graph inputs; the rebuilt weights replace them.
    const weightInput = graphInputIndex(match.weight);
    const biasInput = match.bias ? graphInputIndex(match.bias) : undefined;
    g.inputs = g.inputs.filter((v) => v.name !== match.weight && v.name !== match.bias);
    g.valueInfo.delete(match.weight);
    if (match.bias) g.valueInfo.delete(match.bias);

    records.push({
      name: match.node.name,
      op: match.node.opType,
      kind: match.kind,
      side,
      sideReason,
      m: match.m,
      d: match.d,
      fisherDim,
      hasBias: match.bias !== undefined,
      x: match.x,
      weight: { name: match.weight, graphInputIndex: weightInput },
      bias: match.bias ? { name: match.bias, graphInputIndex: biasInput } : undefined,
      layout: match.layout,
      params: { W, P, S },
      fisher,
      ...(form ? { fisherReason: form.reason } : {}),
      ...(units ? { blocksReason: nystrom ? 'Nyström Fisher layer: one block' : unit!.reason } : {}),
      added: { nodes: e.nodes.map((n) => n.name), initializers: e.initializers },
      original,
    });
  }
  for (const match of recurrent) {
    if (options.only && !options.only.includes(match.node.name)) continue;
    const chosen = options.fisherForms !== undefined || (options.maxFisherDim ?? Infinity) < Infinity;
    const streams = rebuildRecurrent(g, names, match, originalIndex.get(match.node.name) ?? -1, graphInputIndex)
      .map((r) => (chosen ? { ...r, fisherReason: 'recurrent streams have no Nyström form' } : r));
    records.push(...(units ? streams.map((r) => ({ ...r, blocksReason: 'recurrent streams keep one block per stream and direction' })) : streams));
  }
  const sorted = toposort(g);
  const rebuilt = withLayerRecords({ ...out, graph: sorted }, records);
  return { model: rebuilt, layers: records, skipped };
}

/** The layer's form and why: the explicit choice, else `maxFisherDim`'s; undefined when neither is given (dense). */
function formOf(name: string, fisherDim: number, options: ReconstructOptions): FormDecision | undefined {
  if (options.fisherForms) return options.fisherForms[name] ?? { kind: 'dense', reason: 'not chosen for a Nyström Fisher layer' };
  const max = options.maxFisherDim;
  if (max === undefined || max === Infinity) return undefined;
  return fisherDim > max ? { kind: 'nystrom', reason: `d̃ = ${fisherDim} > --max-fisher-dim ${max}` } : { kind: 'dense', reason: `d̃ = ${fisherDim} ≤ --max-fisher-dim ${max}` };
}

/** The unit-block verdict for every matched layer (./units.ts), from its position among all weighted nodes. */
function unitChecks(g: Graph, matches: LayerMatch[], recurrent: RecurrentMatch[], maxUnitDim: number): Map<LayerMatch, UnitCheck> {
  const ctx: MatchContext = { graph: g, index: indexGraph(g), graphOutputs: new Set(g.outputs.map((v) => v.name)) };
  const positions = layerPositions(ctx.index, [...matches.map((m) => m.node), ...recurrent.map((r) => r.node)]);
  return new Map(matches.map((m) => [m, checkUnitBlocks(m, ctx, positions.get(m.node)!, maxUnitDim)]));
}

/**
 * Per-step cost of applying P (SNGD.md §5): the weight side computes W̃'·P once per step
 * (m·d̃² multiply-adds); the activation side multiplies every row of x̃ by P (N·positions·d̃²).
 */
export function chooseSide(match: LayerMatch, requested: 'auto' | Side, batch: number, l2 = false): { side: Side; sideReason: string } {
  if (requested === 'weight') return { side: 'weight', sideReason: 'requested' };
  if (match.activationSide !== true) return { side: 'weight', sideReason: match.activationSide };
  if (requested === 'activation') return { side: 'activation', sideReason: 'requested' };
  if (l2) return { side: 'weight', sideReason: "the L2 penalty computes W̃'·P anyway" };
  const rows = batch * match.positions;
  return rows < match.m
    ? { side: 'activation', sideReason: `cheaper: ${rows} rows of x̃ per step < ${match.m} output units` }
    : { side: 'weight', sideReason: `cheaper: ${match.m} output units ≤ ${Number.isFinite(rows) ? rows : 'many'} rows of x̃ per step` };
}
