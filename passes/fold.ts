/**
 * Folding (SNGD.md §2, identity 3): W̃ = W̃'·P for every rebuilt layer, split back into the
 * original weight and bias tensors, and the original nodes restored. The result has the original
 * architecture, node names, inputs and outputs, and no trace of the Fisher layers.
 */
import { SngdError } from '../src/errors.js';
import { cloneModel, type Model, type Node } from '../src/ir/graph.js';
import { matmul, mat, rowBlockMatmul } from '../src/numerics/linalg.js';
import { dtypeCode, type Tensor } from '../src/onnx/tensor.js';
import { layerRules } from './reconstruct/layers.js';
import { applyLowRankRight } from '../src/numerics/nystrom.js';
import { deserializeNode, isReconstructed, nystromOf, readLayerRecords, unitOf, withLayerRecords, type LayerRecord } from './reconstruct/record.js';
import { toposort } from './toposort.js';
import { foldRecurrent } from './reconstruct/recurrent.js';

export function fold(model: Model): Model {
  const records = readLayerRecords(model);
  if (!isReconstructed(model)) throw new SngdError(`${model.source ?? 'model'}: has no local Fisher layers to fold (not produced by sngd-compile?)`);
  const out = cloneModel(model);
  const g = out.graph;
  const restored: { index: number; node: Node }[] = [];
  // A recurrent node has one record per stream and direction: fold its W, R, B once, from all of them.
  const recurrentGroups = new Map<string, LayerRecord[]>();
  for (const rec of records) {
    if (!rec.recurrent) continue;
    const key = originalKey(rec.original[0]);
    recurrentGroups.set(key, [...(recurrentGroups.get(key) ?? []), rec]);
  }
  const recurrentTensors = new Map<string, Tensor>();
  for (const group of recurrentGroups.values()) for (const [k, t] of foldRecurrent(model, group)) recurrentTensors.set(k, t);
  const restoredNames = new Set<string>();
  for (const rec of records) {
    const folded = rec.recurrent ? undefined : foldedTensors(out, rec);
    const removeNodes = new Set([...rec.added.nodes, ...rec.original.map((o) => String(o.node.name))]);
    g.nodes = g.nodes.filter((n) => !removeNodes.has(n.name));
    for (const name of rec.added.initializers) g.initializers.delete(name);
    for (const o of rec.original) {
      // The records of one recurrent node share its original: restore it once.
      const key = originalKey(o);
      if (rec.recurrent && restoredNames.has(key)) continue;
      restoredNames.add(key);
      restored.push({ index: o.index, node: nodeFromJson(o.node) });
    }
    if (rec.recurrent) {
      const weight = recurrentTensors.get(rec.weight.name)!;
      g.initializers.set(rec.weight.name, { tensor: weight });
      restoreGraphInput(out, rec.weight, weight);
      const bias = rec.bias ? recurrentTensors.get(rec.bias.name) : undefined;
      if (rec.bias && bias) {
        g.initializers.set(rec.bias.name, { tensor: bias });
        restoreGraphInput(out, rec.bias, bias);
      }
      continue;
    }
    const { weight, bias } = folded!;
    g.initializers.set(rec.weight.name, { tensor: weight });
    if (rec.bias && bias) g.initializers.set(rec.bias.name, { tensor: bias });
    restoreGraphInput(out, rec.weight, weight);
    if (rec.bias && bias) restoreGraphInput(out, rec.bias, bias);
  }
  // Put the original nodes back at their original positions, then make the order valid.
  restored.sort((a, b) => a.index - b.index);
  for (const { index, node } of restored) g.nodes.splice(index < 0 ? g.nodes.length : Math.min(index, g.nodes.length), 0, node);
  return withLayerRecords({ ...out, graph: toposort(g) }, null);
}

/** The original-layout weight and bias of one layer: W̃ = W̃'·P. */
export function foldedTensors(model: Model, rec: LayerRecord): { weight: Tensor; bias?: Tensor } {
  if (rec.kind === 'Recurrent') throw new SngdError(`layer '${rec.name}' is one stream of a recurrent node: fold it with foldRecurrent`);
  const get = (name: string): Tensor => {
    const t = model.graph.initializers.get(name)?.tensor;
    if (!t) throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}' needs initializer '${name}', which is missing`);
    return t;
  };
  const wPrime = get(rec.params.W);
  const d = rec.fisherDim;
  const ny = nystromOf(rec);
  if (ny) {
    const u = get(ny.U);
    if (wPrime.dims.join() !== [rec.m, d].join() || u.dims.join() !== [d, ny.rank].join()) {
      throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}': W̃' is [${wPrime.dims}] and U is [${u.dims}], expected [${rec.m},${d}] and [${d},${ny.rank}]`);
    }
    // W̃ = W̃'·(U·diag(a)·Uᵀ + s·I) in O(m·d̃·k).
    const wt = applyLowRankRight(mat(rec.m, d, wPrime.data as Float32Array), mat(d, ny.rank, u.data as Float32Array), get(ny.a).data as Float32Array, (get(ny.s).data as Float32Array)[0]!);
    return layerRules[rec.kind].fromMatrix(rec.layout, wt, rec.d, wPrime.dtype);
  }
  const p = get(rec.params.P);
  if (unitOf(rec)) {
    if (wPrime.dims.join() !== [rec.m, d].join() || p.dims.join() !== [rec.m, d, d].join()) {
      throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}': W̃' is [${wPrime.dims}] and P is [${p.dims}], expected [${rec.m},${d}] and [${rec.m},${d},${d}] (unit blocks)`);
    }
    // Row j of W̃ is W̃'_j·P_j.
    const wt = rowBlockMatmul(mat(rec.m, d, wPrime.data as Float32Array), p.data as Float32Array);
    return layerRules[rec.kind].fromMatrix(rec.layout, wt, rec.d, wPrime.dtype);
  }
  if (wPrime.dims.join() !== [rec.m, d].join() || p.dims.join() !== [d, d].join()) {
    throw new SngdError(`${model.source ?? 'model'}: layer '${rec.name}': W̃' is [${wPrime.dims}] and P is [${p.dims}], expected [${rec.m},${d}] and [${d},${d}]`);
  }
  const wt = matmul(mat(rec.m, d, wPrime.data as Float32Array), mat(d, d, p.data as Float32Array));
  return layerRules[rec.kind].fromMatrix(rec.layout, wt, rec.d, wPrime.dtype);
}

/** Identifies an original node by position and name (names may be empty). */
function originalKey(o: LayerRecord['original'][number] | undefined): string {
  return `${o?.index ?? -1}:${String(o?.node.name ?? '')}`;
}

function nodeFromJson(json: Record<string, unknown>): Node {
  const p = deserializeNode(json);
  const { input, output, name, opType, domain, attribute, ...extra } = p;
  return {
    name: name ?? '',
    opType: opType ?? '',
    domain: domain ?? '',
    inputs: [...(input ?? [])],
    outputs: [...(output ?? [])],
    attrs: [...(attribute ?? [])],
    extra: Object.keys(extra).length ? extra : undefined,
  };
}

function restoreGraphInput(model: Model, ref: { name: string; graphInputIndex?: number }, t: Tensor): void {
  if (ref.graphInputIndex === undefined) return;
  const inputs = model.graph.inputs;
  if (inputs.some((v) => v.name === ref.name)) return;
  inputs.splice(Math.min(ref.graphInputIndex, inputs.length), 0, { name: ref.name, elemType: dtypeCode(t.dtype), shape: [...t.dims] });
}
