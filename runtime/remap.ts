/**
 * The refresh remap as one ONNX graph for all rebuilt layers (SNGD.md §2):
 * W̃'_new = (W̃'_old·P_old)·S_new, so y = W̃'_new·P_new·x̃ = W̃'_old·P_old·x̃ (S_new·P_new = I).
 * Multiplying left to right costs 2·m·d² instead of d³ for P_old·S_new first (m ≪ d for wide inputs).
 * The same graph remaps momentum buffers, which live in W̃' coordinates.
 */
import { GraphBuilder } from '../models/builder.js';
import type { Model } from '../src/ir/graph.js';

export function buildRemapGraph(layers: [m: number, d: number][]): Model {
  const b = new GraphBuilder('sngd_remap');
  layers.forEach(([m, d], i) => {
    const w = b.input(`W/${i}`, 'float32', [m, d]);
    const p = b.input(`P/${i}`, 'float32', [d, d]);
    const s = b.input(`S/${i}`, 'float32', [d, d]);
    const out = b.op('MatMul', [b.op('MatMul', [w, p]), s], {}, { output: `out/${i}` });
    b.output(out, 'float32', [m, d]);
  });
  return b.build();
}

/** Refinement steps of the tracked remap's solve (each multiplies the error by ‖I − Z·Y‖). */
const TRACK_SOLVE_STEPS = 4;

/**
 * The remap after a 'track' refresh (runtime/roots/graph.ts: P_new = Z·P_old, no S): the function
 * is unchanged when W̃'_new·P_new = W̃'_old·P_old, i.e. W̃'_new·Z = W̃'_old. Solved on the m rows
 * only, with Y ≈ Z⁻¹ as the preconditioner:
 *
 *   X₀ = W·Y,   X_{j+1} = X_j + (W − X_j·Z)·Y     (error ×‖I − Z·Y‖ per step: ~1e-2 after a track)
 *
 * 2·m·d² multiply-adds a step instead of the d³ products S_new would cost. Inputs W/<i> [m, d],
 * Z/<i>, Y/<i> [d, d]; outputs out/<i> and residual/<i> = ‖W − X·Z‖_F/‖W‖_F (the run checks it).
 */
export function buildTrackRemapGraph(layers: [m: number, d: number][]): Model {
  const b = new GraphBuilder('sngd_track_remap');
  layers.forEach(([m, d], i) => {
    const w = b.input(`W/${i}`, 'float32', [m, d]);
    const z = b.input(`Z/${i}`, 'float32', [d, d]);
    const y = b.input(`Y/${i}`, 'float32', [d, d]);
    let x = b.op('MatMul', [w, y]);
    const residual = (v: string) => b.op('Sub', [w, b.op('MatMul', [v, z])]);
    for (let j = 0; j < TRACK_SOLVE_STEPS; j++) x = b.op('Add', [x, b.op('MatMul', [residual(x), y])]);
    b.op('Identity', [x], {}, { output: `out/${i}` });
    const norm = (v: string) => b.op('Sqrt', [b.op('ReduceSumSquare', [v], { keepdims: 0 })]);
    // max(‖W‖, tiny): an all-zero W (a fresh momentum buffer) remaps to zero exactly.
    b.op('Div', [norm(residual(x)), b.op('Max', [norm(w), b.init('tiny', { dtype: 'float32', dims: [], data: Float32Array.of(1e-30) })])], {}, { output: `residual/${i}` });
    b.output(`out/${i}`, 'float32', [m, d]);
    b.output(`residual/${i}`, 'float32', []);
  });
  return b.build();
}
