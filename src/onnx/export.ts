/** IR (Model) → ModelProto, and saving a model atomically. */
import type { Graph, Model, Node, ValueInfo } from '../ir/graph.js';
import { writeModelFile } from './codec.js';
import type { GraphProto, ModelProto, NodeProto, ValueInfoProto } from './proto.js';
import { tensorToProto } from './tensor.js';

export function modelToProto(m: Model): ModelProto {
  return {
    irVersion: m.irVersion,
    ...m.extra,
    opsetImport: [...m.opsets].map(([domain, version]) => ({ domain, version })),
    graph: graphToProto(m.graph),
  };
}

export function graphToProto(g: Graph): GraphProto {
  return {
    ...g.extra,
    name: g.name,
    node: g.nodes.map(nodeToProto),
    initializer: [...g.initializers].map(([name, init]) => init.proto && init.proto.name === name ? init.proto : tensorToProto(name, init.tensor)),
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    valueInfo: [...g.valueInfo.values()].map(valueInfoToProto),
  };
}

export function nodeToProto(n: Node): NodeProto {
  const p: NodeProto = { ...n.extra, input: n.inputs, output: n.outputs, name: n.name, opType: n.opType, attribute: n.attrs };
  if (n.domain) p.domain = n.domain;
  return p;
}

export function valueInfoToProto(v: ValueInfo): ValueInfoProto {
  const base: ValueInfoProto = { ...v.extra, name: v.name };
  if (v.elemType === undefined && v.shape === undefined) return base;
  const tensorType: NonNullable<NonNullable<ValueInfoProto['type']>['tensorType']> = { ...v.extra?.type?.tensorType };
  if (v.elemType !== undefined) tensorType.elemType = v.elemType;
  if (v.shape !== undefined) {
    const old = v.extra?.type?.tensorType?.shape?.dim;
    tensorType.shape = {
      dim: v.shape.map((d, i) => {
        const denotation = old?.[i]?.denotation;
        const dim = typeof d === 'number' ? { dimValue: d } : d === '?' ? {} : { dimParam: d };
        return denotation ? { ...dim, denotation } : dim;
      }),
    };
  }
  return { ...base, type: { ...v.extra?.type, tensorType } };
}

export function saveModel(file: string, m: Model): void {
  writeModelFile(file, modelToProto(m));
}
