/**
 * The graph IR: ONNX's own data model (values named by strings, nodes in a list) with decoded
 * initializers and typed attribute access. Protobuf stays in src/onnx/: this module never encodes.
 *
 * Edges are names, as in ONNX; `indexGraph` builds the producer/consumer maps a pass needs.
 * Fields the IR does not model (doc strings, metadata, overloads, device configurations, sparse
 * initializers, ...) ride along in `extra` so an import → export round trip keeps them.
 */
import type { AttributeProto, GraphProto, ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';

/** A dimension: a number, or a symbol such as 'N' (dim_param); undefined where unknown. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  /** TensorProto.DataType code; undefined when unknown. */
  elemType?: number;
  /** undefined when the rank is unknown; a '?' entry in dims is an unnamed unknown dimension. */
  shape?: Dim[];
  /** Non-tensor types, denotations, doc strings: kept verbatim. */
  extra?: ValueInfoProto;
}

export interface Node {
  name: string;
  opType: string;
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: AttributeProto[];
  extra?: Omit<NodeProto, 'input' | 'output' | 'name' | 'opType' | 'domain' | 'attribute'>;
}

export interface Initializer {
  tensor: Tensor;
  /** The TensorProto this was read from, reused on export while the tensor is unchanged. */
  proto?: import('../onnx/proto.js').TensorProto;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Initializer>;
  /** Known types/shapes of intermediate values (graph.value_info plus inference results). */
  valueInfo: Map<string, ValueInfo>;
  extra?: Omit<GraphProto, 'node' | 'name' | 'initializer' | 'input' | 'output' | 'valueInfo'>;
}

export interface Model {
  graph: Graph;
  /** domain ('' = ai.onnx) → opset version */
  opsets: Map<string, number>;
  irVersion: number;
  extra?: Omit<ModelProto, 'graph' | 'opsetImport' | 'irVersion'>;
  /** File the model was read from (used in messages), if any. */
  source?: string;
}

/** Default-domain opset of a model (ai.onnx). */
export function defaultOpset(model: Model): number {
  return model.opsets.get('') ?? model.opsets.get('ai.onnx') ?? 1;
}

export function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/** Producer and consumers of every value. */
export interface GraphIndex {
  producer: Map<string, Node>;
  consumers: Map<string, Node[]>;
}

export function indexGraph(g: Graph): GraphIndex {
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) if (o) producer.set(o, n);
    for (const i of n.inputs) {
      if (!i) continue;
      let list = consumers.get(i);
      if (!list) consumers.set(i, (list = []));
      if (!list.includes(n)) list.push(n);
    }
  }
  return { producer, consumers };
}

/** A shallow structural copy: passes edit the copy and return it, leaving the input intact. */
export function cloneGraph(g: Graph): Graph {
  return {
    ...g,
    nodes: g.nodes.map(cloneNode),
    inputs: g.inputs.map((v) => ({ ...v })),
    outputs: g.outputs.map((v) => ({ ...v })),
    initializers: new Map(g.initializers),
    valueInfo: new Map(g.valueInfo),
  };
}

export function cloneNode(n: Node): Node {
  return { ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: [...n.attrs] };
}

export function cloneModel(m: Model): Model {
  return { ...m, graph: cloneGraph(m.graph), opsets: new Map(m.opsets) };
}

/** Rewires every consumer of `from` (and graph outputs) to read `to` instead. */
export function replaceAllUses(g: Graph, from: string, to: string, except?: Set<Node>): void {
  for (const n of g.nodes) {
    if (except?.has(n)) continue;
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
  }
}

/** Names of all graph inputs that are not initializers (the data a caller must feed). */
export function dataInputs(g: Graph): ValueInfo[] {
  return g.inputs.filter((v) => !g.initializers.has(v.name));
}

/** Creates fresh names that collide with nothing in the graph (values or nodes). */
export class NameAuthority {
  private readonly used = new Set<string>();

  constructor(g: Graph) {
    for (const v of g.inputs) this.used.add(v.name);
    for (const v of g.outputs) this.used.add(v.name);
    for (const k of g.initializers.keys()) this.used.add(k);
    for (const k of g.valueInfo.keys()) this.used.add(k);
    for (const n of g.nodes) {
      this.used.add(n.name);
      for (const o of n.outputs) this.used.add(o);
      for (const i of n.inputs) this.used.add(i);
    }
  }

  /** `base` itself if free, else `base_1`, `base_2`, ... */
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  reserve(name: string): void {
    this.used.add(name);
  }
}
