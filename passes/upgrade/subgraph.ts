/**
 * Subgraph attributes (If branches, Loop and Scan bodies) as IR graphs, so the upgrade can
 * rewrite them with the same rules. Bodies may read outer-scope values, so the importer's
 * structural check (every input defined in the graph) does not apply here.
 */
import path from 'node:path';
import type { Graph, Node } from '../../src/ir/graph.js';
import { graphToProto } from '../../src/onnx/export.js';
import { valueInfoFromProto } from '../../src/onnx/import.js';
import type { AttributeProto, GraphProto, NodeProto } from '../../src/onnx/proto.js';
import { tensorFromProto, type Tensor } from '../../src/onnx/tensor.js';

export function hasSubgraphs(n: Node): boolean {
  return n.attrs.some((a) => a.g || (a.graphs?.length ?? 0) > 0);
}

/** Converts a body GraphProto to the IR; `source` is the model file (for messages and external data). */
export function bodyFromProto(gp: GraphProto, source: string | undefined): Graph {
  const { node, name, initializer, input, output, valueInfo, ...extra } = gp;
  const where = source ?? 'model';
  const ctx = { source: where, modelDir: source ? path.dirname(path.resolve(source)) : undefined };
  const initializers = new Map<string, { tensor: Tensor; proto: NonNullable<GraphProto['initializer']>[number] }>();
  for (const t of initializer ?? []) initializers.set(t.name ?? '', { tensor: tensorFromProto(t, ctx), proto: t });
  return {
    name: name ?? 'body',
    nodes: (node ?? []).map((np, i) => nodeFromProto(np, i)),
    inputs: (input ?? []).map((v) => valueInfoFromProto(v, where)),
    outputs: (output ?? []).map((v) => valueInfoFromProto(v, where)),
    initializers,
    valueInfo: new Map((valueInfo ?? []).map((v) => [v.name ?? '', valueInfoFromProto(v, where)])),
    extra,
  };
}

export const bodyToProto = graphToProto;

function nodeFromProto(np: NodeProto, index: number): Node {
  const { input, output, name, opType, domain, attribute, ...extra } = np;
  return {
    name: name || `${opType ?? 'node'}_${index}`,
    opType: opType ?? '',
    domain: domain === 'ai.onnx' ? '' : domain ?? '',
    inputs: [...(input ?? [])],
    outputs: [...(output ?? [])],
    attrs: [...(attribute ?? [])],
    extra: Object.keys(extra).length ? extra : undefined,
  };
}

/** The body graphs held by one attribute. */
export function graphsOf(a: AttributeProto): GraphProto[] {
  return [...(a.g ? [a.g] : []), ...(a.graphs ?? [])];
}

/** Every name a body (and the bodies nested in it) defines or reads. */
export function namesInBody(gp: GraphProto, out: Set<string> = new Set()): Set<string> {
  for (const v of [...(gp.input ?? []), ...(gp.output ?? []), ...(gp.valueInfo ?? [])]) if (v.name) out.add(v.name);
  for (const t of gp.initializer ?? []) if (t.name) out.add(t.name);
  for (const n of gp.node ?? []) {
    if (n.name) out.add(n.name);
    for (const v of [...(n.input ?? []), ...(n.output ?? [])]) if (v) out.add(v);
    for (const a of n.attribute ?? []) for (const g of graphsOf(a)) namesInBody(g, out);
  }
  return out;
}

/** Every value a body (and the bodies nested in it) reads: outer-scope uses among them. */
export function readsInBody(gp: GraphProto, out: Set<string> = new Set()): Set<string> {
  for (const n of gp.node ?? []) {
    for (const v of n.input ?? []) if (v) out.add(v);
    for (const a of n.attribute ?? []) for (const g of graphsOf(a)) readsInBody(g, out);
  }
  for (const v of gp.output ?? []) if (v.name) out.add(v.name);
  return out;
}
