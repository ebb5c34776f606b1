/**
 * `sngd train`: the epoch loop around a TrainingRun (runtime/run.ts): data order, learning-rate
 * schedule, refreshes on schedule, evaluation, metrics, progress, checkpoints, export and plot.
 *
 * Data order is a pure function of (seed, epoch), and the checkpoint holds the run's whole state
 * plus the position in the epoch and the epoch's running sums, so a resumed run replays the same
 * batches and writes the same metrics as an uninterrupted one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SngdError } from '../src/errors.js';
import { dataInputs, type Model, type ValueInfo } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { loadModel } from '../src/onnx/import.js';
import { saveModel } from '../src/onnx/export.js';
import type { LossKind } from '../passes/training/losses.js';
import { findLatestCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';
import { chooseFisherForms, formsOf } from '../passes/cost/choose.js';
import { DEFAULT_NYSTROM_RANK, type FormDecision } from '../passes/reconstruct/index.js';
import { loadData, type DataSpec } from './data/index.js';
import { inputShapeFor, labelsPerSample, makeBatch, permutation, type Dataset } from './data/dataset.js';
import { resolveDevice, type DeviceName } from './device.js';
import { MetricsLog, readMetrics, type MetricRecord } from './metrics.js';
import type { OptimizerName } from './optimizers.js';
import { writeMetricsPlot } from './plot.js';
import { ProgressBar } from './progress.js';
import { TrainingRun, type SngdSettings } from './run.js';
import { learningRate, type ScheduleConfig } from './schedule.js';

export { CONV_SNGD, DEFAULT_SNGD, REFERENCE_SNGD, type SngdSettings } from './run.js';

export interface TrainOptions {
  model: string;
  data: DataSpec;
  validation: number;
  epochs: number;
  batchSize: number;
  seed: number;
  out: string;
  optimizer: OptimizerName;
  lr: number;
  momentum?: number;
  /** L2 on weights (not biases), in the gradient. */
  l2: number;
  /** AdamW's decoupled decay. */
  weightDecay?: number;
  schedule: ScheduleConfig;
  sngd: SngdSettings;
  /**
   * SNGD settings to use instead of `sngd` when the model has convolution layers (`sngd train
   * --defaults auto`: CONV_SNGD for every option not given); undefined: `sngd` for every model.
   */
  sngdForConv?: SngdSettings;
  loss: LossKind;
  output?: string;
  side: 'auto' | 'weight' | 'activation';
  /**
   * Which layers get Nyström Fisher layers: those with d̃ above a number (Infinity: none), or
   * 'auto': per layer from the time model and memory (passes/cost/choose.ts) at this run's batch
   * size, T, statistics period and damping. Default Infinity (all dense); `sngd train` defaults to 'auto'.
   */
  maxFisherDim?: number | 'auto';
  nystromRank?: number;
  landmarks?: 'uniform' | 'diagonal';
  /** 'unit': per-unit Fisher blocks for hidden dense layers (passes/reconstruct/units.ts); default 'layer'. */
  fisherBlocks?: 'layer' | 'unit';
  /** Largest d̃ that gets unit blocks (default 256). */
  maxUnitDim?: number;
  device: DeviceName;
  threads?: number;
  resume: boolean;
  /** Also checkpoint every k steps (0: only at epoch ends). */
  checkpointEvery: number;
  /** A 'step' metrics record every k steps. */
  logEvery: number;
  /**
   * Also evaluate validation and test accuracy every k steps inside an epoch (an 'eval' metrics
   * record; 0 or undefined: only at epoch ends), to see when a target is first reached at a finer
   * grain than an epoch. Evaluation time is excluded from `trainSeconds`.
   */
  evalEvery?: number;
  /** Stop after this many steps in total (for tests and quick looks). */
  maxSteps?: number;
  quiet: boolean;
  /** Called after every epoch summary (tests, benchmarks); returning 'stop' ends training there (a benchmark's target reached). */
  onEpoch?: (r: MetricRecord) => void | 'stop';
  /** The same for every 'eval' record of `evalEvery`. */
  onEval?: (r: MetricRecord) => void | 'stop';
}

export interface TrainResult {
  epochs: MetricRecord[];
  modelFile: string;
  steps: number;
  /** The SNGD settings the run used (`sngd`, or `sngdForConv` for a model with convolutions). */
  sngd: SngdSettings;
  seconds: number;
  /** `seconds` less the time spent evaluating: the training loop with its refreshes. */
  trainSeconds: number;
  refreshSeconds: number;
}

/** The epoch's running sums, checkpointed so a resumed epoch reports the same numbers. */
interface Position {
  epoch: number;
  batchInEpoch: number;
  sums: { loss: number; correct: number; seen: number };
  secondsBefore: number;
  refreshSeconds: number;
  /** Seconds spent evaluating so far (absent in checkpoints written before evalEvery existed). */
  evalSeconds?: number;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const log = (msg: string) => opts.quiet || console.error(msg);
  const device = resolveDevice(opts.device, opts.threads);
  if (device.note) log(device.note);
  const split = loadData(opts.data, opts.validation);
  const model = loadModel(opts.model);
  checkLabels(split.train, opts.loss, model, opts.model);
  const input = soleDataInput(model, opts.model);
  const sampleShape = inputShapeFor(split.train, input.shape, input.name);
  const dims = boundDims(input.shape, sampleShape);
  const latest = opts.resume ? findLatestCheckpoint(opts.out) : undefined;
  const sngd = opts.sngdForConv && opts.optimizer === 'sngd' && hasConvolutions(model) ? opts.sngdForConv : opts.sngd;
  if (sngd !== opts.sngd) {
    log(`the model has convolutions: SNGD runs with the convolution defaults for every option not given (EMA from ${sngd.emaInit === 'identity' ? 'I' : '0, bias-corrected'}, ε_rel ${sngd.epsRel}, T ${sngd.refreshEvery}, ${sngd.refreshStart} refreshes, a statistic every ${sngd.statEvery} steps); --defaults dense for the others`);
  }
  const run = await TrainingRun.create(model, {
    optimizer: opts.optimizer, momentum: opts.momentum, weightDecay: opts.weightDecay, sngd, loss: opts.loss, output: opts.output,
    side: opts.side, batchSize: opts.batchSize, sessionOptions: device.sessionOptions, source: opts.model, log, dims,
    ...fisherForms({ ...opts, sngd }, model, dims, latest?.checkpoint, log), nystromRank: opts.nystromRank, landmarks: opts.landmarks, fisherBlocks: opts.fisherBlocks, maxUnitDim: opts.maxUnitDim,
  });
  const dataInput = run.dataInput();

  fs.mkdirSync(opts.out, { recursive: true });
  const stepsPerEpoch = Math.ceil(split.train.count / opts.batchSize);
  const totalSteps = Math.min(stepsPerEpoch * opts.epochs, opts.maxSteps ?? Infinity);
  let pos: Position = { epoch: 0, batchInEpoch: 0, sums: { loss: 0, correct: 0, seen: 0 }, secondsBefore: 0, refreshSeconds: 0, evalSeconds: 0 };
  if (latest) {
    if (latest.file && latest.checkpoint) {
      pos = run.restore(latest.checkpoint).position as Position;
      pos.evalSeconds ??= 0;
      log(`resumed from ${latest.file} at step ${run.stepCount} (epoch ${pos.epoch + 1}, batch ${pos.batchInEpoch})`);
    } else {
      log(`--resume: no checkpoint in ${opts.out}; starting from scratch`);
    }
  }
  const metrics = MetricsLog.open(path.join(opts.out, 'metrics.jsonl'), opts.resume ? { resumeFromStep: run.stepCount } : {});
  const started = performance.now();
  const seconds = () => pos.secondsBefore + (performance.now() - started) / 1000;
  /** Validation and test accuracy now, timed into pos.evalSeconds (training seconds exclude it). */
  const evaluateNow = async () => {
    const t0 = performance.now();
    const validation = split.validation ? await run.evaluate(split.validation, sampleShape) : undefined;
    const test = split.test ? await run.evaluate(split.test, sampleShape) : undefined;
    const spent = (performance.now() - t0) / 1000;
    pos.evalSeconds = (pos.evalSeconds ?? 0) + spent;
    return { validation, test, spent };
  };
  // The Fisher forms the run was built with, so a resumed run rebuilds them (see fisherForms).
  const forms = Object.fromEntries(run.manifest.layers.map((l): [string, FormDecision] => [l.name, { kind: l.fisher.kind === 'nystrom' ? 'nystrom' : 'dense', reason: l.fisherReason ?? '' }]));
  const checkpoint = () => saveCheckpoint(opts.out, run.snapshot({ position: { ...pos, secondsBefore: seconds() }, options: { model: opts.model, optimizer: opts.optimizer, lr: opts.lr, batchSize: opts.batchSize, seed: opts.seed, fisherForms: forms } }));
  const epochRecords: MetricRecord[] = [];

  try {
    while (pos.epoch < opts.epochs && run.stepCount < totalSteps) {
      const order = permutation(split.train.count, new Rng(opts.seed * 1000003 + pos.epoch));
      const bar = opts.quiet ? undefined : new ProgressBar({ total: stepsPerEpoch, label: `epoch ${pos.epoch + 1}/${opts.epochs}` });
      const epochStart = performance.now();
      let epochSamples = 0;
      let epochEvalSeconds = 0;
      let stopped = false;
      while (pos.batchInEpoch < stepsPerEpoch && run.stepCount < totalSteps) {
        const start = pos.batchInEpoch * opts.batchSize;
        const batch = makeBatch(split.train, order, start, Math.min(start + opts.batchSize, split.train.count), sampleShape, run.inputType());
        const lr = learningRate(opts.lr, opts.schedule, run.stepCount, stepsPerEpoch, stepsPerEpoch * opts.epochs);
        const r = await run.step({ [dataInput]: batch.x, labels: batch.labels }, lr, opts.l2);
        pos.batchInEpoch++;
        if (r.ok) {
          pos.sums.loss += r.loss * batch.size;
          pos.sums.correct += r.correct / labelsPerSample(split.train);
          pos.sums.seen += batch.size;
        }
        epochSamples += batch.size;
        if (run.pendingDue() || run.refreshDue()) {
          // Time the main loop spends on refreshes: a whole synchronous one, or with --async-refresh
          // the start and the installation (including any wait for the worker).
          const t0 = performance.now();
          await run.applyPendingRefresh();
          if (run.refreshDue()) await run.refresh();
          pos.refreshSeconds += (performance.now() - t0) / 1000;
        }
        if (opts.evalEvery && run.stepCount % opts.evalEvery === 0 && pos.batchInEpoch < stepsPerEpoch) {
          // The epoch's end evaluates anyway; this one is inside the epoch.
          const { validation, test, spent } = await evaluateNow();
          epochEvalSeconds += spent;
          const now = seconds();
          const record: MetricRecord = {
            kind: 'eval', step: run.stepCount, epoch: pos.epoch + 1, epochsDone: run.stepCount / stepsPerEpoch,
            validationLoss: validation?.loss, validationAccuracy: validation?.accuracy, testLoss: test?.loss, testAccuracy: test?.accuracy,
            seconds: now, trainSeconds: now - pos.evalSeconds!, refreshSeconds: pos.refreshSeconds,
            peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
          };
          metrics.append(record);
          log(`step ${run.stepCount} (epoch ${record.epochsDone!.toFixed(2)}): validation ${pct(validation?.accuracy)}, test ${pct(test?.accuracy)}`);
          if (opts.onEval?.(record) === 'stop') stopped = true;
        }
        const sps = epochSamples / ((performance.now() - epochStart) / 1000 - epochEvalSeconds);
        bar?.update(pos.batchInEpoch, { loss: pos.sums.loss / Math.max(1, pos.sums.seen), acc: `${((100 * pos.sums.correct) / Math.max(1, pos.sums.seen)).toFixed(1)}%`, 'samples/s': Math.round(sps) });
        if (opts.logEvery > 0 && run.stepCount % opts.logEvery === 0) {
          metrics.append({ kind: 'step', step: run.stepCount, epoch: pos.epoch + 1, loss: r.loss, lr, seconds: seconds(), refreshSeconds: pos.refreshSeconds, samplesPerSecond: sps });
        }
        if (opts.checkpointEvery > 0 && run.stepCount % opts.checkpointEvery === 0) checkpoint();
        if (stopped) break;
      }
      bar?.done();
      if (stopped) {
        checkpoint();
        break;
      }
      if (pos.batchInEpoch < stepsPerEpoch) break; // --max-steps ended the run inside this epoch
      // Training throughput excludes the evaluation below (20k samples for MNIST).
      const epochTrainSeconds = (performance.now() - epochStart) / 1000 - epochEvalSeconds;
      const trainSeconds = seconds() - pos.evalSeconds!;
      const { validation, test } = await evaluateNow();
      const record: MetricRecord = {
        kind: 'epoch',
        step: run.stepCount,
        epoch: pos.epoch + 1,
        loss: pos.sums.loss / Math.max(1, pos.sums.seen),
        trainAccuracy: split.train.labels.kind === 'class' ? pos.sums.correct / Math.max(1, pos.sums.seen) : undefined,
        validationLoss: validation?.loss,
        validationAccuracy: validation?.accuracy,
        testLoss: test?.loss,
        testAccuracy: test?.accuracy,
        seconds: seconds(),
        trainSeconds,
        refreshSeconds: pos.refreshSeconds,
        samplesPerSecond: epochSamples / epochTrainSeconds,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      };
      metrics.append(record);
      epochRecords.push(record);
      const verdict = opts.onEpoch?.(record);
      log(`epoch ${pos.epoch + 1}/${opts.epochs}: loss ${record.loss!.toFixed(4)}, train ${pct(record.trainAccuracy)}, validation ${pct(validation?.accuracy)}, test ${pct(test?.accuracy)}, ${record.seconds.toFixed(1)} s (refresh ${pos.refreshSeconds.toFixed(1)} s)`);
      pos = { ...pos, epoch: pos.epoch + 1, batchInEpoch: 0, sums: { loss: 0, correct: 0, seen: 0 } };
      checkpoint();
      if (verdict === 'stop') break;
    }
    const modelFile = path.join(opts.out, 'model.onnx');
    saveModel(modelFile, run.exportModel());
    writeMetricsPlot(path.join(opts.out, 'metrics.svg'), readMetrics(path.join(opts.out, 'metrics.jsonl')), { title: `${path.basename(opts.model)} · ${opts.optimizer} lr ${opts.lr} · batch ${opts.batchSize}` });
    const total = seconds();
    return { epochs: epochRecords, modelFile, steps: run.stepCount, sngd, seconds: total, trainSeconds: total - pos.evalSeconds!, refreshSeconds: pos.refreshSeconds };
  } finally {
    metrics.close();
    await run.release();
  }
}

function soleDataInput(model: Model, file: string): ValueInfo {
  const inputs = dataInputs(model.graph);
  if (inputs.length !== 1) throw new SngdError(`${file}: sngd train feeds models with exactly one data input; this one has ${inputs.length}`);
  return inputs[0]!;
}

/**
 * The compile options that decide each layer's Fisher form. 'auto' chooses per layer
 * (passes/cost/choose.ts, default machine rates: the same on every machine); a resumed run takes
 * the forms its checkpoint was built with instead, so changing --refresh-every, --stat-every,
 * --eps-rel or the batch size on resume cannot change the model's tensors under the checkpoint.
 */
function fisherForms(opts: TrainOptions, model: Model, dims: Record<string, number>, resumed: Checkpoint | undefined, log: (m: string) => void): { maxFisherDim?: number; fisherForms?: Record<string, FormDecision> } {
  if (opts.maxFisherDim !== 'auto') return { maxFisherDim: opts.maxFisherDim };
  if (opts.optimizer !== 'sngd') return {};
  const stored = (resumed?.meta.options as { fisherForms?: Record<string, FormDecision> } | undefined)?.fisherForms;
  if (stored) return { fisherForms: stored };
  const choice = chooseFisherForms(model, {
    batchSize: opts.batchSize, loss: opts.loss, output: opts.output, dims, nystromRank: opts.nystromRank ?? DEFAULT_NYSTROM_RANK,
    refreshEvery: opts.sngd.refreshEvery, statEvery: opts.sngd.statEvery, epsRel: opts.sngd.epsRel, momentum: (opts.momentum ?? 0) > 0,
  });
  for (const l of choice.layers) if (l.kind === 'nystrom') log(`--max-fisher-dim auto: layer '${l.name}' (d̃ = ${l.fisherDim}) gets a Nyström Fisher layer of rank ${l.rank}: ${l.reason}`);
  return { fisherForms: formsOf(choice) };
}

/** Whether the model has a convolution (the choice between DEFAULT_SNGD and CONV_SNGD). */
export function hasConvolutions(model: Model): boolean {
  return model.graph.nodes.some((n) => (n.domain === '' || n.domain === 'ai.onnx') && (n.opType === 'Conv' || n.opType === 'ConvTranspose'));
}

/** The data's sizes for the input's symbolic dims after the batch axis (e.g. a sequence length). */
function boundDims(shape: ValueInfo['shape'], sample: number[]): Record<string, number> {
  const dims: Record<string, number> = {};
  (shape ?? []).slice(1).forEach((d, i) => {
    if (typeof d === 'string' && d !== '?' && sample[i] !== undefined) dims[d] = sample[i]!;
  });
  return dims;
}

function checkLabels(d: Dataset, loss: LossKind, model: Model, file: string): void {
  if (loss === 'ce' && d.labels.kind !== 'class') throw new SngdError(`--loss ce needs integer class labels; ${d.name} has float targets (use --loss mse or bce)`);
  if (loss !== 'ce' && d.labels.kind === 'class') throw new SngdError(`--loss ${loss} needs float targets shaped like the model output; ${d.name} has class labels (use --loss ce)`);
  if (d.labels.kind === 'class') {
    const out = model.graph.outputs[0]?.shape;
    const classes = out && out.length > 2 ? out[1] : out?.[out.length - 1];
    if (typeof classes === 'number' && d.labels.classes > classes) {
      throw new SngdError(`${file}: the model outputs ${classes} classes but the labels of ${d.name} go up to ${d.labels.classes - 1}`);
    }
  }
}

function pct(v: number | undefined): string {
  return v === undefined ? '–' : `${(100 * v).toFixed(2)}%`;
}
