/**
 * ModelProto → IR (Model). Checks the structure a pass relies on and reports the first problem
 * as one line naming the file and the node, value or field.
 */
import path from 'node:path';
import { SngdError } from '../errors.js';
import type { Dim, Graph, Model, Node, ValueInfo } from '../ir/graph.js';
import { readModelFile } from './codec.js';
import { int64ToNumber, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from './proto.js';
import { tensorFromProto, type TensorContext } from './tensor.js';

export function loadModel(file: string): Model {
  const proto = readModelFile(file);
  return modelFromProto(proto, { source: file, modelDir: path.dirname(path.resolve(file)) });
}

export function modelFromProto(proto: ModelProto, ctx: TensorContext): Model {
  const { graph, opsetImport, irVersion, ...extra } = proto;
  if (!graph) throw new SngdError(`${ctx.source}: model has no graph`);
  const opsets = new Map<string, number>();
  for (const o of opsetImport ?? []) {
    const domain = o.domain ?? '';
    const version = int64ToNumber(o.version);
    if (!Number.isSafeInteger(version) || version < 1) throw new SngdError(`${ctx.source}: opset_import for domain '${domain}' has invalid version ${version}`);
    opsets.set(domain === 'ai.onnx' ? '' : domain, version);
  }
  const ir = int64ToNumber(irVersion);
  if (!opsets.has('')) {
    // IR < 3 models had no opset_import; they use opset 1.
    if (opsets.size === 0) opsets.set('', 1);
  }
  return { graph: graphFromProto(graph, ctx), opsets, irVersion: ir, extra, source: ctx.source };
}

export function graphFromProto(gp: GraphProto, ctx: TensorContext): Graph {
  const { node, name, initializer, input, output, valueInfo, ...extra } = gp;
  const initializers = new Map<string, { tensor: ReturnType<typeof tensorFromProto>; proto: (typeof initializer & {})[number] }>();
  for (const t of initializer ?? []) {
    if (!t.name) throw new SngdError(`${ctx.source}: an initializer has no name`);
    if (initializers.has(t.name)) throw new SngdError(`${ctx.source}: initializer '${t.name}' is defined twice`);
    initializers.set(t.name, { tensor: tensorFromProto(t, ctx), proto: t });
  }
  const g: Graph = {
    name: name ?? 'graph',
    nodes: (node ?? []).map((n, i) => nodeFromProto(n, i, ctx.source)),
    inputs: (input ?? []).map((v) => valueInfoFromProto(v, ctx.source)),
    outputs: (output ?? []).map((v) => valueInfoFromProto(v, ctx.source)),
    initializers,
    valueInfo: new Map((valueInfo ?? []).map((v) => [v.name ?? '', valueInfoFromProto(v, ctx.source)])),
    extra,
  };
  checkGraph(g, ctx.source);
  return g;
}

function nodeFromProto(np: NodeProto, index: number, source: string): Node {
  const { input, output, name, opType, domain, attribute, ...extra } = np;
  if (!opType) throw new SngdError(`${source}: node #${index} ('${name ?? ''}') has no op_type`);
  return {
    name: name || `${opType}_${index}`,
    opType,
    domain: domain === 'ai.onnx' ? '' : domain ?? '',
    inputs: [...(input ?? [])],
    outputs: [...(output ?? [])],
    attrs: [...(attribute ?? [])],
    extra: Object.keys(extra).length ? extra : undefined,
  };
}

export function valueInfoFromProto(v: ValueInfoProto, source: string): ValueInfo {
  if (!v.name) throw new SngdError(`${source}: a graph input, output or value_info has no name`);
  const tt = v.type?.tensorType;
  const info: ValueInfo = { name: v.name, extra: v };
  if (tt) {
    if (tt.elemType) info.elemType = tt.elemType;
    if (tt.shape) {
      info.shape = (tt.shape.dim ?? []).map((d): Dim => {
        if (d.dimValue !== undefined && d.dimValue !== null) return int64ToNumber(d.dimValue);
        return d.dimParam ? d.dimParam : '?';
      });
    }
  }
  return info;
}

/**
 * Structural checks: unique outputs, every input defined before use (nodes may be out of order:
 * a toposort comes later), graph outputs produced. Subgraph attributes are checked by their
 * consumers, since they may read outer-scope values.
 */
function checkGraph(g: Graph, source: string): void {
  const defined = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      if (defined.has(o) && !g.initializers.has(o)) throw new SngdError(`${source}: value '${o}' (output of node '${n.name}') is defined twice`);
      defined.add(o);
    }
  }
  for (const n of g.nodes) {
    const hasSubgraph = n.attrs.some((a) => a.g || (a.graphs?.length ?? 0) > 0);
    for (const i of n.inputs) {
      if (i && !defined.has(i) && !hasSubgraph) {
        throw new SngdError(`${source}: node '${n.name}' (${n.opType}) reads '${i}', which no node, graph input or initializer defines`);
      }
    }
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new SngdError(`${source}: graph output '${o.name}' is not produced by any node`);
  }
}
