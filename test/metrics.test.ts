/**
 * The metrics log: appends, non-finite values, resuming (a resumed run's log equals an
 * uninterrupted one), torn last lines and corrupt middle lines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SngdError } from '../src/errors.js';
import { type MetricRecord, MetricsLog, readMetrics } from '../runtime/metrics.js';

let root: string;
let n = 0;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-metrics-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});
const freshFile = () => path.join(root, `run-${n++}`, 'metrics.jsonl');

/** What a run of `epochs` epochs of 4 steps logs: a record per step and one per epoch. */
function runRecords(epochs: number): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (let e = 1; e <= epochs; e++) {
    for (let s = (e - 1) * 4 + 1; s <= e * 4; s++) out.push({ kind: 'step', step: s, epoch: e, loss: 1 / s, seconds: s * 0.1 });
    out.push({ kind: 'epoch', step: e * 4, epoch: e, loss: 1 / (e * 4), trainAccuracy: 0.5 + e / 10, validationAccuracy: 0.5, seconds: e * 0.4 + 0.01 });
  }
  return out;
}

function expectSngd(fn: () => unknown, ...parts: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SngdError);
  for (const p of parts) expect((caught as Error).message).toContain(p);
}

describe('MetricsLog', () => {
  it('appends one JSON line per record and reads them back', () => {
    const file = freshFile();
    const log = MetricsLog.open(file);
    const records = runRecords(2);
    for (const r of records) log.append(r);
    log.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text.split('\n')).toHaveLength(records.length + 1);
    expect(text.endsWith('\n')).toBe(true);
    expect(readMetrics(file)).toEqual(records);
    expect(MetricsLog.read(file)).toEqual(records);
  });

  it('keeps extra fields, and stores non-finite numbers so they read back as numbers', () => {
    const file = freshFile();
    const log = MetricsLog.open(file);
    log.append({ kind: 'step', step: 1, epoch: 1, loss: NaN, seconds: 1, lr: 0.1, optimizer: 'sngd', samplesPerSecond: Infinity });
    log.append({ kind: 'step', step: 2, epoch: 1, loss: -Infinity, seconds: 2 });
    log.close();
    expect(fs.readFileSync(file, 'utf8')).toContain('"loss":"NaN"');
    const [a, b] = readMetrics(file);
    expect(a!.loss).toBeNaN();
    expect(a!.samplesPerSecond).toBe(Infinity);
    expect(a!.lr).toBe(0.1);
    expect(a!.optimizer).toBe('sngd');
    expect(b!.loss).toBe(-Infinity);
  });

  it('a new run starts an empty log; a closed log refuses appends', () => {
    const file = freshFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"kind":"step","step":1,"epoch":1,"seconds":1}\n');
    const log = MetricsLog.open(file);
    log.close();
    expect(readMetrics(file)).toEqual([]);
    expectSngd(() => log.append({ kind: 'step', step: 1, epoch: 1, seconds: 1 }), 'closed');
  });

  it('rejects malformed records before writing anything', () => {
    const file = freshFile();
    const log = MetricsLog.open(file);
    expectSngd(() => log.append({ kind: 'batch', step: 1, epoch: 1, seconds: 1 } as unknown as MetricRecord), 'kind');
    expectSngd(() => log.append({ kind: 'step', step: -1, epoch: 1, seconds: 1 }), 'step');
    expectSngd(() => log.append({ kind: 'step', step: 1, epoch: 1 } as unknown as MetricRecord), 'seconds');
    expectSngd(() => log.append({ kind: 'step', step: 1, epoch: 1, seconds: 1, loss: '0.3' as unknown as number }), 'loss');
    log.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('');
  });
});

describe('resume', () => {
  it('a resumed run writes the same log as an uninterrupted one', () => {
    const all = runRecords(3);
    const straight = freshFile();
    const s = MetricsLog.open(straight);
    for (const r of all) s.append(r);
    s.close();

    // Interrupted: the run got through step 10 (past the epoch-2 checkpoint at step 8) and died
    // in the middle of a line.
    const resumed = freshFile();
    const first = MetricsLog.open(resumed);
    for (const r of all.filter((r) => r.step <= 10)) first.append(r);
    first.close();
    fs.appendFileSync(resumed, '{"kind":"step","step":11,"ep');

    const warnings: string[] = [];
    const second = MetricsLog.open(resumed, { resumeFromStep: 8, onWarning: (w) => warnings.push(w) });
    for (const r of all.filter((r) => r.step > 8)) second.append(r);
    second.close();

    expect(fs.readFileSync(resumed, 'utf8')).toBe(fs.readFileSync(straight, 'utf8'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('torn last line');
    expect(fs.readdirSync(path.dirname(resumed))).toEqual(['metrics.jsonl']); // no temp file left
  });

  it('resuming without a log starts one, with a warning', () => {
    const file = freshFile();
    const warnings: string[] = [];
    const log = MetricsLog.open(file, { resumeFromStep: 5, onWarning: (w) => warnings.push(w) });
    log.append({ kind: 'step', step: 6, epoch: 1, seconds: 1 });
    log.close();
    expect(readMetrics(file)).toHaveLength(1);
    expect(warnings[0]).toContain('no metrics log to resume');
  });

  it('refuses a bad resume step', () => {
    expectSngd(() => MetricsLog.open(freshFile(), { resumeFromStep: -2 }), 'resumeFromStep');
  });
});

describe('readMetrics', () => {
  const write = (text: string) => {
    const file = freshFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
  const line = (step: number) => `{"kind":"step","step":${step},"epoch":1,"loss":0.5,"seconds":${step}}\n`;

  it('skips a torn last line with a warning, whether or not it ends in a newline', () => {
    for (const torn of ['{"kind":"st', '{"kind":"st\n', '\u0000\u0000\u0000\n\n']) {
      const warnings: string[] = [];
      const file = write(line(1) + line(2) + torn);
      expect(readMetrics(file, (w) => warnings.push(w)).map((r) => r.step)).toEqual([1, 2]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${file}:3`);
    }
  });

  it('a complete last line without its newline is kept; blank lines are ignored', () => {
    const warnings: string[] = [];
    const file = write(`${line(1)}\n${line(2).trimEnd()}`);
    expect(readMetrics(file, (w) => warnings.push(w)).map((r) => r.step)).toEqual([1, 2]);
    expect(warnings).toEqual([]);
    expect(readMetrics(write(''))).toEqual([]);
  });

  it('a corrupt middle line is an SngdError naming file and line', () => {
    const file = write(line(1) + '{"kind":"step"\n' + line(3));
    expectSngd(() => readMetrics(file, () => {}), `${file}:2`, 'not valid JSON', 'corrupt');
    const file2 = write(line(1) + '{"kind":"step","step":2}\n' + line(3));
    expectSngd(() => readMetrics(file2, () => {}), `${file2}:2`, 'epoch');
    expectSngd(() => readMetrics(path.join(root, 'missing.jsonl')), 'not found');
  });
});
