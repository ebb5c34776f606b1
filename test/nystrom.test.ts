/**
 * Nyström local Fisher layers (SNGD.md §4):
 *   (a) the algebra: S·P = I and P² = (F̂ + λI)^{-1} (float64)
 *   (b) reconstruct: outputs unchanged with identity and random roots; fold restores the graph
 *   (c) the statistic outputs (landmark columns, diagonal) against float64
 *   (d) an SNGD step with fixed Nyström P is W̃ ← W̃ − η·(∂L/∂W̃)·P² (float64 reference)
 *   (e) a refresh keeps the function; checkpoints resume exactly
 *   (f) MNIST 784-80-80-80-10 with a Nyström first layer trains past 90% in one epoch
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { fold } from '../passes/fold.js';
import { readLayerRecords, nystromOf } from '../passes/reconstruct/record.js';
import { remapNystromLayer } from '../passes/reconstruct/remap.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import { symmetricEigen } from '../src/numerics/eigen.js';
import { identity, mat, matmul, randomOrthogonal, transpose, type Mat } from '../src/numerics/linalg.js';
import { applyLowRankRight, applyLowRankRightBy, hostGemm, lowRankDense, nystromCoefficients, nystromEigen, nystromRoots, orthonormalityError } from '../src/numerics/nystrom.js';
import { Rng } from '../src/numerics/random.js';
import { saveModel } from '../src/onnx/export.js';
import { float32Tensor, int64Tensor, type Tensor } from '../src/onnx/tensor.js';
import { OrtGemm } from '../runtime/gemm.js';
import { createSession, runModel } from '../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun } from '../runtime/run.js';
import { train, type TrainOptions } from '../runtime/trainer.js';
import { maxRelError } from './helpers/compare.js';
import { expectExactResume } from './helpers/resume.js';
import { teacherTrainOptions } from './helpers/teacher-data.js';
import { initialFeeds, outputName } from './helpers/step-check.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-nystrom-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function maxAbsDiff(a: Mat, b: Mat): number {
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!));
  return worst;
}

/** Pseudo-inverse of a symmetric PSD matrix with the same relative cut as the refresh. */
function pinv(a: Mat): Mat {
  const e = symmetricEigen(a);
  const n = a.rows;
  const max = Math.max(...e.values);
  const out = mat(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) if (e.values[k]! > 1e-8 * max) s += (e.vectors.data[i * n + k]! * e.vectors.data[j * n + k]!) / e.values[k]!;
      out.data[i * n + j] = s;
    }
  }
  return out;
}

/** F = G·Gᵀ/r + noise·I-ish: low rank plus a small full-rank part. */
function lowRankPlusNoise(d: number, r: number, noise: number, rng: Rng): Mat {
  const g = mat(d, r, Array.from({ length: d * r }, () => rng.normal()));
  const f = matmul(g, transpose(g));
  const h = mat(d, d, Array.from({ length: d * d }, () => rng.normal() * noise));
  const hh = matmul(h, transpose(h));
  for (let i = 0; i < f.data.length; i++) f.data[i] = f.data[i]! / r + hh.data[i]!;
  return f;
}

function columnsOf(f: Mat, idx: number[]): Float64Array {
  const d = f.rows;
  const k = idx.length;
  const c = new Float64Array(d * k);
  for (let i = 0; i < d; i++) idx.forEach((col, j) => (c[i * k + j] = f.data[i * d + col]!));
  return c;
}

describe('Nyström algebra (float64)', () => {
  it.each([[0], [0.3]])('S·P = I and P² = (F̂ + μ(I − UUᵀ) + λI)^{-1}, μ = %d', async (mu) => {
    const rng = new Rng(21);
    const d = 40;
    const k = 12;
    const f = lowRankPlusNoise(d, 8, 0.05, rng);
    const idx = [0, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    const c = columnsOf(f, idx);
    const lambda = 0.05;
    const r = await nystromRoots(c, d, idx, lambda, mu);
    expect(orthonormalityError(r.U)).toBeLessThan(1e-12);
    const P = lowRankDense(r.U, r.a, r.s);
    const S = lowRankDense(r.U, r.b, r.t);
    expect(maxAbsDiff(matmul(S, P), identity(d))).toBeLessThan(1e-10);
    // F̂ = C·W⁺·Cᵀ computed directly.
    const cm = mat(d, k, c);
    const w = mat(k, k);
    idx.forEach((row, i) => idx.forEach((_, j) => (w.data[i * k + j] = c[row * k + j]!)));
    const fHat = matmul(matmul(cm, pinv(w)), transpose(cm));
    const uut = matmul(r.U, transpose(r.U));
    const target = mat(d, d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) target.data[i * d + j] = fHat.data[i * d + j]! + mu * ((i === j ? 1 : 0) - uut.data[i * d + j]!) + (i === j ? lambda : 0);
    const p2target = matmul(P, P);
    // (P²)·(F̂ + μ(I − UUᵀ) + λI) = I.
    expect(maxAbsDiff(matmul(p2target, target), identity(d))).toBeLessThan(1e-8);
    // P is symmetric and S² is the damped approximation itself.
    expect(maxAbsDiff(P, transpose(P))).toBeLessThan(1e-12);
    expect(maxAbsDiff(matmul(S, S), target)).toBeLessThan(1e-8);
  });

  it('recovers F exactly when its rank is at most k and the landmarks span it', async () => {
    const rng = new Rng(22);
    const d = 30;
    const f = lowRankPlusNoise(d, 5, 0, rng);
    const idx = [1, 4, 9, 16, 25, 27, 28];
    const { U, lambdas } = await nystromEigen(columnsOf(f, idx), d, idx);
    const rebuilt = lowRankDense(U, lambdas, 0);
    expect(maxAbsDiff(rebuilt, f) / Math.max(...f.data.map(Math.abs))).toBeLessThan(1e-9);
    // Rank 5 < k = 7: two eigenvalues were cut; U is still orthonormal (padded).
    expect(lambdas.filter((l) => l > 1e-9).length).toBe(5);
    expect(orthonormalityError(U)).toBeLessThan(1e-12);
  });
});

describe('Nyström refresh products on onnxruntime (float64 Gemm)', () => {
  it('every transpose form equals the host product', async () => {
    const rng = new Rng(31);
    const ort = new OrtGemm();
    try {
      const a = mat(7, 5, Array.from({ length: 35 }, () => rng.normal()));
      const b = mat(7, 3, Array.from({ length: 21 }, () => rng.normal()));
      const c = mat(3, 5, Array.from({ length: 15 }, () => rng.normal()));
      for (const [x, y, t] of [[a, c, { transB: true }], [a, b, { transA: true }], [b, c, {}], [c, b, { transA: true, transB: true }]] as const) {
        expect(maxAbsDiff(await ort.gemm(x, y, t), await hostGemm(x, y, t))).toBeLessThan(1e-12);
      }
    } finally {
      await ort.release();
    }
  });

  it('the eigenvectors of F̂ are orthonormal to 1e-14 and rebuild F̂ over a 1e-7 spectral range, as on the host', async () => {
    // F = Q·diag(λ)·Qᵀ with λ from 1 down to 1e-7 (a flattened conv stack's Fisher spans decades).
    const rng = new Rng(32);
    const d = 120;
    const k = 24;
    const q = randomOrthogonal(d, rng, 40);
    const f = mat(d, d);
    for (let c = 0; c < 20; c++) {
      const l = 10 ** (-7 * (c / 19));
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) f.data[i * d + j]! += l * q.data[i * d + c]! * q.data[j * d + c]!;
    }
    const idx = Array.from({ length: k }, (_, i) => i * 5);
    const ort = new OrtGemm();
    try {
      const host = await nystromEigen(columnsOf(f, idx), d, idx);
      const onOrt = await nystromEigen(columnsOf(f, idx), d, idx, ort.gemm);
      for (const { U, lambdas } of [host, onOrt]) {
        expect(orthonormalityError(U)).toBeLessThan(1e-14);
        expect(maxAbsDiff(lowRankDense(U, lambdas, 0), f)).toBeLessThan(1e-10);
      }
      expect(maxAbsDiff(lowRankDense(onOrt.U, onOrt.lambdas, 0), lowRankDense(host.U, host.lambdas, 0))).toBeLessThan(1e-12);
      const x = mat(3, d, Array.from({ length: 3 * d }, () => rng.normal()));
      expect(maxAbsDiff(await applyLowRankRightBy(x, host.U, host.lambdas, 0.3, ort.gemm), applyLowRankRight(x, host.U, host.lambdas, 0.3))).toBeLessThan(1e-12);
    } finally {
      await ort.release();
    }
  });
});

/** Random orthonormal U (d × k) and roots from random eigenvalues. */
async function randomRoots(d: number, k: number, rng: Rng) {
  const g = mat(d, k, Array.from({ length: d * k }, () => rng.normal()));
  const { U } = await nystromEigen(columnsOf(matmul(g, transpose(g)), Array.from({ length: k }, (_, i) => i * Math.floor(d / k))), d, Array.from({ length: k }, (_, i) => i * Math.floor(d / k)));
  const lambdas = Float64Array.from({ length: k }, () => rng.uniform(0, 3));
  return { U, lambdas, ...nystromCoefficients(lambdas, rng.uniform(0.2, 0.5), 0) };
}

function batch(seed: number, n: number, features: number, classes: number): Record<string, Tensor> {
  const rng = new Rng(seed);
  return { input: float32Tensor([n, features], rng.floats(n * features)), labels: int64Tensor([n], Array.from({ length: n }, () => rng.int(classes))) };
}

describe('Nyström Fisher layers in the graph', () => {
  const model = buildMlp({ layers: [30, 8, 4], seed: 3 });
  const compiled = () => compileModel(model, { maxFisherDim: 16, nystromRank: 6, loss: 'ce' });

  it('only layers above the budget are Nyström (weight side), described in the manifest and records', () => {
    const { manifest, model: rebuilt } = compiled();
    expect(manifest.layers.map((l) => l.fisher.kind)).toEqual(['nystrom', 'dense']);
    const f = manifest.layers[0]!.fisher;
    expect(f).toMatchObject({ kind: 'nystrom', rank: 6, landmarks: 'uniform' });
    expect(manifest.layers[0]!.side).toBe('weight');
    const rec = readLayerRecords(rebuilt)[0]!;
    const ny = nystromOf(rec)!;
    const index = rebuilt.graph.initializers.get(ny.index)!.tensor.data as BigInt64Array;
    expect(index.length).toBe(6);
    expect(index.includes(30n)).toBe(true); // the homogeneous coordinate
    expect(manifest.train!.inputs.filter((i) => i.role === 'fisher').map((i) => i.name)).toEqual([ny.U, ny.a, ny.s, ny.index, readLayerRecords(rebuilt)[1]!.params.P]);
  });

  it('outputs are unchanged with identity and with random roots; fold restores the original graph', async () => {
    const rng = new Rng(4);
    const x = { input: float32Tensor([5, 30], rng.floats(150)) };
    const original = await runModel(model, x);
    const { model: rebuilt } = compiled();
    expect(maxRelError(await runModel(rebuilt, x), original)).toBeLessThan(1e-5);
    const rec = readLayerRecords(rebuilt)[0]!;
    const remapped = remapNystromLayer(rebuilt, rec.name, await randomRoots(31, 6, rng));
    expect(maxRelError(await runModel(remapped, x), original)).toBeLessThan(1e-5);
    const folded = fold(remapped);
    expect(folded.graph.nodes.map((n) => `${n.name}:${n.opType}`)).toEqual(model.graph.nodes.map((n) => `${n.name}:${n.opType}`));
    expect([...folded.graph.initializers.keys()].sort()).toEqual([...model.graph.initializers.keys()].sort());
    for (const [k, v] of model.graph.initializers) {
      const a = folded.graph.initializers.get(k)!.tensor.data as Float32Array;
      const b = v.tensor.data as Float32Array;
      expect(Math.max(...Array.from(a, (y, i) => Math.abs(y - b[i]!)))).toBeLessThan(1e-5);
    }
    expect(maxRelError(await runModel(folded, x), original)).toBeLessThan(1e-5);
  });

  it('statistic outputs equal the float64 landmark columns and diagonal of [x; 1]', async () => {
    const { model: rebuilt, train, manifest } = compiled();
    const contract = manifest.train!;
    const data = batch(7, 9, 30, 4);
    const s = await createSession(train!);
    const out = await s.run(initialFeeds(rebuilt, contract, data));
    await s.release();
    const rec = readLayerRecords(rebuilt)[0]!;
    const ny = nystromOf(rec)!;
    const idx = Array.from(rebuilt.graph.initializers.get(ny.index)!.tensor.data as BigInt64Array, Number);
    const cols = out[outputName(contract, 'stat', ny.U)]!.data as Float32Array;
    const diag = out[outputName(contract, 'stat', ny.s)]!.data as Float32Array;
    const xd = data.input!.data as Float32Array;
    const xt = (n: number, i: number) => (i < 30 ? xd[n * 30 + i]! : 1);
    for (let i = 0; i < 31; i++) {
      let sq = 0;
      for (let n = 0; n < 9; n++) sq += xt(n, i) ** 2;
      expect(diag[i]).toBeCloseTo(sq / 9, 5);
      idx.forEach((col, j) => {
        let sum = 0;
        for (let n = 0; n < 9; n++) sum += xt(n, i) * xt(n, col);
        expect(cols[i * 6 + j]).toBeCloseTo(sum / 9, 5);
      });
    }
  });

  it('training-graph gradient matches finite differences with random Nyström roots', async () => {
    const { checkStepGradients } = await import('./helpers/step-check.js');
    const rng = new Rng(9);
    const m = buildMlp({ layers: [30, 8, 4], seed: 3, activation: 'Tanh' });
    const { model: rebuilt } = compileModel(m, { maxFisherDim: 16, nystromRank: 6 });
    const remapped = remapNystromLayer(rebuilt, readLayerRecords(rebuilt)[0]!.name, await randomRoots(31, 6, rng));
    expect(await checkStepGradients(remapped, buildTrainingGraphs(remapped, { loss: 'ce' }), batch(3, 5, 30, 4), { seed: 2 })).toEqual([]);
  });
});

const runConfig = { optimizer: 'sngd' as const, sngd: { ...REFERENCE_SNGD, emaDecay: 0.5 }, loss: 'ce' as const, side: 'weight' as const, batchSize: 8, sessionOptions: {}, source: 'mlp', maxFisherDim: 16, nystromRank: 6 };

describe('Nyström layers in a training run', () => {
  it('an SNGD step with fixed Nyström P is W̃ ← W̃ − η·(∂L/∂W̃)·P² (float64 reference)', async () => {
    const run = await TrainingRun.create(buildMlp({ layers: [30, 12, 4], seed: 7 }), runConfig);
    for (const s of [1, 2, 3]) await run.step(batch(s, 8, 30, 4), 0, 0);
    const roots = await run.refresh();
    expect(roots.every((r) => r.ok)).toBe(true);
    const before = run.exportModel();
    const plain = compileModel(before, { fisher: false }).model;
    const graphs = buildTrainingGraphs(plain, { loss: 'ce' });
    const session = await createSession(graphs.train);
    const data = batch(4, 8, 30, 4);
    const g = await session.run(initialFeeds(plain, graphs.trainContract, data));
    await session.release();
    const eta = 0.05;
    await run.step(data, eta, 0);
    const after = run.exportModel();
    const layer = run.layers[0]!;
    const ny = nystromOf(layer.rec)!;
    const { m, d, fisherDim: dt } = layer.rec;
    const u = mat(dt, ny.rank, run.tensors.get(ny.U)!.data as Float32Array);
    const P = lowRankDense(u, run.tensors.get(ny.a)!.data as Float32Array, (run.tensors.get(ny.s)!.data as Float32Array)[0]!);
    const gw = g[outputName(graphs.trainContract, 'grad', layer.rec.weight.name)]!.data as Float32Array;
    const gb = g[outputName(graphs.trainContract, 'grad', layer.rec.bias!.name)]!.data as Float32Array;
    const gt = mat(m, dt);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < d; j++) gt.data[i * dt + j] = gw[i * d + j]!;
      gt.data[i * dt + d] = gb[i]!;
    }
    const step = matmul(gt, matmul(P, P));
    const w0 = before.graph.initializers.get(layer.rec.weight.name)!.tensor.data as Float32Array;
    const b0 = before.graph.initializers.get(layer.rec.bias!.name)!.tensor.data as Float32Array;
    const w1 = after.graph.initializers.get(layer.rec.weight.name)!.tensor.data as Float32Array;
    const b1 = after.graph.initializers.get(layer.rec.bias!.name)!.tensor.data as Float32Array;
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j <= d; j++) {
        const expected = (j < d ? w0[i * d + j]! : b0[i]!) - eta * step.data[i * dt + j]!;
        const actual = j < d ? w1[i * d + j]! : b1[i]!;
        worst = Math.max(worst, Math.abs(actual - expected));
        scale = Math.max(scale, Math.abs(eta * step.data[i * dt + j]!));
      }
    }
    expect(worst / scale).toBeLessThan(1e-3);
    await run.release();
  });

  it.each(['uniform', 'diagonal'] as const)('a refresh keeps the function (%s landmarks), with momentum', async (landmarks) => {
    const run = await TrainingRun.create(buildMlp({ layers: [30, 12, 4], seed: 8 }), { ...runConfig, optimizer: 'sngd', momentum: 0.9, landmarks });
    const feeds = { input: batch(9, 6, 30, 4).input! };
    for (let round = 0; round < 3; round++) {
      for (const s of [1, 2, 3, 4]) await run.step(batch(s + 10 * round, 8, 30, 4), 0.1, 1e-3);
      const before = await runModel(run.exportModel(), feeds);
      const roots = await run.refresh();
      expect(roots.every((r) => r.ok)).toBe(true);
      expect(maxRelError(await runModel(run.exportModel(), feeds), before)).toBeLessThan(1e-5);
    }
    if (landmarks === 'diagonal') expect(run.layers[0]!.landmarksFixed).toBe(true);
    await run.release();
  });
});

describe('Nyström training end to end', () => {
  const options = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions =>
    teacherTrainOptions(dir, out, { features: 30, layers: [30, 16, 4], momentum: 0.5 }, { maxFisherDim: 16, nystromRank: 8, landmarks: 'diagonal', ...extra });

  it('a stopped and resumed run writes the same metrics as an uninterrupted one (Nyström state round-trips)', async () => {
    const full = await expectExactResume(options, 'nystrom', 37, 10);
    expect(full.epochs[2]!.testAccuracy).toBeGreaterThan(0.8);
  });

  it('MNIST 784-80-80-80-10, --max-fisher-dim 512 --nystrom-rank 64: one epoch past 90%', async () => {
    const modelFile = path.join(dir, 'mnist-mlp.onnx');
    saveModel(modelFile, buildMlp({ layers: [784, 80, 80, 80, 10], seed: 2017 }));
    const r = await train({
      ...options('mnist'), model: modelFile, data: { kind: 'mnist' }, validation: 10000, epochs: 1, batchSize: 50, seed: 2017, lr: 0.1, momentum: undefined,
      sngd: { ...REFERENCE_SNGD }, logEvery: 0, maxFisherDim: 512, nystromRank: 64, landmarks: 'uniform',
    });
    expect(r.epochs[0]!.testAccuracy).toBeGreaterThan(0.9);
  });
});
