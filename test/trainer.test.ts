/**
 * The SNGD runtime against SNGD.md's identities and the trainer's promises:
 *   identity 1  one SNGD step with fixed P is the NGD step W̃ ← W̃ − η·(∂L/∂W̃)·F_λ⁻¹ (float64 reference)
 *   identity 2  a refresh does not change the model's outputs
 *   resume      a run stopped mid-epoch and resumed writes the same metrics as an uninterrupted one
 *   export      the exported model's accuracy, computed by onnxruntime directly, is the trainer's
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/builder.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import { mat, matmul, transpose } from '../src/numerics/linalg.js';
import { symmetricEigen } from '../src/numerics/eigen.js';
import { Rng } from '../src/numerics/random.js';
import { saveModel } from '../src/onnx/export.js';
import { loadModel } from '../src/onnx/import.js';
import { float32Tensor, int64Tensor, type Tensor } from '../src/onnx/tensor.js';
import { readNpy } from '../src/data/npy.js';
import { readMetrics, type MetricRecord } from '../runtime/metrics.js';
import { createSession, runModel } from '../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun } from '../runtime/run.js';
import { CONV_SNGD, hasConvolutions, train, type TrainOptions } from '../runtime/trainer.js';
import { buildCnn } from '../models/cnn.js';
import { maxRelError } from './helpers/compare.js';
import { writeTeacherDataset } from './helpers/teacher-data.js';
import { expectExactResume } from './helpers/resume.js';
import { initialFeeds, outputName } from './helpers/step-check.js';
import { spdPower } from './helpers/roots.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-trainer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const writeDataset = (n: number, features: number, seed: number, prefix: string) => writeTeacherDataset(dir, n, features, seed, prefix);

const trainFiles = writeDataset(600, 12, 1, 'train');
const testFiles = writeDataset(300, 12, 2, 'test');
const modelFile = path.join(dir, 'mlp.onnx');
saveModel(modelFile, buildMlp({ layers: [12, 16, 4], seed: 7 }));

function options(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: modelFile,
    data: { kind: 'npy', x: trainFiles.x, y: trainFiles.y, testX: testFiles.x, testY: testFiles.y },
    validation: 100,
    epochs: 3,
    batchSize: 25,
    seed: 3,
    out: path.join(dir, out),
    optimizer: 'sngd',
    lr: 0.1,
    l2: 1e-3,
    schedule: { kind: 'constant', warmupSteps: 0, gamma: 0.1, stepEpochs: 1 },
    sngd: { ...REFERENCE_SNGD, refreshEvery: 7, emaDecay: 0.9 },
    loss: 'ce',
    side: 'auto',
    device: 'cpu',
    resume: false,
    checkpointEvery: 0,
    logEvery: 5,
    quiet: true,
    ...extra,
  };
}

/** Test-set accuracy of an exported model, computed by onnxruntime directly. */
async function exportedTestAccuracy(file: string): Promise<number> {
  const x = readNpy(testFiles.x);
  const y = readNpy(testFiles.y).data as BigInt64Array;
  const logits = (await runModel(loadModel(file), { input: x }))['logits']!.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    let best = 0;
    for (let c = 1; c < 4; c++) if (logits[i * 4 + c]! > logits[i * 4 + best]!) best = c;
    if (BigInt(best) === y[i]) correct++;
  }
  return correct / y.length;
}

const runConfig = { optimizer: 'sngd' as const, sngd: { ...REFERENCE_SNGD, emaDecay: 0.5 }, loss: 'ce' as const, side: 'weight' as const, batchSize: 8, sessionOptions: {}, source: 'mlp' };

function batch(seed: number): Record<string, Tensor> {
  const rng = new Rng(seed);
  return { input: float32Tensor([8, 12], rng.floats(96)), labels: int64Tensor([8], Array.from({ length: 8 }, () => rng.int(4))) };
}

describe('SNGD runtime', () => {
  it('identity 1: an SNGD step with fixed P is the natural-gradient step in original coordinates', async () => {
    const model = buildMlp({ layers: [12, 16, 4], seed: 7 });
    const run = await TrainingRun.create(model, runConfig);
    // Some statistics, then roots from them: P = F_λ^{-1/2}.
    for (const s of [1, 2, 3]) await run.step(batch(s), 0, 0);
    const F = run.dampedFisher();
    await run.refresh();
    const before = run.exportModel();
    // Reference gradient ∂L/∂W̃ at the current weights, from the plain (no Fisher layer) graph.
    const plain = compileModel(before, { fisher: false }).model;
    const graphs = buildTrainingGraphs(plain, { loss: 'ce' });
    const session = await createSession(graphs.train);
    const data = batch(4);
    const g = await session.run({ ...initialFeeds(plain, graphs.trainContract, data) });
    await session.release();

    const eta = 0.05;
    await run.step(data, eta, 0);
    const after = run.exportModel();
    for (const [k, layer] of run.layers.entries()) {
      const { m, d, fisherDim } = layer.rec;
      const w = before.graph.initializers.get(layer.rec.weight.name)!.tensor.data as Float32Array;
      const b = before.graph.initializers.get(layer.rec.bias!.name)!.tensor.data as Float32Array;
      const gw = g[outputName(graphs.trainContract, 'grad', layer.rec.weight.name)]!.data as Float32Array;
      const gb = g[outputName(graphs.trainContract, 'grad', layer.rec.bias!.name)]!.data as Float32Array;
      // W̃ = [W b] and its gradient (Gemm transB=1: W is [m, d]).
      const wt = mat(m, fisherDim);
      const gt = mat(m, fisherDim);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < d; j++) {
          wt.data[i * fisherDim + j] = w[i * d + j]!;
          gt.data[i * fisherDim + j] = gw[i * d + j]!;
        }
        wt.data[i * fisherDim + d] = b[i]!;
        gt.data[i * fisherDim + d] = gb[i]!;
      }
      const fInv = spdPower(mat(fisherDim, fisherDim, F[k]!), -1);
      const step = matmul(gt, fInv);
      const wa = after.graph.initializers.get(layer.rec.weight.name)!.tensor.data as Float32Array;
      const ba = after.graph.initializers.get(layer.rec.bias!.name)!.tensor.data as Float32Array;
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j <= d; j++) {
          const expected = wt.data[i * fisherDim + j]! - eta * step.data[i * fisherDim + j]!;
          const actual = j < d ? wa[i * d + j]! : ba[i]!;
          worst = Math.max(worst, Math.abs(actual - expected));
          scale = Math.max(scale, Math.abs(eta * step.data[i * fisherDim + j]!));
        }
      }
      // float32 weights: the update must match to a small fraction of its own size.
      expect(worst / scale, `layer ${layer.rec.name}`).toBeLessThan(1e-3);
    }
    await run.release();
  });

  it('identity 2: outputs are unchanged across a refresh, and the roots satisfy identity 4', async () => {
    const model = buildMlp({ layers: [12, 16, 4], seed: 8 });
    const run = await TrainingRun.create(model, { ...runConfig, side: 'activation' });
    for (const s of [1, 2, 3, 4]) await run.step(batch(s), 0.1, 1e-3);
    const feeds = { input: batch(9).input! };
    const before = await runModel(run.exportModel(), feeds);
    const F = run.dampedFisher();
    const roots = await run.refresh();
    expect(roots.every((r) => r.ok)).toBe(true);
    expect(maxRelError(await runModel(run.exportModel(), feeds), before)).toBeLessThan(1e-5);
    for (const [k, r] of roots.entries()) {
      const d = run.layers[k]!.rec.fisherDim;
      const S = mat(d, d, r.S);
      const P = mat(d, d, r.P);
      const f = mat(d, d, F[k]!);
      const ss = matmul(S, S);
      const sp = matmul(S, P);
      let e1 = 0;
      let e2 = 0;
      let norm = 0;
      for (let i = 0; i < d * d; i++) {
        e1 += (ss.data[i]! - f.data[i]!) ** 2;
        norm += f.data[i]! ** 2;
        e2 += (sp.data[i]! - (i % (d + 1) === 0 ? 1 : 0)) ** 2;
      }
      expect(Math.sqrt(e1 / norm)).toBeLessThan(1e-3);
      expect(Math.sqrt(e2 / d)).toBeLessThan(1e-3);
    }
    await run.release();
  });

  it("identity 2 with 'track' refreshes: outputs unchanged, PᵀP = F_λ⁻¹ up to the whitening error, kept roots untouched", async () => {
    const model = buildMlp({ layers: [12, 16, 4], seed: 8 });
    // Gate 0: every layer is corrected (none kept), so each refresh exercises the tracked remap.
    // A slow EMA (β 0.95 from I) so the drift stays within reach of a correction (gate ≤ 0.5).
    const run = await TrainingRun.create(model, { ...runConfig, side: 'activation', sngd: { ...runConfig.sngd, emaDecay: 0.95, refreshStart: 'track', refreshGate: 0 } });
    for (const s of [1, 2, 3, 4]) await run.step(batch(s), 0.1, 1e-3);
    expect((await run.refresh()).every((r) => r.ok && r.start === 'cold')).toBe(true); // the first refresh is cold
    for (const s of [5, 6]) await run.step(batch(s), 0.1, 1e-3);
    const feeds = { input: batch(9).input! };
    const before = await runModel(run.exportModel(), feeds);
    const F = run.dampedFisher();
    const roots = await run.refresh();
    expect(roots.map((r) => [r.ok, r.start, r.track!.keep, r.iterations >= 1, r.track!.gate < 0.5])).toEqual(roots.map(() => [true, 'track', false, true, true]));
    expect(maxRelError(await runModel(run.exportModel(), feeds), before)).toBeLessThan(1e-5);
    for (const [k, r] of roots.entries()) {
      const d = run.layers[k]!.rec.fisherDim;
      const P = mat(d, d, run.tensors.get(run.layers[k]!.rec.params.P)!.data as Float32Array);
      expect(Array.from(P.data)).toEqual(Array.from(r.P));
      // PᵀP = F⁻¹ ⇔ P·F·Pᵀ = I, up to the whitening error the refresh estimates (¾ρ² from its gate).
      const pfp = matmul(matmul(P, mat(d, d, F[k]!)), transpose(P));
      const spectral = Math.max(...Array.from(symmetricEigen(pfp).values, (x) => Math.abs(x - 1)));
      expect(spectral).toBeLessThan(1.6 * r.residual + 1e-4);
      expect(spectral).toBeLessThan(1.2 * r.track!.gate ** 2 + 1e-4); // ρ ≤ gate/0.85, one step leaves ≤ 0.82ρ²
    }
    // Nothing moved since: every layer is within any positive gate and keeps its roots exactly.
    const kept = await TrainingRun.create(model, { ...runConfig, side: 'activation', sngd: { ...runConfig.sngd, refreshStart: 'track', refreshGate: 0.5 } });
    for (const s of [1, 2, 3, 4]) await kept.step(batch(s), 0.1, 1e-3);
    await kept.refresh();
    const snapshot = new Map([...kept.tensors].map(([k, v]) => [k, (v.data as Float32Array).slice()]));
    const again = await kept.refresh();
    expect(again.every((r) => r.track?.keep)).toBe(true);
    for (const [k, v] of kept.tensors) expect(Array.from(v.data as Float32Array), k).toEqual(Array.from(snapshot.get(k)!));
    await run.release();
    await kept.release();
  });

  it('a run stopped mid-epoch and resumed writes the same metrics as an uninterrupted run', async () => {
    const full = await expectExactResume(options, 'sync', 37, 10);
    // Learned something: the teacher problem is separable.
    expect(full.epochs[2]!.testAccuracy).toBeGreaterThan(0.8);
  });

  it('with asynchronous refreshes too: a checkpoint taken while roots are computing resumes to the same metrics', async () => {
    const asyncSngd = { ...REFERENCE_SNGD, refreshEvery: 7, emaDecay: 0.9, asyncRefresh: true, asyncLag: 3 };
    // Checkpoint at step 8: the refresh started at step 7 is installed at step 10.
    const full = await expectExactResume(options, 'async', 12, 8, { epochs: 2, sngd: asyncSngd });
    expect(full.epochs[1]!.testAccuracy).toBeGreaterThan(0.7);
  });

  it("with 'track' refreshes too: resumed runs reproduce the metrics exactly", async () => {
    const full = await expectExactResume(options, 'track', 37, 10, { sngd: { ...REFERENCE_SNGD, refreshEvery: 7, emaDecay: 0.9, refreshStart: 'track', refreshGate: 0.05 } });
    expect(full.epochs[2]!.testAccuracy).toBeGreaterThan(0.8);
    // Asynchronous too: a checkpoint at step 16 holds the tracked refresh started at step 14 (P only).
    const asyncTrack = { ...REFERENCE_SNGD, refreshEvery: 7, emaDecay: 0.9, refreshStart: 'track' as const, refreshGate: 0.05, asyncRefresh: true, asyncLag: 3 };
    await expectExactResume(options, 'track-async', 16, 8, { epochs: 2, sngd: asyncTrack });
  });

  it("the exported model has the input model's interface and the trainer's test accuracy", async () => {
    const result = await train(options('export', { epochs: 1 }));
    const exported = loadModel(result.modelFile);
    const original = loadModel(modelFile);
    expect(exported.graph.nodes.map((n) => `${n.name}:${n.opType}`)).toEqual(original.graph.nodes.map((n) => `${n.name}:${n.opType}`));
    expect(exported.graph.inputs.map((v) => v.name)).toEqual(original.graph.inputs.map((v) => v.name));
    expect(await exportedTestAccuracy(result.modelFile)).toBe(result.epochs[0]!.testAccuracy);
  });

  it('--eval-every: evaluations inside epochs, without changing training, matching the model at that step', async () => {
    // 20 steps an epoch: evaluations at steps 10, 30, 50; the epoch ends (20, 40, 60) evaluate anyway.
    const withEvals = await train(options('evals', { evalEvery: 10 }));
    const plain = await train(options('no-evals'));
    const records = readMetrics(path.join(dir, 'evals', 'metrics.jsonl'));
    const evals = records.filter((r) => r.kind === 'eval');
    expect(evals.map((r) => [r.step, r.epoch, r.epochsDone])).toEqual([[10, 1, 0.5], [30, 2, 1.5], [50, 3, 2.5]]);
    const timeless = (rs: MetricRecord[]) => rs.map(({ seconds, trainSeconds, refreshSeconds, samplesPerSecond, peakRssMb, ...rest }) => rest);
    expect(timeless(withEvals.epochs)).toEqual(timeless(plain.epochs));
    for (const r of [...evals, ...withEvals.epochs]) {
      expect(r.trainSeconds!).toBeGreaterThan(0);
      expect(r.trainSeconds!).toBeLessThan(r.seconds);
    }
    // The model after 10 steps, exported and run by onnxruntime, has the accuracy the evaluation at step 10 reported.
    const at10 = await train(options('evals-10', { maxSteps: 10 }));
    expect(await exportedTestAccuracy(at10.modelFile)).toBe(evals[0]!.testAccuracy);
    // onEval can stop training there; the model is still written.
    const stopped = await train(options('evals-stop', { evalEvery: 10, onEval: (r) => (r.step === 30 ? 'stop' : undefined) }));
    expect([stopped.steps, stopped.epochs.length, fs.existsSync(stopped.modelFile)]).toEqual([30, 1, true]);
    await expectExactResume(options, 'evals-resume', 37, 10, { evalEvery: 6 });
  });

  it('sngdForConv (--defaults auto): a model with convolutions trains with it, an MLP with sngd', async () => {
    const imageFiles = writeDataset(60, 784, 4, 'images');
    const cnnFile = path.join(dir, 'cnn.onnx');
    saveModel(cnnFile, buildCnn({ channels: [2, 4], seed: 1 }));
    expect(hasConvolutions(loadModel(cnnFile))).toBe(true);
    expect(hasConvolutions(loadModel(modelFile))).toBe(false);
    const forConv = { ...CONV_SNGD, refreshEvery: 3 };
    const cnn = await train(options('conv-defaults', { model: cnnFile, data: { kind: 'npy', x: imageFiles.x, y: imageFiles.y }, validation: 10, epochs: 1, maxSteps: 2, sngdForConv: forConv }));
    expect(cnn.sngd).toEqual(forConv);
    const mlp = await train(options('dense-defaults', { epochs: 1, maxSteps: 2, sngdForConv: forConv }));
    expect(mlp.sngd).toEqual(options('x').sngd);
  });

  it("stops after the epoch whose onEpoch says 'stop', and still writes the model", async () => {
    const seen: number[] = [];
    const result = await train(options('stop', { epochs: 3, onEpoch: (r) => (seen.push(r.epoch), r.epoch === 2 ? 'stop' : undefined) }));
    expect(seen).toEqual([1, 2]);
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(fs.existsSync(result.modelFile)).toBe(true);
  });

  it('survives a diverging step: restores the last good parameters, raises damping, goes on', async () => {
    const messages: string[] = [];
    const model = buildMlp({ layers: [12, 16, 4], seed: 9 });
    const run = await TrainingRun.create(model, { ...runConfig, log: (m) => messages.push(m) });
    await run.step(batch(1), 0.1, 0);
    const r = await run.step(batch(2), 1e30, 0);
    expect(r.ok).toBe(true);
    const diverged = await run.step(batch(3), 0.1, 0);
    expect(diverged.ok).toBe(false);
    expect(messages.join('\n')).toMatch(/non-finite/);
    expect(run.layers.every((l) => l.damping === 10)).toBe(true);
    // Raised damping acts only through roots: a refresh is due now, not at the next multiple of T.
    expect(run.stepCount % run.config.sngd.refreshEvery).not.toBe(0);
    expect(run.refreshDue()).toBe(true);
    const F = run.dampedFisher();
    await run.refresh();
    expect(run.refreshDue()).toBe(false);
    // The installed P is F_λ^{-1/2} for the damping ×10: P·F_λ·P = I.
    for (const [k, l] of run.layers.entries()) {
      const d = l.rec.fisherDim;
      const P = mat(d, d, run.tensors.get(l.rec.params.P)!.data as Float32Array);
      const pfp = matmul(matmul(P, mat(d, d, F[k]!)), transpose(P));
      expect(pfp.data.every((v, i) => Math.abs(v - (i % (d + 1) === 0 ? 1 : 0)) < 1e-3)).toBe(true);
    }
    await run.release();
  });

  it('damping warm-up: ε_rel starts 100× larger and decays geometrically to its value', async () => {
    const run = await TrainingRun.create(buildMlp({ layers: [12, 16, 4], seed: 9 }), { ...runConfig, sngd: { ...runConfig.sngd, epsRel: 1e-3, dampingWarmup: 10 } });
    const eps: number[] = [];
    for (let i = 0; i <= 10; i++) {
      eps.push(run.epsRel());
      await run.step(batch(i), 0.01, 0);
    }
    expect(eps[0]).toBeCloseTo(1e-1, 12);
    expect(eps[5]).toBeCloseTo(1e-2, 12);
    expect(eps[10]).toBeCloseTo(1e-3, 12);
    await run.release();
  });

  it('treats a finite loss blow-up as divergence too', async () => {
    const messages: string[] = [];
    const run = await TrainingRun.create(buildMlp({ layers: [12, 16, 4], seed: 9 }), { ...runConfig, loss: 'mse', log: (m) => messages.push(m) });
    const rng = new Rng(3);
    const data = (scale: number) => ({ input: float32Tensor([8, 12], rng.floats(96)), labels: float32Tensor([8, 4], rng.floats(32, -scale, scale)) });
    for (let i = 0; i < 12; i++) expect((await run.step(data(1), 0.01, 0)).ok).toBe(true);
    const spike = await run.step(data(1e4), 0.01, 0);
    expect(Number.isFinite(spike.loss)).toBe(true);
    expect(spike.ok).toBe(false);
    expect(messages.join('\n')).toMatch(/over 10× its recent mean/);
    await run.release();
  });

  it('baselines train the same graph without Fisher layers', async () => {
    for (const optimizer of ['sgd', 'momentum', 'adam', 'adamw'] as const) {
      const result = await train(options(`baseline-${optimizer}`, { optimizer, lr: optimizer.startsWith('adam') ? 0.01 : 0.1, epochs: 2 }));
      expect(result.refreshSeconds).toBe(0);
      expect(result.epochs[1]!.testAccuracy, optimizer).toBeGreaterThan(0.6);
    }
  });

  it('evaluation reads the running statistics batch norm learned in training, as the exported model does', async () => {
    // 12 → Gemm 16 → BatchNormalization → Relu → Gemm 4: the running mean and variance move off 0 and 1.
    const rng = new Rng(11);
    const b = new GraphBuilder('mlp_bn');
    const w = (name: string, dims: number[]) => b.init(name, float32Tensor(dims, rng.floats(dims[0]! * (dims[1] ?? 1), -0.3, 0.3)));
    const fill = (name: string, v: number) => b.init(name, float32Tensor([16], new Float32Array(16).fill(v)));
    let h = b.op('Gemm', [b.input('input', 'float32', ['N', 12]), w('fc1.weight', [16, 12]), w('fc1.bias', [16])], { transB: 1 });
    h = b.op('Relu', [b.op('BatchNormalization', [h, fill('bn.weight', 1), fill('bn.bias', 0), fill('bn.running_mean', 0), fill('bn.running_var', 1)], { momentum: 0.9 })]);
    h = b.op('Gemm', [h, w('fc2.weight', [4, 16]), w('fc2.bias', [4])], { transB: 1 }, { output: 'logits' });
    b.output(h, 'float32', ['N', 4]);
    const run = await TrainingRun.create(b.build(), { ...runConfig, optimizer: 'adam' });
    for (let s = 0; s < 20; s++) await run.step(batch(s), 0.01, 0);
    expect(run.evalContract.inputs.filter((i) => i.role === 'state').map((i) => i.name).sort()).toEqual(['bn.running_mean', 'bn.running_var']);
    const x = batch(99).input!;
    const labels = batch(99).labels!.data as BigInt64Array;
    const dataset = { name: 'batch', sampleSize: 12, sampleShape: [12], count: 8, x: x.data as Float32Array, labels: { kind: 'class' as const, data: labels, classes: 4, labelShape: [] } };
    const evaluated = await run.evaluate(dataset, [12]);
    const logits = (await runModel(run.exportModel(), { input: x }))['logits']!.data as Float32Array;
    let loss = 0;
    for (let i = 0; i < 8; i++) {
      const row = Array.from(logits.subarray(i * 4, i * 4 + 4));
      const top = Math.max(...row);
      loss += top + Math.log(row.reduce((a, v) => a + Math.exp(v - top), 0)) - row[Number(labels[i])]!;
    }
    expect(Math.abs(evaluated.loss - loss / 8)).toBeLessThan(1e-5);
    await run.release();
  });

  it('refuses data that does not fit the model before training starts', async () => {
    const bad = writeDataset(50, 10, 5, 'bad');
    await expect(train(options('bad', { validation: 0, data: { kind: 'npy', x: bad.x, y: bad.y } }))).rejects.toThrow(/takes samples of shape \[12\].*have 10 values/);
    await expect(train(options('bad', { loss: 'mse' }))).rejects.toThrow(/needs float targets/);
  });
});
