/**
 * SNGD's defaults by measurement (issue 5): a small grid of EMA start, damping, learning rate and
 * statistics interval on MLP a (784-80-80-80-10, MNIST, batch 50 unless a config says 500, L2 1e-3), several seeds each,
 * test and validation accuracy after every epoch.
 *
 *   npx tsx bench/defaults.ts [--epochs 3] [--seeds 2017,2018,2019] [--only id,id]
 *
 * Each config lists what it changes from SNGD.md §6's reference settings (REFERENCE_SNGD).
 * Each run is one child process (bench/train-one.ts); results go to bench/results/defaults/<id>-<seed>.json
 * and runs already there are reused, so an interrupted grid continues where it stopped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REFERENCE_SNGD, type SngdSettings } from '../runtime/run.js';
import { argValue, BENCH_DIR, log, mean, readJson, runTraining, std, writeJson, type RunResult } from './lib.js';

interface Config { id: string; label: string; lr: number; sngd: Partial<SngdSettings>; batchSize?: number }

export const DEFAULTS_GRID: Config[] = [
  { id: 'ref', label: 'reference: EMA from I, ε_rel 1e-4, lr 0.1', lr: 0.1, sngd: { emaInit: 'identity', epsRel: 1e-4 } },
  { id: 'bc-1e-2', label: 'bias-corrected, ε_rel 1e-2, lr 0.1', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2 } },
  { id: 'bc-3e-3', label: 'bias-corrected, ε_rel 3e-3, lr 0.1', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 3e-3 } },
  { id: 'bc-1e-2-lr0.2', label: 'bias-corrected, ε_rel 1e-2, lr 0.2', lr: 0.2, sngd: { emaInit: 'zero', epsRel: 1e-2 } },
  { id: 'bc-3e-2-lr0.2', label: 'bias-corrected, ε_rel 3e-2, lr 0.2', lr: 0.2, sngd: { emaInit: 'zero', epsRel: 3e-2 } },
  { id: 'bc-1e-2-se10', label: 'bias-corrected, ε_rel 1e-2, lr 0.1, statistics every 10 steps', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10 } },
  { id: 'bc-1e-2-track', label: 'bias-corrected, ε_rel 1e-2, lr 0.1, tracked refreshes (gate 0.1)', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, refreshStart: 'track' } },
  { id: 'ref-track', label: 'reference, tracked refreshes (gate 0.1)', lr: 0.1, sngd: { emaInit: 'identity', epsRel: 1e-4, refreshStart: 'track' } },
  { id: 'se10-track', label: 'bias-corrected, ε_rel 1e-2, lr 0.1, statistics every 10, tracked refreshes', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track' } },
  { id: 'se10-track-T20', label: 'same, T 20', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20 } },
  { id: 'se10-track-b0.99', label: 'same as se10-track, EMA decay 0.99', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', emaDecay: 0.99 } },
  { id: 'se10-track-lr0.15', label: 'same as se10-track, lr 0.15', lr: 0.15, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track' } },
  { id: 'se10-track-T10', label: 'same as se10-track, T 10', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 10 } },
  { id: 'se10-track-T20-dw40', label: 'same as se10-track, T 20, damping warm-up 40 steps', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20, dampingWarmup: 40 } },
  { id: 'se10-track-T20-lr0.15', label: 'same as se10-track, T 20, lr 0.15', lr: 0.15, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20 } },
  { id: 'se1-track-T20', label: 'bias-corrected, ε_rel 1e-2, lr 0.1, statistics every step, tracked, T 20', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 1, refreshStart: 'track', refreshEvery: 20 } },
  { id: 'se10-track-T20-e5e-3', label: 'same as se10-track, T 20, ε_rel 5e-3', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 5e-3, statEvery: 10, refreshStart: 'track', refreshEvery: 20 } },
  { id: 'se10-track-T20-dw40-g0.2', label: 'same as se10-track-T20-dw40, gate 0.2', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20, dampingWarmup: 40, refreshGate: 0.2 } },
  // Re-measured on the final implementation of tracked refreshes (one or two NS steps, per-group cold).
  { id: 'final-defaults', label: 'the defaults (DEFAULT_SNGD), final implementation', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20, dampingWarmup: 40, refreshGate: 0.2 } },
  { id: 'final-ref-track', label: 'reference settings, tracked refreshes (gate 0.2), final implementation', lr: 0.1, sngd: { refreshStart: 'track', refreshGate: 0.2 } },
  // Four power steps in the gate (was eight), then the gate re-chosen at T = 20 and at T = 100.
  ...[0.2, 0.3].flatMap((gate): Config[] => [
    { id: `p4-T20-g${gate}`, label: `the defaults, 4-step gate estimate, gate ${gate}`, lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 20, dampingWarmup: 40, refreshGate: gate } },
    { id: `p4-T100-g${gate}`, label: `the defaults at T 100, 4-step gate estimate, gate ${gate}`, lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshStart: 'track', refreshEvery: 100, dampingWarmup: 40, refreshGate: gate } },
  ]),
  // ε_rel 1e-3 with the defaults' warm-up and tracked refreshes (the small CNN's best; without the warm-up it diverged).
  { id: 'p4-T20-g0.3-e1e-3', label: 'the defaults with ε_rel 1e-3', lr: 0.1, sngd: { emaInit: 'zero', epsRel: 1e-3, statEvery: 10, refreshStart: 'track', refreshEvery: 20, dampingWarmup: 40, refreshGate: 0.3 } },
  // Batch 500 (an epoch is 100 steps): refreshes every 10 steps, as SNGD.md §8.
  ...[0.4, 0.5].map((lr): Config => ({ id: `b500-lr${lr}-dw`, label: `batch 500, bias-corrected, ε_rel 1e-2, T 10, tracked, damping warm-up 40 steps, lr ${lr}`, lr, batchSize: 500, sngd: { emaInit: 'zero', epsRel: 1e-2, refreshEvery: 10, refreshStart: 'track', dampingWarmup: 40 } })),
  ...[0.1, 0.2, 0.3].flatMap((lr): Config[] => [
    { id: `b500-lr${lr}`, label: `batch 500, bias-corrected, ε_rel 1e-2, T 10, tracked, lr ${lr}`, lr, batchSize: 500, sngd: { emaInit: 'zero', epsRel: 1e-2, refreshEvery: 10, refreshStart: 'track' } },
    { id: `b500-lr${lr}-dw`, label: `same, damping warm-up 40 steps, lr ${lr}`, lr, batchSize: 500, sngd: { emaInit: 'zero', epsRel: 1e-2, refreshEvery: 10, refreshStart: 'track', dampingWarmup: 40 } },
  ]),
];

const epochs = Number(argValue('epochs') ?? 3);
const seeds = (argValue('seeds') ?? '2017,2018,2019').split(',').map(Number);
const only = argValue('only')?.split(',');
const dir = path.join(BENCH_DIR, 'results', 'defaults');
fs.mkdirSync(dir, { recursive: true });

for (const c of DEFAULTS_GRID.filter((x) => !only || only.includes(x.id))) {
  const rows: RunResult[] = [];
  for (const seed of seeds) {
    const file = path.join(dir, `${c.id}-${seed}.json`);
    if (fs.existsSync(file) && readJson<RunResult>(file).epochs.length >= epochs) {
      rows.push(readJson<RunResult>(file));
      continue;
    }
    log(`defaults: ${c.id} seed ${seed}`);
    // Every config is complete over SNGD.md §6's reference settings, whatever the current defaults are.
    const r = runTraining({ workload: 'mlp-a', seed, optimizer: 'sngd', lr: c.lr, batchSize: c.batchSize ?? 50, epochs, sngd: { ...REFERENCE_SNGD, ...c.sngd } });
    writeJson(file, { ...r, config: c });
    rows.push(r);
  }
  const acc = (e: number) => rows.map((r) => 100 * (r.epochs[e]?.testAccuracy ?? NaN));
  const cells = Array.from({ length: epochs }, (_, e) => `${mean(acc(e)).toFixed(2)}±${std(acc(e)).toFixed(2)}`);
  console.log(`${c.id.padEnd(16)} ${cells.join(' / ')}   (${c.label}; ${seeds.length} seeds)`);
}
