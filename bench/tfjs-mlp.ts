/**
 * Worker: trains an MLP on MNIST with TensorFlow.js on its WebAssembly backend, the peer that
 * bench/peer.ts compares us with. Started in its own process by bench/lib.ts's runChild:
 *
 *   node --import tsx bench/tfjs-mlp.ts '{"workload":"mlp-a","seed":2017,"optimizer":"adam","lr":0.001,
 *     "batchSize":50,"epochs":1,"resultFile":"/tmp/r.json","workDir":"/tmp/w"}'
 *
 * The same problem as `train()`: the same initial weights (models/mlp.ts with the seed: PyTorch's
 * default U(±1/√fan_in) for weights and biases), the same 50k/10k/10k split with pixels /255
 * (runtime/data/mnist.ts), the same batches in the same order (runtime/data/dataset.ts's seeded
 * permutation), softmax cross-entropy plus (λ/2)·Σ‖W‖² with λ = 1e-3 on weights, and
 * tf.train.sgd / tf.train.adam (β 0.9/0.999, ε 1e-8 as ours). A hand-written loop:
 * optimizer.minimize over tf.variables, one tf.tidy per step. Epoch records are shaped like the
 * trainer's: `samplesPerSecond` up to the end of the epoch's evaluation (20k samples), and
 * `trainLoopSeconds` for the training loop alone.
 *
 * The .wasm binaries ship inside @tensorflow/tfjs-backend-wasm and are loaded from
 * node_modules with setWasmPaths (a file path; nothing is fetched). Under Node the backend runs
 * single-threaded: tfjs-backend-wasm 4.x reports no multithread support in Node
 * (WASM_HAS_MULTITHREAD_SUPPORT is false there, tfjs issue #3830), so it uses the SIMD binary.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { makeBatch, permutation, type Dataset } from '../runtime/data/dataset.js';
import { loadMnist } from '../runtime/data/mnist.js';
import type { MetricRecord } from '../runtime/metrics.js';
import { Rng } from '../src/numerics/random.js';
import { L2, ownCpuSeconds, workload, writeJson, type RunResult, type RunSpec } from './lib.js';

const started = performance.now();
const { resultFile, ...spec } = JSON.parse(process.argv[2] ?? '{}') as RunSpec & { resultFile: string; workDir: string };

const wasmDir = path.join(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
setWasmPaths(`${wasmDir}${path.sep}`);
if (!(await tf.setBackend('wasm'))) throw new Error('could not start the tfjs wasm backend');
await tf.ready();

// The MLP's initial weights, exactly as train() starts from them: Gemm(transB=1) weights [out, in].
const model = workload(spec.workload).build(spec.seed);
const inits = model.graph.initializers;
const weights: tf.Variable[] = [];
const biases: tf.Variable[] = [];
for (let i = 1; inits.has(`fc${i}.weight`); i++) {
  const w = inits.get(`fc${i}.weight`)!.tensor;
  const b = inits.get(`fc${i}.bias`)!.tensor;
  weights.push(tf.variable(tf.tidy(() => tf.tensor2d(w.data as Float32Array, w.dims as [number, number]).transpose()), true, `w${i}`));
  biases.push(tf.variable(tf.tensor1d(b.data as Float32Array), true, `b${i}`));
}

function forward(x: tf.Tensor2D): tf.Tensor2D {
  let h = x;
  weights.forEach((w, i) => {
    h = tf.add(tf.matMul(h, w), biases[i]!);
    if (i < weights.length - 1) h = tf.relu(h);
  });
  return h;
}

const optimizer = spec.optimizer === 'adam' ? tf.train.adam(spec.lr, 0.9, 0.999, 1e-8) : spec.optimizer === 'sgd' ? tf.train.sgd(spec.lr) : undefined;
if (!optimizer) throw new Error(`tfjs-mlp: optimizer '${spec.optimizer}' is not benchmarked (sgd, adam)`);
const vars = [...weights, ...biases];

const split = loadMnist({ validation: 10_000 });
const classes = 10;
const toTensors = (d: Dataset, order: ArrayLike<number>, start: number, end: number) => {
  const b = makeBatch(d, order, start, end, [784]);
  const labels = Int32Array.from(b.labels.data as BigInt64Array, Number);
  return { x: tf.tensor2d(b.x.data as Float32Array, [b.size, 784]), labels, size: b.size };
};

function accuracy(d: Dataset): number {
  const order = Uint32Array.from({ length: d.count }, (_, i) => i);
  let correct = 0;
  for (let start = 0; start < d.count; start += 1000) {
    const { x, labels } = toTensors(d, order, start, Math.min(start + 1000, d.count));
    const predicted = tf.tidy(() => tf.argMax(forward(x), 1).dataSync());
    x.dispose();
    for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  }
  return correct / d.count;
}

const epochs: MetricRecord[] = [];
let step = 0;
let seconds = 0;
for (let epoch = 0; epoch < spec.epochs; epoch++) {
  const order = permutation(split.train.count, new Rng(spec.seed * 1000003 + epoch));
  const t0 = performance.now();
  let lossSum = 0;
  for (let start = 0; start < split.train.count; start += spec.batchSize) {
    const { x, labels, size } = toTensors(split.train, order, start, Math.min(start + spec.batchSize, split.train.count));
    const cost = tf.tidy(() => {
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
      return optimizer.minimize(() => {
        const ce = tf.losses.softmaxCrossEntropy(y, forward(x));
        const penalty = tf.addN(weights.map((w) => tf.sum(tf.square(w))));
        return tf.add(ce, tf.mul(0.5 * L2, penalty)) as tf.Scalar;
      }, true, vars)!;
    });
    lossSum += cost.dataSync()[0]! * size;
    cost.dispose();
    x.dispose();
    step++;
  }
  const trainLoopSeconds = (performance.now() - t0) / 1000;
  const validationAccuracy = accuracy(split.validation!);
  const testAccuracy = accuracy(split.test!);
  const epochSeconds = (performance.now() - t0) / 1000;
  seconds += epochSeconds;
  epochs.push({
    kind: 'epoch', step, epoch: epoch + 1, loss: lossSum / split.train.count, validationAccuracy, testAccuracy,
    seconds, samplesPerSecond: split.train.count / epochSeconds, trainLoopSeconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  });
}
const out: RunResult = { spec, epochs, wallSeconds: (performance.now() - started) / 1000, cpuSeconds: ownCpuSeconds() };
writeJson(resultFile, { ...out, backend: tf.getBackend(), tensorsLeft: tf.memory().numTensors });
