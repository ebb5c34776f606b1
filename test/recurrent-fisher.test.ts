/**
 * Local Fisher layers for LSTM, GRU and RNN (SNGD.md §5 "Recurrent"): one per input stream and
 * direction, on the weight side, feeding the original node. Checked here: (a) the rebuilt graph
 * computes the original function with identity and random roots; (b) folding restores the
 * original node, names, inputs, outputs and values; (c) the statistics equal a float64
 * recomputation from the model's own Y; (d) the gradient identity ∂L/∂W̃′ = (∂L/∂W̃)·Pᵀ for a
 * recurrent Fisher layer; (e) a short TrainingRun lowers the loss and exports to the original
 * recurrent node types with the trained function.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/builder.js';
import { buildLstmLm } from '../models/lstm-lm.js';
import { fold } from '../passes/fold.js';
import { compileModel } from '../passes/compile.js';
import { reconstruct } from '../passes/reconstruct/index.js';
import { readLayerRecords } from '../passes/reconstruct/record.js';
import { remapLayer } from '../passes/reconstruct/remap.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import type { Model } from '../src/ir/graph.js';
import { decomposeRecurrent } from '../passes/recurrent/decompose.js';
import { serializeNode } from '../passes/reconstruct/record.js';
import { mat, matmul, randomOrthogonal, randomSpd, transpose } from '../src/numerics/linalg.js';
import { Rng } from '../src/numerics/random.js';
import { elementCount, float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { createSession, runModel } from '../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun } from '../runtime/run.js';
import { maxRelError } from './helpers/compare.js';
import { signature, withRandomRoots } from './helpers/roots.js';
import { initialFeeds, outputName } from './helpers/step-check.js';
import { zooModels } from './fixtures/zoo.js';

const TOL = 1e-5;
const [T, N, I, H] = [5, 3, 4, 3];
const GATES = { LSTM: 4, GRU: 3, RNN: 1 } as const;

interface RecCase {
  label: string;
  op: 'LSTM' | 'GRU' | 'RNN';
  direction: 'forward' | 'reverse' | 'bidirectional';
  bias: boolean;
  /** Initial states (initial_h, and initial_c for LSTM) as initializers. */
  init: boolean;
  layout?: 0 | 1;
  /** Y is a graph output; otherwise only Y_h is, and the node's Y output is left empty. */
  useY: boolean;
  attrs?: Record<string, number>;
}

const cases: RecCase[] = [
  { label: 'LSTM forward, B, initial states, Y', op: 'LSTM', direction: 'forward', bias: true, init: true, useY: true },
  { label: 'LSTM bidirectional, B, no initial state, Y_h only', op: 'LSTM', direction: 'bidirectional', bias: true, init: false, useY: false },
  { label: 'LSTM reverse, no B, initial states', op: 'LSTM', direction: 'reverse', bias: false, init: true, useY: true },
  { label: 'LSTM bidirectional layout 1, B, initial states', op: 'LSTM', direction: 'bidirectional', bias: true, init: true, layout: 1, useY: true },
  { label: 'GRU forward, B, initial state', op: 'GRU', direction: 'forward', bias: true, init: true, useY: true },
  { label: 'GRU bidirectional linear_before_reset, no B, Y_h only', op: 'GRU', direction: 'bidirectional', bias: false, init: false, useY: false, attrs: { linear_before_reset: 1 } },
  { label: 'GRU reverse linear_before_reset, B, initial state', op: 'GRU', direction: 'reverse', bias: true, init: true, useY: true, attrs: { linear_before_reset: 1 } },
  { label: 'RNN reverse, B, initial state, Y_h only', op: 'RNN', direction: 'reverse', bias: true, init: true, useY: false },
  { label: 'RNN bidirectional layout 1, no B', op: 'RNN', direction: 'bidirectional', bias: false, init: false, layout: 1, useY: true },
];

function rand(rng: Rng, dims: number[], scale = 0.5): Tensor {
  return float32Tensor(dims, rng.floats(elementCount(dims), -scale, scale));
}

/** One recurrent node on x; the outputs named in the case. */
function buildCase(c: RecCase, seed = 1): { model: Model; feeds: Record<string, Tensor> } {
  const rng = new Rng(seed);
  const layout = c.layout ?? 0;
  const D = c.direction === 'bidirectional' ? 2 : 1;
  const G = GATES[c.op];
  const b = new GraphBuilder(c.op.toLowerCase(), 17);
  const x = b.input('x', 'float32', layout === 0 ? [T, 'N', I] : ['N', T, I]);
  const stateDims = layout === 0 ? [D, N, H] : [N, D, H];
  const inputs = [
    x,
    b.init('W', rand(rng, [D, G * H, I])),
    b.init('R', rand(rng, [D, G * H, H])),
    c.bias ? b.init('B', rand(rng, [D, 2 * G * H])) : '',
    '',
    c.init ? b.init('initial_h', rand(rng, stateDims)) : '',
    c.init && c.op === 'LSTM' ? b.init('initial_c', rand(rng, stateDims)) : '',
  ];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const attrs: Record<string, number | string> = { hidden_size: H, direction: c.direction, ...(c.attrs ?? {}) };
  if (layout === 1) attrs.layout = 1;
  const outs = b.opN(c.op, inputs, c.op === 'LSTM' ? 3 : 2, attrs, { name: 'rec' });
  if (c.useY) b.output(outs[0]!, 'float32');
  b.output(outs[1]!, 'float32');
  const model = b.build();
  if (!c.useY) model.graph.nodes.find((n) => n.name === 'rec')!.outputs[0] = '';
  return { model, feeds: { x: rand(rng, layout === 0 ? [T, N, I] : [N, T, I], 1) } };
}


/** onnxruntime's CPU kernels reject layout 1: such models run unrolled (passes/recurrent). */
async function run(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const batchwise = model.graph.nodes.some((n) => n.attrs.some((a) => a.name === 'layout' && Number(a.i) === 1));
  return runModel(batchwise ? decomposeRecurrent(model) : model, feeds);
}

async function checkRebuildAndFold(model: Model, feeds: Record<string, Tensor>, expectedRecords: number): Promise<void> {
  const reference = await run(model, feeds);
  const rebuilt = reconstruct(model);
  expect(rebuilt.layers.filter((r) => r.kind === 'Recurrent')).toHaveLength(expectedRecords);
  expect(rebuilt.skipped.filter((s) => ['LSTM', 'GRU', 'RNN'].includes(s.op))).toEqual([]);
  // (a) identity roots and random roots: the same function.
  expect(maxRelError(await run(rebuilt.model, feeds), reference)).toBeLessThanOrEqual(TOL);
  const spd = withRandomRoots(rebuilt.model, 7);
  expect(maxRelError(await run(spd, feeds), reference)).toBeLessThanOrEqual(TOL);
  // (b) folding restores the original graph; with identity roots exactly.
  for (const folded of [fold(spd), fold(rebuilt.model)]) {
    expect(signature(folded)).toEqual(signature(model));
    for (const n of model.graph.nodes) {
      const f = folded.graph.nodes.find((x) => x.name === n.name)!;
      expect(f.opType).toBe(n.opType);
      expect(serializeNode(f)).toEqual(serializeNode(n));
    }
    expect(maxRelError(await run(folded, feeds), reference)).toBeLessThanOrEqual(TOL);
  }
  const exact = fold(rebuilt.model);
  for (const [name, init] of model.graph.initializers) {
    expect(exact.graph.initializers.get(name)!.tensor.dims).toEqual(init.tensor.dims);
    expect(Array.from(exact.graph.initializers.get(name)!.tensor.data as Float32Array)).toEqual(Array.from(init.tensor.data as Float32Array));
  }
}

describe('recurrent local Fisher layers: reconstruction and folding', () => {
  it.each(cases.map((c) => [c.label, c] as const))('%s', async (_label, c) => {
    const { model, feeds } = buildCase(c);
    const D = c.direction === 'bidirectional' ? 2 : 1;
    await checkRebuildAndFold(model, feeds, 2 * D);
    const recs = readLayerRecords(reconstruct(model).model);
    const dirs = c.direction === 'bidirectional' ? ['forward', 'reverse'] : [c.direction];
    expect(recs.map((r) => r.name).sort()).toEqual(dirs.flatMap((d) => [`rec/W/${d}`, `rec/R/${d}`]).sort());
    for (const r of recs) {
      expect(r.op).toBe(c.op);
      expect(r.side).toBe('weight');
      expect(r.m).toBe(GATES[c.op] * H);
      expect(r.fisherDim).toBe((r.recurrent!.stream === 'W' ? I : H) + (c.bias ? 1 : 0));
    }
  });

  it.each([['text_rnn', 8], ['fixed_rnn', 4]] as const)('zoo %s: every recurrent node rebuilt, same function, folds back', async (name, count) => {
    const z = zooModels().find((m) => m.name === name)!;
    const { model } = compileModel(z.model, {});
    // compileModel upgraded the opset and rebuilt the dense layers too; fold gives the upgraded original.
    const recs = readLayerRecords(model).filter((r) => r.kind === 'Recurrent');
    expect(recs).toHaveLength(count);
    const folded = fold(withRandomRoots(model, 3));
    const ops = (m: Model) => m.graph.nodes.map((n) => n.opType).sort();
    expect(ops(folded)).toEqual(ops(z.model));
    const feeds = z.feeds(3);
    expect(maxRelError(await run(folded, feeds), await run(z.model, feeds))).toBeLessThanOrEqual(TOL);
    await checkRebuildAndFold(folded, feeds, count);
  });

  it('the manifest lists each stream and direction with op LSTM', () => {
    const { model } = buildCase(cases[1]!);
    const { manifest } = compileModel(model, {});
    expect(manifest.layers.map((l) => [l.name, l.op, l.weight, l.recurrent?.stream, l.recurrent?.direction])).toEqual([
      ['rec/W/forward', 'LSTM', 'W', 'W', 'forward'],
      ['rec/R/forward', 'LSTM', 'R', 'R', 'forward'],
      ['rec/W/reverse', 'LSTM', 'W', 'W', 'reverse'],
      ['rec/R/reverse', 'LSTM', 'R', 'R', 'reverse'],
    ]);
    expect(manifest.skipped).toEqual([]);
  });
});

describe('recurrent Fisher statistics', () => {
  const statCases = [cases[0]!, cases[3]!, cases[5]!, cases[8]!].map((c) => ({ ...c, useY: true }));
  it.each(statCases.map((c) => [c.label, c] as const))('%s: (1/R)·x̃ᵀx̃ per stream and direction equals a float64 recomputation from Y', async (_label, c) => {
    const { model, feeds } = buildCase(c, 4);
    const layout = c.layout ?? 0;
    const D = c.direction === 'bidirectional' ? 2 : 1;
    const reference = await run(model, feeds);
    const y = reference[model.graph.outputs[0]!.name]!.data as Float32Array;
    const x = feeds.x!.data as Float32Array;
    const h0 = c.init ? (model.graph.initializers.get('initial_h')!.tensor.data as Float32Array) : undefined;
    const { model: rebuilt } = compileModel(model, {});
    const graphs = buildTrainingGraphs(rebuilt, { loss: 'mse' });
    const labels = float32Tensor(reference[model.graph.outputs[0]!.name]!.dims, new Rng(5).floats(y.length));
    const s = await createSession(graphs.train);
    const out = await s.run(initialFeeds(rebuilt, graphs.trainContract, { x: feeds.x!, labels }));
    await s.release();
    const yAt = (t: number, d: number, n: number, k: number) => y[layout === 0 ? ((t * D + d) * N + n) * H + k : ((n * T + t) * D + d) * H + k]!;
    const xAt = (t: number, n: number, k: number) => x[layout === 0 ? (t * N + n) * I + k : (n * T + t) * I + k]!;
    const h0At = (d: number, n: number, k: number) => (h0 ? h0[layout === 0 ? (d * N + n) * H + k : (n * D + d) * H + k]! : 0);
    for (const rec of readLayerRecords(rebuilt)) {
      const info = rec.recurrent!;
      const d = info.direction;
      const rows: number[][] = [];
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < N; n++) {
          if (info.stream === 'W') {
            rows.push(Array.from({ length: I }, (_, k) => xAt(t, n, k)));
          } else {
            // h_{t−1} of step t: forward Y[t−1] (initial at t = 0); reverse Y[t+1] (initial at T−1).
            const prev = info.reverse ? t + 1 : t - 1;
            rows.push(Array.from({ length: H }, (_, k) => (prev < 0 || prev >= T ? h0At(d, n, k) : yAt(prev, d, n, k))));
          }
        }
      }
      if (rec.hasBias) rows.forEach((r) => r.push(1));
      const fd = rec.fisherDim;
      const stat = out[outputName(graphs.trainContract, 'stat', rec.params.P)]!;
      expect(stat.dims).toEqual([fd, fd]);
      const got = stat.data as Float32Array;
      for (let i = 0; i < fd; i++) {
        for (let j = 0; j < fd; j++) {
          const want = rows.reduce((a, r) => a + r[i]! * r[j]!, 0) / rows.length;
          expect(Math.abs(got[i * fd + j]! - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
        }
      }
    }
  });
});

describe('recurrent gradient identity', () => {
  it.each(['W', 'R'] as const)('∂L/∂W̃′ = (∂L/∂W̃)·Pᵀ for the %s stream of a bidirectional LSTM (non-symmetric P)', async (stream) => {
    const rng = new Rng(9);
    const { model, feeds } = buildCase(cases[3]!, 6);
    const { model: plainRoots } = compileModel(model, {});
    const ref = await run(model, feeds);
    const labels = float32Tensor(ref[model.graph.outputs[0]!.name]!.dims, rng.floats(elementCount(ref[model.graph.outputs[0]!.name]!.dims)));
    const data = { x: feeds.x!, labels };
    const g1graphs = buildTrainingGraphs(plainRoots, { loss: 'mse' });
    const s1 = await createSession(g1graphs.train);
    const g1 = await s1.run(initialFeeds(plainRoots, g1graphs.trainContract, data));
    await s1.release();
    const rec = readLayerRecords(plainRoots).find((r) => r.name === `rec/${stream}/reverse`)!;
    const { P: p0, S: s0 } = randomSpd(rec.fisherDim, rng);
    const q = randomOrthogonal(rec.fisherDim, rng);
    const P = matmul(q, p0);
    const spd = remapLayer(plainRoots, rec.name, P, matmul(s0, transpose(q)));
    const g2graphs = buildTrainingGraphs(spd, { loss: 'mse' });
    const s2 = await createSession(g2graphs.train);
    const g2 = await s2.run(initialFeeds(spd, g2graphs.trainContract, data));
    await s2.release();
    const dW = mat(rec.m, rec.fisherDim, g1[outputName(g1graphs.trainContract, 'grad', rec.params.W)]!.data as Float32Array);
    const expected = matmul(dW, transpose(P));
    const actual = g2[outputName(g2graphs.trainContract, 'grad', rec.params.W)]!.data as Float32Array;
    const scale = Math.max(...expected.data.map(Math.abs));
    const worst = Math.max(...expected.data.map((v, i) => Math.abs(v - actual[i]!)));
    expect(scale).toBeGreaterThan(0);
    expect(worst / scale).toBeLessThan(1e-4);
  });
});

describe('recurrent training run', () => {
  it.each(['LSTM', 'GRU', 'RNN'] as const)('%s: 100 SNGD steps lower the mse loss; the export has the original node types and the trained function', async (op) => {
    const c: RecCase = { label: op, op, direction: op === 'LSTM' ? 'bidirectional' : 'forward', bias: true, init: false, useY: true };
    const { model } = buildCase(c, 12);
    const rng = new Rng(13);
    // Targets from a teacher of the same architecture (other weights): a loss the student can lower.
    const teacher = buildCase(c, 99).model;
    const batches = await Promise.all(Array.from({ length: 4 }, async () => {
      const x = rand(rng, [T, N, I], 1);
      return { x, labels: (await runModel(teacher, { x }))[teacher.graph.outputs[0]!.name]! };
    }));
    const training = await TrainingRun.create(model, {
      optimizer: 'sngd', sngd: { ...REFERENCE_SNGD, emaDecay: 0.9, refreshEvery: 20 }, loss: 'mse', side: 'auto', batchSize: N, sessionOptions: {}, source: op,
    });
    try {
      expect(training.layers.filter((l) => l.rec.kind === 'Recurrent')).toHaveLength(c.direction === 'bidirectional' ? 4 : 2);
      const losses: number[] = [];
      for (let step = 0; step < 100; step++) {
        const r = await training.step(batches[step % batches.length]!, 0.1, 0);
        expect(r.ok).toBe(true);
        losses.push(r.loss);
        if (training.refreshDue()) await training.refresh();
      }
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(losses.slice(-8))).toBeLessThan(0.7 * mean(losses.slice(0, 8)));
      const exported = training.exportModel();
      expect(exported.graph.nodes.map((n) => n.opType).sort()).toEqual(model.graph.nodes.map((n) => n.opType).sort());
      expect(signature(exported).nodes).toEqual(signature(model).nodes);
      const feeds = { x: batches[0]!.x };
      expect(maxRelError(await runModel(exported, feeds), await runModel(training.rebuilt, feeds))).toBeLessThanOrEqual(TOL);
      // The trained weights differ from the starting ones.
      expect(Array.from(exported.graph.initializers.get('W')!.tensor.data as Float32Array)).not.toEqual(Array.from(model.graph.initializers.get('W')!.tensor.data as Float32Array));
    } finally {
      await training.release();
    }
  });
});

describe('character LSTM language model (models/lstm-lm.ts)', () => {
  it('rebuilds LSTM streams and the head, defers the embedding, and SNGD lowers the next-character loss', async () => {
    const [V, L, B] = [6, 10, 4];
    const model = buildLstmLm({ vocab: V, embed: 5, hidden: 8, seqLen: L, seed: 3 });
    const { model: rebuilt, manifest } = compileModel(model, {});
    expect(manifest.layers.map((l) => `${l.name}:${l.op}`)).toEqual(['head:MatMul', 'lstm/W/forward:LSTM', 'lstm/R/forward:LSTM']);
    expect(manifest.skipped.map((s) => s.op)).toEqual(['Gather']);
    // A periodic text: the next character is predictable from the previous ones.
    const text = Array.from({ length: 200 }, (_, i) => [0, 1, 2, 3, 1, 4, 5][i % 7]!);
    const rng = new Rng(4);
    const batch = () => {
      const starts = Array.from({ length: B }, () => rng.int(text.length - L - 1));
      const tokens = starts.flatMap((s) => text.slice(s, s + L));
      const next = starts.flatMap((s) => text.slice(s + 1, s + L + 1));
      return { tokens: { dtype: 'int64' as const, dims: [B, L], data: BigInt64Array.from(tokens.map(BigInt)) }, labels: { dtype: 'int64' as const, dims: [B, L], data: BigInt64Array.from(next.map(BigInt)) } };
    };
    const probe = { tokens: batch().tokens };
    const reference = await runModel(model, probe);
    expect(reference.logits!.dims).toEqual([B, V, L]);
    expect(maxRelError(await runModel(rebuilt, probe), reference)).toBeLessThanOrEqual(TOL);
    const training = await TrainingRun.create(model, { optimizer: 'sngd', sngd: { ...REFERENCE_SNGD, emaDecay: 0.9, refreshEvery: 10 }, loss: 'ce', side: 'auto', batchSize: B, sessionOptions: {}, source: 'lstm-lm' });
    try {
      const losses: number[] = [];
      for (let step = 0; step < 60; step++) {
        losses.push((await training.step(batch(), 0.2, 0)).loss);
        if (training.refreshDue()) await training.refresh();
      }
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(losses.slice(-5))).toBeLessThan(0.7 * mean(losses.slice(0, 5)));
      const exported = training.exportModel();
      expect(signature(exported).nodes).toEqual(signature(model).nodes);
      const feeds = { tokens: batch().tokens };
      expect(maxRelError(await runModel(exported, feeds), await runModel(training.rebuilt, feeds))).toBeLessThanOrEqual(TOL);
    } finally {
      await training.release();
    }
  });
});
