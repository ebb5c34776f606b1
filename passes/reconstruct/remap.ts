/**
 * The refresh remap of SNGD.md §2: given new roots (P_new, S_new) for a layer, set
 * W̃'_new = W̃'_old·P_old·S_new so the layer's function does not change (identity 2).
 * Host-side float64; the trainer uses the same rule for momentum buffers.
 */
import { SngdError } from '../../src/errors.js';
import { cloneModel, type Model } from '../../src/ir/graph.js';
import { mat, matmul, type Mat } from '../../src/numerics/linalg.js';
import { readLayerRecords } from './record.js';

export function remapLayer(model: Model, layer: string, pNew: Mat, sNew: Mat): Model {
  const rec = readLayerRecords(model).find((r) => r.name === layer);
  if (!rec) throw new SngdError(`${model.source ?? 'model'}: no rebuilt layer named '${layer}'`);
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
