/**
 * Small seeded models, one per weighted-layer form the reconstruction pass must handle, with
 * feeds. Each is run through onnxruntime as the reference for its rebuilt and folded versions.
 */
import { GraphBuilder, float } from '../../models/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Rng } from '../../src/numerics/random.js';
import { elementCount, float32Tensor, int64Tensor, type Tensor } from '../../src/onnx/tensor.js';

export interface LayerCase {
  name: string;
  model: Model;
  feeds: Record<string, Tensor>;
  /** Layer count the pass must rebuild. */
  layers: number;
}

function rand(rng: Rng, dims: number[], scale = 0.5): Tensor {
  return float32Tensor(dims, rng.floats(elementCount(dims), -scale, scale));
}

export function layerCases(): LayerCase[] {
  const cases: LayerCase[] = [];
  const rng = new Rng(2024);
  const add = (name: string, layers: number, build: (b: GraphBuilder) => Record<string, Tensor>, opset = 17): void => {
    const b = new GraphBuilder(name, opset);
    const feeds = build(b);
    cases.push({ name, model: b.build(), feeds, layers });
  };

  add('gemm transB=1 with bias, relu, gemm', 2, (b) => {
    const x = b.input('x', 'float32', ['N', 12]);
    let h = b.op('Gemm', [x, b.init('fc1.weight', rand(rng, [9, 12])), b.init('fc1.bias', rand(rng, [9]))], { transB: 1 }, { name: 'fc1' });
    h = b.op('Relu', [h]);
    const y = b.op('Gemm', [h, b.init('fc2.weight', rand(rng, [4, 9])), b.init('fc2.bias', rand(rng, [4]))], { transB: 1 }, { name: 'fc2', output: 'y' });
    b.output(y, 'float32', ['N', 4]);
    return { x: rand(rng, [5, 12], 1) };
  });

  add('gemm transB=0, alpha/beta, [1,m] and scalar C, no C', 3, (b) => {
    const x = b.input('x', 'float32', ['N', 7]);
    let h = b.op('Gemm', [x, b.init('w1', rand(rng, [7, 6])), b.init('c1', rand(rng, [1, 6]))], { alpha: float(0.5), beta: float(2) });
    h = b.op('Tanh', [h]);
    h = b.op('Gemm', [h, b.init('w2', rand(rng, [5, 6])), b.init('c2', float32Tensor([], [0.25]))], { transB: 1, beta: float(0.5) });
    const y = b.op('Gemm', [h, b.init('w3', rand(rng, [5, 3]))], {}, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [4, 7], 1) };
  });

  add('gemm transA=1 on the activation', 1, (b) => {
    const x = b.input('x', 'float32', [6, 'N']);
    const y = b.op('Gemm', [x, b.init('w', rand(rng, [3, 6])), b.init('c', rand(rng, [3]))], { transA: 1, transB: 1 }, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [6, 5], 1) };
  });

  add('gemm with constant A (weight on the left)', 1, (b) => {
    const x = b.input('x', 'float32', [6, 'N']);
    const y = b.op('Gemm', [b.init('w', rand(rng, [6, 4])), x], { transA: 1 }, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [6, 3], 1) };
  });

  add('matmul + add on a 3-D input (PyTorch Linear)', 2, (b) => {
    const x = b.input('x', 'float32', ['N', 5, 8]);
    let h = b.op('MatMul', [x, b.init('l1.weight_t', rand(rng, [8, 6]))]);
    h = b.op('Add', [b.init('l1.bias', rand(rng, [6])), h]);
    h = b.op('Sigmoid', [h]);
    const y = b.op('MatMul', [h, b.init('l2.weight_t', rand(rng, [6, 3]))], {}, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [2, 5, 8], 1) };
  });

  add('matmul with a constant left weight', 1, (b) => {
    const x = b.input('x', 'float32', ['N', 6, 4]);
    const y = b.op('MatMul', [b.init('w', rand(rng, [3, 6])), x], {}, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [2, 6, 4], 1) };
  });

  add('conv2d pads/strides + conv2d dilation, bias and no bias', 2, (b) => {
    const x = b.input('x', 'float32', ['N', 3, 9, 9]);
    let h = b.op('Conv', [x, b.init('c1.w', rand(rng, [4, 3, 3, 3])), b.init('c1.b', rand(rng, [4]))], { pads: [1, 1, 1, 1], strides: [2, 2], kernel_shape: [3, 3] });
    h = b.op('Relu', [h]);
    const y = b.op('Conv', [h, b.init('c2.w', rand(rng, [5, 4, 2, 2]))], { dilations: [2, 2] }, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [2, 3, 9, 9], 1) };
  });

  add('conv1d groups=2 auto_pad SAME_UPPER; depthwise conv2d; conv3d', 3, (b) => {
    const x = b.input('x', 'float32', ['N', 4, 11]);
    const c1 = b.op('Conv', [x, b.init('g.w', rand(rng, [6, 2, 4])), b.init('g.b', rand(rng, [6]))], { group: 2, auto_pad: 'SAME_UPPER', strides: [2] });
    const r = b.op('Reshape', [c1, b.init('shape', int64Tensor([4], [0, 6, 2, 3]))]);
    const dw = b.op('Conv', [r, b.init('dw.w', rand(rng, [6, 1, 2, 2])), b.init('dw.b', rand(rng, [6]))], { group: 6, pads: [1, 0, 0, 1] });
    const v = b.op('Unsqueeze', [dw, b.init('axes', int64Tensor([1], [2]))]);
    const y = b.op('Conv', [v, b.init('c3.w', rand(rng, [2, 6, 1, 2, 2])), b.init('c3.b', rand(rng, [2]))], { auto_pad: 'SAME_LOWER' }, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [2, 4, 11], 1) };
  });

  add('conv transpose 2-D stride 2, output_padding, groups', 2, (b) => {
    const x = b.input('x', 'float32', ['N', 4, 5, 5]);
    const h = b.op('ConvTranspose', [x, b.init('t1.w', rand(rng, [4, 3, 3, 3])), b.init('t1.b', rand(rng, [6]))], { strides: [2, 2], output_padding: [1, 1], group: 2, pads: [1, 1, 1, 1] });
    const y = b.op('ConvTranspose', [h, b.init('t2.w', rand(rng, [6, 2, 2, 2]))], {}, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [2, 4, 5, 5], 1) };
  });

  add('weights also listed as graph inputs (older exporters)', 2, (b) => {
    const x = b.input('x', 'float32', ['N', 5]);
    const w = b.init('W', rand(rng, [4, 5]));
    const c = b.init('B', rand(rng, [4]));
    b.input('W', 'float32', [4, 5]);
    b.input('B', 'float32', [4]);
    const h = b.op('Gemm', [x, w, c], { transB: 1 });
    const y = b.op('Gemm', [h, b.init('W2', rand(rng, [4, 2])), b.init('B2', rand(rng, [2]))], {}, { output: 'y' });
    b.output(y, 'float32');
    return { x: rand(rng, [3, 5], 1) };
  }, 13);

  return cases;
}

/** A model whose weighted layers must all be skipped, each for a stated reason. */
export function skippedLayersModel(): Model {
  const rng = new Rng(7);
  const b = new GraphBuilder('skipped');
  const tokens = b.input('tokens', 'int64', ['N', 5]);
  const emb = b.op('Gather', [b.init('embedding', rand(rng, [10, 4])), tokens], {}, { name: 'embed' });
  const seq = b.op('Transpose', [emb], { perm: [1, 0, 2] });
  const [ys] = b.opN('LSTM', [seq, b.init('W', rand(rng, [1, 12, 4])), b.init('R', rand(rng, [1, 12, 3]))], 1, { hidden_size: 3 }, { name: 'lstm' });
  const shared = b.init('shared', rand(rng, [3, 3]));
  const sq = b.op('Squeeze', [ys!, b.init('axes', int64Tensor([1], [1]))]);
  const a1 = b.op('MatMul', [sq, shared], {}, { name: 'shared_1' });
  const a2 = b.op('MatMul', [a1, shared], {}, { name: 'shared_2' });
  const y = b.op('MatMul', [a2, b.op('Transpose', [a2], { perm: [0, 2, 1] })], {}, { name: 'attention_like', output: 'y' });
  b.output(y, 'float32');
  return b.build();
}
