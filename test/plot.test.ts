/**
 * SVG plots (well-formed XML, legends, no NaN coordinates, log scale, escaping, empty and tiny
 * inputs) and the training progress bar (driven through a fake stream and clock).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricRecord } from '../runtime/metrics.js';
import { renderComparisonSvg, renderMetricsSvg, writeMetricsPlot } from '../runtime/plot.js';
import { ProgressBar, formatDuration, formatField } from '../runtime/progress.js';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-plot-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/**
 * A small well-formedness check (no dependency): one root, tags balance, attributes quoted,
 * no raw '<' or stray '&' in text. Returns the elements with their attributes.
 */
function parseXml(svg: string): { name: string; attrs: Record<string, string>; text: string }[] {
  const body = svg.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: { name: string; index: number }[] = [];
  const elements: { name: string; attrs: Record<string, string>; text: string }[] = [];
  let roots = 0;
  for (const token of body.match(/<[^>]*>|[^<]+/g) ?? []) {
    if (!token.startsWith('<')) {
      expect(token, 'text outside the root').toSatisfy(() => stack.length > 0 || token.trim() === '');
      expect(token.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, '')).not.toMatch(/[&<>]/);
      if (stack.length > 0) elements[stack.at(-1)!.index]!.text += token;
      continue;
    }
    const close = /^<\/([A-Za-z][\w:.-]*)\s*>$/.exec(token);
    if (close) {
      expect(stack.pop()?.name, `closing </${close[1]}>`).toBe(close[1]);
      continue;
    }
    const open = /^<([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>$/.exec(token);
    expect(open, `malformed tag ${token}`).not.toBeNull();
    if (stack.length === 0) roots++;
    const attrs: Record<string, string> = {};
    for (const [, k, v] of open![2]!.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      expect(attrs[k!], `duplicate attribute ${k} in ${token}`).toBeUndefined();
      attrs[k!] = v!;
    }
    elements.push({ name: open![1]!, attrs, text: '' });
    if (!open![3]) stack.push({ name: open![1]!, index: elements.length - 1 });
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  expect(elements[0]!.name).toBe('svg');
  return elements;
}

/** Every attribute value must be free of NaN, Infinity and undefined. */
function expectFiniteCoordinates(svg: string): void {
  for (const el of parseXml(svg)) {
    for (const [k, v] of Object.entries(el.attrs)) expect(v, `${el.name} ${k}`).not.toMatch(/NaN|Infinity|undefined/);
  }
}

const texts = (svg: string) => parseXml(svg).filter((e) => e.name === 'text').map((e) => e.text);

function run(epochs: number, stepsPerEpoch: number, lossAt: (step: number) => number): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (let e = 1; e <= epochs; e++) {
    for (let s = (e - 1) * stepsPerEpoch + 1; s <= e * stepsPerEpoch; s++) out.push({ kind: 'step', step: s, epoch: e, loss: lossAt(s), seconds: s });
    out.push({
      kind: 'epoch', step: e * stepsPerEpoch, epoch: e, loss: lossAt(e * stepsPerEpoch), validationLoss: lossAt(e * stepsPerEpoch) * 1.2,
      trainAccuracy: 0.9 + e / 100, validationAccuracy: 0.88 + e / 100, testAccuracy: 0.87 + e / 100, seconds: e * stepsPerEpoch,
    });
  }
  return out;
}

describe('renderMetricsSvg', () => {
  it('draws both panels with legends, axis titles and nice tick labels', () => {
    const svg = renderMetricsSvg(run(3, 50, (s) => 2 / Math.sqrt(s)), { title: 'mnist mlp' });
    expectFiniteCoordinates(svg);
    const t = texts(svg);
    for (const label of ['mnist mlp', 'Loss', 'Accuracy', 'train (step)', 'train (epoch)', 'validation', 'test', 'step', 'epoch', 'accuracy (%)']) {
      expect(t).toContain(label);
    }
    expect(t).toContain('loss'); // 2 … 0.16: about one decade, so linear
    // Tick labels are plain, short numbers (1, 2 or 5 × 10^k steps).
    const ticks = t.filter((s) => /^[-\d.,]+$/.test(s));
    expect(ticks.length).toBeGreaterThan(8);
    for (const s of ticks) expect(s.replace(/[,.]/g, '').length).toBeLessThanOrEqual(6);
    // Epoch axis ticks (right panel, below the frame) are whole epochs; accuracy stays within 0…100.
    const epochTicks = parseXml(svg).filter((e) => e.name === 'text' && Number(e.attrs.x) > 500 && e.attrs.y === '417').map((e) => e.text);
    expect(epochTicks).toEqual(['1', '2', '3']);
    expect(ticks.map((s) => Number(s.replace(/,/g, ''))).every((v) => v <= 150)).toBe(true);
    // Epoch markers carry hover text.
    expect(svg).toContain('<title>validation accuracy, epoch 2 (step 100): 90%</title>');
  });

  it('uses a log scale when the loss spans more than two decades', () => {
    const wide = renderMetricsSvg(run(2, 100, (s) => 10 * Math.exp(-s / 20)), { title: 'wide' });
    expectFiniteCoordinates(wide);
    expect(texts(wide)).toContain('loss (log scale)');
    expect(texts(wide)).toContain('0.001');
    const narrow = renderMetricsSvg(run(2, 100, (s) => 1 + 1 / s), { title: 'narrow' });
    expect(texts(narrow)).toContain('loss');
  });

  it('skips NaN and Infinity, breaking the line there', () => {
    const records = run(2, 20, (s) => (s === 7 ? NaN : s === 13 ? Infinity : 1 / s));
    records.push({ kind: 'epoch', step: 40, epoch: 3, loss: NaN, trainAccuracy: Infinity, validationAccuracy: NaN, seconds: 1 });
    const svg = renderMetricsSvg(records, { title: 'diverged' });
    expectFiniteCoordinates(svg);
    const stepPath = parseXml(svg).find((e) => e.name === 'path' && e.attrs.stroke === '#8fb9dc')!;
    expect(stepPath.attrs.d!.match(/M/g)).toHaveLength(3);
  });

  it('handles a single record, and a run with no accuracy', () => {
    const one = renderMetricsSvg([{ kind: 'epoch', step: 10, epoch: 1, loss: 0.5, trainAccuracy: 0.93, seconds: 2 }], { title: 'one' });
    expectFiniteCoordinates(one);
    expect(parseXml(one).filter((e) => e.name === 'circle').length).toBeGreaterThanOrEqual(2);

    const oneStep = renderMetricsSvg([{ kind: 'step', step: 1, epoch: 1, loss: 2.3, seconds: 0.1 }], { title: 'one step' });
    expectFiniteCoordinates(oneStep);
    expect(parseXml(oneStep).some((e) => e.name === 'circle')).toBe(true); // a lone point gets a dot
    expect(texts(oneStep)).toContain('no accuracy recorded');
  });

  it('shows a message for no records, or no finite values', () => {
    const empty = renderMetricsSvg([], { title: 'nothing yet' });
    expectFiniteCoordinates(empty);
    expect(texts(empty)).toContain('no metrics recorded yet');
    const allNaN = renderMetricsSvg([{ kind: 'step', step: 1, epoch: 1, loss: NaN, seconds: 1 }], { title: 'nan' });
    expectFiniteCoordinates(allNaN);
    expect(texts(allNaN)).toEqual(expect.arrayContaining(['no loss recorded', 'no accuracy recorded']));
  });

  it('escapes text', () => {
    const svg = renderMetricsSvg(run(1, 3, () => 1), { title: `run <a & "b"> 'c'\u0001` });
    expectFiniteCoordinates(svg);
    expect(svg).toContain('run &lt;a &amp; &quot;b&quot;&gt; &apos;c&apos;</text>');
  });

  it('keeps a long run small by thinning the step line', () => {
    const svg = renderMetricsSvg(run(2, 50_000, (s) => 1 / Math.sqrt(s) + (s % 1000 === 0 ? 1 : 0)), { title: 'long' });
    expectFiniteCoordinates(svg);
    expect(svg.length).toBeLessThan(200_000);
  });

  it('writeMetricsPlot writes the SVG', () => {
    const file = path.join(root, 'runs', 'a', 'metrics.svg');
    const records = run(2, 5, (s) => 1 / s);
    writeMetricsPlot(file, records, { title: 'a' });
    expect(fs.readFileSync(file, 'utf8')).toBe(renderMetricsSvg(records, { title: 'a' }));
  });
});

describe('renderComparisonSvg', () => {
  const opts = { title: 'MNIST: test accuracy', xLabel: 'seconds', yLabel: 'test accuracy (%)' };

  it('draws a line and legend entry per series', () => {
    const labels = ['sngd', 'sgd', 'adam <lr=1e-3>'];
    const svg = renderComparisonSvg(labels.map((label, i) => ({
      label, points: Array.from({ length: 8 }, (_, k) => ({ x: k * 12.5, y: 90 + k - i })),
    })), opts);
    expectFiniteCoordinates(svg);
    const t = texts(svg);
    expect(t).toEqual(expect.arrayContaining(['sngd', 'sgd', 'adam &lt;lr=1e-3&gt;', 'seconds', 'test accuracy (%)', opts.title]));
    expect(parseXml(svg).filter((e) => e.name === 'path')).toHaveLength(3);
  });

  it('copes with many series, empty and non-finite ones, and no series at all', () => {
    const series = Array.from({ length: 14 }, (_, i) => ({
      label: `run ${i}`, points: i === 3 ? [] : [{ x: 0, y: i }, { x: 1, y: i === 5 ? NaN : i + 1 }, { x: Infinity, y: 2 }, { x: 2, y: i + 2 }],
    }));
    const svg = renderComparisonSvg(series, opts);
    expectFiniteCoordinates(svg);
    expect(texts(svg)).toContain('run 13');
    expect(texts(svg)).not.toContain('run 3');
    const none = renderComparisonSvg([], opts);
    expectFiniteCoordinates(none);
    expect(texts(none)).toContain('no data to plot');
  });
});

// ---------------------------------------------------------------- progress bar

class FakeStream {
  out: string[] = [];
  constructor(readonly isTTY: boolean, readonly columns?: number) {}
  write(s: string): boolean {
    this.out.push(s);
    return true;
  }
  get text(): string {
    return this.out.join('');
  }
}

/** The visible text of each redraw on a TTY stream. */
const frames = (s: FakeStream) => s.out.map((w) => w.replace(/^\r/, '').replace(/\x1b\[K\n?$/, ''));

describe('ProgressBar', () => {
  it('draws the documented line on a terminal', () => {
    let now = 0;
    const stream = new FakeStream(true, 120);
    const bar = new ProgressBar({ total: 1000, label: 'epoch 1/3', stream, now: () => now });
    now = 12_000;
    bar.update(500, { loss: 0.23449, acc: '93.1%', 'samples/s': 5321.4 });
    expect(stream.out[0]).toMatch(/^\r.*\x1b\[K$/);
    expect(frames(stream)[0]).toBe(`epoch 1/3 [===============>              ] 500/1000  loss 0.2345  acc 93.1%  5,321 samples/s  eta 0:12`);
  });

  it('redraws at most 10 times a second, but always the last step', () => {
    let now = 0;
    const stream = new FakeStream(true, 80);
    const bar = new ProgressBar({ total: 100, label: 'epoch 1/1', stream, now: () => now });
    for (let i = 1; i <= 100; i++) {
      now = i * 7; // 700 ms in all
      bar.update(i, { loss: 1 / i });
    }
    // Draws at 7 ms, then at ≥ 100 ms gaps (7 more), then the final step.
    expect(stream.out.length).toBeLessThanOrEqual(9);
    expect(frames(stream).at(-1)).toContain('100/100');
    bar.done();
    expect(stream.text.endsWith('\n')).toBe(true);
    expect(stream.out.every((w) => !w.slice(1).includes('\r'))).toBe(true);
  });

  it('fits the terminal width: shrinks the bar, then drops it, then cuts the line', () => {
    for (const columns of [120, 80, 60, 40, 20]) {
      const stream = new FakeStream(true, columns);
      const bar = new ProgressBar({ total: 60000, label: 'epoch 12/100', stream, now: () => 1 });
      bar.update(31234, { loss: 0.1234, acc: '97.5%', 'samples/s': 123456 });
      const line = frames(stream)[0]!;
      expect(line.length, `${columns} columns: ${line}`).toBeLessThan(columns);
      expect(line.startsWith('epoch 12/100')).toBe(true);
      if (columns >= 120) expect(line).toContain('[');
    }
  });

  it('prints a plain line at most every 10% when not a terminal', () => {
    let now = 0;
    const stream = new FakeStream(false);
    const bar = new ProgressBar({ total: 1000, label: 'epoch 2/3', stream, now: () => now });
    for (let i = 0; i <= 1000; i++) {
      now = i;
      bar.update(i, { loss: 0.5 });
    }
    bar.done();
    const lines = stream.text.split('\n').filter(Boolean);
    expect(lines.length).toBe(11); // 0%, 10%, …, 100%; done() adds nothing new
    expect(stream.text).not.toContain('\r');
    expect(stream.text).not.toContain('\x1b');
    expect(lines[1]).toBe('epoch 2/3 100/1000 (10%)  loss 0.5000  eta 0:01');
    expect(lines.at(-1)).toBe('epoch 2/3 1000/1000 (100%)  loss 0.5000');
  });

  it('done() prints the final state once, with new fields, and ignores later updates', () => {
    const stream = new FakeStream(false);
    const bar = new ProgressBar({ total: 10, label: 'eval', stream, now: () => 0 });
    bar.update(3);
    bar.done({ acc: '98.0%' });
    bar.update(10);
    bar.done();
    expect(stream.text.split('\n').filter(Boolean)).toEqual(['eval 3/10 (30%)', 'eval 3/10 (30%)  acc 98.0%']);
  });

  it('formats fields and durations', () => {
    expect(formatField('loss', 0.123456)).toBe('loss 0.1235');
    expect(formatField('samples/s', 5321.7)).toBe('5,322 samples/s');
    expect(formatField('lr', 12.5)).toBe('lr 12.50');
    expect(formatField('step', 12000)).toBe('step 12,000');
    expect(formatField('loss', NaN)).toBe('loss NaN');
    expect(formatDuration(12)).toBe('0:12');
    expect(formatDuration(725)).toBe('12:05');
    expect(formatDuration(3723)).toBe('1:02:03');
  });
});
