/**
 * Hardware efficiency: how much of onnxruntime's own MatMul throughput a training step reaches.
 *
 *   npx tsx bench/flops.ts [--quick | --full]      (writes bench/results/<mode>/flops.json)
 *
 * A large MLP (784-4096-4096-10, batch 1024, the plain graph first-order methods train: no
 * Fisher layers) is compiled with softmax cross-entropy and L2, and timed two ways, the best of
 * the preset's repetitions after one warm-up:
 *   graph   one run of the training graph (forward, loss, backward) in its onnxruntime session;
 *   step    TrainingRun.step with SGD: the graph run plus the host side (finite checks, the
 *           last-good copy, the SGD update over 20M parameters).
 * FLOPs per step are counted as 6·N·Σ(in·out) (2 for the forward, 4 for the backward
 * MatMuls; biases, ReLU and the loss are ignored; the first layer needs no input gradient, so
 * the true count is a little lower). The reference is one MatMul graph [1024, 4096] × [4096,
 * 4096] in the same session options, 2·1024·4096·4096 FLOPs, measured in the same process (best
 * of 4× as many repetitions: it is short).
 */
import { performance } from 'node:perf_hooks';
import { GraphBuilder } from '../models/builder.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { L2_INPUT } from '../passes/training/index.js';
import { resolveDevice } from '../runtime/device.js';
import { createSession } from '../runtime/ort.js';
import { DEFAULT_SNGD, TrainingRun } from '../runtime/run.js';
import { Rng } from '../src/numerics/random.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { log, machine, modeFromArgs, PRESETS, resultsDir, writeJson } from './lib.js';

export interface FlopsResult {
  machine: ReturnType<typeof machine>;
  layers: number[];
  batch: number;
  /** Repetitions of the training graph and step; the MatMul gets 4× as many. */
  reps: number;
  threads: string;
  stepFlops: number;
  matmul: { shape: [number, number, number]; flops: number; seconds: number; gflops: number };
  graph: { seconds: number; gflops: number; fractionOfMatmul: number };
  step: { seconds: number; gflops: number; fractionOfMatmul: number };
}

const mode = modeFromArgs();
const { layers, batch, reps } = PRESETS[mode].flops;
const sessionOptions = resolveDevice('cpu').sessionOptions;
const rng = new Rng(7);

/** The fastest of `n` runs after a warm-up: throughput with the least interference. */
async function best(fn: () => Promise<unknown>, n = reps): Promise<number> {
  await fn();
  let min = Infinity;
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, (performance.now() - t0) / 1000);
  }
  return min;
}

const f32 = (dims: number[]): Tensor => ({ dtype: 'float32', dims, data: rng.floats(dims.reduce((a, b) => a * b, 1)) });

// The reference: one MatMul of the size of the MLP's big layer.
const [m, k, n] = [batch, layers[1]!, layers[2]!];
const b = new GraphBuilder('matmul');
b.output(b.op('MatMul', [b.input('A', 'float32', [m, k]), b.input('B', 'float32', [k, n])], {}, { output: 'Y' }), 'float32', [m, n]);
const mm = await createSession(b.build(), sessionOptions, 'matmul');
const mmFeeds = { A: f32([m, k]), B: f32([k, n]) };
log(`flops: MatMul ${m}×${k}×${n}, best of ${4 * reps}`);
const mmSeconds = await best(() => mm.run(mmFeeds), 4 * reps);
await mm.release();
const mmFlops = 2 * m * k * n;

// The training graph of the large MLP, run bare.
const model = buildMlp({ layers, seed: 1 });
const sumInOut = layers.slice(1).reduce((a, out, i) => a + layers[i]! * out, 0);
const stepFlops = 6 * batch * sumInOut;
const compiled = compileModel(model, { loss: 'ce', l2: true, fisher: false, batchSize: batch, stem: 'model' });
const x = f32([batch, layers[0]!]);
const labels: Tensor = { dtype: 'int64', dims: [batch], data: BigInt64Array.from({ length: batch }, () => BigInt(rng.int(layers[layers.length - 1]!))) };
const feeds: Record<string, Tensor> = { [L2_INPUT]: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) } };
for (const i of compiled.manifest.train!.inputs) {
  if (i.role === 'data') feeds[i.name] = x;
  else if (i.role === 'label') feeds[i.name] = labels;
  else if (i.init) feeds[i.name] = compiled.model.graph.initializers.get(i.init)!.tensor;
}
const session = await createSession(compiled.train!, sessionOptions, 'training graph');
log(`flops: training graph of ${layers.join('-')}, batch ${batch}`);
const graphSeconds = await best(() => session.run(feeds));
await session.release();

// The same step through TrainingRun (what train() does per batch), SGD.
const run = await TrainingRun.create(model, { optimizer: 'sgd', sngd: DEFAULT_SNGD, loss: 'ce', side: 'auto', batchSize: batch, sessionOptions, source: 'flops' });
const data = { [run.dataInput()]: x, labels };
log(`flops: TrainingRun.step, batch ${batch}`);
const stepSeconds = await best(() => run.step(data, 1e-4, 1e-3));
await run.release();

const gflops = (flops: number, s: number) => flops / s / 1e9;
const result: FlopsResult = {
  machine: machine(),
  layers,
  batch,
  reps,
  threads: 'onnxruntime default (one per core)',
  stepFlops,
  matmul: { shape: [m, k, n], flops: mmFlops, seconds: mmSeconds, gflops: gflops(mmFlops, mmSeconds) },
  graph: { seconds: graphSeconds, gflops: gflops(stepFlops, graphSeconds), fractionOfMatmul: gflops(stepFlops, graphSeconds) / gflops(mmFlops, mmSeconds) },
  step: { seconds: stepSeconds, gflops: gflops(stepFlops, stepSeconds), fractionOfMatmul: gflops(stepFlops, stepSeconds) / gflops(mmFlops, mmSeconds) },
};
writeJson(`${resultsDir(mode)}/flops.json`, result);
log(`flops: MatMul ${result.matmul.gflops.toFixed(1)} GFLOP/s; training graph ${result.graph.gflops.toFixed(1)} GFLOP/s (${(100 * result.graph.fractionOfMatmul).toFixed(0)}%), full step ${result.step.gflops.toFixed(1)} GFLOP/s (${(100 * result.step.fractionOfMatmul).toFixed(0)}%)`);
