/**
 * `--max-fisher-dim auto` (passes/cost/choose.ts): the forms the reference models get, the rule's
 * time and memory thresholds, the form cost against the graph-based time model, the numeric and
 * all-dense settings as before, and a resumed run keeping the forms it was built with.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMaxFisherDim } from '../bin/cli-common.js';
import { buildCnnBn } from '../models/cnn-bn.js';
import { buildLstmLm } from '../models/lstm-lm.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { chooseFisherForms, formsOf, MEMORY_BUDGET, TIME_SHARE, type ChooseOptions } from '../passes/cost/choose.js';
import { costOf, DEFAULT_PROFILE } from '../passes/cost/index.js';
import { findLatestCheckpoint } from '../runtime/checkpoint.js';
import { train } from '../runtime/trainer.js';
import { DEFAULT_SNGD } from '../runtime/run.js';
import { expectSngd } from './helpers/errors.js';
import { teacherTrainOptions } from './helpers/teacher-data.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-choose-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `sngd train`'s defaults at batch 50, and `sngd-compile`'s (batch 32, T = 100, a statistic every step, ε_rel 1e-4). */
const TRAIN: ChooseOptions = { batchSize: 50, nystromRank: 64, refreshEvery: DEFAULT_SNGD.refreshEvery, statEvery: DEFAULT_SNGD.statEvery, epsRel: DEFAULT_SNGD.epsRel };
const COMPILE: ChooseOptions = { batchSize: 32, nystromRank: 64, refreshEvery: 100, statEvery: 1, epsRel: 1e-4 };

const kinds = (c: ReturnType<typeof chooseFisherForms>) => Object.fromEntries(c.layers.map((l) => [l.name, l.kind]));

describe('the reference models', () => {
  it.each([['sngd train', TRAIN], ['sngd-compile', COMPILE]])('the MNIST MLP 784-80-80-80-10 stays all dense (%s defaults)', (_label, settings) => {
    const choice = chooseFisherForms(buildMlp({ layers: [784, 80, 80, 80, 10] }), settings);
    expect(kinds(choice)).toEqual({ fc1: 'dense', fc2: 'dense', fc3: 'dense', fc4: 'dense' });
    // fc1 (d̃ = 785) is weighed and stays dense by a margin; the 81-wide layers are too small to weigh.
    const fc1 = choice.layers[0]!;
    expect(fc1.dense!.seconds / choice.plainStep!).toBeLessThan(TIME_SHARE / 1.5);
    expect(fc1.reason).toMatch(/^dense costs [\d.]+ ms\/step \([\d.]+× the plain-GD step of [\d.]+ ms; limit 30×\) and 14\.1 MiB/);
    expect(choice.layers[1]!.reason).toBe('d̃ = 81 < 4·k = 256: small layers stay dense');
  });

  it.each([['sngd train', TRAIN], ['sngd-compile', COMPILE]])('pt_mnist_cnn_bn: fc1 (d̃ = 11617) gets Nyström, every other layer dense (%s defaults)', (_label, settings) => {
    const choice = chooseFisherForms(buildCnnBn({ seed: 1 }), settings);
    expect(kinds(choice)).toEqual({ conv1: 'dense', conv2: 'dense', conv3: 'dense', fc1: 'nystrom', fc2: 'dense' });
    const fc1 = choice.layers.find((l) => l.name === 'fc1')!;
    // Both rules would send it: hundreds of plain steps, and gigabytes.
    expect(fc1.dense!.seconds / choice.plainStep!).toBeGreaterThan(10 * TIME_SHARE);
    expect(fc1.dense!.bytes).toBeGreaterThan(MEMORY_BUDGET);
    expect(fc1.nystrom!.seconds).toBeLessThan(fc1.dense!.seconds / 100);
    expect(fc1.reason).toMatch(/^dense would cost [\d.]+ s\/step \(\d+× the plain-GD step of [\d.]+ ms; limit 30×\) and 3\.0 GiB \(limit 1\.0 GiB\); Nyström k=64: [\d.]+ ms\/step, 14\.4 MiB$/);
    // What reconstruct builds from the choice: the manifest records the form and the reason.
    const { manifest } = compileModel(buildCnnBn({ seed: 1 }), { fisherForms: formsOf(choice), nystromRank: 64 });
    expect(manifest.layers.map((l) => [l.name, l.fisher.kind])).toEqual([['conv1', 'dense'], ['conv2', 'dense'], ['conv3', 'dense'], ['fc1', 'nystrom'], ['fc2', 'dense']]);
    expect(manifest.layers[3]!.fisherReason).toBe(fc1.reason);
  });

  it('the LSTM language model stays all dense: a 129-wide head, and recurrent streams have no Nyström form', () => {
    const choice = chooseFisherForms(buildLstmLm({ vocab: 72 }), { ...TRAIN, dims: { T: 32 } });
    expect(choice.layers.map((l) => [l.name, l.fisherDim, l.kind, l.reason])).toEqual([
      ['head', 129, 'dense', 'd̃ = 129 < 4·k = 256: small layers stay dense'],
      ['lstm/W/forward', 33, 'dense', 'recurrent streams have no Nyström form'],
      ['lstm/R/forward', 129, 'dense', 'recurrent streams have no Nyström form'],
    ]);
    // Nothing was large enough to weigh: the training step was not even costed.
    expect(choice.plainStep).toBeUndefined();
    const { manifest } = compileModel(buildLstmLm({ vocab: 72 }), { fisherForms: formsOf(choice) });
    expect(manifest.layers.map((l) => l.fisherReason)).toEqual(choice.layers.map((l) => l.reason));
  });
});

describe('the rule', () => {
  it('flips a Linear to Nyström where its dense cost crosses TIME_SHARE plain steps, and not before', () => {
    const at = (d: number) => {
      const c = chooseFisherForms(buildMlp({ layers: [d - 1, 80, 10] }), TRAIN);
      return { kind: c.layers[0]!.kind, share: c.layers[0]!.dense!.seconds / c.plainStep! };
    };
    const widths = [785, 1025, 1281, 1537, 2049];
    const seen = widths.map(at);
    // The dense cost grows faster than the plain step, so there is one crossing in this range …
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.share).toBeGreaterThan(seen[i - 1]!.share);
    expect(seen[0]!.kind).toBe('dense');
    expect(seen.at(-1)!.kind).toBe('nystrom');
    // … and every layer's form is the threshold's verdict.
    for (const s of seen) expect(s.kind).toBe(s.share > TIME_SHARE ? 'nystrom' : 'dense');
  });

  it('sends a layer whose time is affordable to Nyström when its dense state passes MEMORY_BUDGET', () => {
    // One output unit, a huge batch, rare statistics and refreshes: the dense form costs little
    // time next to the plain step; only d̃² decides (24 bytes each: 1 GiB is d̃ ≈ 6690).
    const settings = { ...TRAIN, batchSize: 4096, refreshEvery: 1e9, statEvery: 1e9 };
    const small = chooseFisherForms(buildMlp({ layers: [5999, 1] }), settings);
    const large = chooseFisherForms(buildMlp({ layers: [6999, 1] }), settings);
    for (const c of [small, large]) expect(c.layers[0]!.dense!.seconds / c.plainStep!).toBeLessThan(TIME_SHARE);
    expect(small.layers[0]!.kind).toBe('dense');
    expect(small.layers[0]!.dense!.bytes).toBeLessThan(MEMORY_BUDGET);
    expect(large.layers[0]!.kind).toBe('nystrom');
    expect(large.layers[0]!.reason).toMatch(/and 1\.1 GiB \(limit 1\.0 GiB\); Nyström k=64/);
  });

  it('keeps a slow dense layer when Nyström is predicted no cheaper', () => {
    // A machine whose host float64 loops (the Nyström refresh) are absurdly slow.
    const profile = { ...DEFAULT_PROFILE, host: { ...DEFAULT_PROFILE.host, f64Mac: 1e-3 } };
    const c = chooseFisherForms(buildMlp({ layers: [2048, 80, 10] }), TRAIN, profile);
    expect(c.layers[0]!.dense!.seconds / c.plainStep!).toBeGreaterThan(TIME_SHARE);
    expect(c.layers[0]!.kind).toBe('dense');
    expect(c.layers[0]!.reason).toMatch(/, but Nyström k=64: [\d.]+ s\/step, [\d.]+ MiB is no cheaper$/);
  });

  it('does not weigh a layer whose rank is not well below d̃ (rank ≥ d̃/4)', () => {
    const c = chooseFisherForms(buildMlp({ layers: [2048, 80, 10] }), { ...TRAIN, nystromRank: 600 });
    expect(c.layers[0]!.kind).toBe('dense');
    expect(c.layers[0]!.reason).toBe('d̃ = 2049 < 4·k = 2400: small layers stay dense');
  });

  it('weighs time by memory only when the training step cannot be built, and says so', () => {
    // A symbolic sequence length without --dims: the LSTM cannot be unrolled for the plain step.
    const c = chooseFisherForms(buildLstmLm({ vocab: 20, hidden: 511 }), { ...COMPILE });
    expect(c.plainStep).toBeUndefined();
    expect(c.layers[0]!.kind).toBe('dense');
    expect(c.layers[0]!.reason).toMatch(/time not weighed, no training step: .*sequence length 'T' is symbolic.* and [\d.]+ MiB \(limit 1\.0 GiB\)$/);
  });
});

describe('the form cost against the graph-based time model', () => {
  // Where both forms can be compiled, the size-based form cost (choose.ts) agrees with the cost
  // passes/cost/step.ts attributes to the layer in the compiled graphs (SNGD minus plain GD).
  const mlp = () => buildMlp({ layers: [784, 80, 80, 80, 10] });
  it.each([
    { label: 'MLP fc1 dense (d̃ = 785)', build: mlp, forms: {}, layer: 'fc1', kind: 'dense' },
    { label: 'MLP fc1 Nyström (d̃ = 785, k = 64)', build: mlp, forms: { maxFisherDim: 512 }, layer: 'fc1', kind: 'nystrom' },
    { label: 'pt_mnist_cnn_bn fc1 Nyström (d̃ = 11617, k = 64)', build: () => buildCnnBn({ seed: 1 }), forms: { maxFisherDim: 1024 }, layer: 'fc1', kind: 'nystrom' },
  ] as const)('$label: within 25 %', ({ build, forms, layer, kind }) => {
    const model = build();
    const settings = { batch: 50, optimizer: 'sngd' as const, refreshEvery: TRAIN.refreshEvery, statEvery: TRAIN.statEvery, epsRel: TRAIN.epsRel };
    const opts = { loss: 'ce' as const, l2: true, batchSize: 50, nystromRank: 64, ...forms };
    const cost = costOf(compileModel(model, { ...opts, fisher: true }), compileModel(model, { ...opts, fisher: false }), settings, DEFAULT_PROFILE);
    const l = cost.layers.find((x) => x.name === layer)!;
    expect(l.fisher.startsWith(kind)).toBe(true);
    const choice = chooseFisherForms(model, TRAIN).layers.find((x) => x.name === layer)!;
    const predicted = (kind === 'dense' ? choice.dense : choice.nystrom)!.seconds;
    expect(predicted / (l.sngd - l.plain)).toBeGreaterThan(0.75);
    expect(predicted / (l.sngd - l.plain)).toBeLessThan(1.25);
  });
});

describe('--max-fisher-dim N and none, as before', () => {
  it('a number: Nyström exactly above it, with the reason', () => {
    const { manifest } = compileModel(buildCnnBn({ seed: 1 }), { maxFisherDim: 1024, nystromRank: 16 });
    expect(manifest.layers.map((l) => [l.name, l.fisher.kind === 'nystrom' ? l.fisher.rank : l.fisher.kind])).toEqual([['conv1', 'dense'], ['conv2', 'dense'], ['conv3', 'dense'], ['fc1', 16], ['fc2', 'dense']]);
    expect(manifest.layers[3]!.fisherReason).toBe('d̃ = 11617 > --max-fisher-dim 1024');
    expect(manifest.layers[2]!.fisherReason).toBe('d̃ = 145 ≤ --max-fisher-dim 1024');
  });

  it('none (Infinity) and the library default: every layer dense, no reason recorded', () => {
    for (const options of [{ maxFisherDim: Infinity }, {}]) {
      const { manifest } = compileModel(buildMlp({ layers: [784, 80, 10] }), options);
      expect(manifest.layers.map((l) => l.fisher.kind)).toEqual(['dense', 'dense']);
      expect(manifest.layers.every((l) => l.fisherReason === undefined)).toBe(true);
    }
  });

  it("parses 'auto', 'none' and integers, and names the option on anything else", () => {
    expect(parseMaxFisherDim('auto')).toBe('auto');
    expect(parseMaxFisherDim('none')).toBe(Infinity);
    expect(parseMaxFisherDim('1024')).toBe(1024);
    for (const bad of ['0', '-3', '1.5', 'Auto', 'x']) expectSngd(() => parseMaxFisherDim(bad), `--max-fisher-dim must be 'auto', 'none' or an integer ≥ 1, got '${bad}'`);
  });
});

describe('checkpoints', () => {
  // fc1 of a 512-input MLP goes Nyström at T = 7 (a d̃³ root every 7 steps of a tiny model) and
  // stays dense at T = 10⁶: the auto choice depends on the settings.
  const options = (out: string, refreshEvery: number, extra = {}) => {
    const o = teacherTrainOptions(dir, out, { features: 512, layers: [512, 8, 4] }, { maxFisherDim: 'auto', nystromRank: 16, epochs: 1, ...extra });
    return { ...o, sngd: { ...o.sngd, refreshEvery } };
  };
  const choose = (refreshEvery: number) => chooseFisherForms(buildMlp({ layers: [512, 8, 4] }), { batchSize: 25, nystromRank: 16, refreshEvery, statEvery: 1, epsRel: 1e-4 }).layers[0]!.kind;

  it('a resumed auto run rebuilds the forms it was built with, even when its settings would choose others', async () => {
    expect([choose(7), choose(1e6)]).toEqual(['nystrom', 'dense']);
    await train(options('auto-resume', 7, { maxSteps: 6, checkpointEvery: 3 }));
    const stored = findLatestCheckpoint(path.join(dir, 'auto-resume')).checkpoint!.meta.options as { fisherForms: Record<string, { kind: string }> };
    expect(stored.fisherForms.fc1!.kind).toBe('nystrom');
    // Resumed with T = 10⁶: a fresh choice would build a dense fc1, and the checkpoint would not fit.
    const resumed = await train(options('auto-resume', 1e6, { resume: true, maxSteps: 12, checkpointEvery: 3 }));
    expect(resumed.steps).toBe(12);
    const after = findLatestCheckpoint(path.join(dir, 'auto-resume')).checkpoint!;
    expect(after.meta.step).toBe(12);
    expect((after.meta.options as typeof stored).fisherForms.fc1!.kind).toBe('nystrom');
  });
});
