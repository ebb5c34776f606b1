/**
 * Training and evaluation graphs: onnxruntime-node runs inference graphs only, so a training
 * step is itself an inference graph. From a reconstructed model:
 *
 *   train graph  inputs:  data, labels, every trainable tensor (param), every P (fisher)
 *                outputs: loss, model outputs, one gradient per param, one Fisher statistic per
 *                         rebuilt layer (from the same forward pass), batch-norm running stats
 *   eval graph   inputs:  data, labels, params, P, batch-norm running stats;   outputs: loss, model outputs, correct count
 *
 * The contract (`GraphContract`) names each input's role and the initializer of the rebuilt model
 * that holds its starting value, and each output's role and the input it belongs to, so any
 * program can drive a step.
 */
import { SngdError } from '../../src/errors.js';
import { attrInt, setAttr, intAttr } from '../../src/ir/attrs.js';
import { Emitter } from '../../src/ir/emit.js';
import { cloneModel, dataInputs, indexGraph, NameAuthority, type Graph, type Model, type ValueInfo } from '../../src/ir/graph.js';
import { FLOAT_TYPES } from '../../src/ir/ops.js';
import { dtypeCode, int64Tensor } from '../../src/onnx/tensor.js';
import { analyzeShapes } from '../../src/shape/index.js';
import { differentiate } from '../autodiff/index.js';
import { cleanup } from '../cleanup.js';
import { decomposeRecurrent } from '../recurrent/decompose.js';
import { LAYERS_METADATA_KEY, nystromOf, readLayerRecords, unitOf, type LayerRecord } from '../reconstruct/record.js';
import { emitNystromWeff } from '../reconstruct/nystrom.js';
import { emitUnitWeff } from '../reconstruct/units.js';
import { emitLoss, type LossKind } from './losses.js';
import { emitNystromStatistic, emitStatistic, emitUnitStatistic } from './statistics.js';

export type InputRole = 'data' | 'label' | 'param' | 'fisher' | 'state' | 'hyper';
export type OutputRole = 'loss' | 'output' | 'grad' | 'stat' | 'state' | 'metric';

export interface GraphContract {
  inputs: { name: string; role: InputRole; init?: string }[];
  outputs: { name: string; role: OutputRole; of?: string }[];
}

export interface TrainingOptions {
  loss: LossKind;
  /** Model output the loss reads (default: the first). */
  output?: string;
  /**
   * Add an L2 penalty (λ/2)·‖W‖² on weights, not biases, with λ fed as the scalar input
   * `hyper/l2`. For a rebuilt layer W is the original weight, W = (W̃'·P)[:, :d].
   */
  l2?: boolean;
  /** Sizes for symbolic dims (a recurrent model's sequence length must be static to unroll). */
  dims?: Record<string, number>;
}

export const L2_INPUT = 'hyper/l2';

export interface TrainingGraphs {
  train: Model;
  eval: Model;
  trainContract: GraphContract;
  evalContract: GraphContract;
}

const LABELS = 'labels';

export function buildTrainingGraphs(model: Model, opts: TrainingOptions): TrainingGraphs {
  const records = readLayerRecords(model);
  const g = model.graph;
  const outputName = opts.output ?? g.outputs[0]?.name;
  if (!outputName || !g.outputs.some((o) => o.name === outputName)) {
    throw new SngdError(`${model.source ?? 'model'}: no model output named '${opts.output}'; outputs are ${g.outputs.map((o) => o.name).join(', ')}`);
  }
  const params = trainableTensors(model, records);
  // Dense: P. Nyström: U, a, s and the landmark indices (the statistic's Gather).
  const fisher = records.flatMap((r) => {
    const ny = nystromOf(r);
    return ny ? [ny.U, ny.a, ny.s, ny.index] : [r.params.P];
  });
  const train = buildGraph(model, opts, outputName, params, fisher, records, 'train');
  const evalGraph = buildGraph(model, opts, outputName, params, fisher, records, 'eval');
  return { train: train.model, eval: evalGraph.model, trainContract: train.contract, evalContract: evalGraph.contract };
}

/**
 * The training graph with its statistic outputs (and what only they need) removed: the graph of
 * the steps that fold no statistic (statistics every k steps).
 */
export function withoutStatistics(train: Model, contract: GraphContract): Model {
  const g = train.graph;
  const stats = new Set(contract.outputs.filter((o) => o.role === 'stat').map((o) => o.name));
  return { ...train, graph: cleanup({ ...g, outputs: g.outputs.filter((o) => !stats.has(o.name)) }) };
}

/**
 * Trainable tensors: every rebuilt layer's W̃', and the other float initializers that act as
 * parameters — those with more than one element that feed a differentiable position (scales,
 * shifts, slopes, unrebuilt weights, embeddings). Scalars are treated as constants (epsilons,
 * exponents), as are batch-norm running statistics and everything sngd itself added.
 */
export function trainableTensors(model: Model, records: LayerRecord[]): string[] {
  const g = model.graph;
  const added = new Set(records.flatMap((r) => r.added.initializers));
  const rebuilt = records.map((r) => r.params.W);
  const { consumers } = indexGraph(g);
  const out = [...rebuilt];
  for (const [name, init] of g.initializers) {
    if (added.has(name) || out.includes(name)) continue;
    const t = init.tensor;
    if (!FLOAT_TYPES.has(dtypeCode(t.dtype)) || t.data.length <= 1) continue;
    const users = consumers.get(name) ?? [];
    if (users.length === 0) continue;
    const isParam = users.every((n) => {
      const k = n.inputs.indexOf(name);
      if (n.opType === 'BatchNormalization') return k === 1 || k === 2;
      if (n.opType === 'Pow') return k === 0;
      if (['Reshape', 'Expand', 'Tile', 'Slice', 'Pad', 'ConstantOfShape', 'Resize', 'Upsample'].includes(n.opType)) return k === 0;
      return true;
    });
    if (isParam) out.push(name);
  }
  return out;
}

function buildGraph(model: Model, opts: TrainingOptions, outputName: string, params: string[], fisher: string[], records: LayerRecord[], mode: 'train' | 'eval'): { model: Model; contract: GraphContract } {
  // Recurrent nodes train as unrolled primitive ops (passes/recurrent); evaluation keeps
  // onnxruntime's own LSTM/GRU/RNN kernels. Parameter names are the same in both.
  const m = mode === 'train' ? decomposeRecurrent(model, { dims: opts.dims }) : cloneModel(model);
  const g = m.graph;
  m.extra = { ...m.extra, metadataProps: (m.extra?.metadataProps ?? []).filter((p) => p.key !== LAYERS_METADATA_KEY) };
  const names = new NameAuthority(g);
  const contract: GraphContract = { inputs: [], outputs: [] };
  for (const v of dataInputs(g)) contract.inputs.push({ name: v.name, role: 'data' });

  // Parameters and roots become inputs; their starting values stay in the rebuilt model.
  const promote = (name: string, role: InputRole): void => {
    const init = g.initializers.get(name);
    if (!init) throw new SngdError(`initializer '${name}' not found`);
    g.initializers.delete(name);
    g.inputs = g.inputs.filter((v) => v.name !== name);
    g.inputs.push({ name, elemType: dtypeCode(init.tensor.dtype), shape: [...init.tensor.dims] });
    contract.inputs.push({ name, role, init: name });
  };
  params.forEach((p) => promote(p, 'param'));
  fisher.forEach((p) => promote(p, 'fisher'));
  // S only serves the refresh; a training or evaluation step never reads it.
  for (const r of records) {
    const ny = nystromOf(r);
    for (const name of ny ? [ny.b, ny.t] : [r.params.S]) g.initializers.delete(name);
  }

  const states = mode === 'train' ? enableTrainingMode(g, names, contract, promote) : promoteRunningStatistics(g, contract, promote);
  const head = resolveHead(g, outputName, opts.loss);
  const shapes = analyzeShapes(m).infos;
  const labelInfo = labelValueInfo(opts.loss, shapes.get(head.prediction)?.shape, shapes.get(head.prediction)?.elemType, head.classAxis);
  g.inputs.push(labelInfo);
  contract.inputs.push({ name: LABELS, role: 'label' });

  const b = new Emitter(g, names, 'loss');
  const lossHead = emitLoss(b, opts.loss, head.prediction, LABELS, head.classAxis);
  const outputs: ValueInfo[] = [{ name: lossHead.loss, elemType: 1, shape: [] }];
  contract.outputs.push({ name: lossHead.loss, role: 'loss' });
  for (const o of model.graph.outputs) {
    outputs.push({ ...o });
    contract.outputs.push({ name: o.name, role: 'output' });
  }
  if (mode === 'eval') {
    if (lossHead.correct) {
      outputs.push({ name: lossHead.correct, elemType: 1, shape: [] });
      contract.outputs.push({ name: lossHead.correct, role: 'metric', of: 'correct' });
    }
    g.outputs = outputs;
    return { model: { ...m, graph: cleanup(m.graph) }, contract };
  }

  const rankOf = (v: string) => shapes.get(v)?.shape?.length;
  for (const r of records) {
    const ny = nystromOf(r);
    if (ny) {
      // Landmark columns C = F_batch[:, I] (of U) and diag(F_batch) (of s).
      const stat = emitNystromStatistic(new Emitter(g, names, `stat/${r.name}`), r, rankOf, names.fresh(`stat/${r.name}/C`), names.fresh(`stat/${r.name}/diag`));
      outputs.push({ name: stat.columns, elemType: 1, shape: [r.fisherDim, ny.rank] });
      contract.outputs.push({ name: stat.columns, role: 'stat', of: ny.U });
      outputs.push({ name: stat.diagonal, elemType: 1, shape: [r.fisherDim] });
      contract.outputs.push({ name: stat.diagonal, role: 'stat', of: ny.s });
      continue;
    }
    const unit = unitOf(r);
    const emit = unit ? emitUnitStatistic : emitStatistic;
    const stat = emit(new Emitter(g, names, `stat/${r.name}`), r, rankOf, names.fresh(`stat/${r.name}`));
    outputs.push({ name: stat, elemType: 1, shape: unit ? [unit.units, r.fisherDim, r.fisherDim] : [r.fisherDim, r.fisherDim] });
    contract.outputs.push({ name: stat, role: 'stat', of: r.params.P });
  }
  const seeds = [{ value: head.prediction, grad: lossHead.grad }];
  if (opts.l2) {
    g.inputs.push({ name: L2_INPUT, elemType: 1, shape: [] });
    contract.inputs.push({ name: L2_INPUT, role: 'hyper' });
    seeds.push(...l2Seeds(new Emitter(g, names, 'l2'), records, params, g));
  }
  const { model: diffed, grads } = differentiate(m, { seeds, wrt: params });
  const dg = diffed.graph;
  const named = new Emitter(dg, new NameAuthority(dg), 'grad');
  for (const p of params) {
    const out = named.op('Identity', [grads.get(p)!], {}, { output: named.names.fresh(`grad/${p}`) });
    outputs.push({ name: out, elemType: 1 });
    contract.outputs.push({ name: out, role: 'grad', of: p });
  }
  for (const s of states) {
    outputs.push({ name: s.output, elemType: 1 });
    contract.outputs.push({ name: s.output, role: 'state', of: s.input });
  }
  dg.outputs = outputs;
  return { model: { ...diffed, graph: cleanup(dg) }, contract };
}

/**
 * d/dW (λ/2)‖W‖² = λ·W, seeded where W is computed: the original weight of each rebuilt layer
 * ((W̃'·P) without the bias column), and every other parameter of rank ≥ 2 (rank-1 tensors are
 * biases, scales and shifts: not decayed).
 */
function l2Seeds(b: Emitter, records: LayerRecord[], params: string[], g: Graph): { value: string; grad: string }[] {
  const seeds: { value: string; grad: string }[] = [];
  const rebuilt = new Set(records.map((r) => r.params.W));
  for (const r of records) {
    const ny = nystromOf(r);
    const weff = ny ? emitNystromWeff(b, r.params.W, ny.U, ny.a, ny.s) : unitOf(r) ? emitUnitWeff(b, r.params.W, r.params.P) : b.op('MatMul', [r.params.W, r.params.P]);
    const w = r.hasBias
      ? b.op('Slice', [weff, b.init('starts', int64Tensor([1], [0])), b.init('ends', int64Tensor([1], [r.d])), b.init('axes', int64Tensor([1], [1]))])
      : weff;
    seeds.push({ value: w, grad: b.op('Mul', [w, L2_INPUT]) });
  }
  for (const p of params) {
    if (rebuilt.has(p)) continue;
    const rank = g.inputs.find((v) => v.name === p)?.shape?.length ?? 0;
    if (rank >= 2) seeds.push({ value: p, grad: b.op('Mul', [p, L2_INPUT]) });
  }
  return seeds;
}

/**
 * Batch normalization trains on batch statistics and reports its updated running mean and
 * variance as extra outputs (role 'state', fed back as inputs by the runtime).
 */
function enableTrainingMode(g: Graph, names: NameAuthority, contract: GraphContract, promote: (name: string, role: InputRole) => void): { input: string; output: string }[] {
  const states: { input: string; output: string }[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization' || attrInt(n, 'training_mode', 0) === 1) continue;
    setAttr(n, intAttr('training_mode', 1));
    for (const k of [3, 4]) {
      const stat = n.inputs[k]!;
      if (g.initializers.has(stat) && !contract.inputs.some((i) => i.name === stat)) promote(stat, 'state');
      while (n.outputs.length <= k - 2) n.outputs.push('');
      if (!n.outputs[k - 2]) n.outputs[k - 2] = names.fresh(`state/${stat}`);
      states.push({ input: stat, output: n.outputs[k - 2]! });
    }
  }
  return states;
}

/**
 * The evaluation graph reads batch norm's running statistics as inputs too (role 'state', inference
 * mode): left as initializers they would stay at their starting values however long the run trained.
 */
function promoteRunningStatistics(g: Graph, contract: GraphContract, promote: (name: string, role: InputRole) => void): [] {
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    for (const stat of n.inputs.slice(3, 5)) {
      if (g.initializers.has(stat) && !contract.inputs.some((i) => i.name === stat)) promote(stat, 'state');
    }
  }
  return [];
}

/** The value the loss reads: a model that ends in Softmax/LogSoftmax is trained on its logits. */
function resolveHead(g: Graph, outputName: string, loss: LossKind): { prediction: string; classAxis: number } {
  const producer = indexGraph(g).producer.get(outputName);
  if (loss === 'ce' && producer && (producer.opType === 'Softmax' || producer.opType === 'LogSoftmax')) {
    return { prediction: producer.inputs[0]!, classAxis: attrInt(producer, 'axis', -1) };
  }
  return { prediction: outputName, classAxis: 1 };
}

function labelValueInfo(loss: LossKind, shape: ValueInfo['shape'], elemType: number | undefined, classAxis: number): ValueInfo {
  if (loss !== 'ce') return { name: LABELS, elemType: elemType ?? 1, shape };
  if (!shape) return { name: LABELS, elemType: 7 };
  const axis = classAxis < 0 ? classAxis + shape.length : classAxis;
  return { name: LABELS, elemType: 7, shape: shape.filter((_, i) => i !== axis) };
}
