/**
 * All benchmarks, then the report: what `npm run bench` (--quick) and `npm run bench:full`
 * (--full) run.
 *
 *   npx tsx bench/run.ts [--quick | --full] [other arguments, passed on to compare.ts and peer.ts]
 *
 * Runs, one after another in child processes: bench/compare.ts (SNGD vs SGD, momentum, Adam),
 * bench/peer.ts (TensorFlow.js wasm vs ours), bench/flops.ts (hardware efficiency), then
 * bench/report.ts, which regenerates docs/benchmarks.md and docs/figures/*.svg from
 * bench/results/<mode>/*.json. On the 2-core machine of docs/benchmarks.md the quick preset
 * takes 4–6 minutes; the full one (about 200 training runs of 10 epochs) about 1.5 hours,
 * estimated from the quick preset's per-epoch times. An interrupted full run continues with
 * `npx tsx bench/run.ts --full --resume` (compare.ts reuses the runs it finished).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIR, log, modeFromArgs, resultsDir, ROOT, writeJson } from './lib.js';

/** bench/results/<mode>/run.json: how the results were made, for the report's header. */
export interface RunInfo {
  command: string;
  minutes: number;
  finished: string;
}

const mode = modeFromArgs();
const args = process.argv.slice(2);
const started = performance.now();
for (const script of ['compare.ts', 'peer.ts', 'flops.ts', 'report.ts']) {
  if (script === 'report.ts') {
    const info: RunInfo = { command: `npx tsx bench/run.ts ${args.join(' ')}`.trim(), minutes: (performance.now() - started) / 60_000, finished: new Date().toISOString() };
    writeJson(`${resultsDir(mode)}/run.json`, info);
  }
  const passOn = script === 'compare.ts' || script === 'peer.ts' ? args : [`--${mode}`];
  log(`run: ${script} ${passOn.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, script), ...passOn], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    log(`run: ${script} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}
log(`run: all benchmarks (${mode}) in ${((performance.now() - started) / 1000 / 60).toFixed(1)} min`);
