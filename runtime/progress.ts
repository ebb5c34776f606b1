/**
 * A one-line progress bar for training:
 *
 *   epoch 1/3 [=========>          ] 412/1000  loss 0.2345  acc 93.1%  5,321 samples/s  eta 0:12
 *
 * On a terminal the line is redrawn in place with `\r`, at most 10 times a second, and fitted to
 * the terminal's width. Elsewhere (CI logs, files) a plain line is printed at most every 10%, so
 * logs stay short.
 */

/** The part of a stream the bar uses; process.stderr fits, and so does a test double. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  /** Leads the line, e.g. 'epoch 1/3'. */
  label: string;
  /** Defaults to process.stderr. */
  stream?: ProgressStream;
  /** Milliseconds clock; injectable for tests. Defaults to performance.now. */
  now?: () => number;
}

const REDRAW_MS = 100;
const BAR_MAX = 30;
const BAR_MIN = 10;

export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly started: number;
  private count = 0;
  private fields: Record<string, string | number> = {};
  private lastDraw = -Infinity;
  private lastTenth = -1;
  private printedCount = -1;
  private finished = false;

  constructor(opts: ProgressOptions) {
    this.total = Math.max(0, opts.total);
    this.label = opts.label;
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Records progress; draws when the throttle (TTY) or the next 10% mark (not a TTY) allows. */
  update(done: number, fields: Record<string, string | number> = {}): void {
    if (this.finished) return;
    this.count = Math.min(Math.max(0, done), this.total);
    this.fields = fields;
    const complete = this.count >= this.total;
    if (this.stream.isTTY) {
      const t = this.now();
      if (t - this.lastDraw < REDRAW_MS && !complete) return;
      this.lastDraw = t;
      this.stream.write(`\r${this.ttyLine()}\x1b[K`);
    } else {
      const tenth = this.total === 0 ? 10 : Math.floor((this.count * 10) / this.total);
      if (tenth <= this.lastTenth) return;
      this.lastTenth = tenth;
      this.printPlain();
    }
  }

  /** Finishes the line with the final state; later updates are ignored. */
  done(fields?: Record<string, string | number>): void {
    if (this.finished) return;
    if (fields) this.fields = fields;
    if (this.stream.isTTY) {
      this.stream.write(`\r${this.ttyLine()}\x1b[K\n`);
    } else if (this.printedCount !== this.count || fields) {
      this.printPlain();
    }
    this.finished = true;
  }

  private printPlain(): void {
    this.printedCount = this.count;
    const pct = this.total === 0 ? 100 : Math.floor((this.count * 100) / this.total);
    this.stream.write(`${[`${this.label} ${this.count}/${this.total} (${pct}%)`, ...this.extras()].join('  ')}\n`);
  }

  /** The line fitted to the terminal: the bar shrinks first, then is dropped, then the end is cut. */
  private ttyLine(): string {
    const counts = `${this.count}/${this.total}`;
    const tail = [counts, ...this.extras()].join('  ');
    const width = Math.max(1, (this.stream.columns ?? 80) - 1); // −1: writing the last column wraps on some terminals
    const room = width - this.label.length - tail.length - 4; // label, ' [', '] '
    if (room >= BAR_MIN) return `${this.label} [${bar(this.count, this.total, Math.min(BAR_MAX, room))}] ${tail}`;
    const line = `${this.label} ${tail}`;
    return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
  }

  private extras(): string[] {
    const parts = Object.entries(this.fields).map(([k, v]) => formatField(k, v));
    const eta = this.eta();
    if (eta !== undefined) parts.push(`eta ${formatDuration(eta)}`);
    return parts;
  }

  private eta(): number | undefined {
    const elapsed = (this.now() - this.started) / 1000;
    if (this.count === 0 || this.count >= this.total || elapsed <= 0) return undefined;
    return (elapsed / this.count) * (this.total - this.count);
  }
}

function bar(done: number, total: number, width: number): string {
  const filled = total === 0 ? width : Math.floor((done / total) * width);
  if (filled >= width) return '='.repeat(width);
  return `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
}

/** `loss 0.2345`; a key that is a rate (ends in '/s') goes after its value: `5,321 samples/s`. */
export function formatField(key: string, value: string | number): string {
  const text = typeof value === 'number' ? formatNumber(value) : value;
  return key.endsWith('/s') ? `${text} ${key}` : `${key} ${text}`;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (Number.isInteger(v) || abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 10) return v.toFixed(2);
  return v.toFixed(4);
}

/** 0:12, 12:05, 1:02:03. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
