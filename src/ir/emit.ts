/**
 * Emitting new nodes into a graph under a name prefix: what every rewrite pass and the model
 * builder use. `op()` returns the new output's name, so rewrites read like the math they build.
 */
import { floatAttr, floatsAttr, intAttr, intsAttr, stringAttr, tensorAttr } from './attrs.js';
import type { Graph, NameAuthority, Node } from './graph.js';
import type { AttributeProto } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';

/** An explicit float attribute (a plain integer-valued number would become INT). */
export class FloatAttr {
  constructor(readonly value: number | number[]) {}
}
export const float = (v: number | number[]): FloatAttr => new FloatAttr(v);

export type AttrValue = number | number[] | string | Tensor | FloatAttr | AttributeProto;

export function makeAttr(name: string, v: AttrValue): AttributeProto {
  if (v instanceof FloatAttr) return Array.isArray(v.value) ? floatsAttr(name, v.value) : floatAttr(name, v.value);
  if (typeof v === 'number') return Number.isInteger(v) ? intAttr(name, v) : floatAttr(name, v);
  if (typeof v === 'string') return stringAttr(name, v);
  if (Array.isArray(v)) return v.every(Number.isInteger) ? intsAttr(name, v) : floatsAttr(name, v);
  if ('dtype' in v && 'dims' in v) return tensorAttr(name, v as Tensor);
  return { ...(v as AttributeProto), name };
}

export interface EmitOptions { name?: string; output?: string; domain?: string }

/** Appends nodes and initializers to `graph`, naming them `<prefix>/<op>` and recording them. */
export class Emitter {
  readonly nodes: Node[] = [];
  readonly initializers: string[] = [];

  constructor(readonly graph: Graph, readonly names: NameAuthority, readonly prefix: string) {}

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: EmitOptions = {}): string {
    return this.opN(opType, inputs, 1, attrs, opts)[0]!;
  }

  opN(opType: string, inputs: string[], nOutputs: number, attrs: Record<string, AttrValue> = {}, opts: EmitOptions = {}): string[] {
    const name = this.names.fresh(opts.name ?? `${this.prefix}/${opType}`);
    const outputs = Array.from({ length: nOutputs }, (_, k) => (k === 0 && opts.output ? opts.output : this.names.fresh(`${name}_${k}`)));
    const node: Node = { name, opType, domain: opts.domain ?? '', inputs, outputs, attrs: Object.entries(attrs).map(([k, v]) => makeAttr(k, v)) };
    this.graph.nodes.push(node);
    this.nodes.push(node);
    return outputs;
  }

  /** Adds an initializer named `<prefix>/<base>` (made unique) and returns its name. */
  init(base: string, tensor: Tensor, exactName?: string): string {
    const name = exactName ?? this.names.fresh(`${this.prefix}/${base}`);
    this.graph.initializers.set(name, { tensor });
    this.initializers.push(name);
    return name;
  }
}
