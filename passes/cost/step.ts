/**
 * Predicted seconds of one training step as TrainingRun.step and .refresh (runtime/run.ts) spend
 * them:
 *
 *   step = graph run                      Σ nodes of the training graph + feeding and copying out
 *        + host loops                     finite checks of gradients and statistics, the optimizer
 *                                         update per parameter element, the float64 EMA update per
 *                                         statistic element (d̃² dense, d̃·(k+1) Nyström), the
 *                                         last-good snapshot every SNAPSHOT_EVERY steps
 *        + host fixed costs               per step, per parameter tensor (its map entries, check
 *                                         and update calls), per Fisher layer folding statistics
 *        + refresh / T                    passes/cost/refresh.ts
 *
 * With statistics every k steps, k − 1 of every k steps run the graph without them and fold none.
 */
import type { Model } from '../../src/ir/graph.js';
import { elementCount } from '../../src/onnx/tensor.js';
import { nystromOf, type LayerRecord } from '../reconstruct/record.js';
import { withoutStatistics, type GraphContract } from '../training/index.js';
import { graphWork, type LayerIndex } from './graph.js';
import { graphSeconds, type GraphSeconds, type MachineProfile } from './machine.js';
import { refreshSeconds, type RefreshSeconds } from './refresh.js';

export type StepOptimizer = 'sngd' | 'sgd' | 'momentum' | 'adam' | 'adamw';

export interface StepSettings {
  batch: number;
  /** Sizes of other symbolic dims (a sequence length). */
  dims?: Record<string, number>;
  optimizer: StepOptimizer;
  /** Momentum μ: 'momentum' defaults to 0.9, 'sngd' to 0 (plain GD on W̃'). */
  momentum?: number;
  refreshEvery: number;
  /** Statistics every k steps. Defaults to 1. */
  statEvery?: number;
  /** ε_rel of the damping (sets the refresh's Newton–Schulz steps). Defaults to 1e-4. */
  epsRel?: number;
}

export interface LayerSeconds {
  name: string;
  /** Per step: the layer's kernels and output copies, its host loops, its refresh share / T. */
  graph: number;
  host: number;
  refresh: number;
  seconds: number;
}

export interface StepPrediction {
  /** Seconds per step, everything included. */
  seconds: number;
  /** The training graph (the one with statistics) per run, and graph seconds per step. */
  graph: GraphSeconds;
  graphPerStep: number;
  /** Host loops per step. */
  host: number;
  /** One refresh, and its share per step (refresh / T). */
  refresh: RefreshSeconds;
  refreshPerStep: number;
  layers: LayerSeconds[];
  /** Per step, what no layer accounts for: the run's fixed costs, the loss, activations, glue. */
  other: number;
}

/** Good steps between the last-good snapshots TrainingRun takes (its SNAPSHOT_EVERY). */
const SNAPSHOT_EVERY = 10;

/**
 * `records`: the Fisher layers of this graph (none for a plain graph); `index`: the layers to
 * attribute time to (the same layers' original nodes and weights in a plain graph).
 */
export function predictStep(train: Model, contract: GraphContract, records: readonly LayerRecord[], index: LayerIndex, s: StepSettings, p: MachineProfile): StepPrediction {
  const bind = { batch: s.batch, dims: s.dims };
  const statEvery = records.length ? Math.max(1, s.statEvery ?? 1) : 1;
  const graph = graphSeconds(graphWork(train, bind, index), p);
  const lean = statEvery > 1 ? graphSeconds(graphWork(withoutStatistics(train, contract), bind, index), p) : graph;
  const mix = (a: number, b: number) => a / statEvery + (b * (statEvery - 1)) / statEvery;
  const graphPerStep = mix(graph.seconds, lean.seconds);

  // Host loops (TrainingRun.step): per parameter element, per statistic element.
  const shapes = new Map(train.graph.inputs.map((v) => [v.name, v.shape]));
  const params = contract.inputs.filter((i) => i.role === 'param').map((i) => ({ name: i.name, n: elementCount((shapes.get(i.name) ?? []).map((d) => (typeof d === 'number' ? d : 0))) }));
  const update = optimizerSeconds(s, p);
  const perParam = p.host.finite + update + (4 * p.host.copyByte) / SNAPSHOT_EVERY;
  const stat = (r: LayerRecord) => {
    const ny = nystromOf(r);
    return ny ? r.fisherDim * (ny.rank + 1) : r.fisherDim ** 2;
  };
  const perStat = (p.host.finite + p.host.ema) / statEvery + (8 * p.host.copyByte) / SNAPSHOT_EVERY;
  const hostOf = new Map<string, number>();
  const addHost = (layer: string | undefined, t: number) => layer !== undefined && hostOf.set(layer, (hostOf.get(layer) ?? 0) + t);
  let host = p.host.step;
  for (const { name, n } of params) {
    const t = p.host.param + n * perParam;
    host += t;
    addHost(index.tensors.get(name), t);
  }
  for (const r of records) {
    const t = p.host.layer / statEvery + stat(r) * perStat;
    host += t;
    addHost(r.name, t);
  }
  // countCorrect reads the model output once per step.
  const output = contract.outputs.find((o) => o.role === 'output');
  const outShape = output && train.graph.outputs.find((o) => o.name === output.name)?.shape;
  if (outShape) host += elementCount(outShape.map((d) => (typeof d === 'number' ? d : s.batch))) * p.host.finite;

  const momentum = s.optimizer === 'momentum' ? s.momentum ?? 0.9 : s.optimizer === 'sngd' ? s.momentum ?? 0 : 0;
  const refresh = refreshSeconds(records, p, { epsRel: s.epsRel ?? 1e-4, momentum: momentum > 0 });
  const refreshPerStep = records.length ? refresh.seconds / s.refreshEvery : 0;

  const layers = index.names.map((name): LayerSeconds => {
    const g = mix(graph.layers.get(name) ?? 0, lean.layers.get(name) ?? 0);
    const h = hostOf.get(name) ?? 0;
    const r = (refresh.layers.get(name) ?? 0) / s.refreshEvery;
    return { name, graph: g, host: h, refresh: r, seconds: g + h + r };
  });
  const seconds = graphPerStep + host + refreshPerStep;
  const other = seconds - layers.reduce((a, l) => a + l.seconds, 0);
  return { seconds, graph, graphPerStep, host, refresh, refreshPerStep, layers, other };
}

function optimizerSeconds(s: StepSettings, p: MachineProfile): number {
  switch (s.optimizer) {
    case 'adam':
    case 'adamw':
      return p.host.adam;
    case 'momentum':
      return (s.momentum ?? 0.9) > 0 ? p.host.momentum : p.host.sgd;
    case 'sngd':
      return (s.momentum ?? 0) > 0 ? p.host.momentum : p.host.sgd;
    default:
      return p.host.sgd;
  }
}
