/**
 * Worker: one training run with `train()` (runtime/trainer.ts), started by bench/lib.ts's
 * runTraining in its own process so the run's peak RSS is its own. Not meant to be run by hand:
 *
 *   node --import tsx bench/train-one.ts '{"workload":"mlp-a","seed":2017,"optimizer":"sngd","lr":0.1,
 *     "batchSize":50,"epochs":1,"resultFile":"/tmp/r.json","workDir":"/tmp/w"}'
 *
 * Builds the workload's model with the seed (PyTorch-default initialisation), trains it on MNIST
 * (50k/10k/10k) with SNGD.md §6's settings otherwise (L2 1e-3, SNGD defaults; the spec may set L2,
 * Nyström layers, evaluations inside epochs and a target accuracy to stop at), quietly, into
 * workDir, and writes { spec, epochs, wallSeconds } to resultFile. Each epoch record gains
 * `trainLoopSeconds`: the epoch's training loop and refreshes without the evaluation, from the
 * trainer's step record at the epoch's last step.
 */
import path from 'node:path';
import { DEFAULT_SNGD, train } from '../runtime/trainer.js';
import { saveModel } from '../src/onnx/export.js';
import { readMetrics, type MetricRecord } from '../runtime/metrics.js';
import { L2, ownCpuSeconds, TRAIN_COUNT, workload, writeJson, type RunResult, type RunSpec } from './lib.js';

const started = performance.now();
const { resultFile, workDir, ...spec } = JSON.parse(process.argv[2] ?? '{}') as RunSpec & { resultFile: string; workDir: string };
const modelFile = path.join(workDir, `${spec.workload}.onnx`);
const stepsPerEpoch = Math.ceil(TRAIN_COUNT / spec.batchSize);
saveModel(modelFile, workload(spec.workload).build(spec.seed));
const result = await train({
  model: modelFile,
  data: { kind: 'mnist' },
  validation: 10_000,
  epochs: spec.epochs,
  batchSize: spec.batchSize,
  seed: spec.seed,
  out: path.join(workDir, 'run'),
  optimizer: spec.optimizer,
  lr: spec.lr,
  l2: spec.l2 ?? L2,
  schedule: { kind: 'constant', warmupSteps: 0, gamma: 1, stepEpochs: 1 },
  sngd: { ...DEFAULT_SNGD, ...spec.sngd },
  maxFisherDim: spec.maxFisherDim,
  nystromRank: spec.nystromRank,
  loss: 'ce',
  side: 'auto',
  device: 'cpu',
  threads: spec.threads,
  resume: false,
  checkpointEvery: 0,
  // One step record at the end of each epoch: its samples/s covers the training loop alone.
  logEvery: stepsPerEpoch,
  quiet: true,
  evalEvery: spec.evalEvery,
  onEpoch: reached,
  onEval: reached,
});
const records = readMetrics(path.join(workDir, 'run', 'metrics.jsonl'));
const steps = records.filter((r) => r.kind === 'step');
const epochs = result.epochs.map((e) => {
  const s = steps.find((r) => r.step === e.step);
  return { ...e, trainLoopSeconds: s?.samplesPerSecond ? TRAIN_COUNT / s.samplesPerSecond : undefined };
});
const evals = records.filter((r) => r.kind === 'eval');
const out: RunResult = { spec, epochs, ...(evals.length ? { evals } : {}), wallSeconds: (performance.now() - started) / 1000, cpuSeconds: ownCpuSeconds() };

/** 'stop' once validation and test accuracy both reach spec.stopAt. */
function reached(r: MetricRecord): 'stop' | undefined {
  return spec.stopAt !== undefined && (r.validationAccuracy ?? 0) >= spec.stopAt && (r.testAccuracy ?? 0) >= spec.stopAt ? 'stop' : undefined;
}
writeJson(resultFile, out);
