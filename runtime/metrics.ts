/**
 * The metrics log of a run, `runs/NAME/metrics.jsonl`: one JSON record per line, appended and
 * fsynced as training goes, so a crash loses at most the line being written.
 *
 * Resuming from a checkpoint at step S drops every line past S (rewriting the file atomically)
 * before appending again, so a resumed run's log equals an uninterrupted one. For that to hold,
 * the trainer appends the records of step S before it saves checkpoint S.
 *
 * Non-finite numbers (a diverged loss) are stored as the strings "NaN", "Infinity", "-Infinity"
 * rather than JSON's lossy null, and read back as numbers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SngdError, errorText } from '../src/errors.js';
import { writeFileAtomic } from '../src/onnx/codec.js';

export interface MetricRecord {
  /** 'step': logged during an epoch; 'eval': an evaluation inside an epoch (--eval-every); 'epoch': the summary at an epoch's end. */
  kind: 'step' | 'eval' | 'epoch';
  /** Optimizer steps taken so far (global, not per epoch). */
  step: number;
  epoch: number;
  loss?: number;
  /** Accuracies are fractions in [0, 1]; plots and progress show them in %. */
  trainAccuracy?: number;
  validationAccuracy?: number;
  validationLoss?: number;
  testAccuracy?: number;
  testLoss?: number;
  /** Wall-clock seconds since the run started (resumed runs continue the count). */
  seconds: number;
  /** 'eval' and 'epoch': `seconds` less the time spent evaluating (the training loop's own time). */
  trainSeconds?: number;
  /** 'eval': steps so far over steps per epoch. */
  epochsDone?: number;
  refreshSeconds?: number;
  samplesPerSecond?: number;
  peakRssMb?: number;
  [extra: string]: unknown;
}

export interface OpenOptions {
  /** Keep the records up to this step and drop the rest; without it the log starts empty. */
  resumeFromStep?: number;
  /** Where warnings go (a torn last line, a missing log on resume); stderr by default. */
  onWarning?: (message: string) => void;
}

const NUMERIC_FIELDS = new Set([
  'step', 'epoch', 'loss', 'trainAccuracy', 'validationAccuracy', 'validationLoss', 'testAccuracy',
  'testLoss', 'seconds', 'trainSeconds', 'epochsDone', 'refreshSeconds', 'samplesPerSecond', 'peakRssMb',
]);
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

export class MetricsLog {
  private fd: number | undefined;

  private constructor(readonly file: string, fd: number) {
    this.fd = fd;
  }

  /** Opens `file` for appending: empty for a new run, cut back to `resumeFromStep` for a resumed one. */
  static open(file: string, opts: OpenOptions = {}): MetricsLog {
    const warn = opts.onWarning ?? warnToStderr;
    const resume = opts.resumeFromStep;
    if (resume !== undefined) {
      if (!Number.isSafeInteger(resume) || resume < 0) throw new SngdError(`resumeFromStep must be a non-negative integer, got ${resume}`);
      if (fs.existsSync(file)) {
        const kept = readMetrics(file, warn).filter((r) => r.step <= resume);
        writeFileAtomic(file, kept.map(formatRecord).join(''));
      } else {
        warn(`${file}: no metrics log to resume; starting a new one, so it lacks the steps before ${resume}`);
      }
    }
    let fd: number;
    try {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      fd = fs.openSync(file, resume === undefined ? 'w' : 'a');
    } catch (err) {
      throw new SngdError(`${file}: could not open the metrics log (${errorText(err)})`);
    }
    return new MetricsLog(file, fd);
  }

  /** Reads a log; see `readMetrics`. */
  static read(file: string, onWarning?: (message: string) => void): MetricRecord[] {
    return readMetrics(file, onWarning);
  }

  /** Appends one record as a line and fsyncs it. */
  append(record: MetricRecord): void {
    if (this.fd === undefined) throw new SngdError(`${this.file}: the metrics log is closed`);
    const problem = recordProblem(record);
    if (problem) throw new SngdError(`${this.file}: cannot log this record: ${problem}`);
    const line = Buffer.from(formatRecord(record), 'utf8');
    try {
      // One write per line: a crash tears at most this line, which readers then skip.
      for (let done = 0; done < line.length; ) done += fs.writeSync(this.fd, line, done, line.length - done);
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw new SngdError(`${this.file}: could not append to the metrics log (${errorText(err)})`);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Reads every record of a metrics log. A torn last line (the run died mid-write) is skipped with
 * a warning; a bad line anywhere else is an SngdError naming the file and line.
 */
export function readMetrics(file: string, onWarning: (message: string) => void = warnToStderr): MetricRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SngdError(code === 'ENOENT' ? `${file}: metrics log not found` : `${file}: could not read the metrics log (${errorText(err)})`);
  }
  const lines = text.split('\n');
  // The last non-blank line is the only one a crash can tear.
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === '') last--;
  const records: MetricRecord[] = [];
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let problem: string | undefined;
    let value: unknown;
    try {
      value = JSON.parse(line, reviveNonFinite);
      problem = recordProblem(value);
    } catch {
      problem = 'not valid JSON';
    }
    if (!problem) {
      records.push(value as MetricRecord);
    } else if (i === last) {
      onWarning(`${file}:${i + 1}: skipping a torn last line (${problem}); the run probably stopped while writing it`);
    } else {
      throw new SngdError(`${file}:${i + 1}: ${problem}; the metrics log is corrupt (fix or delete that line)`);
    }
  }
  return records;
}

function formatRecord(record: MetricRecord): string {
  return JSON.stringify(record, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)) + '\n';
}

function reviveNonFinite(this: unknown, key: string, v: unknown): unknown {
  return NUMERIC_FIELDS.has(key) && typeof v === 'string' && v in NON_FINITE ? NON_FINITE[v] : v;
}

function recordProblem(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not a JSON object';
  const rec = r as Record<string, unknown>;
  if (rec.kind !== 'step' && rec.kind !== 'eval' && rec.kind !== 'epoch') return `kind must be 'step', 'eval' or 'epoch', got ${JSON.stringify(rec.kind)}`;
  if (typeof rec.step !== 'number' || !Number.isSafeInteger(rec.step) || rec.step < 0) return `step must be a non-negative integer, got ${JSON.stringify(rec.step)}`;
  for (const key of NUMERIC_FIELDS) {
    const v = rec[key];
    const required = key === 'epoch' || key === 'seconds';
    if (v === undefined ? required : typeof v !== 'number') return `${key} must be a number, got ${JSON.stringify(v)}`;
  }
  return undefined;
}

function warnToStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}
