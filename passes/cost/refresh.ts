/**
 * Seconds of one cold refresh (TrainingRun.refresh with cold roots: the reference, and the first
 * refresh of a tracked run; a tracked refresh usually costs a fraction of it), from the structure of the graphs it
 * runs and the host loops around them:
 *
 *   dense layers, grouped by d̃ (runtime/roots/graph.ts stacks equal dims into one [B, d̃, d̃] batch):
 *     root graph   K scaled Newton–Schulz steps: 3(K−1) + 1 batched MatMuls, + 2 (polish) + 1
 *                  (residual); per step ~STEP_PASSES elementwise passes over B·d̃² and the
 *                  Loop's per-trip kernels; P and S copied out
 *     remap graph  W̃'·P_old·S_new: 2 MatMuls m×d̃×d̃ per layer (twice with momentum buffers)
 *     host         F_λ from the EMA and its SPD check (d̃² each), installing P and S, the
 *                  snapshot after the refresh (parameters and EMAs copied)
 *   Nyström layers (runtime/nystrom.ts, host float64): ~5·d̃·k² + 20·k³ multiply-adds (C·W^{-1/2},
 *     QR, two k×k eigenproblems) and the low-rank remap 4·m·d̃·k (twice with momentum)
 *
 * K comes from the scaled iteration's own lower-bound recurrence (Chen & Chow): α = min(3/(1 + √l
 * + l), 2.95), l ← g(α·l) with g(x) = x(3 − x)²/4, from l₀ = ε_rel/(1 + d̃·ε_rel)·tr/c (damping's
 * guarantee on λ_min/tr, times the trace over the scale c the graph bounds λ_max by), until the
 * stop test passes. Two assumptions about a typical F: c ≈ tr/√d̃ (a spectrum neither flat,
 * c ≈ tr/d̃, nor rank one, c ≈ tr), and the test ‖M − I‖_F/√d̃ ≤ tol, an RMS over d̃
 * eigenvalues, passes once the slowest is within √d̃·tol. Measured on wide layers whose
 * statistics are singular (bench/cost-model.ts), this lands within a step of the real count.
 */
import { nystromOf, unitOf, type LayerRecord } from '../reconstruct/record.js';
import { workSeconds, type MachineProfile } from './machine.js';
import type { OpWork } from './work.js';

export interface RefreshSettings {
  /** ε_rel of the damping (the trainer's lower bound for the scaled steps). */
  epsRel: number;
  /** Momentum buffers are remapped too (a second remap run). */
  momentum: boolean;
  /** Cold-refresh stop tolerance on ‖M − I‖ (RootRefresher: tolerance/10). Defaults to 1e-4. */
  stopAt?: number;
  /** Most steps (DEFAULT_ITERATIONS.ns.cold). Defaults to 30. */
  maxSteps?: number;
}

export interface RefreshSeconds {
  seconds: number;
  /** Per layer (a dense group's time split evenly over its layers). */
  layers: Map<string, number>;
  /** Newton–Schulz steps per dense dimension. */
  steps: Map<number, number>;
}

/** Elementwise passes over the batch per NS step (T = s1·I − s2·M, the stop test's ‖M − I‖), ~3 tensors each. */
const STEP_PASSES = 6;
/** Kernels of one Loop trip (the step's ops, the stop test, the carried scalars). */
const TRIP_KERNELS = 24;
/** Kernels outside the Loop (scale, polish, residual, symmetrize, outputs). */
const ROOT_KERNELS = 40;

/** Scaled Newton–Schulz steps from damping ε_rel at dimension d (see the module comment). */
export function nsSteps(epsRel: number, d: number, stopAt = 1e-4, maxSteps = 30): number {
  const g = (x: number) => (x * (3 - x) ** 2) / 4;
  let l = Math.min(1, (epsRel / (1 + d * epsRel)) * Math.sqrt(d));
  let k = 1;
  while (1 - l > stopAt * Math.sqrt(d) && k < maxSteps) {
    const alpha = Math.min(3 / (1 + Math.sqrt(l) + l), 2.95);
    l = Math.min(g(alpha * l), g(alpha));
    k++;
  }
  return k;
}

const gemm = (batch: number, m: number, k: number, n: number): OpWork => ({ kind: 'gemm', flops: 2 * batch * m * k * n, bytes: 0, parallelWork: batch * m * k * n, outputs: batch * m * n });

export function refreshSeconds(records: readonly LayerRecord[], p: MachineProfile, s: RefreshSettings): RefreshSeconds {
  const layers = new Map<string, number>();
  const steps = new Map<number, number>();
  const add = (name: string, t: number) => layers.set(name, (layers.get(name) ?? 0) + t);
  const dense = records.filter((r) => !nystromOf(r));
  const groups = new Map<number, LayerRecord[]>();
  for (const r of dense) groups.set(r.fisherDim, [...(groups.get(r.fisherDim) ?? []), r]);
  let fixed = 0;
  if (dense.length) fixed += refreshFixedSeconds(p, s);
  for (const [d, rs] of groups) {
    // A unit layer gives the root graph one matrix per unit (stacked with the others of its size).
    const B = rs.reduce((n, r) => n + (unitOf(r)?.units ?? 1), 0);
    steps.set(d, nsSteps(s.epsRel, d, s.stopAt, s.maxSteps));
    const root = denseRootSeconds(d, B, p, s);
    for (const r of rs) {
      const units = unitOf(r)?.units ?? 1;
      add(r.name, (root * units) / B + denseRemapSeconds(r.m, d, units, p, s));
    }
  }
  for (const r of records) {
    const ny = nystromOf(r);
    if (ny) add(r.name, nystromRefreshSeconds(r.m, r.fisherDim, ny.rank, p, s));
  }
  let total = fixed;
  for (const t of layers.values()) total += t;
  return { seconds: total, layers, steps };
}

/** What a refresh with any dense layer pays once: the root and remap runs, the host's bookkeeping. */
export function refreshFixedSeconds(p: MachineProfile, s: RefreshSettings): number {
  return p.run + (s.momentum ? 2 : 1) * p.run + p.host.step;
}

/** The root graph for B stacked d × d matrices (one dimension group). */
export function denseRootSeconds(d: number, B: number, p: MachineProfile, s: RefreshSettings): number {
  const K = nsSteps(s.epsRel, d, s.stopAt, s.maxSteps);
  const matmuls = 3 * (K - 1) + 1 + 2 + 1;
  const passes = K * STEP_PASSES + 8;
  return matmuls * workSeconds(gemm(B, d, d, d), p)
    + passes * (p.node + (12 * B * d * d) / p.memoryBytes)
    + (K * TRIP_KERNELS + ROOT_KERNELS) * p.node
    + 3 * p.input * B + 3 * p.output * B + 2 * 4 * B * d * d * p.outputByte;
}

/** One dense layer's remap run and host work around its root (`units` blocks of d × d for a unit layer). */
export function denseRemapSeconds(m: number, d: number, units: number, p: MachineProfile, s: RefreshSettings): number {
  const remap = (s.momentum ? 2 : 1) * (2 * workSeconds(gemm(1, m, d, d), p) + 2 * p.input + p.output + 4 * m * d * p.outputByte);
  // F_λ (read float64, write float32) and its SPD check; P and S installed; snapshot of W̃' and the EMA.
  const host = 2 * d * d * p.host.ema + d * d * p.host.finite + 8 * d * d * p.host.copyByte + (4 * m * d + 8 * d * d) * p.host.copyByte;
  return remap + host * units;
}

/** A Nyström layer's host refresh (runtime/nystrom.ts) and low-rank remap. */
export function nystromRefreshSeconds(m: number, d: number, k: number, p: MachineProfile, s: RefreshSettings): number {
  const macs = 5 * d * k * k + 20 * k ** 3 + (s.momentum ? 2 : 1) * 4 * m * d * k;
  return macs * p.host.f64Mac + (4 * m * d + 8 * (d * k + d)) * p.host.copyByte;
}
