/**
 * The README's quick start, as a user runs it (through tsx rather than the built dist/, so the
 * test exercises the sources under test): the reference MLP, one epoch of MNIST with SNGD.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-quickstart-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('quick start: SNGD trains the 784-80-80-80-10 MLP for one MNIST epoch past 90% test accuracy', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const steps = pkg.scripts.quickstart!.split('&&').map((s) => s.trim().replace(/^node dist\/bin\/sngd\.js /, '').replaceAll('runs/quickstart', dir).split(/\s+/));
  let out = '';
  for (const args of steps) {
    const r = spawnSync(process.execPath, ['--import', tsxLoader, path.join(root, 'bin', 'sngd.ts'), ...args], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    out += r.stdout;
  }
  const accuracy = Number(/test accuracy ([\d.]+)%/.exec(out)?.[1]);
  expect(accuracy).toBeGreaterThan(90);
  for (const f of ['model.onnx', 'metrics.jsonl', 'metrics.svg']) expect(fs.existsSync(path.join(dir, f))).toBe(true);
});
