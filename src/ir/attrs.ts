/**
 * Typed access to node attributes. Attributes stay AttributeProto objects so that subgraphs,
 * type protos and anything else the IR does not interpret survive a round trip untouched.
 */
import { AttrType, int64ToNumber, type AttributeProto } from '../onnx/proto.js';
import { tensorFromProto, tensorToProto, type Tensor } from '../onnx/tensor.js';
import type { Node } from './graph.js';

export function getAttr(n: Node, name: string): AttributeProto | undefined {
  return n.attrs.find((a) => a.name === name);
}

/**
 * Whether an attribute really carries `field`: decoded protobufjs messages keep default values
 * on their prototype, so `a.i !== undefined` is true even for a FLOAT attribute.
 */
function has(a: AttributeProto | undefined, field: keyof AttributeProto): a is AttributeProto {
  return a !== undefined && Object.prototype.hasOwnProperty.call(a, field) && a[field] !== undefined && a[field] !== null;
}

export function hasAttr(n: Node, name: string): boolean {
  return getAttr(n, name) !== undefined;
}

export function attrInt(n: Node, name: string, fallback: number): number;
export function attrInt(n: Node, name: string): number | undefined;
export function attrInt(n: Node, name: string, fallback?: number): number | undefined {
  const a = getAttr(n, name);
  return has(a, 'i') ? int64ToNumber(a.i) : fallback;
}

export function attrFloat(n: Node, name: string, fallback: number): number;
export function attrFloat(n: Node, name: string): number | undefined;
export function attrFloat(n: Node, name: string, fallback?: number): number | undefined {
  const a = getAttr(n, name);
  return has(a, 'f') ? a.f : fallback;
}

export function attrInts(n: Node, name: string): number[] | undefined {
  const a = getAttr(n, name);
  return a ? (a.ints ?? []).map(int64ToNumber) : undefined;
}

export function attrFloats(n: Node, name: string): number[] | undefined {
  const a = getAttr(n, name);
  return a ? [...(a.floats ?? [])] : undefined;
}

export function attrString(n: Node, name: string, fallback: string): string;
export function attrString(n: Node, name: string): string | undefined;
export function attrString(n: Node, name: string, fallback?: string): string | undefined {
  const a = getAttr(n, name);
  return has(a, 's') ? Buffer.from(a.s!).toString('utf8') : fallback;
}

export function attrStrings(n: Node, name: string): string[] | undefined {
  const a = getAttr(n, name);
  return a ? (a.strings ?? []).map((s) => Buffer.from(s).toString('utf8')) : undefined;
}

export function attrTensor(n: Node, name: string): Tensor | undefined {
  const a = getAttr(n, name);
  return has(a, 't') ? tensorFromProto(a.t!, { source: `node '${n.name}' attribute '${name}'` }) : undefined;
}

/** Replaces (or adds) an attribute in place. */
export function setAttr(n: Node, attr: AttributeProto): void {
  n.attrs = n.attrs.filter((a) => a.name !== attr.name);
  n.attrs.push(attr);
}

export function removeAttr(n: Node, name: string): void {
  n.attrs = n.attrs.filter((a) => a.name !== name);
}

export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
export const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints: [...ints] });
export const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f });
export const floatsAttr = (name: string, floats: number[]): AttributeProto => ({ name, type: AttrType.FLOATS, floats: [...floats] });
export const stringAttr = (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: Buffer.from(s, 'utf8') });
export const tensorAttr = (name: string, t: Tensor): AttributeProto => ({ name, type: AttrType.TENSOR, t: tensorToProto('', t) });
