/** Random Fisher roots and graph signatures shared by the reconstruction tests. */
import { remapLayer } from '../../passes/reconstruct/remap.js';
import { readLayerRecords } from '../../passes/reconstruct/record.js';
import type { Model } from '../../src/ir/graph.js';
import { matmul, randomOrthogonal, randomSpd, transpose } from '../../src/numerics/linalg.js';
import { Rng } from '../../src/numerics/random.js';

/**
 * Random roots for every rebuilt layer: P = Q·F^{-1/2}, S = F^{1/2}·Qᵀ with Q orthogonal, so
 * PᵀP = F⁻¹ and S·P = I but P is not symmetric (as after a warm-started refresh); `symmetric`
 * drops Q (P = F^{-1/2}, as after a cold refresh).
 */
export function withRandomRoots(model: Model, seed: number, symmetric = false): Model {
  const rng = new Rng(seed);
  let out = model;
  for (const rec of readLayerRecords(model)) {
    const { P, S } = randomSpd(rec.fisherDim, rng);
    if (symmetric) {
      out = remapLayer(out, rec.name, P, S);
      continue;
    }
    const q = randomOrthogonal(rec.fisherDim, rng);
    out = remapLayer(out, rec.name, matmul(q, P), matmul(S, transpose(q)));
  }
  return out;
}

/** Nodes (with their wiring), inputs, outputs and initializer names: what folding must restore. */
export function signature(m: Model) {
  return {
    nodes: m.graph.nodes.map((n) => `${n.name}:${n.opType}(${n.inputs.join(',')})->${n.outputs.join(',')}`).sort(),
    inputs: m.graph.inputs.map((v) => v.name),
    outputs: m.graph.outputs.map((v) => v.name),
    initializers: [...m.graph.initializers.keys()].sort(),
  };
}
