/**
 * Results of bench/cost-model.ts (bench/results/cost-model.json) and their table, shared with
 * bench/report.ts.
 */
import type { LossKind } from '../passes/training/losses.js';
import type { MachineProfile } from '../passes/cost/index.js';
import type { Machine } from './lib.js';

export interface CostModelRow {
  name: string;
  loss: LossKind;
  dims: Record<string, number>;
  layers: number;
  /** Seconds: predicted and measured. */
  sgd: { predicted: number; measured: number; graphPredicted: number; graphMeasured: number };
  sngd: { predicted: number; measured: number; graphPredicted: number; graphMeasured: number };
  refresh: { predicted: number; measured: number };
  total: { predicted: number; measured: number };
  ratio: { predicted: number; measured: number };
  nodes: { sgd: number; sngd: number };
  /** The threaded MatMul rate the model's calibration measured (GFLOP/s): the machine's speed then. */
  gemmGflops?: number;
  /** Newton–Schulz steps of a refresh: predicted per dense dimension, measured per layer. */
  nsSteps?: { predicted: Record<string, number>; measured: number[] };
}

export interface CostModelResults {
  machine: Machine;
  batch: number;
  steps: number;
  refreshEvery: number;
  /** Load averages (1, 5, 15 min) before and after; the share of CPU time other processes used meanwhile. `profile`: the first model's calibration. */
  loadBefore: number[];
  loadAfter: number[];
  otherLoad?: number;
  profile: MachineProfile;
  rows: CostModelRow[];
  skipped: { name: string; reason: string }[];
}

export const err = (p: number, m: number) => (m > 0 ? `${p >= m ? '+' : ''}${((100 * (p - m)) / m).toFixed(0)} %` : '–');
export const ms = (s: number) => (s * 1e3).toFixed(s < 1e-3 ? 3 : 2);

/** The markdown table of a results file (also used by bench/report.ts). */
export function costTable(r: CostModelResults): string[] {
  const cell = (x: { predicted: number; measured: number }) => `${ms(x.predicted)} / ${ms(x.measured)} (${err(x.predicted, x.measured)})`;
  return [
    '| model | SGD step | SNGD step | refresh | SNGD step + refresh/T | SNGD / SGD |',
    '|---|---|---|---|---|---|',
    ...r.rows.map((x) => `| ${x.name} | ${cell(x.sgd)} | ${cell(x.sngd)} | ${x.layers ? cell(x.refresh) : '–'} | ${cell(x.total)} | ${x.ratio.predicted.toFixed(2)} / ${x.ratio.measured.toFixed(2)} |`),
  ];
}
