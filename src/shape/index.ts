/**
 * Static shape inference with symbolic dims. Walks the nodes in topological order, applying one
 * rule per op (src/shape/rules/) to the inputs' types, shapes and, for small integer tensors,
 * element values, so that the Shape → Gather → Concat → Reshape chains of PyTorch exports end in
 * static shapes. Symbolic dims ('N', 'N*3', 'floor((H-1)/2)') follow src/shape/symbolic.ts.
 *
 * An op without a rule (or outside the default domain) gives outputs of unknown shape and the walk
 * goes on; `missingShapeRules` lists those ops.
 */
import { SngdError, errorText } from '../errors.js';
import { cloneModel, defaultOpset, isDefaultDomain, type Dim, type Graph, type Model, type Node, type ValueInfo } from '../ir/graph.js';
import { dtypeCode, tensorToNumbers } from '../onnx/tensor.js';
import { tracked } from './helpers.js';
import { topoOrder } from './order.js';
import { shapeRules } from './rules/index.js';
import { dimNormalize } from './symbolic.js';
import { MAX_TRACKED_VALUES, type ShapeContext, type ShapeInfo, type ShapeRule } from './types.js';

export type { ShapeInfo, ShapeRule, ShapeRuleTable, ShapeContext } from './types.js';
export { evalDim } from './symbolic.js';

export interface ShapeAnalysis {
  /** Every value's inferred info (graph inputs, initializers, node outputs), values included. */
  infos: Map<string, ShapeInfo>;
  /** Op types met without a rule ('domain::Op' outside the default domain), sorted. */
  missing: string[];
}

/** Returns a copy of `model` whose graph.valueInfo holds the inferred type and shape of every node output. */
export function inferShapes(model: Model): Model {
  const { infos } = analyzeShapes(model);
  const out = cloneModel(model);
  const g = out.graph;
  for (const n of g.nodes) {
    for (const name of n.outputs) {
      if (!name) continue;
      const info = infos.get(name)!;
      const old = g.valueInfo.get(name);
      g.valueInfo.set(name, { ...old, name, elemType: info.elemType, shape: info.shape });
    }
  }
  g.outputs = g.outputs.map((o) => {
    const info = infos.get(o.name);
    if (!info) return o;
    return { ...o, elemType: o.elemType ?? info.elemType, shape: fillShape(o.shape, info.shape) };
  });
  return out;
}

/** Op types in `model` that have no shape rule ('domain::Op' outside the default domain). */
export function missingShapeRules(model: Model): string[] {
  const out = new Set<string>();
  for (const n of model.graph.nodes) if (!ruleFor(n)) out.add(opKey(n));
  return [...out].sort();
}

/** Runs inference and returns every value's info, element values included. */
export function analyzeShapes(model: Model): ShapeAnalysis {
  const g = model.graph;
  const opset = defaultOpset(model);
  const infos = seedInfos(g);
  const missing = new Set<string>();
  for (const node of topoOrder(g)) {
    const rule = ruleFor(node);
    let results: ShapeInfo[] = [];
    if (!rule) missing.add(opKey(node));
    else results = runRule(model, node, opset, infos, rule);
    node.outputs.forEach((name, k) => {
      if (!name) return;
      const info = clean(results[k] ?? {});
      infos.set(name, merge(info, g.valueInfo.get(name)));
    });
  }
  return { infos, missing: [...missing].sort() };
}

function ruleFor(n: Node): ShapeRule | undefined {
  if (!isDefaultDomain(n.domain)) return undefined;
  return Object.hasOwn(shapeRules, n.opType) ? shapeRules[n.opType] : undefined;
}

function opKey(n: Node): string {
  return isDefaultDomain(n.domain) ? n.opType : `${n.domain}::${n.opType}`;
}

function seedInfos(g: Graph): Map<string, ShapeInfo> {
  const infos = new Map<string, ShapeInfo>();
  for (const v of g.inputs) infos.set(v.name, { elemType: v.elemType, shape: v.shape?.map(dimNormalize) });
  for (const [name, { tensor }] of g.initializers) {
    const info: ShapeInfo = { elemType: dtypeCode(tensor.dtype), shape: [...tensor.dims] };
    const numeric = !['string', 'float16', 'bfloat16'].includes(tensor.dtype);
    if (numeric && tensor.data.length <= MAX_TRACKED_VALUES) info.value = tensorToNumbers(tensor);
    infos.set(name, info);
  }
  return infos;
}

function runRule(model: Model, node: Node, opset: number, infos: Map<string, ShapeInfo>, rule: ShapeRule): ShapeInfo[] {
  const where = `shape inference${model.source ? ` of ${model.source}` : ''}: node '${node.name}' (${node.opType})`;
  const has = (i: number): boolean => i < node.inputs.length && node.inputs[i] !== '';
  const input = (i: number): ShapeInfo => (has(i) ? infos.get(node.inputs[i]!) ?? {} : {});
  const ctx: ShapeContext = {
    opset,
    numInputs: node.inputs.length,
    numOutputs: node.outputs.length,
    has,
    input,
    value: (i) => input(i).value,
    ints: (i) => {
      const v = input(i).value;
      return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
    },
    fail: (message) => {
      throw new SngdError(`${where}: ${message}`);
    },
  };
  try {
    return rule(node, ctx);
  } catch (err) {
    if (err instanceof SngdError) throw err;
    throw new SngdError(`${where}: ${errorText(err)}`);
  }
}

/** Canonical symbolic dims; values kept only where the shape is static and small. */
function clean(info: ShapeInfo): ShapeInfo {
  const shape = info.shape?.map((d) => (typeof d === 'number' && (!Number.isInteger(d) || d < 0) ? '?' : dimNormalize(d)));
  const out: ShapeInfo = { elemType: info.elemType, shape };
  const value = tracked(shape, info.value?.map((d) => (typeof d === 'number' ? d : dimNormalize(d))));
  if (value) out.value = value;
  return out;
}

/** Fills what inference left unknown from the model's own value_info. */
function merge(info: ShapeInfo, declared: ValueInfo | undefined): ShapeInfo {
  if (!declared) return info;
  return { ...info, elemType: info.elemType ?? declared.elemType, shape: fillShape(info.shape, declared.shape) };
}

/** `have` with its unknowns taken from `from`: the whole shape when the rank is unknown, '?' dims when ranks agree. */
function fillShape(have: Dim[] | undefined, from: Dim[] | undefined): Dim[] | undefined {
  if (!from) return have;
  if (!have) return [...from];
  if (have.length !== from.length) return have;
  return have.map((d, i) => (d === '?' ? from[i]! : d));
}
