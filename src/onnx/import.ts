/**
 * ModelProto → IR (Model). Checks the structure a pass relies on and reports the first problem
 * as one line naming the file and the node, value or field.
 */
import path from 'node:path';
import { SngdError } from '../errors.js';
import type { Dim, Graph, Model, Node, ValueInfo } from '../ir/graph.js';
import { readModelFile } from './codec.js';
import { AttrType, int64ToNumber, shownName, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from './proto.js';
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
    if (!Number.isSafeInteger(version) || version < 1) throw new SngdError(`${ctx.source}: opset_import for domain '${shownName(domain)}' has invalid version ${version}`);
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
    if (initializers.has(t.name)) throw new SngdError(`${ctx.source}: initializer '${shownName(t.name)}' is defined twice`);
    initializers.set(t.name, { tensor: tensorFromProto(t, ctx), proto: t });
  }
  const g: Graph = {
    name: name || 'graph',
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
  if (!opType) throw new SngdError(`${source}: node #${index} ('${shownName(name)}') has no op_type`);
  checkNode(np, index, source, 0);
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
        // Decoded messages carry field defaults on their prototype (dimValue reads 0 when only
        // dim_param is set): test presence, not the value.
        if (isSet(d, 'dimValue')) return int64ToNumber(d.dimValue);
        return isSet(d, 'dimParam') && d.dimParam ? d.dimParam : '?';
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
      if (defined.has(o) && !g.initializers.has(o)) throw new SngdError(`${source}: value '${shownName(o)}' (output of node '${shownName(n.name)}') is defined twice`);
      defined.add(o);
    }
  }
  for (const n of g.nodes) {
    // A node's own inputs live in this graph even when it carries subgraphs (If, Loop, Scan):
    // only the nodes inside those subgraphs may read outer-scope values.
    for (const i of n.inputs) {
      if (i && !defined.has(i)) {
        throw new SngdError(`${source}: node '${shownName(n.name)}' (${shownName(n.opType)}) reads '${shownName(i)}', which no node, graph input or initializer defines`);
      }
    }
  }
  const inputNames = new Set<string>();
  for (const v of g.inputs) {
    if (inputNames.has(v.name)) throw new SngdError(`${source}: graph input '${shownName(v.name)}' is listed twice`);
    inputNames.add(v.name);
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new SngdError(`${source}: graph output '${shownName(o.name)}' is not produced by any node`);
  }
}

/**
 * Whether a message field is present. A decoded protobufjs message answers an unset scalar field
 * with the default from its prototype (0, '', an empty array), so presence is an own property.
 */
function isSet<T extends object>(msg: T, field: keyof T): boolean {
  return Object.prototype.hasOwnProperty.call(msg, field) && msg[field] !== undefined && msg[field] !== null;
}

/**
 * Subgraphs nest at most this deep (If inside Loop inside ...). protobufjs already stops at 100
 * message levels (about 32 graph levels); this bounds our own recursion, with a clearer message.
 */
const MAX_GRAPH_DEPTH = 16;

/** Which AttributeProto field holds the value of each AttributeType. */
const ATTR_FIELDS: Record<number, { field: keyof AttributeProto; list: boolean }> = {
  [AttrType.FLOAT]: { field: 'f', list: false },
  [AttrType.INT]: { field: 'i', list: false },
  [AttrType.STRING]: { field: 's', list: false },
  [AttrType.TENSOR]: { field: 't', list: false },
  [AttrType.GRAPH]: { field: 'g', list: false },
  [AttrType.SPARSE_TENSOR]: { field: 'sparseTensor', list: false },
  [AttrType.TYPE_PROTO]: { field: 'tp', list: false },
  [AttrType.FLOATS]: { field: 'floats', list: true },
  [AttrType.INTS]: { field: 'ints', list: true },
  [AttrType.STRINGS]: { field: 'strings', list: true },
  [AttrType.TENSORS]: { field: 'tensors', list: true },
  [AttrType.GRAPHS]: { field: 'graphs', list: true },
  [AttrType.SPARSE_TENSORS]: { field: 'sparseTensors', list: true },
  [AttrType.TYPE_PROTOS]: { field: 'typeProtos', list: true },
};
const ATTR_TYPE_NAMES = Object.fromEntries(Object.entries(AttrType).map(([k, v]) => [v, k]));

/**
 * The node checks the ONNX checker makes (op_type present; attribute names present and unique;
 * an attribute's type known, matching the one value field it sets), applied to subgraph nodes
 * too. Subgraph *values* are not checked here: they may read outer-scope names.
 */
function checkNode(np: NodeProto, index: number, where: string, depth: number): void {
  const label = `node #${index} ('${shownName(np.name)}')`;
  if (!np.opType) throw new SngdError(`${where}: ${label} has no op_type`);
  const at = `${where}: node '${shownName(np.name || `${np.opType}_${index}`)}' (${shownName(np.opType)})`;
  const seen = new Set<string>();
  for (const a of np.attribute ?? []) {
    if (!a.name) throw new SngdError(`${at}: an attribute has no name`);
    const attr = `${at} attribute '${shownName(a.name)}'`;
    if (seen.has(a.name)) throw new SngdError(`${attr} is given twice`);
    seen.add(a.name);
    const set = Object.entries(ATTR_FIELDS).filter(([, { field, list }]) => {
      const v = a[field];
      return list ? Array.isArray(v) && v.length > 0 : isSet(a, field);
    });
    if (a.type !== undefined && a.type !== null && a.type !== AttrType.UNDEFINED && !ATTR_FIELDS[a.type]) {
      throw new SngdError(`${attr} has unknown type ${a.type}`);
    }
    if (set.length > 1) throw new SngdError(`${attr} sets ${set.length} value fields (${set.map(([, s]) => s.field).join(', ')}); at most one is allowed`);
    const [code] = set[0] ?? [];
    if (code !== undefined && a.type && Number(code) !== a.type) {
      throw new SngdError(`${attr} is declared ${ATTR_TYPE_NAMES[a.type]} but holds a ${ATTR_TYPE_NAMES[Number(code)]} value`);
    }
    const graphs = [...(a.g ? [a.g] : []), ...(a.graphs ?? [])];
    if (graphs.length > 0 && depth + 1 > MAX_GRAPH_DEPTH) {
      throw new SngdError(`${attr}: subgraphs nest more than ${MAX_GRAPH_DEPTH} levels deep`);
    }
    for (const g of graphs) {
      const sub = `${where}: subgraph '${shownName(g.name)}' of ${label} attribute '${shownName(a.name)}'`;
      (g.node ?? []).forEach((n, i) => checkNode(n, i, sub, depth + 1));
    }
  }
}

