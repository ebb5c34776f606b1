/**
 * SNGD against first-order optimizers on MNIST: every case of the preset (workload × batch size
 * × epochs) is trained with SNGD, SGD, momentum 0.9 and Adam, each over its learning-rate grid
 * (bench/lib.ts GRIDS, GRIDS_500 at batch 500) and every seed, with `train()` on the same
 * compiled graphs in the same runtime (L2 1e-3 on weights, SNGD.md §6; SNGD with the defaults
 * `sngd train` picks: CONV_SNGD for a model with convolutions, else DEFAULT_SNGD, at batch 500 with
 * bench/lib.ts SNGD_500). Each run is its own child process, one
 * after another, so timings and peak RSS are each run's own.
 *
 *   npx tsx bench/compare.ts [--quick | --full] [--workloads mlp-a,cnn] [--epochs N] [--seeds 2017,2018]
 *                            [--resume]
 *
 * Writes bench/results/<mode>/compare.json after every run (--resume skips the runs already
 * there and keeps the file's other runs). Choosing the best learning rate on validation accuracy,
 * and everything derived from the runs, is bench/report.ts's job.
 */
import fs from 'node:fs';
import { argValue, GRIDS, GRIDS_500, L2, log, machine, modeFromArgs, OPTIMIZER_NAMES, PRESETS, readJson, SNGD_500, resultsDir, runTraining, workload, writeJson, type CompareCase, type Machine, type RunResult, type RunSpec } from './lib.js';
import { CONV_SNGD, hasConvolutions } from '../runtime/trainer.js';

export interface CompareResults {
  mode: string;
  command: string;
  machine: Machine;
  cases: CompareCase[];
  seeds: number[];
  /** L2 on weights, for every run. */
  l2: number;
  runs: RunResult[];
}

const mode = modeFromArgs();
const preset = PRESETS[mode].compare;
const only = argValue('workloads')?.split(',');
const epochs = argValue('epochs');
const cases = preset.cases
  .filter((c) => !only || only.includes(c.workload))
  .map((c) => ({ ...c, epochs: epochs ? Number(epochs) : c.epochs }));
const seeds = argValue('seeds')?.split(',').map(Number) ?? preset.seeds;
const file = `${resultsDir(mode)}/compare.json`;

// SNGD's settings as `sngd train --defaults auto` picks them: the convolution defaults for a model
// with convolutions; at batch 500, SNGD_500 over the dense defaults.
// (Whether a workload has convolutions is decided once per workload, not per run.)
const convolutional = new Map(cases.map((c) => [c.workload, hasConvolutions(workload(c.workload).build(2017))]));
const sngdFor = (c: CompareCase) => (convolutional.get(c.workload) ? { sngd: CONV_SNGD } : c.batchSize >= 500 ? { sngd: SNGD_500 } : {});
const specs: RunSpec[] = cases.flatMap((c) => OPTIMIZER_NAMES.flatMap((optimizer) => (c.batchSize >= 500 ? GRIDS_500 : GRIDS)[optimizer].flatMap((lr) => seeds.map((seed): RunSpec => ({
  workload: c.workload, batchSize: c.batchSize, epochs: c.epochs, seed, optimizer, lr,
  ...(optimizer === 'sngd' ? sngdFor(c) : {}),
})))));

const key = (s: RunSpec) => JSON.stringify([s.workload, s.batchSize, s.epochs, s.seed, s.optimizer, s.lr, s.threads ?? null, s.sngd ?? null]);
const previous = process.argv.includes('--resume') && fs.existsSync(file) ? readJson<CompareResults>(file) : undefined;
// With --resume, runs of the file that this invocation does not ask for are kept as they are.
const kept = previous?.runs.filter((r) => !specs.some((s) => key(s) === key(r.spec))) ?? [];
const allCases = [...cases, ...(previous?.cases ?? [])].filter((c, i, a) => a.findIndex((d) => JSON.stringify(d) === JSON.stringify(c)) === i);
const results: CompareResults = { mode, command: `npx tsx bench/compare.ts ${process.argv.slice(2).join(' ')}`.trim(), machine: machine(), cases: allCases, seeds, l2: L2, runs: [] };
const started = performance.now();
for (const [i, spec] of specs.entries()) {
  const done = previous?.runs.find((r) => key(r.spec) === key(spec));
  const r = done ?? runTraining(spec);
  results.runs.push(r);
  writeJson(file, { ...results, runs: [...results.runs, ...kept] });
  const last = r.epochs[r.epochs.length - 1]!;
  log(`compare ${i + 1}/${specs.length} ${spec.workload} b${spec.batchSize} ${spec.optimizer} lr ${spec.lr} seed ${spec.seed}: validation ${pct(last.validationAccuracy)}, test ${pct(last.testAccuracy)}, ${(last.seconds / last.epoch).toFixed(1)} s/epoch${done ? ' (from --resume)' : ''}; ${((performance.now() - started) / 1000).toFixed(0)} s so far`);
}
log(`compare: ${specs.length} runs in ${((performance.now() - started) / 1000).toFixed(0)} s → ${file}`);

function pct(v: number | undefined): string {
  return v === undefined ? '–' : `${(100 * v).toFixed(2)}%`;
}
