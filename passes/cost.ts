/**
 * Compute cost of SNGD per training step, relative to plain GD on the same graph, from the
 * rebuilt layers' shapes (multiply-adds; SNGD.md §5's per-side costs):
 *
 *   plain layer           3·N·pos·m·d            forward, ∂x and ∂W
 *   weight side           + 2·m·d̃²               W̃'·P forward, ∂W̃' = ∂W_eff·Pᵀ backward
 *   activation side       + 2·N·pos·d̃²           x̃·Pᵀ forward and its ∂x
 *   statistic             + rows·d̃²              (1/R)·x̃ᵀx̃ (rows: N·pos, ×groups for conv)
 *   refresh (amortized)   + 27·d̃³ / T            ~9 scaled Newton–Schulz steps of 3 MatMuls
 *
 *   Nyström layer (rank k, weight side only; SNGD.md §4):
 *     Fisher layer + 4·m·d̃·k (W̃'·U, ·Uᵀ, and their backward), statistic + rows·d̃·(k+1),
 *     refresh + (5·d̃·k² + 20·k³)/T (host float64: C·W^{-1/2}, QR, U = Q·V; two k×k Jacobi eigenproblems)
 *
 *   Unit blocks (m blocks, weight side only; passes/reconstruct/units.ts):
 *     Fisher layer as the weight side (row j times P_j: 2·m·d̃²), statistic m·rows·d̃²,
 *     refresh m·27·d̃³/T
 *
 * This counts arithmetic only. On small graphs the per-node overhead of onnxruntime and the host's
 * EMA update (d̃² per step) dominate; measured on the MNIST MLP at batch 50 (README, Results) the
 * step costs 4.7× SGD's where these counts say more: read the ratio as the cost at scale.
 */
import type { Graph } from '../src/ir/graph.js';
import { elementCount } from '../src/onnx/tensor.js';
import { nystromOf, unitOf, type LayerRecord } from './reconstruct/record.js';

export interface LayerCost {
  name: string;
  op: string;
  side: 'weight' | 'activation';
  fisherDim: number;
  /** Rows of x̃ per step (batch × positions sharing the weights). */
  rows: number;
  /** Multiply-adds per step. */
  plain: number;
  fisher: number;
  statistic: number;
  refresh: number;
}

export interface CostReport {
  layers: LayerCost[];
  /** Multiply-adds of a plain GD step over the rebuilt layers, and SNGD's total. */
  plain: number;
  sngd: number;
  ratio: number;
}

const NS_MATMULS = 27;

export function estimateCosts(graph: Graph, records: LayerRecord[], batch: number, refreshEvery: number): CostReport {
  const layers = records.map((r): LayerCost => {
    const positions = positionsOf(graph, r);
    const groups = r.layout.group ?? 1;
    const rows = batch * positions * (r.kind === 'Conv' || r.kind === 'ConvTranspose' ? groups : 1);
    const dt = r.fisherDim;
    const plain = 3 * batch * positions * r.m * r.d;
    const ny = nystromOf(r);
    if (ny) {
      const k = ny.rank;
      return { name: r.name, op: r.op, side: r.side, fisherDim: dt, rows, plain, fisher: 4 * r.m * dt * k, statistic: rows * dt * (k + 1), refresh: (5 * dt * k * k + 20 * k ** 3) / refreshEvery };
    }
    const fisher = r.side === 'weight' ? 2 * r.m * dt * dt : 2 * batch * positions * dt * dt;
    const blocks = unitOf(r)?.units ?? 1;
    return { name: r.name, op: r.op, side: r.side, fisherDim: dt, rows, plain, fisher, statistic: blocks * rows * dt * dt, refresh: (blocks * NS_MATMULS * dt ** 3) / refreshEvery };
  });
  const plain = layers.reduce((a, l) => a + l.plain, 0);
  const sngd = layers.reduce((a, l) => a + l.plain + l.fisher + l.statistic + l.refresh, 0);
  return { layers, plain, sngd, ratio: plain > 0 ? sngd / plain : 1 };
}

/** Positions per sample sharing the layer's weights: conv output pixels, or a dense input's inner axes. */
function positionsOf(graph: Graph, r: LayerRecord): number {
  const shapeOf = (v: string) => graph.valueInfo.get(v)?.shape ?? graph.inputs.find((i) => i.name === v)?.shape;
  const original = r.original[0]?.node as { output?: string[] } | undefined;
  if (r.kind === 'Conv' || r.kind === 'ConvTranspose') {
    const out = shapeOf(original?.output?.[0] ?? '');
    const spatial = out?.slice(2);
    return spatial && spatial.every((s) => typeof s === 'number') ? elementCount(spatial as number[]) : 1;
  }
  const x = shapeOf(r.x);
  if (!x || x.length <= 2) return 1;
  const inner = r.layout.weightOperand === 'A' ? x.slice(1, -2).concat(x.slice(-1)) : x.slice(1, -1);
  return inner.every((s) => typeof s === 'number') ? elementCount(inner as number[]) : 1;
}
