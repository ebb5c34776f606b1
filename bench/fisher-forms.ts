/**
 * The measurement behind `--max-fisher-dim auto`'s time rule (passes/cost/choose.ts TIME_SHARE):
 * what a dense first layer really adds to a step, in plain-GD steps, against what the chooser
 * predicts for it.
 *
 *   npx tsx bench/fisher-forms.ts [--steps 200] [--widths 785,1537]   (about a minute on 2 cores)
 *
 * For each width d̃ an MLP (d̃−1)-80-10 on MNIST (images tiled to d̃−1 features, so a wide layer's
 * statistic is singular, as in a long run on real inputs) at batch 50: the mean seconds per step
 * over --steps steps of SGD on the plain graph, and of SNGD with every layer dense (the defaults:
 * T = 20, a statistic every 10 steps, tracked refreshes; the same with cold refreshes, which
 * is what the time model assumes; and with fc1 a Nyström layer of rank 64), refreshes included. Printed: measured (SNGD − SGD) / SGD, and
 * the chooser's predicted dense-form cost / plain step for the first layer (the 80-wide layers add
 * a little to the measured figure).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { buildMlp } from '../models/mlp.js';
import { chooseFisherForms } from '../passes/cost/choose.js';
import { loadData } from '../runtime/data/index.js';
import { resolveDevice } from '../runtime/device.js';
import { DEFAULT_SNGD, TrainingRun, type SngdSettings } from '../runtime/run.js';
import { float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { argValue, log } from './lib.js';

const steps = Number(argValue('steps') ?? 200);
const widths = (argValue('widths') ?? '785,1537').split(',').map(Number);
const batch = 50;
const sessionOptions = resolveDevice('cpu').sessionOptions;
const mnist = loadData({ kind: 'mnist' }, 10000).train;

/** Batch i of MNIST with each image tiled to `features` values. */
function batchOf(i: number, features: number): Record<string, Tensor> {
  const x = new Float32Array(batch * features);
  const labels = new BigInt64Array(batch);
  for (let r = 0; r < batch; r++) {
    const s = (i * batch + r) % mnist.count;
    for (let f = 0; f < features; f++) x[r * features + f] = mnist.x[s * 784 + (f % 784)]!;
    labels[r] = (mnist.labels.data as BigInt64Array)[s]!;
  }
  return { input: float32Tensor([batch, features], x), labels: { dtype: 'int64', dims: [batch], data: labels } };
}

async function secondsPerStep(d: number, optimizer: 'sgd' | 'sngd', sngd: SngdSettings, maxFisherDim?: number): Promise<number> {
  const run = await TrainingRun.create(buildMlp({ layers: [d - 1, 80, 10], seed: 1 }), { optimizer, sngd, loss: 'ce', side: 'auto', batchSize: batch, sessionOptions, source: `mlp-${d}`, maxFisherDim });
  const lr = optimizer === 'sngd' ? 0.1 : 0.05;
  for (let i = 0; i < 5; i++) await run.step(batchOf(i, d - 1), lr, 1e-3);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    await run.step(batchOf(i + 5, d - 1), lr, 1e-3);
    if (run.refreshDue()) await run.refresh();
  }
  const s = (performance.now() - t0) / 1000 / steps;
  await run.release();
  return s;
}

log(`fisher-forms: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${steps} steps per run, batch ${batch}`);
for (const d of widths) {
  const choice = chooseFisherForms(buildMlp({ layers: [d - 1, 80, 10] }), { batchSize: batch, nystromRank: 64, refreshEvery: DEFAULT_SNGD.refreshEvery, statEvery: DEFAULT_SNGD.statEvery, epsRel: DEFAULT_SNGD.epsRel });
  const fc1 = choice.layers[0]!;
  const predicted = fc1.dense ? fc1.dense.seconds / choice.plainStep! : NaN;
  const sgd = await secondsPerStep(d, 'sgd', DEFAULT_SNGD);
  const tracked = await secondsPerStep(d, 'sngd', DEFAULT_SNGD);
  const cold = await secondsPerStep(d, 'sngd', { ...DEFAULT_SNGD, refreshStart: 'cold' });
  const nystrom = await secondsPerStep(d, 'sngd', DEFAULT_SNGD, d - 1);
  const share = (s: number) => ((s - sgd) / sgd).toFixed(1);
  const ms = (s: number) => (s * 1e3).toFixed(2);
  log(`d̃ = ${d}: SGD ${ms(sgd)} ms/step; SNGD dense tracked ${ms(tracked)} ms (${share(tracked)} plain steps more), cold ${ms(cold)} ms (${share(cold)} more), fc1 Nyström k=64 ${ms(nystrom)} ms (${share(nystrom)} more); ` +
    `predicted for fc1 dense: ${predicted.toFixed(1)} plain steps (plain step ${ms(choice.plainStep!)} ms); auto chooses ${fc1.kind}`);
}
log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
