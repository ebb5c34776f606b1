/**
 * `sngd train`: SNGD (or a first-order baseline on the same graph without Fisher layers) on
 * onnxruntime-node. A step runs the compiled training graph (loss, gradients, Fisher statistics),
 * then updates parameters on the host; every T steps the Fisher roots are refreshed from the EMA of
 * the statistics and W̃' (and momentum) are remapped so the function does not change (SNGD.md §2).
 *
 * Everything the run needs to continue bit-for-bit lives in the checkpoint: parameters, roots,
 * EMAs, optimizer buffers, damping, the position in the epoch and the epoch's running sums. Data
 * order is a pure function of (seed, epoch), so a resumed run replays the same batches.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { loadModel } from '../src/onnx/import.js';
import { saveModel } from '../src/onnx/export.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { compileModel } from '../passes/compile.js';
import { fold } from '../passes/fold.js';
import { readLayerRecords, type LayerRecord } from '../passes/reconstruct/record.js';
import { L2_INPUT, type GraphContract } from '../passes/training/index.js';
import type { LossKind } from '../passes/training/losses.js';
import { findLatestCheckpoint, loadCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';
import { loadData, type DataSpec } from './data/index.js';
import { inputShapeFor, makeBatch, permutation, type Dataset } from './data/dataset.js';
import { resolveDevice, type DeviceName } from './device.js';
import { FisherEma, type EmaInit } from './fisher.js';
import { MetricsLog, type MetricRecord } from './metrics.js';
import { Optimizer, defaultOptimizerConfig, type OptimizerName, type ParamInfo } from './optimizers.js';
import { createSession, type Session } from './ort.js';
import { writeMetricsPlot } from './plot.js';
import { ProgressBar } from './progress.js';
import { RootRefresher, type LayerRoots } from './roots.js';
import { learningRate, type ScheduleConfig } from './schedule.js';
import { buildRemapGraph } from './remap.js';

export interface SngdSettings {
  emaDecay: number;
  epsRel: number;
  epsAbs: number;
  /** Refresh the roots every T steps. */
  refreshEvery: number;
  emaInit: EmaInit;
  rootMethod: 'ns' | 'db';
  warmStart: boolean;
  /** Fold a statistic into the EMA every k steps (the graph computes it every step). */
  statEvery: number;
}

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
  loss: LossKind;
  output?: string;
  side: 'auto' | 'weight' | 'activation';
  device: DeviceName;
  threads?: number;
  resume: boolean;
  /** Also checkpoint every k steps (0: only at epoch ends). */
  checkpointEvery: number;
  /** A 'step' metrics record every k steps. */
  logEvery: number;
  /** Stop after this many steps in total (for tests and quick looks). */
  maxSteps?: number;
  quiet: boolean;
  /** Called after every epoch summary (tests, benchmarks). */
  onEpoch?: (r: MetricRecord) => void;
}

export const DEFAULT_SNGD: SngdSettings = { emaDecay: 0.995, epsRel: 1e-4, epsAbs: 0, refreshEvery: 100, emaInit: 'identity', rootMethod: 'ns', warmStart: false, statEvery: 1 };

export interface TrainResult {
  epochs: MetricRecord[];
  modelFile: string;
  steps: number;
  seconds: number;
  refreshSeconds: number;
}

interface LayerState {
  rec: LayerRecord;
  ema: FisherEma;
  /** Multiplier of ε_rel, raised after a failed refresh or a non-finite step. */
  damping: number;
}

/** Running sums of the current epoch (checkpointed so a resumed epoch reports the same numbers). */
interface EpochSums {
  loss: number;
  correct: number;
  seen: number;
  batches: number;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const log = (msg: string) => opts.quiet || console.error(msg);
  const device = resolveDevice(opts.device, opts.threads);
  if (device.note) log(device.note);
  const split = loadData(opts.data, opts.validation);
  const model = loadModel(opts.model);
  const fisher = opts.optimizer === 'sngd';
  const compiled = compileModel(model, { loss: opts.loss, output: opts.output, l2: true, fisher, side: opts.side, batchSize: opts.batchSize, source: opts.model, stem: 'model' });
  const { model: rebuilt, manifest } = compiled;
  const trainContract = manifest.train!;
  const evalContract = manifest.eval!;
  const dataInput = trainContract.inputs.find((i) => i.role === 'data');
  if (!dataInput || trainContract.inputs.filter((i) => i.role === 'data').length !== 1) {
    throw new SngdError(`${opts.model}: sngd train feeds models with exactly one data input; this one has ${trainContract.inputs.filter((i) => i.role === 'data').length}`);
  }
  const modelInput = rebuilt.graph.inputs.find((v) => v.name === dataInput.name);
  const sampleShape = inputShapeFor(split.train, modelInput?.shape, dataInput.name);
  checkLabels(split.train, opts.loss, rebuilt, opts.model);

  fs.mkdirSync(opts.out, { recursive: true });
  const trainSession = await createSession(compiled.train!, device.sessionOptions, 'training graph');
  const evalSession = await createSession(compiled.eval!, device.sessionOptions, 'evaluation graph');

  // State: every input with a starting value (params, roots, batch-norm statistics).
  const tensors = new Map<string, Tensor>();
  for (const i of trainContract.inputs) if (i.init) tensors.set(i.name, cloneTensor(rebuilt.graph.initializers.get(i.init)!.tensor));
  const paramInfos: ParamInfo[] = trainContract.inputs.filter((i) => i.role === 'param').map((i) => ({ name: i.name, rank: tensors.get(i.name)!.dims.length }));
  const records = readLayerRecords(rebuilt);
  const layers: LayerState[] = records.map((rec) => ({ rec, ema: new FisherEma(rec.fisherDim, opts.sngd.emaDecay, opts.sngd.emaInit), damping: 1 }));
  const sValues = new Map(records.map((r) => [r.params.S, cloneTensor(rebuilt.graph.initializers.get(r.params.S)!.tensor)]));
  const optConfig = { ...defaultOptimizerConfig(opts.optimizer), ...(opts.momentum !== undefined ? { momentum: opts.momentum } : {}), ...(opts.weightDecay !== undefined ? { weightDecay: opts.weightDecay } : {}) };
  const optimizer = new Optimizer(optConfig);
  const refresher = fisher && layers.length ? new RootRefresher(layers.map((l) => l.rec.fisherDim), { method: opts.sngd.rootMethod, warmStart: opts.sngd.warmStart, sessionOptions: device.sessionOptions }) : undefined;
  const remapSession = fisher && layers.length ? await createSession(buildRemapGraph(layers.map((l) => [l.rec.m, l.rec.fisherDim])), device.sessionOptions, 'remap graph') : undefined;

  const stepsPerEpoch = Math.ceil(split.train.count / opts.batchSize);
  const totalSteps = Math.min(stepsPerEpoch * opts.epochs, opts.maxSteps ?? Infinity);
  let step = 0;
  let epoch = 0;
  let batchInEpoch = 0;
  let sums: EpochSums = { loss: 0, correct: 0, seen: 0, batches: 0 };
  let secondsBefore = 0;
  let refreshSeconds = 0;

  if (opts.resume) {
    const latest = findLatestCheckpoint(opts.out);
    if (latest.file) {
      const ckpt = loadCheckpoint(latest.file);
      ({ step, epoch, batchInEpoch, sums, secondsBefore, refreshSeconds } = restore(ckpt, tensors, sValues, layers, optimizer));
      log(`resumed from ${latest.file} at step ${step} (epoch ${epoch + 1}, batch ${batchInEpoch})`);
    } else {
      log(`--resume: no checkpoint in ${opts.out}; starting from scratch`);
    }
  }
  const metrics = MetricsLog.open(path.join(opts.out, 'metrics.jsonl'), opts.resume ? { resumeFromStep: step } : {});
  const started = performance.now();
  const seconds = () => secondsBefore + (performance.now() - started) / 1000;
  const epochRecords: MetricRecord[] = [];

  const saveState = () =>
    saveCheckpoint(opts.out, snapshot({ step, epoch, batchInEpoch, sums, secondsBefore: seconds(), refreshSeconds }, tensors, sValues, layers, optimizer, opts));

  let lastGood = snapshotParams(tensors, paramInfos);
  try {
    while (epoch < opts.epochs && step < totalSteps) {
      const order = permutation(split.train.count, new Rng(opts.seed * 1000003 + epoch));
      const bar = opts.quiet ? undefined : new ProgressBar({ total: stepsPerEpoch, label: `epoch ${epoch + 1}/${opts.epochs}` });
      const epochStart = performance.now();
      let epochSamples = 0;
      while (batchInEpoch < stepsPerEpoch && step < totalSteps) {
        const start = batchInEpoch * opts.batchSize;
        const batch = makeBatch(split.train, order, start, Math.min(start + opts.batchSize, split.train.count), sampleShape);
        const lr = learningRate(opts.lr, opts.schedule, step, stepsPerEpoch, stepsPerEpoch * opts.epochs);
        const feeds: Record<string, Tensor> = { [dataInput.name]: batch.x, labels: batch.labels, [L2_INPUT]: scalar(opts.l2) };
        for (const [k, v] of tensors) feeds[k] = v;
        const out = await trainSession.run(feeds);
        const loss = Number((out[outputOf(trainContract, 'loss')]!.data as Float32Array)[0]);
        const grads = new Map(paramInfos.map((p) => [p.name, out[outputOf(trainContract, 'grad', p.name)]!.data as Float32Array]));
        step++;
        batchInEpoch++;
        if (!Number.isFinite(loss) || [...grads.values()].some((g) => !allFinite(g))) {
          // Restore the parameters that last gave a finite step, drop momentum, damp harder.
          restoreParams(tensors, lastGood);
          optimizer.buffers.clear();
          for (const l of layers) l.damping *= 10;
          log(`step ${step}: non-finite ${Number.isFinite(loss) ? 'gradient' : `loss (${loss})`}; restored the last good parameters and raised damping ×10`);
          continue;
        }
        lastGood = snapshotParams(tensors, paramInfos);
        for (const s of trainContract.outputs.filter((o) => o.role === 'state')) tensors.set(s.of!, cloneTensor(out[s.name]!));
        if (fisher && (step - 1) % opts.sngd.statEvery === 0) for (const l of layers) l.ema.update(out[outputOf(trainContract, 'stat', l.rec.params.P)]!.data as Float32Array);
        const params = new Map(paramInfos.map((p) => [p.name, tensors.get(p.name)!.data as Float32Array]));
        optimizer.step(params, grads, paramInfos, lr);

        sums.loss += loss * batch.size;
        sums.correct += countCorrect(out, trainContract, batch.labels);
        sums.seen += batch.size;
        sums.batches++;
        epochSamples += batch.size;

        if (refresher && step % opts.sngd.refreshEvery === 0) {
          const t0 = performance.now();
          await refreshRoots(refresher, remapSession!, layers, tensors, sValues, optimizer, opts, log, step);
          refreshSeconds += (performance.now() - t0) / 1000;
        }
        const sps = epochSamples / ((performance.now() - epochStart) / 1000);
        bar?.update(batchInEpoch, { loss: sums.loss / sums.seen, acc: `${((100 * sums.correct) / sums.seen).toFixed(1)}%`, 'samples/s': Math.round(sps) });
        if (opts.logEvery > 0 && step % opts.logEvery === 0) {
          metrics.append({ kind: 'step', step, epoch: epoch + 1, loss, seconds: seconds(), refreshSeconds, samplesPerSecond: sps, lr });
        }
        if (opts.checkpointEvery > 0 && step % opts.checkpointEvery === 0) saveState();
      }
      bar?.done();
      if (batchInEpoch < stepsPerEpoch) break; // maxSteps reached inside the epoch
      const evalFeeds = (): Record<string, Tensor> => Object.fromEntries([...tensors].filter(([k]) => evalContract.inputs.some((i) => i.name === k)));
      const validation = split.validation ? await evaluate(evalSession, evalContract, dataInput.name, split.validation, sampleShape, evalFeeds()) : undefined;
      const test = split.test ? await evaluate(evalSession, evalContract, dataInput.name, split.test, sampleShape, evalFeeds()) : undefined;
      const record: MetricRecord = {
        kind: 'epoch',
        step,
        epoch: epoch + 1,
        loss: sums.loss / sums.seen,
        trainAccuracy: sums.correct / sums.seen,
        validationLoss: validation?.loss,
        validationAccuracy: validation?.accuracy,
        testLoss: test?.loss,
        testAccuracy: test?.accuracy,
        seconds: seconds(),
        refreshSeconds,
        samplesPerSecond: sums.seen / ((performance.now() - epochStart) / 1000),
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      };
      metrics.append(record);
      epochRecords.push(record);
      opts.onEpoch?.(record);
      log(`epoch ${epoch + 1}/${opts.epochs}: loss ${record.loss!.toFixed(4)}, train ${pct(record.trainAccuracy)}, validation ${pct(validation?.accuracy)}, test ${pct(test?.accuracy)}, ${record.seconds.toFixed(1)} s (refresh ${refreshSeconds.toFixed(1)} s)`);
      epoch++;
      batchInEpoch = 0;
      sums = { loss: 0, correct: 0, seen: 0, batches: 0 };
      saveState();
    }
  } finally {
    metrics.close();
    await trainSession.release();
    await evalSession.release();
    await refresher?.release();
    await remapSession?.release();
  }

  const modelFile = path.join(opts.out, 'model.onnx');
  saveModel(modelFile, exportModel(rebuilt, tensors, sValues, fisher));
  writeMetricsPlot(path.join(opts.out, 'metrics.svg'), readAll(path.join(opts.out, 'metrics.jsonl')), { title: `${path.basename(opts.model)} · ${opts.optimizer} lr ${opts.lr} · batch ${opts.batchSize}` });
  return { epochs: epochRecords, modelFile, steps: step, seconds: seconds(), refreshSeconds };
}

/** Folded (SNGD) or plain (baselines) model with the trained values: the input model's interface. */
export function exportModel(rebuilt: Model, tensors: Map<string, Tensor>, sValues: Map<string, Tensor>, fisher: boolean): Model {
  const inits = new Map(rebuilt.graph.initializers);
  for (const [k, v] of [...tensors, ...sValues]) if (inits.has(k)) inits.set(k, { tensor: v });
  const trained: Model = { ...rebuilt, graph: { ...rebuilt.graph, initializers: inits } };
  return fisher ? fold(trained) : trained;
}

async function refreshRoots(refresher: RootRefresher, remap: Session, layers: LayerState[], tensors: Map<string, Tensor>, sValues: Map<string, Tensor>, optimizer: Optimizer, opts: TrainOptions, log: (m: string) => void, step: number): Promise<void> {
  const F = layers.map((l) => l.ema.damped(opts.sngd.epsRel * l.damping, opts.sngd.epsAbs));
  const previous = opts.sngd.warmStart ? layers.map((l) => tensors.get(l.rec.params.P)!.data as Float32Array) : undefined;
  const roots: LayerRoots[] = await refresher.refresh(F, previous);
  const feeds: Record<string, Tensor> = {};
  layers.forEach((l, i) => {
    const r = roots[i]!;
    const d = l.rec.fisherDim;
    const ok = r.ok;
    if (!ok) {
      l.damping *= 10;
      log(`step ${step}: refresh of layer '${l.rec.name}' failed (${r.reason}); kept its roots, damping ×${l.damping}`);
    }
    feeds[`W/${i}`] = tensors.get(l.rec.params.W)!;
    feeds[`P/${i}`] = tensors.get(l.rec.params.P)!;
    // A failed layer remaps by S·P = I (its old roots): W̃' stays as it is.
    feeds[`S/${i}`] = ok ? { dtype: 'float32', dims: [d, d], data: r.S } : sValues.get(l.rec.params.S)!;
  });
  const out = await remap.run(feeds);
  const momentum = optimizer.usesMomentum() ? layers.map((l) => optimizer.buffers.get(l.rec.params.W)?.v) : [];
  const remapped = momentum.some((v) => v) ? await remap.run({ ...feeds, ...Object.fromEntries(layers.map((l, i) => [`W/${i}`, { dtype: 'float32', dims: [l.rec.m, l.rec.fisherDim], data: momentum[i] ?? new Float32Array(l.rec.m * l.rec.fisherDim) } as Tensor])) }) : undefined;
  layers.forEach((l, i) => {
    const r = roots[i]!;
    if (!r.ok) return;
    const d = l.rec.fisherDim;
    tensors.set(l.rec.params.W, cloneTensor(out[`out/${i}`]!));
    tensors.set(l.rec.params.P, { dtype: 'float32', dims: [d, d], data: r.P });
    sValues.set(l.rec.params.S, { dtype: 'float32', dims: [d, d], data: r.S });
    const v = optimizer.buffers.get(l.rec.params.W);
    if (remapped && v?.v) v.v = Float32Array.from(remapped[`out/${i}`]!.data as Float32Array);
  });
}

async function evaluate(session: Session, contract: GraphContract, dataName: string, d: Dataset, sampleShape: number[], state: Record<string, Tensor>): Promise<{ loss: number; accuracy?: number }> {
  const order = Uint32Array.from({ length: d.count }, (_, i) => i);
  const lossName = outputOf(contract, 'loss');
  const correctName = contract.outputs.find((o) => o.role === 'metric' && o.of === 'correct')?.name;
  let loss = 0;
  let correct = 0;
  const size = 1000;
  for (let start = 0; start < d.count; start += size) {
    const b = makeBatch(d, order, start, Math.min(start + size, d.count), sampleShape);
    const out = await session.run({ ...state, [dataName]: b.x, labels: b.labels });
    loss += Number((out[lossName]!.data as Float32Array)[0]) * b.size;
    if (correctName) correct += Number((out[correctName]!.data as Float32Array)[0]);
  }
  return { loss: loss / d.count, accuracy: correctName ? correct / d.count : undefined };
}

function countCorrect(out: Record<string, Tensor>, contract: GraphContract & { output?: string }, labels: Tensor): number {
  if (labels.dtype !== 'int64') return 0;
  const logits = out[contract.outputs.find((o) => o.role === 'output')!.name]!;
  const classes = logits.dims[logits.dims.length - 1]!;
  const data = logits.data as Float32Array;
  const l = labels.data as BigInt64Array;
  let correct = 0;
  for (let i = 0; i < l.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[i * classes + c]! > data[i * classes + best]!) best = c;
    if (BigInt(best) === l[i]) correct++;
  }
  return correct;
}

function checkLabels(d: Dataset, loss: LossKind, model: Model, file: string): void {
  if (loss === 'ce' && d.labels.kind !== 'class') throw new SngdError(`--loss ce needs integer class labels; ${d.name} has float targets (use --loss mse or bce)`);
  if (loss !== 'ce' && d.labels.kind === 'class') throw new SngdError(`--loss ${loss} needs float targets shaped like the model output; ${d.name} has class labels (use --loss ce)`);
  if (d.labels.kind === 'class') {
    const out = model.graph.outputs[0]?.shape;
    const classes = out?.[out.length - 1];
    if (typeof classes === 'number' && d.labels.classes > classes) {
      throw new SngdError(`${file}: the model outputs ${classes} classes but the labels of ${d.name} go up to ${d.labels.classes - 1}`);
    }
  }
}

function outputOf(contract: GraphContract, role: string, of?: string): string {
  const o = contract.outputs.find((x) => x.role === role && (of === undefined || x.of === of));
  if (!o) throw new Error(`training graph has no ${role} output${of ? ` for '${of}'` : ''}`);
  return o.name;
}

function scalar(v: number): Tensor {
  return { dtype: 'float32', dims: [], data: Float32Array.of(v) };
}

function cloneTensor(t: Tensor): Tensor {
  return { dtype: t.dtype, dims: [...t.dims], data: (t.data as Float32Array).slice() };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

function snapshotParams(tensors: Map<string, Tensor>, infos: ParamInfo[]): Map<string, Float32Array> {
  return new Map(infos.map((p) => [p.name, (tensors.get(p.name)!.data as Float32Array).slice()]));
}

function restoreParams(tensors: Map<string, Tensor>, saved: Map<string, Float32Array>): void {
  for (const [k, v] of saved) tensors.get(k)!.data = v.slice();
}

function pct(v: number | undefined): string {
  return v === undefined ? '–' : `${(100 * v).toFixed(2)}%`;
}

function readAll(file: string): MetricRecord[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MetricRecord);
}

interface Position {
  step: number;
  epoch: number;
  batchInEpoch: number;
  sums: EpochSums;
  secondsBefore: number;
  refreshSeconds: number;
}

function snapshot(pos: Position, tensors: Map<string, Tensor>, sValues: Map<string, Tensor>, layers: LayerState[], optimizer: Optimizer, opts: TrainOptions): Checkpoint {
  const out: Checkpoint['tensors'] = {};
  for (const [k, v] of [...tensors, ...sValues]) out[`t:${k}`] = v.data as Float32Array;
  layers.forEach((l) => (out[`ema:${l.rec.name}`] = l.ema.f));
  for (const [k, b] of optimizer.buffers) {
    if (b.m) out[`m:${k}`] = b.m;
    if (b.v) out[`v:${k}`] = b.v;
  }
  return {
    meta: {
      ...pos,
      optimizerT: optimizer.t,
      layers: layers.map((l) => ({ name: l.rec.name, count: l.ema.count, damping: l.damping })),
      dims: Object.fromEntries([...tensors, ...sValues].map(([k, v]) => [k, v.dims])),
      options: { model: opts.model, optimizer: opts.optimizer, lr: opts.lr, batchSize: opts.batchSize, seed: opts.seed },
    },
    tensors: out,
  };
}

function restore(ckpt: Checkpoint, tensors: Map<string, Tensor>, sValues: Map<string, Tensor>, layers: LayerState[], optimizer: Optimizer): Position {
  const meta = ckpt.meta as unknown as Position & { optimizerT: number; layers: { name: string; count: number; damping: number }[]; dims: Record<string, number[]> };
  for (const map of [tensors, sValues]) {
    for (const [k, v] of map) {
      const saved = ckpt.tensors[`t:${k}`];
      if (!(saved instanceof Float32Array) || saved.length !== (v.data as Float32Array).length) {
        throw new SngdError(`checkpoint does not match this model: tensor '${k}' is missing or has another size; train into a new --out folder or drop --resume`);
      }
      map.set(k, { dtype: v.dtype, dims: meta.dims[k] ?? v.dims, data: saved.slice() });
    }
  }
  for (const l of layers) {
    const saved = ckpt.tensors[`ema:${l.rec.name}`];
    const info = meta.layers.find((x) => x.name === l.rec.name);
    if (!(saved instanceof Float64Array) || !info) throw new SngdError(`checkpoint has no Fisher state for layer '${l.rec.name}'`);
    l.ema.f.set(saved);
    l.ema.count = info.count;
    l.damping = info.damping;
  }
  optimizer.t = meta.optimizerT;
  for (const [key, value] of Object.entries(ckpt.tensors)) {
    const m = /^([mv]):(.*)$/.exec(key);
    if (!m || !(value instanceof Float32Array)) continue;
    const b = optimizer.buffers.get(m[2]!) ?? {};
    b[m[1] as 'm' | 'v'] = value.slice();
    optimizer.buffers.set(m[2]!, b);
  }
  return { step: meta.step, epoch: meta.epoch, batchInEpoch: meta.batchInEpoch, sums: meta.sums, secondsBefore: meta.secondsBefore, refreshSeconds: meta.refreshSeconds };
}
