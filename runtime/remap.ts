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
