/**
 * The contract between the autodiff driver and the per-op gradient rules (STYLE.md §3–5).
 *
 * A rule receives the forward node, its inputs `x`, outputs `y`, the output gradients `dy`, and an
 * emitter `b` for backward nodes; it returns one thunk per input it can differentiate. The driver
 * calls only the thunks of inputs on a path to a trainable tensor, so no dead nodes are built.
 * For ops in BROADCASTING a thunk returns the gradient in the output's shape; the driver sums it
 * back to the input's shape.
 */
import type { Emitter } from '../../src/ir/emit.js';
import type { Dim, Node } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/onnx/tensor.js';

export interface GradContext {
  node: Node;
  /** Forward inputs ('' for an omitted optional input). */
  x: string[];
  /** Forward outputs. */
  y: string[];
  /** Gradient of each forward output, or undefined where the output does not reach the loss. */
  dy: (string | undefined)[];
  /** Emits backward nodes (named `<node>/grad/...`). */
  b: Emitter;
  /** Default-domain opset of the graph. */
  opset: number;
  /** Statically inferred shape of a value (symbolic dims as strings), if known. */
  shape(value: string): Dim[] | undefined;
  /** TensorProto element type of a value, if known. */
  elemType(value: string): number | undefined;
  /** A constant as an initializer (deduplicated by the emitter's naming). */
  constant(base: string, t: Tensor): string;
  /** A float32 scalar constant. */
  scalar(v: number): string;
  /** An int64 vector constant. */
  ints(values: number[]): string;
  /**
   * Name of forward output k of this node, adding the output to the forward node if the model
   * did not request it (MaxPool's Indices, LayerNormalization's Mean and InvStdDev).
   */
  forwardOutput(k: number): string;
  /** The gradient of output k, or a zero tensor shaped like it when that output does not reach the loss. */
  dyOrZeros(k: number): string;
  /** Throws a clear error naming the node. */
  fail(message: string): never;
}

export type GradThunks = Partial<Record<number, () => string>>;
export type GradRule = (ctx: GradContext) => GradThunks;
export type GradRuleTable = Record<string, GradRule>;
