/** Random Fisher roots and graph signatures shared by the reconstruction tests. */
import { remapLayer, remapUnitLayer } from '../../passes/reconstruct/remap.js';
import { readLayerRecords, unitOf } from '../../passes/reconstruct/record.js';
import type { Model } from '../../src/ir/graph.js';
import { symmetricEigen } from '../../src/numerics/eigen.js';
import { mat, matmul, randomOrthogonal, randomSpd, transpose, type Mat } from '../../src/numerics/linalg.js';
import { Rng } from '../../src/numerics/random.js';

/**
 * Random roots for every rebuilt layer: P = Q·F^{-1/2}, S = F^{1/2}·Qᵀ with Q orthogonal, so
 * PᵀP = F⁻¹ and S·P = I but P is not symmetric (as after a warm-started refresh); `symmetric`
 * drops Q (P = F^{-1/2}, as after a cold refresh). A layer with unit blocks gets its own random
 * roots for every unit.
 */
export function withRandomRoots(model: Model, seed: number, symmetric = false): Model {
  const rng = new Rng(seed);
  let out = model;
  const roots = (d: number) => {
    const { P, S } = randomSpd(d, rng);
    if (symmetric) return { P, S };
    const q = randomOrthogonal(d, rng);
    return { P: matmul(q, P), S: matmul(S, transpose(q)) };
  };
  for (const rec of readLayerRecords(model)) {
    if (unitOf(rec)) {
      const units = Array.from({ length: rec.m }, () => roots(rec.fisherDim));
      out = remapUnitLayer(out, rec.name, units.map((u) => u.P), units.map((u) => u.S));
      continue;
    }
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

/** A^p for a symmetric positive-definite matrix, via its float64 eigendecomposition. */
export function spdPower(a: Mat, p: number): Mat {
  const { values, vectors } = symmetricEigen(a);
  const n = a.rows;
  const scaled = mat(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scaled.data[i * n + j] = vectors.data[i * n + j]! * values[j]! ** p;
  return matmul(scaled, transpose(vectors));
}
