/**
 * Issue 5's training check for any model: SNGD steps on synthetic data of the model's input shape.
 *
 * Data: a fixed pool of batches (inputs uniform in [0, 1), token ids in {0, 1}) with random
 * targets: class indices under cross-entropy when the first output is [N, C] scores (C ≥ 2,
 * logits or (log-)softmax), else normal targets under mean squared error. Random targets on a fixed
 * pool are learnable by memorization, so a training method that works lowers the loss on any
 * architecture, while one that does not (wrong gradients, diverging roots) does not.
 * Layers whose Fisher dimension exceeds `maxFisherDim` get Nyström Fisher layers, so memory stays
 * O(d̃·k) for them (a dense Linear(11616, 32) root alone would be 11617² floats).
 */
import { compileModel } from '../../passes/compile.js';
import { nystromOf } from '../../passes/reconstruct/record.js';
import { upgradeOpset } from '../../passes/upgrade/index.js';
import { dataInputs, type Model } from '../../src/ir/graph.js';
import { Rng } from '../../src/numerics/random.js';
import { elementCount, float32Tensor, type Tensor } from '../../src/onnx/tensor.js';
import { runModel } from '../../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun, type SngdSettings } from '../../runtime/run.js';

const RECURRENT = new Set(['LSTM', 'GRU', 'RNN']);
const CONTROL_FLOW = new Set(['Loop', 'Scan', 'If']);

/** Why a model is not trained by this check (undefined: it is a whole network the check trains). */
export function notTrainedReason(model: Model, maxFisherDim: number): string | undefined {
  const ops = new Set(model.graph.nodes.map((n) => n.opType));
  const recurrent = [...ops].filter((op) => RECURRENT.has(op));
  if (recurrent.length) return `recurrent (${recurrent.join(', ')}): trained by test/recurrent-corpus.test.ts`;
  const control = [...ops].filter((op) => CONTROL_FLOW.has(op));
  if (control.length) return `control flow (${control.join(', ')}): no training graph`;
  const inputs = dataInputs(model.graph);
  if (inputs.length !== 1) return `${inputs.length} data inputs: not a whole network the trainer feeds (it feeds one)`;
  const layers = compileModel(upgradeOpset(model), { maxFisherDim }).manifest.layers;
  if (layers.length === 0) return 'no weighted layer to rebuild: a piece of a network, not a whole one';
  return undefined;
}

export interface SyntheticTrainingOptions {
  steps: number;
  batch: number;
  lr: number;
  maxFisherDim: number;
  nystromRank: number;
  /** Distinct batches in the pool the steps cycle through. Defaults to 4. */
  pool?: number;
  /** Size of symbolic input dims other than the batch. Defaults to 8. */
  symbolicDim?: number;
  sngd?: Partial<SngdSettings>;
  seed?: number;
}

export interface SyntheticTrainingResult {
  loss: 'ce' | 'mse';
  /** The loss of every step (NaN-free for steps that were kept). */
  losses: number[];
  /** Steps the divergence guard undid. */
  undone: number;
  /** Rebuilt layers with their Fisher form, e.g. 'fc1 11617 nystrom'. */
  layers: string[];
  /** Peak resident set of this process so far, in GiB (an upper bound on the run's own). */
  peakRssGib: number;
}

/** SNGD settings suited to a short run: a short EMA, bias-corrected from zero, refreshes every 20 steps. */
export const SHORT_RUN_SNGD: Partial<SngdSettings> = { emaDecay: 0.95, emaInit: 'zero', epsRel: 1e-2, refreshEvery: 20 };

export async function trainOnSynthetic(model: Model, source: string, opts: SyntheticTrainingOptions): Promise<SyntheticTrainingResult> {
  const rng = new Rng(opts.seed ?? 2017);
  const input = dataInputs(model.graph)[0]!;
  const dims: Record<string, number> = {};
  const shape = (input.shape ?? []).map((d, i) => {
    if (i === 0) return opts.batch;
    if (typeof d === 'number' && d > 0) return d;
    const size = opts.symbolicDim ?? 8;
    if (typeof d === 'string' && d !== '?') dims[d] = size;
    return size;
  });
  const n = elementCount(shape);
  const inputs: Tensor[] = Array.from({ length: opts.pool ?? 4 }, () =>
    input.elemType === 7 ? { dtype: 'int64', dims: shape, data: BigInt64Array.from({ length: n }, () => BigInt(rng.int(2))) } : float32Tensor(shape, rng.floats(n, 0, 1)));
  const out = (await runModel(upgradeOpset(model), { [input.name]: inputs[0]! }))[model.graph.outputs[0]!.name]!;
  const classes = out.dims.length === 2 && out.dims[1]! >= 2 ? out.dims[1]! : 0;
  const loss = classes ? 'ce' : 'mse';
  const labels: Tensor[] = inputs.map(() =>
    classes
      ? { dtype: 'int64', dims: [opts.batch], data: BigInt64Array.from({ length: opts.batch }, () => BigInt(rng.int(classes))) }
      : float32Tensor(out.dims, Array.from({ length: elementCount(out.dims) }, () => rng.normal())));

  const run = await TrainingRun.create(model, {
    optimizer: 'sngd', sngd: { ...REFERENCE_SNGD, ...SHORT_RUN_SNGD, ...opts.sngd }, loss, side: 'auto', batchSize: opts.batch, sessionOptions: {}, source, dims,
    maxFisherDim: opts.maxFisherDim, nystromRank: opts.nystromRank,
  });
  try {
    const losses: number[] = [];
    let undone = 0;
    for (let step = 0; step < opts.steps; step++) {
      const k = step % inputs.length;
      const r = await run.step({ [run.dataInput()]: inputs[k]!, labels: labels[k]! }, opts.lr, 0);
      if (r.ok) losses.push(r.loss);
      else undone++;
      if (run.refreshDue()) await run.refresh();
    }
    const layers = run.layers.map((l) => `${l.rec.name} ${l.rec.fisherDim} ${nystromOf(l.rec) ? 'nystrom' : 'dense'}`);
    return { loss, losses, undone, layers, peakRssGib: process.resourceUsage().maxRSS / 2 ** 20 };
  } finally {
    await run.release();
  }
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
