/**
 * Per-unit Fisher blocks (SNGD.md §5, "Hierarchy"): within a dense layer y = W̃·x̃, one block per
 * output unit j, as the reference code does for its hidden layers:
 *
 *   F_j = EMA( (1/N) Σ_n w(z_nj)·x̃_n x̃_nᵀ ),   z = W̃·x̃ the layer's pre-activation (after its bias)
 *
 * with w the squared derivative of the activation that consumes z (the Fisher of unit j's output
 * through the activation, with a smooth stand-in for ReLU):
 *
 *   Relu     w = σ(z)²            (σ = softplus′, the reference's choice)
 *   Sigmoid  w = (s·(1 − s))²     s = σ(z)
 *   Tanh     w = (1 − t²)²        t = tanh(z)
 *
 * Any other consumer leaves the layer one block: with uniform weights every F_j equals the layer's F.
 * In the graph P is [m, d̃, d̃] and row j of the effective weight is W̃'_j·P_j:
 *
 *   W_eff = Squeeze(MatMul(Unsqueeze(W̃', 1) [m,1,d̃], P [m,d̃,d̃]), 1)         (m·d̃² per step)
 *
 * so ∂L/∂W̃'_j = (∂L/∂W̃_j)·P_jᵀ and a GD step on W̃' is, in W̃ = W̃'·P coordinates, the step
 * W̃_j ← W̃_j − η·(∂L/∂W̃_j)·P_jᵀP_j = W̃_j − η·g_j·F_j⁻¹ for every row: NGD with unit j's block.
 *
 * Like the reference, the network's first weighted layer (the widest input, d̃² per unit) and its
 * output layers keep one block; so does a layer whose d̃ exceeds the size bound.
 */
import type { Emitter } from '../../src/ir/emit.js';
import type { GraphIndex, Node } from '../../src/ir/graph.js';
import { int64Tensor } from '../../src/onnx/tensor.js';
import type { LayerMatch, MatchContext } from './layers.js';
import type { UnitActivation } from './record.js';

/** The weight w(z) per activation: its formula (for messages) and the ops that compute it from z. */
export const unitWeights: Record<UnitActivation, { formula: string; emit(e: Emitter, z: string): string }> = {
  Relu: {
    formula: 'σ(z)²',
    emit: (e, z) => square(e, e.op('Sigmoid', [z])),
  },
  Sigmoid: {
    formula: '(σ(z)·(1 − σ(z)))²',
    emit: (e, z) => {
      const s = e.op('Sigmoid', [z]);
      return square(e, e.op('Mul', [s, e.op('Sub', [one(e), s])]));
    },
  },
  Tanh: {
    formula: '(1 − tanh(z)²)²',
    emit: (e, z) => {
      const t = e.op('Tanh', [z]);
      return square(e, e.op('Sub', [one(e), e.op('Mul', [t, t])]));
    },
  },
};

/** Largest Fisher dimension d̃ that gets unit blocks by default (m·d̃² per step and per refresh·d̃). */
export const DEFAULT_MAX_UNIT_DIM = 256;

export type UnitCheck = { ok: true; activation: UnitActivation; reason: string } | { ok: false; reason: string };

/** Where a weighted layer sits: whether another weighted layer feeds it, and whether it feeds one. */
export interface LayerPosition {
  first: boolean;
  output: boolean;
}

/**
 * Whether a matched layer gets unit blocks, and why (or why not): every reason ends up in the
 * record's `blocksReason` and the manifest.
 */
export function checkUnitBlocks(match: LayerMatch, ctx: MatchContext, position: LayerPosition, maxUnitDim: number): UnitCheck {
  const fisherDim = match.d + (match.bias ? 1 : 0);
  if (match.kind !== 'Gemm' && match.kind !== 'MatMul') return { ok: false, reason: `per-unit blocks are built for Gemm/MatMul layers; ${match.kind} keeps one block` };
  if (match.layout.weightOperand !== 'B') return { ok: false, reason: 'the weight is the left operand (units along rows): one block' };
  if (position.first) return { ok: false, reason: "the network's first weighted layer keeps one block (as the reference)" };
  if (position.output) return { ok: false, reason: 'an output layer (no weighted layer after it) keeps one block (as the reference)' };
  if (fisherDim > maxUnitDim) return { ok: false, reason: `d̃ = ${fisherDim} > max-unit-dim ${maxUnitDim}: ${match.m} blocks of ${fisherDim}² are too costly; one block` };
  const users = ctx.index.consumers.get(match.output) ?? [];
  const act = users.length === 1 && !ctx.graphOutputs.has(match.output) ? users[0]! : undefined;
  if (!act || !Object.hasOwn(unitWeights, act.opType) || act.domain !== '') {
    const what = ctx.graphOutputs.has(match.output) ? 'a graph output' : users.length === 1 ? `${users[0]!.opType} node '${users[0]!.name}'` : `${users.length} nodes`;
    return { ok: false, reason: `its output feeds ${what}, not one of ${Object.keys(unitWeights).join('/')}: unit weights need the activation's derivative (uniform weights make every unit block the layer block); one block` };
  }
  const activation = act.opType as UnitActivation;
  return { ok: true, activation, reason: `${match.m} unit blocks, w = ${unitWeights[activation].formula} (${activation} '${act.name}' reads z)` };
}

/**
 * First and output layers among the weighted nodes: a forward walk from each weighted node's
 * outputs records which other weighted nodes it reaches (through any ops).
 */
export function layerPositions(index: GraphIndex, weighted: Node[]): Map<Node, LayerPosition> {
  const isWeighted = new Set(weighted);
  const positions = new Map<Node, LayerPosition>(weighted.map((n) => [n, { first: true, output: true }]));
  for (const start of weighted) {
    const seen = new Set<Node>();
    const queue = [...start.outputs];
    while (queue.length > 0) {
      const v = queue.pop()!;
      for (const user of index.consumers.get(v) ?? []) {
        if (seen.has(user)) continue;
        seen.add(user);
        if (isWeighted.has(user) && user !== start) {
          positions.get(start)!.output = false;
          positions.get(user)!.first = false;
          continue; // what lies beyond belongs to that layer's walk
        }
        queue.push(...user.outputs);
      }
    }
  }
  return positions;
}

/** Row j of W̃'·P_j for all units at once: W_eff [m, d̃] from W̃' [m, d̃] and P [m, d̃, d̃]. */
export function emitUnitWeff(e: Emitter, w: string, p: string, name?: string): string {
  const axis1 = e.init('unit_axis', int64Tensor([1], [1]));
  const rows = e.op('Unsqueeze', [w, axis1]);
  return e.op('Squeeze', [e.op('MatMul', [rows, p]), axis1], {}, name ? { name } : {});
}

/** P = S = I for every unit: [m, d̃, d̃] identities. */
export function identityBlocks(m: number, dim: number): Float32Array {
  const out = new Float32Array(m * dim * dim);
  for (let j = 0; j < m; j++) for (let i = 0; i < dim; i++) out[(j * dim + i) * dim + i] = 1;
  return out;
}

function square(e: Emitter, x: string): string {
  return e.op('Mul', [x, x]);
}

function one(e: Emitter): string {
  return e.init('one', { dtype: 'float32', dims: [], data: Float32Array.of(1) });
}
