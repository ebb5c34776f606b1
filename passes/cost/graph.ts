/**
 * The work of one run of a graph at a given batch size: every node's work (passes/cost/work.ts)
 * from shapes inferred with the batch and other symbolic dims bound, the nodes onnxruntime will
 * not run, and which rebuilt layer each node serves.
 *
 * Nodes onnxruntime's optimizer (level 'all') removes before the first run, so they cost nothing:
 *   constant   every input is constant (initializers, folded values), or a Shape/Size of a value
 *              whose shape is static without the bindings (onnxruntime folds it at load time)
 *   eliminated Identity, Dropout (ELIMINATED_OPS)
 *   fused      a Transpose of the last two axes read only by MatMul/Gemm (becomes transA/transB)
 *   duplicate  the same op, attributes and inputs as an earlier node (common subexpressions:
 *              the L2 penalty's W̃'·P is the Fisher layer's)
 *
 * Attribution: a node belongs to a layer when the rewrite added it or it is the layer's original
 * node, when it is the layer's statistic (`stat/<layer>/…`), when it reads one of the layer's
 * tensors (W̃', P, the original weight…), or when it is the gradient (`<node>/grad/…`) of such a node.
 */
import { attrInts } from '../../src/ir/attrs.js';
import { indexGraph, type Dim, type Graph, type Model, type Node } from '../../src/ir/graph.js';
import { dtypeBytes, dtypeFromCode, elementCount, tensorToNumbers } from '../../src/onnx/tensor.js';
import { analyzeShapes, evalDim, type ShapeInfo } from '../../src/shape/index.js';
import { nystromOf, type LayerRecord } from '../reconstruct/record.js';
import { ELIMINATED_OPS, nodeWork, type NodeShapes, type OpWork } from './work.js';

export type SkipReason = 'constant' | 'eliminated' | 'fused' | 'duplicate';

export interface NodeCost {
  node: Node;
  work: OpWork;
  /** Why onnxruntime will not run this node (see the module comment); undefined: it runs. */
  skipped?: SkipReason;
  /** The rebuilt layer the node serves (undefined: loss, activations, shared plumbing). */
  layer?: string;
  /** Some input or output shape stayed unknown: the work counts what is known. */
  unknownShape?: boolean;
}

export interface GraphWork {
  nodes: NodeCost[];
  /** Tensors fed per run and outputs copied back (with their bytes). */
  inputs: number;
  outputs: number;
  outputBytes: number;
  /** Output bytes per layer (Fisher statistics, gradients). */
  outputBytesByLayer: Map<string, number>;
}

export interface Bindings {
  /** The batch size: binds the leading symbolic dim of every graph input. */
  batch: number;
  /** Other symbolic dims (a sequence length). */
  dims?: Record<string, number>;
}

/** Per-layer names of nodes and tensors, for attribution. */
export interface LayerIndex {
  nodes: Map<string, string>;
  tensors: Map<string, string>;
  names: string[];
}

/** Which nodes and tensors belong to which layer, in a rebuilt graph and in the plain graph of the same model. */
export function layerIndex(records: readonly LayerRecord[]): LayerIndex {
  const nodes = new Map<string, string>();
  const tensors = new Map<string, string>();
  for (const r of records) {
    const set = <K>(m: Map<K, string>, k: K | undefined) => k !== undefined && !m.has(k) && m.set(k, r.name);
    set(nodes, r.name);
    for (const o of r.original) set(nodes, String((o.node as { name?: string }).name ?? ''));
    for (const n of r.added.nodes) set(nodes, n);
    const ny = nystromOf(r);
    for (const t of [r.params.W, r.params.P, r.params.S, r.weight.name, r.bias?.name, ...(ny ? [ny.U, ny.a, ny.s, ny.index] : [])]) set(tensors, t);
  }
  nodes.delete('');
  return { nodes, tensors, names: records.map((r) => r.name) };
}

export function graphWork(model: Model, bind: Bindings, layers: LayerIndex = layerIndex([])): GraphWork {
  const g = model.graph;
  const env = bindings(g, bind);
  const bound = bindInputs(model, env);
  const infos = analyzeShapes(bound).infos;
  // Static shapes as onnxruntime sees them at load time (the batch unknown): what it can fold.
  const loadTime = analyzeShapes(model).infos;
  const shapeOf = (name: string): number[] | undefined => numeric(infos.get(name)?.shape, env);
  const bytesOf = (name: string): number => elemBytes(infos.get(name));
  const skipped = skippedNodes(g, loadTime);
  const owner = attribution(g, layers);
  const nodes = g.nodes.map((node): NodeCost => {
    const s: NodeShapes = {
      inputs: node.inputs.map((i) => (i ? shapeOf(i) : undefined)),
      outputs: node.outputs.map((o) => (o ? shapeOf(o) : undefined)),
      inputBytes: node.inputs.map(bytesOf),
      outputBytes: node.outputs.map(bytesOf),
      constants: node.inputs.map((i) => constantValues(g, i)),
    };
    const unknown = node.inputs.some((i, k) => i && !s.inputs[k]) || node.outputs.some((o, k) => o && !s.outputs[k]);
    return { node, work: nodeWork(node, s), skipped: skipped.get(node), layer: owner(node), ...(unknown ? { unknownShape: true } : {}) };
  });
  const { producer } = indexGraph(g);
  const outputBytesByLayer = new Map<string, number>();
  let outputBytes = 0;
  for (const o of g.outputs) {
    const dims = shapeOf(o.name);
    const b = dims ? dims.reduce((a, d) => a * d, 1) * bytesOf(o.name) : 0;
    outputBytes += b;
    // A gradient output comes out of an Identity: its role name `grad/<param>` says whose it is.
    const p = producer.get(o.name);
    const layer = (p && owner(p)) || (o.name.startsWith('grad/') ? layers.tensors.get(o.name.slice(5)) : undefined);
    if (layer) outputBytesByLayer.set(layer, (outputBytesByLayer.get(layer) ?? 0) + b);
  }
  return { nodes, inputs: g.inputs.length, outputs: g.outputs.length, outputBytes, outputBytesByLayer };
}

/** The values of a small initializer (a Slice's axes and steps, a Pad's pads), else undefined. */
function constantValues(g: Graph, name: string): number[] | undefined {
  const t = name ? g.initializers.get(name)?.tensor : undefined;
  return t?.data && t.dtype !== 'string' && elementCount(t.dims) <= 64 ? tensorToNumbers(t) : undefined;
}

/** Sizes of symbolic dims: the given ones, and the batch for every input's leading symbol. */
function bindings(g: Graph, bind: Bindings): Map<string, number> {
  const env = new Map(Object.entries(bind.dims ?? {}));
  for (const v of g.inputs) {
    const first = v.shape?.[0];
    if (typeof first === 'string' && first !== '?' && !env.has(first) && /^[A-Za-z_][\w.]*$/.test(first)) env.set(first, bind.batch);
  }
  return env;
}

/** A copy of the model whose graph inputs have the bound sizes, so inference runs on numbers. */
function bindInputs(model: Model, env: Map<string, number>): Model {
  const inputs = model.graph.inputs.map((v) => (v.shape ? { ...v, shape: v.shape.map((d): Dim => (typeof d === 'number' ? d : evalDim(d, env) ?? d)) } : v));
  return { ...model, graph: { ...model.graph, inputs } };
}

function numeric(shape: Dim[] | undefined, env: Map<string, number>): number[] | undefined {
  if (!shape) return undefined;
  const out: number[] = [];
  for (const d of shape) {
    const v = typeof d === 'number' ? d : evalDim(d, env);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

function elemBytes(info: ShapeInfo | undefined): number {
  const dtype = info?.elemType !== undefined ? dtypeFromCode(info.elemType) : undefined;
  return dtype && dtype !== 'string' ? dtypeBytes(dtype) : 4;
}

const isStatic = (info: ShapeInfo | undefined) => info?.shape !== undefined && info.shape.every((d) => typeof d === 'number');

const NON_DETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/** The nodes onnxruntime's optimizer removes (module comment), in one topological walk. */
function skippedNodes(g: Graph, loadTime: Map<string, ShapeInfo>): Map<Node, SkipReason> {
  const out = new Map<Node, SkipReason>();
  const constant = new Set(g.initializers.keys());
  const alias = new Map<string, string>();
  const seen = new Map<string, Node>();
  const { consumers } = indexGraph(g);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  for (const n of g.nodes) {
    const inputs = n.inputs.map((i) => alias.get(i) ?? i);
    const given = inputs.filter((i) => i);
    if (!NON_DETERMINISTIC.has(n.opType) && (given.every((i) => constant.has(i)) || ((n.opType === 'Shape' || n.opType === 'Size') && isStatic(loadTime.get(n.inputs[0]!))))) {
      out.set(n, 'constant');
      n.outputs.forEach((o) => o && constant.add(o));
      continue;
    }
    if (ELIMINATED_OPS.has(n.opType)) {
      out.set(n, 'eliminated');
      if (n.outputs[0] && inputs[0]) alias.set(n.outputs[0], inputs[0]);
      continue;
    }
    if (n.opType === 'Transpose' && swapsLastTwo(n, loadTime.get(n.inputs[0]!)) && !n.outputs.some((o) => graphOutputs.has(o))) {
      const users = consumers.get(n.outputs[0]!) ?? [];
      if (users.length > 0 && users.every((u) => u.opType === 'MatMul' || u.opType === 'Gemm')) {
        out.set(n, 'fused');
        continue;
      }
    }
    const key = `${n.domain}|${n.opType}|${inputs.join(',')}|${JSON.stringify(n.attrs, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`;
    const first = seen.get(key);
    if (first && !NON_DETERMINISTIC.has(n.opType)) {
      out.set(n, 'duplicate');
      n.outputs.forEach((o, k) => o && first.outputs[k] && alias.set(o, first.outputs[k]!));
      continue;
    }
    seen.set(key, n);
  }
  return out;
}

/** Whether a Transpose swaps the last two axes and keeps the others (what MatMul's transA/transB absorb). */
function swapsLastTwo(n: Node, x: ShapeInfo | undefined): boolean {
  const perm = attrInts(n, 'perm');
  const rank = perm?.length ?? x?.shape?.length;
  if (rank === undefined || rank < 2) return false;
  const p = perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  return p.every((v, i) => (i < rank - 2 ? v === i : i === rank - 2 ? v === rank - 1 : v === rank - 2));
}

/** node → layer (see the module comment); memoized per forward node. */
function attribution(g: Graph, layers: LayerIndex): (n: Node) => string | undefined {
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const memo = new Map<string, string | undefined>();
  // Longest layer names first, so 'stat/a/b/…' is not taken for layer 'a'.
  const statPrefixes = [...layers.names].sort((a, b) => b.length - a.length).map((l) => [`stat/${l}/`, l] as const);
  const forward = (name: string): string | undefined => {
    if (memo.has(name)) return memo.get(name);
    let layer = layers.nodes.get(name) ?? statPrefixes.find(([p]) => name.startsWith(p) || `${name}/` === p)?.[1];
    const n = byName.get(name);
    if (layer === undefined && n) layer = n.inputs.map((i) => layers.tensors.get(i)).find((l) => l !== undefined);
    memo.set(name, layer);
    return layer;
  };
  return (n) => {
    const at = n.name.indexOf('/grad/');
    return forward(at >= 0 ? n.name.slice(0, at) : n.name);
  };
}
