/**
 * A small MNIST CNN for benchmarks, built with the graph builder and initialised as PyTorch's
 * nn.Conv2d / nn.Linear do by default (weight and bias ~ U(−1/√fan_in, 1/√fan_in)):
 *
 *   input [N,1,28,28]
 *   → Conv 1→8, 3×3, pad 1 → ReLU                  [N,8,28,28]   (Fisher dim 1·9+1 = 10)
 *   → Conv 8→16, 3×3, stride 2, pad 1 → ReLU       [N,16,14,14]  (Fisher dim 8·9+1 = 73)
 *   → AveragePool 2×2 → Flatten                    [N,784]
 *   → Gemm 784→10 (logits)                                       (Fisher dim 785)
 *
 * The pooling keeps the last layer's Fisher at 785 (like the MLP's first layer) rather than 3137,
 * whose dense root would dominate a CPU run.
 */
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor } from '../src/onnx/tensor.js';
import { GraphBuilder } from './builder.js';

export interface CnnOptions {
  seed?: number;
  /** Channels of the two convolutions (default 8 and 16). */
  channels?: [number, number];
}

export function buildCnn(opts: CnnOptions = {}): Model {
  const rng = new Rng(opts.seed ?? 2017);
  const [c1, c2] = opts.channels ?? [8, 16];
  const b = new GraphBuilder('cnn');
  const param = (name: string, dims: number[], fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return b.init(name, float32Tensor(dims, rng.floats(dims.reduce((a, d) => a * d, 1), -bound, bound)));
  };
  let h = b.input('input', 'float32', ['N', 1, 28, 28]);
  h = b.op('Conv', [h, param('conv1.weight', [c1, 1, 3, 3], 9), param('conv1.bias', [c1], 9)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' });
  h = b.op('Relu', [h], {}, { name: 'act1' });
  h = b.op('Conv', [h, param('conv2.weight', [c2, c1, 3, 3], c1 * 9), param('conv2.bias', [c2], c1 * 9)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }, { name: 'conv2' });
  h = b.op('Relu', [h], {}, { name: 'act2' });
  h = b.op('AveragePool', [h], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool' });
  h = b.op('Flatten', [h], { axis: 1 }, { name: 'flatten' });
  const features = c2 * 7 * 7;
  h = b.op('Gemm', [h, param('fc.weight', [10, features], features), param('fc.bias', [10], features)], { transB: 1 }, { name: 'fc', output: 'logits' });
  b.output(h, 'float32', ['N', 10]);
  return b.build();
}
