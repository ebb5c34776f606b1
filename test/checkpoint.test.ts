/**
 * Checkpoints: round trips of every dtype, atomic saves, retention, a simulated crash (leftover
 * temp file, truncated newest checkpoint) and corrupt files, which must give an SngdError naming
 * the file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSngd } from './helpers/errors.js';
import {
  type Checkpoint, checkpointPath, findLatestCheckpoint, latestCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint,
} from '../runtime/checkpoint.js';

let root: string;
let n = 0;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-ckpt-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});
const freshDir = () => path.join(root, `run-${n++}`);

function sample(step: number): Checkpoint {
  return {
    meta: { step, epoch: 2, options: { lr: 0.1, layers: [784, 10] }, rng: 123456789, note: 'ünïcode ✓' },
    tensors: {
      w: Float32Array.from({ length: 7 }, (_, i) => i * 0.5 - 1.25 + step),
      b: new Float64Array([Math.PI, -0, Number.MAX_VALUE, Number.MIN_VALUE, NaN, -Infinity]),
      counts: new BigInt64Array([0n, -1n, 2n ** 62n, -(2n ** 63n)]),
      empty32: new Float32Array(0),
      empty64: new Float64Array(0),
      emptyI: new BigInt64Array(0),
    },
  };
}

/** Rewrites a checkpoint with a new header JSON (and a valid checksum, so the header check is what fails). */
function rewriteHeader(file: string, edit: (h: Record<string, any>) => void, fixChecksum = true): void {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt32LE(12);
  const header = JSON.parse(buf.subarray(16, 16 + headerLen).toString('utf8'));
  const dataStart = Math.ceil((16 + headerLen) / 8) * 8;
  const data = buf.subarray(dataStart, buf.length - 32);
  edit(header);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.from(buf.subarray(0, 16));
  prefix.writeUInt32LE(json.length, 12);
  const pad = Buffer.alloc(Math.ceil((16 + json.length) / 8) * 8 - 16 - json.length);
  const body = Buffer.concat([prefix, json, pad, data]);
  const digest = fixChecksum ? createHash('sha256').update(body).digest() : buf.subarray(buf.length - 32);
  fs.writeFileSync(file, Buffer.concat([body, digest]));
}

describe('round trip', () => {
  it('keeps meta and every dtype, empty tensors included, bit for bit', () => {
    const dir = freshDir();
    const ckpt = sample(42);
    const file = saveCheckpoint(dir, ckpt);
    expect(path.basename(file)).toBe('checkpoint-000000042.sngdckpt');
    const back = loadCheckpoint(file);
    expect(back.meta).toEqual(ckpt.meta);
    expect(Object.keys(back.tensors)).toEqual(Object.keys(ckpt.tensors));
    for (const [name, t] of Object.entries(ckpt.tensors)) {
      const got = back.tensors[name]!;
      expect(got.constructor).toBe(t.constructor);
      expect(got.length).toBe(t.length);
      // Compare bytes: NaN and -0 must survive too.
      expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(t.buffer, t.byteOffset, t.byteLength))).toBe(true);
    }
  });

  it('writes the whole tensor of a view into a larger buffer, and nothing else', () => {
    const dir = freshDir();
    const big = new Float64Array([1, 2, 3, 4, 5]);
    const file = saveCheckpoint(dir, { meta: { step: 0 }, tensors: { mid: big.subarray(1, 4), odd: new Float32Array([1, 2, 3]) } });
    const back = loadCheckpoint(file);
    expect([...back.tensors.mid!]).toEqual([2, 3, 4]);
    expect([...back.tensors.odd!]).toEqual([1, 2, 3]);
  });

  it('rejects a missing or invalid step and non-JSON meta', () => {
    const dir = freshDir();
    expectSngd(() => saveCheckpoint(dir, { meta: {}, tensors: {} }), 'meta.step');
    expectSngd(() => saveCheckpoint(dir, { meta: { step: -1 }, tensors: {} }), 'meta.step');
    expectSngd(() => saveCheckpoint(dir, { meta: { step: 1.5 }, tensors: {} }), 'meta.step');
    expectSngd(() => saveCheckpoint(dir, { meta: { step: 1, seed: 1n }, tensors: {} }), 'JSON');
    expect(listCheckpoints(dir)).toEqual([]);
  });
});

describe('atomicity and retention', () => {
  it('leaves no temp files and keeps the newest two by default', () => {
    const dir = freshDir();
    for (const step of [10, 20, 30, 40]) saveCheckpoint(dir, sample(step));
    expect(fs.readdirSync(dir).sort()).toEqual(['checkpoint-000000030.sngdckpt', 'checkpoint-000000040.sngdckpt']);
    expect(latestCheckpoint(dir)).toBe(checkpointPath(dir, 40));
  });

  it('honours keep, and keep=1 never deletes the file just written', () => {
    const dir = freshDir();
    for (const step of [1, 2, 3, 4, 5]) saveCheckpoint(dir, sample(step), { keep: 3 });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([3, 4, 5]);
    saveCheckpoint(dir, sample(6), { keep: 1 });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([6]);
    saveCheckpoint(dir, sample(6), { keep: 1 }); // the same step again: replaced in place
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([6]);
    expectSngd(() => saveCheckpoint(dir, sample(7), { keep: 0 }), 'keep');
  });

  it('never deletes checkpoints of later steps (a run resumed from an earlier one)', () => {
    const dir = freshDir();
    for (const step of [10, 20, 30]) saveCheckpoint(dir, sample(step), { keep: 5 });
    saveCheckpoint(dir, sample(15), { keep: 1 });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([15, 20, 30]);
  });

  it('orders by step numerically, also past 9 digits', () => {
    const dir = freshDir();
    saveCheckpoint(dir, sample(999_999_999), { keep: 5 });
    saveCheckpoint(dir, sample(1_000_000_000), { keep: 5 });
    expect(latestCheckpoint(dir)).toBe(path.join(dir, 'checkpoint-1000000000.sngdckpt'));
  });

  it('resumes from the previous good checkpoint after a crash', () => {
    const dir = freshDir();
    saveCheckpoint(dir, sample(100));
    const newest = saveCheckpoint(dir, sample(200));
    // The crash: a half-written temp file of a dead process, and the newest checkpoint cut short
    // (as a crash during a copy to another disk leaves it).
    const deadTemp = path.join(dir, '.checkpoint-000000300.sngdckpt.999999999.0a1b2c.tmp');
    fs.writeFileSync(deadTemp, 'SNGDCKPT partial');
    fs.truncateSync(newest, fs.statSync(newest).size - 50);

    const warnings: string[] = [];
    expect(latestCheckpoint(dir, (w) => warnings.push(w))).toBe(checkpointPath(dir, 100));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('checkpoint-000000200.sngdckpt');
    expect(warnings[0]).toContain('truncated');
    expect(warnings[0]).toContain('falling back to checkpoint-000000100.sngdckpt');
    const found = findLatestCheckpoint(dir);
    expect(found.checkpoint?.meta.step).toBe(100);
    expect(found.skipped.map((s) => path.basename(s.file))).toEqual(['checkpoint-000000200.sngdckpt']);

    // Training goes on from 100 and saves again: the good checkpoint stays, the dead temp file goes.
    saveCheckpoint(dir, sample(150));
    expect(fs.existsSync(deadTemp)).toBe(false);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([100, 150, 200]);
    expect(latestCheckpoint(dir, () => {})).toBe(checkpointPath(dir, 150));
  });

  it('reports when no checkpoint validates, and a missing folder is simply none', () => {
    const dir = freshDir();
    const only = saveCheckpoint(dir, sample(5));
    fs.writeFileSync(only, '');
    const warnings: string[] = [];
    expect(latestCheckpoint(dir, (w) => warnings.push(w))).toBeUndefined();
    expect(warnings[0]).toContain('no older checkpoint');
    expect(latestCheckpoint(path.join(root, 'does-not-exist'))).toBeUndefined();
    expect(listCheckpoints(path.join(root, 'does-not-exist'))).toEqual([]);
  });

  it('fails with an SngdError, and leaves nothing behind, when the folder cannot be made', () => {
    const blocker = path.join(root, `blocker-${n++}`);
    fs.writeFileSync(blocker, 'a file, not a folder');
    expectSngd(() => saveCheckpoint(path.join(blocker, 'sub'), sample(1)), 'could not write the checkpoint');
  });
});

describe('corrupt files', () => {
  const good = () => saveCheckpoint(freshDir(), sample(7));

  it('bad magic, version, size', () => {
    const f1 = good();
    const b1 = fs.readFileSync(f1);
    b1.write('NOTCKPT!', 0, 'ascii');
    fs.writeFileSync(f1, b1);
    expectSngd(() => loadCheckpoint(f1), f1, 'magic');

    const f2 = good();
    const b2 = fs.readFileSync(f2);
    b2.writeUInt32LE(99, 8);
    fs.writeFileSync(f2, b2);
    expectSngd(() => loadCheckpoint(f2), f2, 'version 99');

    const f3 = good();
    fs.writeFileSync(f3, Buffer.alloc(10));
    expectSngd(() => loadCheckpoint(f3), f3, 'only 10 bytes');

    expectSngd(() => loadCheckpoint(path.join(root, 'nope.sngdckpt')), 'not found');
  });

  it('header length past the end, and a header that is not JSON', () => {
    const f1 = good();
    const b1 = fs.readFileSync(f1);
    b1.writeUInt32LE(0xfffffff0, 12);
    fs.writeFileSync(f1, b1);
    expectSngd(() => loadCheckpoint(f1), f1, 'header length');

    const f2 = good();
    const b2 = fs.readFileSync(f2);
    b2[16] = 0x7b + 1; // '{' → '|'
    fs.writeFileSync(f2, b2);
    expectSngd(() => loadCheckpoint(f2), f2, 'not valid JSON');

    const f3 = good();
    rewriteHeader(f3, (h) => delete h.tensors);
    expectSngd(() => loadCheckpoint(f3), f3, 'lacks meta, tensors or dataBytes');
  });

  it('offsets and lengths outside the data, misaligned, overlapping, or not matching dims and dtype', () => {
    const cases: [string, (h: Record<string, any>) => void, string][] = [
      ['past the end', (h) => (h.tensors[0].offset = h.dataBytes), 'outside'],
      ['huge offset', (h) => (h.tensors[0].offset = 2 ** 52), 'outside'],
      ['negative offset', (h) => (h.tensors[1].offset = -8), 'invalid offset'],
      ['misaligned', (h) => (h.tensors[1].offset = 4), 'aligned'],
      ['length vs dims', (h) => (h.tensors[0].length = 4), 'do not hold dims'],
      ['dims', (h) => (h.tensors[0].dims = [-7]), 'invalid dims'],
      ['dtype', (h) => (h.tensors[0].dtype = 'float16'), 'unknown dtype'],
      ['overlap', (h) => (h.tensors[1].offset = h.tensors[0].offset), 'overlap'],
      ['duplicate', (h) => (h.tensors[1].name = h.tensors[0].name), 'twice'],
      ['dataBytes short', (h) => (h.dataBytes -= 8), 'outside'],
      ['dataBytes long', (h) => (h.dataBytes += 8), 'truncated'],
    ];
    for (const [, edit, message] of cases) {
      const f = good();
      rewriteHeader(f, edit);
      expectSngd(() => loadCheckpoint(f), f, message);
    }
  });

  it('a flipped data byte, or a header edited without fixing the checksum', () => {
    const f1 = good();
    const b1 = fs.readFileSync(f1);
    b1[b1.length - 40]! ^= 0x01;
    fs.writeFileSync(f1, b1);
    expectSngd(() => loadCheckpoint(f1), f1, 'checksum mismatch');

    const f2 = good();
    rewriteHeader(f2, (h) => (h.meta.step = 8), false);
    expectSngd(() => loadCheckpoint(f2), f2, 'checksum mismatch');

    const f3 = good();
    fs.appendFileSync(f3, Buffer.alloc(8));
    expectSngd(() => loadCheckpoint(f3), f3, 'trailing bytes');
  });
});
