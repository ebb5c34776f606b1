/**
 * The refresh remap as one ONNX graph for all rebuilt layers (SNGD.md §2):
 * W̃'_new = (W̃'_old·P_old)·S_new, so y = W̃'_new·P_new·x̃ = W̃'_old·P_old·x̃ (S_new·P_new = I).
 * Multiplying left to right costs 2·m·d² instead of d³ for P_old·S_new first (m ≪ d for wide inputs).
 * A layer with unit blocks (P, S [m, d, d]) remaps each row by its own block: row j of W̃' as a
 * [1, d] matrix in a batched MatMul, W̃'_j·P_j·S_j (the same 2·m·d²).
 * The same graph remaps momentum buffers, which live in W̃' coordinates.
 */
import { GraphBuilder } from '../models/builder.js';
import type { Model } from '../src/ir/graph.js';
import { int64Tensor } from '../src/onnx/tensor.js';

export function buildRemapGraph(layers: [m: number, d: number, units?: boolean][]): Model {
  const b = new GraphBuilder('sngd_remap');
  layers.forEach(([m, d, units], i) => {
    const w = b.input(`W/${i}`, 'float32', [m, d]);
    const p = b.input(`P/${i}`, 'float32', units ? [m, d, d] : [d, d]);
    const s = b.input(`S/${i}`, 'float32', units ? [m, d, d] : [d, d]);
    if (units) {
      const axis = b.init(`axis/${i}`, int64Tensor([1], [1]));
      const rows = b.op('Unsqueeze', [w, axis]);
      b.op('Squeeze', [b.op('MatMul', [b.op('MatMul', [rows, p]), s]), axis], {}, { output: `out/${i}` });
    } else {
      b.op('MatMul', [b.op('MatMul', [w, p]), s], {}, { output: `out/${i}` });
    }
    b.output(`out/${i}`, 'float32', [m, d]);
  });
  return b.build();
}
