/**
 * The cost model behind `sngd-compile --report` and bench/cost-model.ts: the predicted seconds
 * per training step of SNGD and of plain GD on the same model, per layer and in total.
 *
 *   const cost = predictTraining(model, { loss: 'ce', l2: true }, { batch: 50, optimizer: 'sngd', refreshEvery: 100 }, profile);
 *   cost.sngd.seconds / cost.plain.seconds      // the step's predicted cost relative to plain GD
 *
 * Both training graphs are compiled here exactly as TrainingRun compiles them (plain GD: the same
 * model without Fisher layers), and every node of each is costed (passes/cost/graph.ts), so
 * losses, activations, gradient plumbing and onnxruntime's per-kernel overheads count, not only
 * the rebuilt layers' multiply-adds.
 */
import type { Model } from '../../src/ir/graph.js';
import { compileModel, type CompileOptions, type CompileResult } from '../compile.js';
import { nystromOf, readLayerRecords, type LayerRecord } from '../reconstruct/record.js';
import type { LossKind } from '../training/losses.js';
import { layerIndex } from './graph.js';
import type { MachineProfile } from './machine.js';
import { predictStep, type StepPrediction, type StepSettings } from './step.js';

export { DEFAULT_PROFILE, type MachineProfile, type HostRates } from './machine.js';
export type { StepPrediction, StepSettings, StepOptimizer } from './step.js';

export interface LayerChoice {
  name: string;
  op: string;
  side: 'weight' | 'activation';
  /** 'dense', or 'nystrom k=<rank>'. */
  fisher: string;
  fisherDim: number;
  /** Predicted seconds per step spent on this layer: plain GD, and SNGD (Fisher layer, statistic, EMA, refresh / T included). */
  plain: number;
  sngd: number;
}

export interface TrainingCost {
  /** SNGD with the given settings, and plain GD (same model, no Fisher layers, SGD). */
  sngd: StepPrediction;
  plain: StepPrediction;
  layers: LayerChoice[];
  /** sngd.seconds / plain.seconds. */
  ratio: number;
  profile: MachineProfile;
  settings: StepSettings;
}

/** Compiles the SNGD and plain training graphs of `model` and predicts a step of each. */
export function predictTraining(model: Model, options: CompileOptions & { loss: LossKind }, settings: StepSettings, profile: MachineProfile): TrainingCost {
  const opts = { ...options, batchSize: options.batchSize ?? settings.batch, dims: options.dims ?? settings.dims };
  return costOf(compileModel(model, { ...opts, fisher: true }), compileModel(model, { ...opts, fisher: false }), settings, profile);
}

/** The same from graphs already compiled (`sngd` with Fisher layers, `plain` without), both with a loss. */
export function costOf(sngd: CompileResult, plain: CompileResult, settings: StepSettings, profile: MachineProfile): TrainingCost {
  if (!sngd.train || !plain.train) throw new Error('costOf: compile with a loss (the training graphs are what is costed)');
  const records = readLayerRecords(sngd.model);
  const index = layerIndex(records);
  const sngdStep = predictStep(sngd.train, sngd.manifest.train!, records, index, { ...settings, optimizer: 'sngd' }, profile);
  const plainStep = predictStep(plain.train, plain.manifest.train!, [], index, { ...settings, optimizer: settings.optimizer === 'sngd' ? 'sgd' : settings.optimizer }, profile);
  const layers = records.map((r): LayerChoice => ({
    name: r.name,
    op: r.op,
    side: r.side,
    fisher: fisherForm(r),
    fisherDim: r.fisherDim,
    plain: plainStep.layers.find((l) => l.name === r.name)!.seconds,
    sngd: sngdStep.layers.find((l) => l.name === r.name)!.seconds,
  }));
  return { sngd: sngdStep, plain: plainStep, layers, ratio: sngdStep.seconds / plainStep.seconds, profile, settings };
}

function fisherForm(r: LayerRecord): string {
  const ny = nystromOf(r);
  return ny ? `nystrom k=${ny.rank}` : 'dense';
}
