/**
 * What a shape rule sees and returns. A rule is `(node, ctx) => outputs`: it reads its inputs'
 * types, shapes and (for small tensors) element values through `ctx`, and returns one ShapeInfo
 * per node output. Unknown stays unknown: a rule that cannot tell returns `{}` or '?' dims; it
 * throws only for inputs that can never run (a definite mismatch), through `ctx.fail`.
 */
import type { Dim, Node } from '../ir/graph.js';

export interface ShapeInfo {
  /** TensorProto.DataType code; undefined when unknown. */
  elemType?: number;
  /** undefined when the rank is unknown. */
  shape?: Dim[];
  /**
   * Element values (row-major) of a small tensor, when known: numbers, symbolic dims taken from a
   * shape (say 'N'), '?' for an unknown element. This is how Shape → Gather → Concat → Reshape
   * chains resolve statically. Present only when `shape` is static.
   */
  value?: Dim[];
}

export interface ShapeContext {
  /** Default-domain opset of the model. */
  readonly opset: number;
  /** Number of inputs listed (omitted optional inputs included). */
  readonly numInputs: number;
  readonly numOutputs: number;
  /** Whether input i is given (listed and not ''). */
  has(i: number): boolean;
  /** Info of input i; `{}` when it is omitted or nothing is known. */
  input(i: number): ShapeInfo;
  /** Known element values of input i. */
  value(i: number): Dim[] | undefined;
  /** Element values of input i when every one is a plain number. */
  ints(i: number): number[] | undefined;
  /** Throws an SngdError naming the node. */
  fail(message: string): never;
}

export type ShapeRule = (node: Node, ctx: ShapeContext) => ShapeInfo[];
export type ShapeRuleTable = Record<string, ShapeRule>;

/** TensorProto.DataType codes used by rules. */
export const ElemType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

/** Largest tensor whose element values are tracked. */
export const MAX_TRACKED_VALUES = 256;
