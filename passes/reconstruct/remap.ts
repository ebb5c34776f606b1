/**
 * The refresh remap of SNGD.md §2: given new roots (P_new, S_new) for a layer, set
 * W̃'_new = W̃'_old·P_old·S_new so the layer's function does not change (identity 2).
 * Host-side float64; the trainer uses the same rule for momentum buffers.
 */
import { SngdError } from '../../src/errors.js';
import { cloneModel, type Model } from '../../src/ir/graph.js';
import { mat, matmul, rowBlockMatmul, type Mat } from '../../src/numerics/linalg.js';
import { applyLowRankRight } from '../../src/numerics/nystrom.js';
import { nystromOf, readLayerRecords, unitOf } from './record.js';

/** New Nyström roots of one layer: P = U·diag(a)·Uᵀ + s·I, S = U·diag(b)·Uᵀ + t·I. */
export interface NystromParts {
  U: Mat;
  a: ArrayLike<number>;
  s: number;
  b: ArrayLike<number>;
  t: number;
}

/** The Nyström form of remapLayer: W̃'_new = W̃'_old·P_old·S_new in O(m·d̃·k), host float64. */
export function remapNystromLayer(model: Model, layer: string, roots: NystromParts): Model {
  const rec = readLayerRecords(model).find((r) => r.name === layer);
  const ny = rec && nystromOf(rec);
  if (!rec || !ny) throw new SngdError(`${model.source ?? 'model'}: no Nyström layer named '${layer}'`);
  const d = rec.fisherDim;
  const k = ny.rank;
  if (roots.U.rows !== d || roots.U.cols !== k || roots.a.length !== k || roots.b.length !== k) throw new SngdError(`layer '${layer}': new Nyström roots must have U ${d}×${k}, a and b of length ${k}`);
  const out = cloneModel(model);
  const inits = out.graph.initializers;
  const f = (name: string) => inits.get(name)!.tensor.data as Float32Array;
  const wOld = mat(rec.m, d, f(rec.params.W));
  const weights = applyLowRankRight(wOld, mat(d, k, f(ny.U)), f(ny.a), f(ny.s)[0]!);
  const wNew = applyLowRankRight(weights, roots.U, roots.b, roots.t);
  const set = (name: string, dims: number[], data: ArrayLike<number>) => inits.set(name, { tensor: { dtype: 'float32', dims, data: Float32Array.from(data) } });
  set(rec.params.W, [rec.m, d], wNew.data);
  set(ny.U, [d, k], roots.U.data);
  set(ny.a, [k], roots.a);
  set(ny.s, [], [roots.s]);
  set(ny.b, [k], roots.b);
  set(ny.t, [], [roots.t]);
  return out;
}

/** The unit-block form of remapLayer: row j of W̃' becomes W̃'_j·P_j,old·S_j,new. */
export function remapUnitLayer(model: Model, layer: string, pNew: Mat[], sNew: Mat[]): Model {
  const rec = readLayerRecords(model).find((r) => r.name === layer);
  if (!rec || !unitOf(rec)) throw new SngdError(`${model.source ?? 'model'}: no layer with unit blocks named '${layer}'`);
  const d = rec.fisherDim;
  const square = (m: Mat) => m.rows === d && m.cols === d;
  if (pNew.length !== rec.m || sNew.length !== rec.m || !pNew.every(square) || !sNew.every(square)) {
    throw new SngdError(`layer '${layer}': new unit roots must be ${rec.m} matrices of ${d}×${d} each for P and S`);
  }
  const out = cloneModel(model);
  const inits = out.graph.initializers;
  const stack = (ms: Mat[]) => {
    const data = new Float32Array(rec.m * d * d);
    ms.forEach((m, j) => data.set(m.data, j * d * d));
    return data;
  };
  const wOld = mat(rec.m, d, inits.get(rec.params.W)!.tensor.data as Float32Array);
  const wNew = rowBlockMatmul(rowBlockMatmul(wOld, inits.get(rec.params.P)!.tensor.data as Float32Array), stack(sNew));
  const f32 = (data: ArrayLike<number>, dims: number[]) => ({ tensor: { dtype: 'float32' as const, dims, data: Float32Array.from(data) } });
  inits.set(rec.params.W, f32(wNew.data, [rec.m, d]));
  inits.set(rec.params.P, f32(stack(pNew), [rec.m, d, d]));
  inits.set(rec.params.S, f32(stack(sNew), [rec.m, d, d]));
  return out;
}

export function remapLayer(model: Model, layer: string, pNew: Mat, sNew: Mat): Model {
  const rec = readLayerRecords(model).find((r) => r.name === layer);
  if (!rec) throw new SngdError(`${model.source ?? 'model'}: no rebuilt layer named '${layer}'`);
  if (nystromOf(rec)) throw new SngdError(`layer '${layer}' has a Nyström Fisher layer: use remapNystromLayer`);
  if (unitOf(rec)) throw new SngdError(`layer '${layer}' has unit Fisher blocks: use remapUnitLayer`);
  const d = rec.fisherDim;
  if (pNew.rows !== d || pNew.cols !== d || sNew.rows !== d || sNew.cols !== d) {
    throw new SngdError(`layer '${layer}': new roots must be ${d}×${d}`);
  }
  const out = cloneModel(model);
  const inits = out.graph.initializers;
  const wOld = mat(rec.m, d, inits.get(rec.params.W)!.tensor.data as Float32Array);
  const pOld = mat(d, d, inits.get(rec.params.P)!.tensor.data as Float32Array);
  const wNew = matmul(matmul(wOld, pOld), sNew);
  const f32 = (m: Mat, dims: number[]) => ({ tensor: { dtype: 'float32' as const, dims, data: Float32Array.from(m.data) } });
  inits.set(rec.params.W, f32(wNew, [rec.m, d]));
  inits.set(rec.params.P, f32(pNew, [d, d]));
  inits.set(rec.params.S, f32(sNew, [d, d]));
  return out;
}
