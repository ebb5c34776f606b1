/**
 * Self-contained SVG plots of a run's metrics, to open in a browser: no scripts, no external
 * fonts or styles, and a white background so dark viewers show it too.
 *
 * `renderMetricsSvg` draws two panels: training loss by step (a thin line from 'step' records,
 * markers from 'epoch' records, validation/test loss when logged; log-scale when the values span
 * more than two decades) and accuracy in % by epoch (train, validation, test).
 * `renderComparisonSvg` is a generic multi-line plot for benchmarks (accuracy vs epochs or seconds).
 *
 * Non-finite values are not drawn: they break a line rather than bend it, so a diverged stretch
 * shows as a gap.
 */
import { writeFileAtomic } from '../src/onnx/codec.js';
import type { MetricRecord } from './metrics.js';

export interface PlotOptions {
  title: string;
}

export interface ComparisonSeries {
  label: string;
  points: { x: number; y: number }[];
}

export interface ComparisonOptions {
  title: string;
  xLabel: string;
  yLabel: string;
}

// ---------------------------------------------------------------- public entry points

export function renderMetricsSvg(records: MetricRecord[], opts: PlotOptions): string {
  const width = 1000;
  const height = 460;
  const out = svgOpen(width, height, opts.title);
  if (records.length === 0) {
    out.push(placeholder(width / 2, height / 2, 'no metrics recorded yet'));
    return svgClose(out);
  }
  const steps = records.filter((r) => r.kind === 'step');
  const epochs = records.filter((r) => r.kind === 'epoch');
  // Validation and test accuracy also from evaluations inside epochs (--eval-every), at their fraction of an epoch.
  const evaluations = records.filter((r) => r.kind === 'epoch' || r.kind === 'eval').map((r) => (r.kind === 'eval' ? { ...r, epoch: r.epochsDone ?? r.epoch } : r));
  const bottom = height - 62;
  const lossFrame = { left: 78, top: 104, right: width / 2 - 24, bottom };
  const accFrame = { left: width / 2 + 66, top: 104, right: width - 24, bottom };

  // x and y per record that has the field, and a hover text for epoch markers.
  const pick = (rs: MetricRecord[], x: 'step' | 'epoch', key: string, name: string, percent = false): Pt[] =>
    rs.filter((r) => r[key] !== undefined).map((r) => {
      const y = (r[key] as number) * (percent ? 100 : 1);
      const title = r.kind !== 'step' ? `${name}, epoch ${formatPlain(r.epoch)} (step ${formatPlain(r.step)}): ${formatPlain(y)}${percent ? '%' : ''}` : undefined;
      return { x: r[x], y, title };
    });
  const loss: Series[] = [
    { label: 'train (step)', color: COLORS.trainLight, points: pick(steps, 'step', 'loss', 'train loss'), width: 1.2 },
    { label: 'train (epoch)', color: COLORS.train, points: pick(epochs, 'step', 'loss', 'train loss'), markers: true },
    { label: 'validation', color: COLORS.validation, points: pick(epochs, 'step', 'validationLoss', 'validation loss'), width: 1.8, dash: '5 3', markers: true },
    { label: 'test', color: COLORS.test, points: pick(epochs, 'step', 'testLoss', 'test loss'), width: 1.8, dash: '5 3', markers: true },
  ];
  const acc: Series[] = [
    { label: 'train', color: COLORS.train, points: pick(epochs, 'epoch', 'trainAccuracy', 'train accuracy', true), width: 2, markers: true },
    { label: 'validation', color: COLORS.validation, points: pick(evaluations, 'epoch', 'validationAccuracy', 'validation accuracy', true), width: 2, markers: true },
    { label: 'test', color: COLORS.test, points: pick(evaluations, 'epoch', 'testAccuracy', 'test accuracy', true), width: 2, markers: true },
  ];
  out.push(panel(lossFrame, 'Loss', 'step', 'loss', loss, { integerX: true, allowLogY: true, empty: 'no loss recorded' }, 0));
  out.push(panel(accFrame, 'Accuracy', 'epoch', 'accuracy (%)', acc, { integerX: true, clampY: [0, 100], empty: 'no accuracy recorded' }, 1));
  return svgClose(out);
}

/** Renders the metrics plot and writes it atomically to `file`. */
export function writeMetricsPlot(file: string, records: MetricRecord[], opts: PlotOptions): void {
  writeFileAtomic(file, renderMetricsSvg(records, opts));
}

export function renderComparisonSvg(series: ComparisonSeries[], opts: ComparisonOptions): string {
  // Tall enough for a legend row per series.
  const height = Math.max(460, 64 + 20 * series.length + 20);
  // The legend sits right of the plot, as wide as its longest label (within reason).
  const labels = series.map((s) => clipText(s.label, 36));
  const legendWidth = series.length === 0 ? 0 : 44 + Math.max(...labels.map((l) => textWidth(l, 12)));
  const plotWidth = 620;
  const width = Math.ceil(78 + plotWidth + 24 + legendWidth + 16);
  const out = svgOpen(width, height, opts.title);
  const frame = { left: 78, top: 64, right: 78 + plotWidth, bottom: height - 62 };
  const drawn: Series[] = series.map((s, i) => ({
    label: labels[i]!,
    color: PALETTE[i % PALETTE.length]!,
    // Past ten series the colours repeat, so the dash pattern tells them apart.
    dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length],
    points: s.points,
    width: 2,
    markers: s.points.length <= 40,
  }));
  out.push(panel(frame, '', opts.xLabel, opts.yLabel, drawn, { allowLogY: true, legend: 'right', empty: 'no data to plot' }, 0));
  return svgClose(out);
}

// ---------------------------------------------------------------- panels

interface Pt {
  x: number;
  y: number;
  /** Shown on hover in browsers (markers only). */
  title?: string;
}

interface Series {
  label: string;
  color: string;
  points: Pt[];
  /** Line width; no line when absent. */
  width?: number;
  dash?: string;
  markers?: boolean;
}

interface Frame {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface PanelOptions {
  integerX?: boolean;
  allowLogY?: boolean;
  clampY?: [number, number];
  legend?: 'top' | 'right';
  empty: string;
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"`;
const COLORS = { train: '#1f77b4', trainLight: '#8fb9dc', validation: '#e6720f', test: '#2ca02c' };
const PALETTE = ['#1f77b4', '#e6720f', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DASHES = [undefined, '6 3', '2 3'];
const INK = '#222';
const GRID = '#e4e4e4';

/** One plot: frame, grid, ticks, axis titles, clipped series, legend; or a message when nothing is finite. */
function panel(f: Frame, title: string, xLabel: string, yLabel: string, all: Series[], o: PanelOptions, id: number): string {
  const series = all.filter((s) => s.points.some(finitePt));
  const out: string[] = [];
  const midX = (f.left + f.right) / 2;
  if (title) out.push(text(midX, f.top - 46, title, { size: 14, weight: 'bold' }));
  if (series.length === 0) {
    out.push(`<rect x="${n(f.left)}" y="${n(f.top)}" width="${n(f.right - f.left)}" height="${n(f.bottom - f.top)}" fill="none" stroke="${GRID}"/>`);
    out.push(placeholder(midX, (f.top + f.bottom) / 2, o.empty));
    return out.join('\n');
  }
  const xs = series.flatMap((s) => s.points.filter(finitePt).map((p) => p.x));
  const ys = series.flatMap((s) => s.points.filter(finitePt).map((p) => p.y));
  const xScale = linearScale(Math.min(...xs), Math.max(...xs), { integer: o.integerX, maxTicks: 7 });
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const yScale = o.allowLogY && yMin > 0 && yMax / yMin > 100
    ? logScale(yMin, yMax)
    : linearScale(yMin, yMax, { maxTicks: 6, clamp: o.clampY });
  const sx = (v: number) => f.left + ((v - xScale.min) / (xScale.max - xScale.min)) * (f.right - f.left);
  const sy = (v: number) => f.bottom - ((yScale.t(v) - yScale.t(yScale.min)) / (yScale.t(yScale.max) - yScale.t(yScale.min))) * (f.bottom - f.top);

  // Grid and ticks.
  for (const v of yScale.ticks) {
    const y = sy(v);
    out.push(`<line x1="${n(f.left)}" y1="${n(y)}" x2="${n(f.right)}" y2="${n(y)}" stroke="${GRID}"/>`);
    out.push(`<line x1="${n(f.left - 5)}" y1="${n(y)}" x2="${n(f.left)}" y2="${n(y)}" stroke="${INK}"/>`);
    out.push(text(f.left - 8, y + 4, yScale.label(v), { size: 11, anchor: 'end' }));
  }
  for (const v of yScale.minor) {
    const y = sy(v);
    out.push(`<line x1="${n(f.left - 3)}" y1="${n(y)}" x2="${n(f.left)}" y2="${n(y)}" stroke="${INK}"/>`);
  }
  for (const v of xScale.ticks) {
    const x = sx(v);
    out.push(`<line x1="${n(x)}" y1="${n(f.top)}" x2="${n(x)}" y2="${n(f.bottom)}" stroke="${GRID}"/>`);
    out.push(`<line x1="${n(x)}" y1="${n(f.bottom)}" x2="${n(x)}" y2="${n(f.bottom + 5)}" stroke="${INK}"/>`);
    out.push(text(x, f.bottom + 19, xScale.label(v), { size: 11, anchor: 'middle' }));
  }
  out.push(`<rect x="${n(f.left)}" y="${n(f.top)}" width="${n(f.right - f.left)}" height="${n(f.bottom - f.top)}" fill="none" stroke="${INK}"/>`);
  out.push(text(midX, f.bottom + 42, xLabel, { size: 12 }));
  const yTitleX = f.left - 16 - Math.max(...yScale.ticks.map((v) => textWidth(yScale.label(v), 11)));
  out.push(text(yTitleX, (f.top + f.bottom) / 2, yLabel + (yScale.log ? ' (log scale)' : ''), { size: 12, rotate: true }));

  // Series, clipped to the frame so nothing spills over the axes.
  const clip = `plot-area-${id}`;
  out.push(`<clipPath id="${clip}"><rect x="${n(f.left - 4)}" y="${n(f.top - 4)}" width="${n(f.right - f.left + 8)}" height="${n(f.bottom - f.top + 8)}"/></clipPath>`);
  out.push(`<g clip-path="url(#${clip})">`);
  for (const s of series) {
    const pts = thin(s.points, Math.round(f.right - f.left));
    if (s.width !== undefined) {
      const d = pathData(pts, sx, sy);
      if (d) out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linejoin="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    }
    // A lone point has no line to show it: always mark it.
    const lone = (i: number) => !finitePt(pts[i - 1]) && !finitePt(pts[i + 1]);
    pts.forEach((p, i) => {
      if (!finitePt(p) || !(s.markers || lone(i))) return;
      const tip = p.title !== undefined ? `<title>${escapeXml(p.title)}</title>` : '';
      out.push(`<circle cx="${n(sx(p.x))}" cy="${n(sy(p.y))}" r="${s.markers ? 3.5 : 2}" fill="${s.color}" stroke="#fff" stroke-width="1">${tip}</circle>`);
    });
  }
  out.push('</g>');
  out.push(o.legend === 'right' ? legendRight(f, series) : legendTop(f, series));
  return out.join('\n');
}

/** A centred row above the frame; two rows when one would be wider than the frame. */
function legendTop(f: Frame, series: Series[]): string {
  const items = series.map((s) => ({ s, w: 26 + textWidth(s.label, 12) }));
  const rowWidth = (row: typeof items) => row.reduce((a, i) => a + i.w, 0) + 16 * (row.length - 1);
  const half = Math.ceil(items.length / 2);
  const rows = rowWidth(items) <= f.right - f.left + 40 ? [items] : [items.slice(0, half), items.slice(half)];
  const out: string[] = [];
  rows.forEach((row, r) => {
    let x = (f.left + f.right) / 2 - rowWidth(row) / 2;
    const y = f.top - 18 - 16 * (rows.length - 1 - r);
    for (const { s, w } of row) {
      out.push(swatch(x, y, s));
      out.push(text(x + 26, y + 4, s.label, { size: 12, anchor: 'start' }));
      x += w + 16;
    }
  });
  return out.join('\n');
}

function legendRight(f: Frame, series: Series[]): string {
  const out: string[] = [];
  series.forEach((s, i) => {
    const y = f.top + 10 + i * 20;
    out.push(swatch(f.right + 24, y, s));
    out.push(text(f.right + 50, y + 4, s.label, { size: 12, anchor: 'start' }));
  });
  return out.join('\n');
}

function swatch(x: number, y: number, s: Series): string {
  const parts: string[] = [];
  if (s.width !== undefined) {
    parts.push(`<line x1="${n(x)}" y1="${n(y)}" x2="${n(x + 20)}" y2="${n(y)}" stroke="${s.color}" stroke-width="${Math.max(2, s.width)}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
  }
  if (s.markers) parts.push(`<circle cx="${n(x + 10)}" cy="${n(y)}" r="3.5" fill="${s.color}" stroke="#fff" stroke-width="1"/>`);
  return parts.join('');
}

/** Path data with a fresh `M` after every non-finite point, so gaps stay gaps. */
function pathData(pts: Pt[], sx: (v: number) => number, sy: (v: number) => number): string {
  const parts: string[] = [];
  let pen = false;
  for (const p of pts) {
    if (!finitePt(p)) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${n(sx(p.x))},${n(sy(p.y))}`);
    pen = true;
  }
  return parts.join('');
}

/**
 * At most ~4 points per pixel column: keeps each bucket's first, lowest, highest and last point,
 * so a 100k-step line stays small yet keeps its spikes. Non-finite points survive as gaps.
 */
function thin(pts: Pt[], columns: number): Pt[] {
  if (pts.length <= columns * 4) return pts;
  const size = Math.ceil(pts.length / columns);
  const out: Pt[] = [];
  for (let start = 0; start < pts.length; start += size) {
    const bucket = pts.slice(start, start + size);
    const good = bucket.filter(finitePt);
    if (good.length < bucket.length) out.push({ x: NaN, y: NaN });
    if (good.length === 0) continue;
    let lo = good[0]!;
    let hi = good[0]!;
    for (const p of good) {
      if (p.y < lo.y) lo = p;
      if (p.y > hi.y) hi = p;
    }
    const keep = new Set([good[0]!, lo, hi, good[good.length - 1]!]);
    out.push(...good.filter((p) => keep.has(p)));
  }
  return out;
}

// ---------------------------------------------------------------- scales

interface Scale {
  min: number;
  max: number;
  log: boolean;
  ticks: number[];
  /** Unlabelled ticks (2…9 × 10^k on a log axis). */
  minor: number[];
  label(v: number): string;
  /** The axis's transform: identity, or log10. */
  t(v: number): number;
}

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about `maxTicks` of them. */
function linearScale(lo: number, hi: number, o: { integer?: boolean; maxTicks: number; clamp?: [number, number] }): Scale {
  const [dataLo, dataHi] = [lo, hi];
  if (lo === hi) {
    // One value: centre it in a small range around it.
    const pad = o.integer ? 1 : lo !== 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  let step = niceStep((hi - lo) / (o.maxTicks - 1));
  if (o.integer) step = Math.max(1, Math.round(step));
  let min = Math.floor(lo / step + 1e-9) * step;
  let max = Math.ceil(hi / step - 1e-9) * step;
  // Accuracy never goes past 0..100: don't let rounding outward show -20% or 120%.
  if (o.clamp) {
    const [cLo, cHi] = o.clamp;
    if (dataLo >= cLo && min < cLo) min = cLo;
    if (dataHi <= cHi && max > cHi) max = cHi;
  }
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  const ticks: number[] = [];
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) ticks.push(Number((k * step).toFixed(decimals)));
  return { min, max, log: false, ticks, minor: [], label: (v) => formatTick(v, decimals), t: (v) => v };
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** Decade ticks (every few decades when there are many) with 2…9 minor ticks when there are few. */
function logScale(lo: number, hi: number): Scale {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.ceil(Math.log10(hi) - 1e-9);
  const every = Math.max(1, Math.ceil((b - a) / 6));
  const ticks: number[] = [];
  const minor: number[] = [];
  for (let k = a; k <= b; k++) {
    if ((k - a) % every === 0) ticks.push(10 ** k);
    if (b - a <= 5 && k < b) for (let m = 2; m <= 9; m++) minor.push(m * 10 ** k);
  }
  return { min: 10 ** a, max: 10 ** b, log: true, ticks, minor, label: (v) => formatDecade(Math.round(Math.log10(v))), t: Math.log10 };
}

function formatTick(v: number, decimals: number): string {
  if (Math.abs(v) >= 1e6 && decimals === 0) return `${formatPlain(v / 1e6)}M`;
  // `+ 0` turns -0 into 0.
  return (v + 0).toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function formatDecade(k: number): string {
  if (k >= -4 && k <= 5) return (10 ** k).toLocaleString('en-US', { maximumFractionDigits: 4 });
  return `1e${k}`;
}

/** Up to 4 significant digits, for tooltips. */
function formatPlain(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : String(Number(v.toPrecision(4)));
}

// ---------------------------------------------------------------- SVG text

function svgOpen(width: number, height: number, title: string): string[] {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} fill="${INK}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    // Bold glyphs run up to ~0.7 em wide: cut a long title rather than run off the page.
    text(width / 2, 32, clipText(title, Math.floor((width - 40) / (18 * 0.7))), { size: 18, weight: 'bold' }),
  ];
}

function svgClose(out: string[]): string {
  return `${out.join('\n')}\n</svg>\n`;
}

function placeholder(x: number, y: number, message: string): string {
  return text(x, y, message, { size: 14, fill: '#888' });
}

function text(x: number, y: number, s: string, o: { size: number; anchor?: 'start' | 'middle' | 'end'; weight?: string; rotate?: boolean; fill?: string }): string {
  const attrs = [
    `x="${n(x)}"`, `y="${n(y)}"`, `font-size="${o.size}"`, `text-anchor="${o.anchor ?? 'middle'}"`,
    o.weight ? `font-weight="${o.weight}"` : '', o.fill ? `fill="${o.fill}"` : '',
    o.rotate ? `transform="rotate(-90 ${n(x)} ${n(y)})"` : '',
  ].filter(Boolean);
  return `<text ${attrs.join(' ')}>${escapeXml(s)}</text>`;
}

/** A rough width for layout: the average sans-serif glyph is about 0.6 em. */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

function clipText(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function escapeXml(s: string): string {
  // Also drop the control characters XML 1.0 forbids, so any run name yields a valid file.
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A coordinate with one decimal. */
function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function finitePt(p: Pt | undefined): p is Pt {
  return p !== undefined && Number.isFinite(p.x) && Number.isFinite(p.y);
}
