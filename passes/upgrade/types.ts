/**
 * Types of the opset upgrade registry: one entry per op, each a list of steps keyed by the
 * ai.onnx opset version at which the op's signature or semantics changed.
 */
import type { Dim, Graph, Node } from '../../src/ir/graph.js';
import type { AttributeProto } from '../../src/onnx/proto.js';
import type { Tensor } from '../../src/onnx/tensor.js';

/**
 * What a step may use while it rewrites one node (already a private copy: edit it in place).
 * New nodes and values are named `<node>/upgrade/...` by one name authority.
 */
export interface UpgradeContext {
  /** The model's default-domain opset before the upgrade. */
  readonly from: number;
  /** The opset being upgraded to (17 or more). */
  readonly target: number;
  /** The graph (or subgraph) being rewritten. */
  readonly graph: Graph;
  /** A fresh value or node name `<node>/upgrade/<role>`. */
  fresh(role: string): string;
  /** Adds a node that runs before the node being upgraded; returns its output names. */
  before(opType: string, inputs: string[], attrs?: AttributeProto[], nOutputs?: number): string[];
  /** Adds a node that runs after the node being upgraded, writing the given outputs. */
  after(opType: string, inputs: string[], outputs: string[], attrs?: AttributeProto[]): void;
  /** Adds an initializer; returns its (fresh) name. */
  addInit(role: string, tensor: Tensor): string;
  /** Value of an initializer or Constant output; undefined when not a constant. */
  constant(value: string): Tensor | undefined;
  /** Shape from initializers, Constant nodes or declared value info. */
  shape(value: string): Dim[] | undefined;
  /** Rank from shapes, or inferred through producers (Conv, elementwise ops, Reshape, ...). */
  rank(value: string): number | undefined;
  /** TensorProto element type code, if declared or constant. */
  elemType(value: string): number | undefined;
  /** Whether any other node, subgraph or graph output reads the value. */
  isUsed(value: string): boolean;
  /** Throws the SngdError 'cannot upgrade node X (Op) from opset N: <reason>'. */
  fail(reason: string): never;
}

export interface UpgradeStep {
  /** The opset version that introduced the change this step adapts to. */
  readonly at: number;
  /** What changed at `at`, for steps that only document a compatible change. */
  readonly note?: string;
  /**
   * The op was deprecated or removed at `at` (Upsample at 10, Scatter at 11, experimental ops
   * at 10), so a node still using it in a newer model keeps its last real version's meaning:
   * the step applies to it too.
   */
  readonly evenAfter?: boolean;
  /** Rewrites an op-`at-1` node into its op-`at` form (in place, adding nodes through ctx). */
  adapt(node: Node, ctx: UpgradeContext): void;
}

/** op type → its steps in increasing `at` order. */
export type UpgradeTable = Record<string, readonly UpgradeStep[]>;
