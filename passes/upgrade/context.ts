/**
 * What rules may ask about values while a graph is upgraded: constants, declared shapes and
 * element types, and ranks inferred through producers. Producers are snapshots of the nodes
 * as they were before the upgrade, so the inference reads old-opset forms (Reshape's `shape`
 * attribute, Unsqueeze's `axes` attribute, ...) as well as new ones.
 */
import { attrInt, attrInts, attrTensor } from '../../src/ir/attrs.js';
import { cloneNode, isDefaultDomain, type Dim, type Graph, type Node } from '../../src/ir/graph.js';
import { dtypeCode, tensorToNumbers, type Tensor } from '../../src/onnx/tensor.js';
import { graphsOf, readsInBody } from './subgraph.js';

/** One graph being upgraded, with its enclosing scope (for bodies reading outer values). */
export class Scope {
  private readonly producer = new Map<string, Node>();
  private readonly uses = new Set<string>();
  private readonly rankMemo = new Map<string, number | undefined>();

  constructor(readonly graph: Graph, readonly parent?: Scope) {
    for (const n of graph.nodes) {
      const snapshot = cloneNode(n);
      for (const o of n.outputs) if (o) this.producer.set(o, snapshot);
      for (const i of n.inputs) if (i) this.uses.add(i);
      for (const a of n.attrs) for (const g of graphsOf(a)) readsInBody(g, this.uses);
    }
    for (const o of graph.outputs) this.uses.add(o.name);
  }

  isUsed(value: string): boolean {
    return this.uses.has(value) || (this.parent?.isUsed(value) ?? false);
  }

  private declared(value: string): { elemType?: number; shape?: Dim[] } | undefined {
    const g = this.graph;
    return g.inputs.find((v) => v.name === value) ?? g.outputs.find((v) => v.name === value) ?? g.valueInfo.get(value);
  }

  private defines(value: string): boolean {
    const g = this.graph;
    return this.producer.has(value) || g.initializers.has(value) || g.inputs.some((v) => v.name === value);
  }

  constant(value: string): Tensor | undefined {
    const init = this.graph.initializers.get(value);
    if (init) return init.tensor;
    const p = this.producer.get(value);
    if (p) return p.opType === 'Constant' && isDefaultDomain(p.domain) ? attrTensor(p, 'value') : undefined;
    return this.defines(value) ? undefined : this.parent?.constant(value);
  }

  shape(value: string): Dim[] | undefined {
    const c = this.constant(value);
    if (c) return [...c.dims];
    const d = this.declared(value)?.shape;
    if (d) return [...d];
    return this.defines(value) ? undefined : this.parent?.shape(value);
  }

  elemType(value: string, depth = 0): number | undefined {
    const c = this.constant(value);
    if (c) return dtypeCode(c.dtype);
    const d = this.declared(value)?.elemType;
    if (d !== undefined) return d;
    const p = this.producer.get(value);
    if (p) {
      if (depth > 64 || !isDefaultDomain(p.domain) || !TYPE_OF_INPUT0.has(p.opType) || !p.inputs[0]) return undefined;
      return this.elemType(p.inputs[0], depth + 1);
    }
    return this.defines(value) ? undefined : this.parent?.elemType(value, depth + 1);
  }

  rank(value: string): number | undefined {
    if (this.rankMemo.has(value)) return this.rankMemo.get(value);
    this.rankMemo.set(value, undefined); // a cycle (invalid graph) reads as unknown
    const r = this.computeRank(value);
    this.rankMemo.set(value, r);
    return r;
  }

  private computeRank(value: string): number | undefined {
    const s = this.shape(value);
    if (s) return s.length;
    const p = this.producer.get(value);
    if (!p) return this.defines(value) ? undefined : this.parent?.rank(value);
    if (!isDefaultDomain(p.domain)) return undefined;
    return inferRank(p, p.outputs.indexOf(value), this);
  }
}

/** Ops that keep the rank of input 0 in every output (BatchNormalization's statistics excepted). */
const RANK_OF_INPUT0 = new Set([
  'Abs', 'Neg', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal',
  'Floor', 'Ceil', 'Softplus', 'Softsign', 'Clip', 'PRelu', 'Identity', 'Dropout', 'BatchNormalization', 'InstanceNormalization',
  'LRN', 'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool',
  'Softmax', 'LogSoftmax', 'Hardmax', 'Transpose', 'Concat', 'Slice', 'Pad', 'Tile', 'Upsample', 'Resize', 'DepthToSpace',
  'SpaceToDepth', 'Erf', 'Split', 'Cast', 'CastLike', 'Not', 'IsNaN', 'IsInf', 'Sign', 'Round', 'Sin', 'Cos', 'Tan', 'Asin',
  'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'HardSwish', 'Mish', 'Gelu', 'Celu', 'ThresholdedRelu', 'Affine',
  'Scale', 'ScaledTanh', 'ParametricSoftplus', 'MeanVarianceNormalization', 'LpNormalization', 'CumSum', 'Trilu', 'Shrink',
  'DynamicSlice', 'Crop', 'ReverseSequence', 'Scatter', 'ScatterElements', 'ScatterND', 'TopK', 'LayerNormalization',
  'GroupNormalization', 'MaxRoiPool', 'RoiAlign', 'GatherElements',
]);

/** Ops whose output 0 has the element type of input 0. */
const TYPE_OF_INPUT0 = new Set([
  'Abs', 'Neg', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal',
  'Floor', 'Ceil', 'Softplus', 'Softsign', 'Clip', 'PRelu', 'Identity', 'Dropout', 'BatchNormalization', 'InstanceNormalization',
  'LRN', 'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool',
  'Softmax', 'LogSoftmax', 'Hardmax', 'Transpose', 'Concat', 'Slice', 'Pad', 'Tile', 'Upsample', 'Resize', 'DepthToSpace',
  'SpaceToDepth', 'Erf', 'Split', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div',
  'Sum', 'Max', 'Min', 'Mean', 'ImageScaler', 'Gather', 'Expand', 'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin',
]);

/** Ops whose output rank is the largest input rank (numpy broadcasting; legacy broadcasting too). */
const BROADCASTING = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'Sum', 'Max', 'Min', 'Mean', 'Where', 'BitShift', 'ImageScaler',
]);
const REDUCE = new Set(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);

/** Axes of Squeeze/Unsqueeze/Reduce*, from the attribute (old opsets) or a constant input (new). */
function axesOf(p: Node, scope: Scope): number[] | undefined {
  const attr = attrInts(p, 'axes');
  if (attr) return attr;
  if (!p.inputs[1]) return undefined;
  const c = scope.constant(p.inputs[1]);
  return c ? tensorToNumbers(c) : undefined;
}

function inferRank(p: Node, outIndex: number, scope: Scope): number | undefined {
  const in0 = p.inputs[0] ? scope.rank(p.inputs[0]) : undefined;
  const op = p.opType;
  if (op === 'BatchNormalization' && outIndex > 0) return 1;
  if (RANK_OF_INPUT0.has(op)) return in0;
  if (BROADCASTING.has(op)) {
    const ranks = p.inputs.filter((i) => i).map((i) => scope.rank(i));
    return ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined;
  }
  switch (op) {
    case 'Flatten':
    case 'Gemm':
      return 2;
    case 'Shape':
      return 1;
    case 'Size':
      return 0;
    case 'Constant': {
      const t = attrTensor(p, 'value');
      return t?.dims.length;
    }
    case 'MatMul': {
      const b = p.inputs[1] ? scope.rank(p.inputs[1]) : undefined;
      if (in0 === undefined || b === undefined) return undefined;
      if (in0 === 1 && b === 1) return 0;
      if (in0 === 1) return b - 1;
      if (b === 1) return in0 - 1;
      return Math.max(in0, b);
    }
    case 'Reshape': {
      const attr = attrInts(p, 'shape');
      if (attr) return attr.length;
      const s = p.inputs[1] ? scope.shape(p.inputs[1]) : undefined;
      return s && s.length === 1 && typeof s[0] === 'number' ? s[0] : undefined;
    }
    case 'Unsqueeze': {
      const axes = axesOf(p, scope);
      return in0 !== undefined && axes ? in0 + axes.length : undefined;
    }
    case 'Squeeze': {
      const axes = axesOf(p, scope);
      return in0 !== undefined && axes ? in0 - axes.length : undefined;
    }
    case 'Gather': {
      const idx = p.inputs[1] ? scope.rank(p.inputs[1]) : undefined;
      return in0 !== undefined && idx !== undefined ? in0 + idx - 1 : undefined;
    }
    case 'ArgMax':
    case 'ArgMin':
      return in0 === undefined ? undefined : attrInt(p, 'keepdims', 1) ? in0 : in0 - 1;
    case 'Expand': {
      const s = p.inputs[1] ? scope.shape(p.inputs[1]) : undefined;
      return in0 !== undefined && s && typeof s[0] === 'number' ? Math.max(in0, s[0]) : undefined;
    }
    case 'ConstantOfShape': {
      const s = p.inputs[0] ? scope.shape(p.inputs[0]) : undefined;
      return s && typeof s[0] === 'number' ? s[0] : undefined;
    }
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return outIndex === 0 ? 4 : 3;
    default:
      if (REDUCE.has(op)) {
        if (in0 === undefined) return undefined;
        if (attrInt(p, 'keepdims', 1)) return in0;
        const axes = axesOf(p, scope);
        return axes ? in0 - new Set(axes.map((a) => (a < 0 ? a + in0 : a))).size : p.inputs[1] ? undefined : 0;
      }
      return undefined;
  }
}
