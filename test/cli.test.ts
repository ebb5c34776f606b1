/**
 * The CLIs as a user runs them: sngd model → sngd-compile (--loss) → sngd export, files and
 * manifest checked, outputs compared in onnxruntime; bad input gives one clear line and exit 1.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/onnx/import.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor } from '../src/onnx/tensor.js';
import { runModel } from '../runtime/ort.js';
import { maxRelError } from './helpers/compare.js';
import { writeTeacherDataset } from './helpers/teacher-data.js';

const root = path.resolve(import.meta.dirname, '..');
// tsx's loader by absolute URL: the CLIs run with a temporary folder as their working directory.
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(bin: 'sngd' | 'sngd-compile', ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', tsxLoader, path.join(root, 'bin', `${bin}.ts`), ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('sngd-compile and sngd export', () => {
  it('compiles an MLP with a loss, writes every file, and exports back to the original function', async () => {
    expect(cli('sngd', 'model', 'mlp', '--layers', '20,8,4', '-o', 'mlp.onnx').code).toBe(0);
    const compiled = cli('sngd-compile', 'mlp.onnx', '--loss', 'ce', '-o', 'out');
    expect(compiled.code, compiled.err).toBe(0);
    expect(compiled.out).toMatch(/2 weighted layer\(s\) rebuilt, 0 skipped/);
    expect(compiled.out).toMatch(/fc1\s+Gemm\s+fc1\.weight\s+fc1\.bias\s+21/);
    for (const f of ['mlp.sngd.onnx', 'mlp.train.onnx', 'mlp.eval.onnx', 'manifest.json']) expect(fs.existsSync(path.join(dir, 'out', f))).toBe(true);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'manifest.json'), 'utf8'));
    expect(manifest.layers.map((l: { name: string; fisherDim: number }) => [l.name, l.fisherDim])).toEqual([['fc1', 21], ['fc2', 9]]);
    const roles = manifest.train.inputs.map((i: { role: string }) => i.role);
    expect(roles).toEqual(expect.arrayContaining(['data', 'label', 'param', 'fisher']));
    expect(manifest.train.outputs.filter((o: { role: string }) => o.role === 'grad')).toHaveLength(2);
    expect(manifest.train.outputs.filter((o: { role: string }) => o.role === 'stat')).toHaveLength(2);
    const rebuilt = loadModel(path.join(dir, 'out', 'mlp.sngd.onnx'));
    for (const i of manifest.train.inputs.filter((x: { init?: string }) => x.init)) expect(rebuilt.graph.initializers.has(i.init)).toBe(true);

    expect(cli('sngd', 'export', 'out/mlp.sngd.onnx', '-o', 'exported.onnx').code).toBe(0);
    expect(cli('sngd', 'export', 'out/mlp.sngd.onnx', '--reconstructed', '-o', 'reconstructed.onnx').code).toBe(0);
    const feeds = { input: float32Tensor([3, 20], new Rng(1).floats(60)) };
    const reference = await runModel(loadModel(path.join(dir, 'mlp.onnx')), feeds);
    const exported = loadModel(path.join(dir, 'exported.onnx'));
    expect(exported.graph.nodes.map((n) => n.name)).toEqual(loadModel(path.join(dir, 'mlp.onnx')).graph.nodes.map((n) => n.name));
    expect(maxRelError(await runModel(exported, feeds), reference)).toBeLessThan(1e-6);
    expect(maxRelError(await runModel(loadModel(path.join(dir, 'reconstructed.onnx')), feeds), reference)).toBeLessThan(1e-6);
  });

  it('--fisher-blocks unit: the table and the manifest say which layers have unit blocks and why the others do not', () => {
    expect(cli('sngd', 'model', 'mlp', '--layers', '20,8,6,4', '-o', 'mlp3.onnx').code).toBe(0);
    const r = cli('sngd-compile', 'mlp3.onnx', '--fisher-blocks', 'unit', '--loss', 'ce', '-o', 'unit-out');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/fc2\s+Gemm\s+fc2\.weight\s+fc2\.bias\s+9\s+unit ×6 \(Relu\)\s+weight/);
    expect(r.out).toMatch(/fisher blocks:[\s\S]*fc1\s+layer\s+the network's first weighted layer[\s\S]*fc2\s+unit\s+6 unit blocks[\s\S]*fc3\s+layer\s+an output layer/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'unit-out', 'manifest.json'), 'utf8'));
    expect(manifest.layers.map((l: { fisher: { kind: string } }) => l.fisher.kind)).toEqual(['dense', 'unit', 'dense']);
    expect(manifest.layers[1].fisher).toMatchObject({ kind: 'unit', units: 6, activation: 'Relu' });
    expect(manifest.train.outputs.find((o: { of?: string }) => o.of === manifest.layers[1].P)).toBeDefined();
    // --max-unit-dim below d̃ = 9: every layer keeps one block, and the table says so.
    const small = cli('sngd-compile', 'mlp3.onnx', '--fisher-blocks', 'unit', '--max-unit-dim', '8', '-o', 'unit-small');
    expect(small.out).toMatch(/fc2\s+layer\s+d̃ = 9 > max-unit-dim 8/);
  });

  it('sngd train accepts --fisher-blocks unit', () => {
    const data = writeTeacherDataset(dir, 60, 20, 1, 'cli-train');
    const r = cli('sngd', 'train', 'mlp3.onnx', '--data', `npy:${data.x},${data.y}`, '--validation', '10', '--batch-size', '10', '--fisher-blocks', 'unit', '--refresh-every', '2', '--out', 'unit-run', '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/trained 5 steps/);
    expect(cli('sngd', 'train', 'mlp3.onnx', '--fisher-blocks', 'row').err).toMatch(/option '--fisher-blocks <blocks>' argument 'row' is invalid/);
  });

  it.each([
    ['a missing file', ['missing.onnx'], /missing\.onnx: model file not found/],
    ['a file that is not ONNX', ['notes.txt'], /notes\.txt: (not a valid ONNX protobuf|decodes as protobuf but has no graph)/],
    ['an unknown --side', ['mlp.onnx', '--side', 'left'], /option '--side <side>' argument 'left' is invalid/],
    ['an unknown --output', ['mlp.onnx', '--loss', 'ce', '--output', 'nope'], /no model output named 'nope'/],
  ])('%s: one clear line, exit code 1', (_label, args, message) => {
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello, not a model\n');
    const r = cli('sngd-compile', ...args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('sngd model writes the CNN and the LSTM language model, which compile', () => {
    expect(cli('sngd', 'model', 'cnn', '--channels', '4,6', '-o', 'cnn.onnx').code).toBe(0);
    expect(cli('sngd-compile', 'cnn.onnx', '-o', 'cnn-out').out).toMatch(/3 weighted layer\(s\) rebuilt/);
    expect(cli('sngd', 'model', 'lstm-lm', '--vocab', '20', '--hidden', '8', '-o', 'lm.onnx').code).toBe(0);
    expect(cli('sngd-compile', 'lm.onnx', '-o', 'lm-out').out).toMatch(/LSTM/);
    expect(cli('sngd', 'model', 'cnn', '--channels', '4', '-o', 'bad.onnx').err).toMatch(/--channels needs two positive integers/);
  });

  it('sngd model cnn-bn writes the pt_mnist_cnn_bn architecture; its 11616-wide linear compiles to a Nyström layer', () => {
    expect(cli('sngd', 'model', 'cnn-bn', '-o', 'cnn-bn.onnx').code).toBe(0);
    const model = loadModel(path.join(dir, 'cnn-bn.onnx'));
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Conv', 'Relu', 'Conv', 'Relu', 'BatchNormalization', 'Flatten', 'Gemm', 'Relu', 'Gemm', 'BatchNormalization', 'LogSoftmax']);
    const out = cli('sngd-compile', 'cnn-bn.onnx', '--max-fisher-dim', '1000', '--nystrom-rank', '16', '-o', 'cnn-bn-out').out;
    expect(out).toMatch(/5 weighted layer\(s\) rebuilt/);
    expect(out).toMatch(/fc1\s+Gemm\s+fc1\.weight\s+fc1\.bias\s+11617\s+nystrom k=16/);
  });

  it('--max-fisher-dim auto (the default): --report says per layer which form and why', () => {
    const r = cli('sngd-compile', 'cnn-bn.onnx', '--report', '--no-calibrate', '-o', 'cnn-bn-auto');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/fc1\s+Gemm\s+fc1\.weight\s+fc1\.bias\s+11617\s+nystrom k=64 \(uniform\)/);
    expect(r.out).toMatch(/fisher forms \(--max-fisher-dim auto: the time model with default machine rates, so every machine chooses alike\):/);
    expect(r.out).toMatch(/fc1\s+11617\s+nystrom k=64\s+dense would cost [\d.]+ s\/step \(\d+× the plain-GD step of [\d.]+ ms; limit 30×\) and 3\.0 GiB \(limit 1\.0 GiB\); Nyström k=64: [\d.]+ ms\/step, 14\.4 MiB/);
    expect(r.out).toMatch(/conv3\s+145\s+dense\s+d̃ = 145 < 4·k = 256: small layers stay dense/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'cnn-bn-auto', 'manifest.json'), 'utf8'));
    expect(manifest.layers.map((l: { fisher: { kind: string } }) => l.fisher.kind)).toEqual(['dense', 'dense', 'dense', 'nystrom', 'dense']);
    expect(manifest.layers[3].fisherReason).toMatch(/^dense would cost/);
  });

  it("--max-fisher-dim none: every layer dense; a bad value names the option", () => {
    const r = cli('sngd-compile', 'mlp.onnx', '--max-fisher-dim', 'none', '--report', '--no-calibrate', '-o', 'mlp-none');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/fisher forms \(--max-fisher-dim none\):/);
    expect(r.out).toMatch(/fc1\s+21\s+dense\s+every layer dense/);
    const bad = cli('sngd-compile', 'mlp.onnx', '--max-fisher-dim', 'big');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--max-fisher-dim must be 'auto', 'none' or an integer ≥ 1, got 'big'/);
  });

  it('export refuses a model without Fisher layers', () => {
    const r = cli('sngd', 'export', 'mlp.onnx', '-o', 'x.onnx');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no local Fisher layers/);
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});
