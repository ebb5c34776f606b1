/**
 * A small typed builder for ONNX graphs in the project's IR: used by the reference model
 * builders and by tests. `op()` returns the output value's name, so graphs read like code:
 *
 *   const b = new GraphBuilder('mlp');
 *   const x = b.input('x', 'float32', ['N', 784]);
 *   const h = b.op('Relu', [b.op('Gemm', [x, w, bias], { transB: 1 })]);
 */
import { makeAttr, type AttrValue } from '../src/ir/emit.js';
import { NameAuthority, type Dim, type Graph, type Model, type Node } from '../src/ir/graph.js';
import { dtypeCode, type DType, type Tensor } from '../src/onnx/tensor.js';

export { float, FloatAttr, type AttrValue } from '../src/ir/emit.js';

export class GraphBuilder {
  readonly graph: Graph;
  private readonly names: NameAuthority;

  constructor(name: string, readonly opset = 17) {
    this.graph = { name, nodes: [], inputs: [], outputs: [], initializers: new Map(), valueInfo: new Map() };
    this.names = new NameAuthority(this.graph);
  }

  input(name: string, dtype: DType, shape: Dim[]): string {
    this.names.reserve(name);
    this.graph.inputs.push({ name, elemType: dtypeCode(dtype), shape });
    return name;
  }

  init(name: string, tensor: Tensor): string {
    const fresh = this.names.fresh(name);
    this.graph.initializers.set(fresh, { tensor });
    return fresh;
  }

  /** Adds a node with one output; returns that output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { name?: string; output?: string; domain?: string } = {}): string {
    return this.opN(opType, inputs, 1, attrs, opts)[0]!;
  }

  /** Adds a node with `nOutputs` outputs. */
  opN(opType: string, inputs: string[], nOutputs: number, attrs: Record<string, AttrValue> = {}, opts: { name?: string; output?: string; domain?: string } = {}): string[] {
    const name = this.names.fresh(opts.name ?? opType);
    const outputs = Array.from({ length: nOutputs }, (_, k) => (k === 0 && opts.output ? this.names.fresh(opts.output) : this.names.fresh(`${name}_out${k}`)));
    const node: Node = {
      name,
      opType,
      domain: opts.domain ?? '',
      inputs,
      outputs,
      attrs: Object.entries(attrs).map(([k, v]) => makeAttr(k, v)),
    };
    this.graph.nodes.push(node);
    return outputs;
  }

  output(name: string, dtype?: DType, shape?: Dim[]): void {
    this.graph.outputs.push({ name, elemType: dtype ? dtypeCode(dtype) : undefined, shape });
  }

  build(opts: { opsets?: Record<string, number>; irVersion?: number } = {}): Model {
    const opsets = new Map<string, number>([['', this.opset], ...Object.entries(opts.opsets ?? {})]);
    return { graph: this.graph, opsets, irVersion: opts.irVersion ?? (this.opset >= 21 ? 10 : 8), extra: { producerName: 'sngd' } };
  }
}
