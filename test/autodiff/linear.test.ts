/** Per-op gradient checks: MatMul, Gemm, Conv, ConvTranspose (central differences through onnxruntime). */
import { describe, expect, it } from 'vitest';
import { float } from '../../models/builder.js';
import { differentiate } from '../../passes/autodiff/index.js';
import { rules } from '../../passes/autodiff/rules/linear.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { opModel, type OpCase } from '../helpers/op-model.js';

interface LinearCase extends OpCase {
  /** Declare these [input, axis, name] dims symbolic in the model (the feeds stay concrete). */
  symbolic?: [number, number, string][];
}

const cases: LinearCase[] = [
  // MatMul: numpy semantics.
  { op: 'MatMul', inputs: [[3, 4], [4, 5]], label: 'MatMul 2-D' },
  { op: 'MatMul', inputs: [[2, 3, 4], [2, 4, 5]], label: 'MatMul batched 3-D' },
  { op: 'MatMul', inputs: [[2, 1, 3, 4], [5, 4, 6]], label: 'MatMul broadcast [2,1,3,4]·[5,4,6]' },
  { op: 'MatMul', inputs: [[1, 3, 3, 4], [2, 1, 4, 5]], label: 'MatMul broadcast on both sides' },
  { op: 'MatMul', inputs: [[2, 3, 4], [4, 5]], label: 'MatMul 3-D activation · 2-D weight' },
  { op: 'MatMul', inputs: [[3, 4], [2, 4, 5]], label: 'MatMul 2-D · 3-D' },
  { op: 'MatMul', inputs: [[4], [4, 5]], label: 'MatMul 1-D · 2-D' },
  { op: 'MatMul', inputs: [[4], [2, 4, 5]], label: 'MatMul 1-D · 3-D' },
  { op: 'MatMul', inputs: [[3, 4], [4]], label: 'MatMul 2-D · 1-D' },
  { op: 'MatMul', inputs: [[2, 3, 4], [4]], label: 'MatMul 3-D · 1-D' },
  { op: 'MatMul', inputs: [[4], [4]], label: 'MatMul 1-D · 1-D' },
  { op: 'MatMul', inputs: [[2, 3, 4], [4, 5]], symbolic: [[0, 0, 'N']], label: 'MatMul symbolic batch · 2-D weight' },
  { op: 'MatMul', inputs: [[2, 1, 3, 4], [5, 4, 6]], symbolic: [[0, 0, 'N']], label: 'MatMul symbolic batch, broadcast' },
  { op: 'MatMul', inputs: [[2, 3, 4], [4]], symbolic: [[0, 0, 'N'], [0, 1, 'T']], label: 'MatMul symbolic batch · 1-D' },

  // Gemm: every transA/transB combination, alpha, beta, and each form of C.
  { op: 'Gemm', inputs: [[3, 4], [4, 5], [3, 5]], label: 'Gemm C [m,n]' },
  { op: 'Gemm', attrs: { transA: 1, alpha: float(0.5) }, inputs: [[4, 3], [4, 5], [5]], label: 'Gemm transA, alpha, C [n]' },
  { op: 'Gemm', attrs: { transB: 1, beta: float(2) }, inputs: [[3, 4], [5, 4], [3, 1]], label: 'Gemm transB, beta, C [m,1]' },
  { op: 'Gemm', attrs: { transA: 1, transB: 1, alpha: float(1.5), beta: float(0.5) }, inputs: [[4, 3], [5, 4], [1, 5]], label: 'Gemm transA transB, alpha, beta, C [1,n]' },
  { op: 'Gemm', attrs: { beta: float(-1) }, inputs: [[3, 4], [4, 5], []], label: 'Gemm C scalar' },
  { op: 'Gemm', attrs: { transB: 1 }, inputs: [[3, 4], [5, 4]], label: 'Gemm no C' },
  { op: 'Gemm', attrs: { transB: 1 }, inputs: [[3, 4], [5, 4], [5]], symbolic: [[0, 0, 'N']], label: 'Gemm symbolic M' },

  // Conv
  { op: 'Conv', inputs: [[2, 3, 7], [4, 3, 3], [4]], label: 'Conv 1-D with bias' },
  { op: 'Conv', attrs: { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 0, 1] }, inputs: [[2, 2, 6, 7], [3, 2, 3, 2]], label: 'Conv 2-D strides, asymmetric pads' },
  { op: 'Conv', attrs: { strides: [1, 2], dilations: [2, 1], pads: [1, 1, 1, 0] }, inputs: [[2, 2, 7, 6], [2, 2, 2, 3], [2]], label: 'Conv 2-D dilations' },
  { op: 'Conv', attrs: { strides: [3, 2] }, inputs: [[2, 2, 7, 5], [2, 2, 2, 2]], label: 'Conv uncovered tail (7−2 mod 3 = 2)' },
  { op: 'Conv', attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [[2, 2, 5, 6], [3, 2, 3, 2]], label: 'Conv SAME_UPPER' },
  { op: 'Conv', attrs: { strides: [2, 2], auto_pad: 'SAME_LOWER' }, inputs: [[2, 2, 5, 6], [3, 2, 2, 3]], label: 'Conv SAME_LOWER' },
  { op: 'Conv', attrs: { strides: [2, 2], dilations: [2, 2], auto_pad: 'VALID' }, inputs: [[2, 2, 7, 6], [2, 2, 2, 2]], label: 'Conv VALID, strides, dilations' },
  { op: 'Conv', attrs: { group: 2, pads: [1, 1, 1, 1] }, inputs: [[2, 4, 5, 5], [6, 2, 3, 3], [6]], label: 'Conv group 2' },
  { op: 'Conv', attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }, inputs: [[2, 3, 6, 6], [6, 1, 3, 3], [6]], label: 'Conv depthwise (multiplier 2)' },
  { op: 'Conv', attrs: { strides: [1, 2, 1], dilations: [1, 1, 2], pads: [0, 1, 1, 1, 0, 0] }, inputs: [[2, 2, 4, 5, 4], [2, 2, 2, 3, 2], [2]], label: 'Conv 3-D' },
  { op: 'Conv', attrs: { group: 2, strides: [2, 2] }, inputs: [[2, 4, 5, 5], [4, 2, 3, 3]], symbolic: [[0, 0, 'N']], label: 'Conv symbolic batch, group 2' },
  { op: 'Conv', attrs: { strides: [2, 3], pads: [1, 0, 0, 1] }, inputs: [[2, 2, 6, 5], [2, 2, 3, 2]], symbolic: [[0, 0, 'N'], [0, 2, 'H'], [0, 3, 'W']], label: 'Conv symbolic spatial, strides (tail r < s − 1)' },
  { op: 'Conv', attrs: { auto_pad: 'SAME_UPPER', group: 2 }, inputs: [[2, 2, 5, 4], [2, 1, 2, 3]], symbolic: [[0, 0, 'N'], [0, 2, 'H'], [0, 3, 'W']], label: 'Conv symbolic spatial, SAME stride 1, group 2' },

  // ConvTranspose
  { op: 'ConvTranspose', inputs: [[2, 3, 4], [3, 2, 3], [2]], label: 'ConvTranspose 1-D with bias' },
  { op: 'ConvTranspose', attrs: { strides: [2, 3], pads: [1, 0, 0, 1], output_padding: [1, 2] }, inputs: [[2, 2, 3, 4], [2, 3, 3, 2]], label: 'ConvTranspose strides, asymmetric pads, output_padding' },
  { op: 'ConvTranspose', attrs: { strides: [2, 1], dilations: [2, 2], output_padding: [1, 0], pads: [0, 1, 2, 0] }, inputs: [[2, 2, 3, 3], [2, 2, 2, 3]], label: 'ConvTranspose dilations, output_padding, pads past it' },
  { op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [6, 8] }, inputs: [[2, 2, 3, 3], [2, 3, 3, 3]], label: 'ConvTranspose output_shape (crop and extend)' },
  { op: 'ConvTranspose', attrs: { strides: [2, 2], output_padding: [1, 1], output_shape: [7, 6] }, inputs: [[2, 2, 3, 3], [2, 2, 3, 3]], label: 'ConvTranspose output_shape with output_padding' },
  { op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [6, 5], auto_pad: 'SAME_UPPER' }, inputs: [[2, 2, 3, 3], [2, 2, 3, 3]], label: 'ConvTranspose output_shape, SAME_UPPER' },
  { op: 'ConvTranspose', attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [[2, 2, 3, 4], [2, 3, 3, 3], [3]], label: 'ConvTranspose SAME_UPPER' },
  // (No output_padding with SAME: ONNX's shape inference then disagrees with onnxruntime's kernel
  // about the output size, and the checked model no longer loads.)
  { op: 'ConvTranspose', attrs: { strides: [2, 2], dilations: [2, 1], auto_pad: 'SAME_LOWER' }, inputs: [[2, 2, 3, 4], [2, 3, 3, 3]], label: 'ConvTranspose SAME_LOWER, dilations' },
  { op: 'ConvTranspose', attrs: { strides: [2, 3], auto_pad: 'VALID' }, inputs: [[2, 2, 3, 3], [2, 2, 2, 2]], label: 'ConvTranspose VALID' },
  { op: 'ConvTranspose', attrs: { group: 2, pads: [1, 1, 1, 1] }, inputs: [[2, 4, 3, 3], [4, 3, 3, 3], [6]], label: 'ConvTranspose group 2' },
  { op: 'ConvTranspose', attrs: { group: 3, strides: [2, 2], output_padding: [1, 1] }, inputs: [[2, 3, 3, 3], [3, 1, 3, 3], [3]], label: 'ConvTranspose depthwise' },
  { op: 'ConvTranspose', attrs: { strides: [2, 1, 2], pads: [1, 0, 0, 0, 1, 0] }, inputs: [[2, 2, 3, 3, 2], [2, 2, 2, 3, 2], [2]], label: 'ConvTranspose 3-D' },
  { op: 'ConvTranspose', attrs: { strides: [2, 2], output_padding: [1, 0], group: 2 }, inputs: [[2, 2, 3, 4], [2, 2, 2, 3]], symbolic: [[0, 0, 'N'], [0, 2, 'H'], [0, 3, 'W']], label: 'ConvTranspose symbolic batch and spatial, group 2' },
];

function build(c: LinearCase): ReturnType<typeof opModel> {
  const built = opModel(c);
  for (const [k, axis, name] of c.symbolic ?? []) {
    const input = built.model.graph.inputs.find((v) => v.name === `x${k}`)!;
    input.shape = input.shape!.map((d, i) => (i === axis ? name : d));
  }
  return built;
}

describe('linear gradient rules', () => {
  it.each(cases.map((c) => [c.label ?? c.op, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = build(c);
    const result = await gradcheck(model, { wrt, feeds });
    expect(result.worst).toBe('');
  });

  it('refuses what needs a static size it does not have, naming the reason', () => {
    const refused = (c: LinearCase): (() => unknown) => () => {
      const { model, wrt } = build(c);
      return differentiate(model, { loss: model.graph.outputs[0]!.name, wrt });
    };
    const spatial: [number, number, string][] = [[0, 2, 'H'], [0, 3, 'W']];
    expect(refused({ op: 'Conv', attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [[1, 1, 5, 5], [1, 1, 3, 3]], symbolic: spatial })).toThrow(/static spatial size/);
    expect(refused({ op: 'ConvTranspose', attrs: { strides: [2, 2], output_shape: [6, 6] }, inputs: [[1, 1, 3, 3], [1, 1, 3, 3]], symbolic: spatial })).toThrow(/output_shape with a symbolic input size/);
  });

  it('has a test row for every rule', () => {
    const tested = new Set(cases.map((c) => c.op));
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });
});
