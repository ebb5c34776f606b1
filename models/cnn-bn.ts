/**
 * The architecture of the corpus model pt_mnist_cnn_bn (a PyTorch MNIST CNN with batch norm),
 * built with the graph builder and initialised as PyTorch does by default: Conv2d and Linear
 * weight and bias ~ U(−1/√fan_in, 1/√fan_in); BatchNorm scale 1, shift 0, running mean 0,
 * running variance 1, ε = 1e-5, ONNX momentum 0.9 (PyTorch's momentum 0.1, as its exporter writes it).
 *
 *   input [N,1,28,28]
 *   → Conv 1→8, 3×3 → ReLU                          [N,8,26,26]    (Fisher dim 1·9+1 = 10)
 *   → Conv 8→16, 3×3 → ReLU                         [N,16,24,24]   (Fisher dim 8·9+1 = 73)
 *   → Conv 16→24, 3×3 → ReLU                        [N,24,22,22]   (Fisher dim 16·9+1 = 145)
 *   → BatchNormalization(24) → Flatten              [N,11616]
 *   → Gemm 11616→32 → ReLU                          [N,32]         (Fisher dim 11617: Nyström)
 *   → Gemm 32→10                                    [N,10]         (Fisher dim 33)
 *   → BatchNormalization(10) → LogSoftmax           [N,10]
 *
 * The 11616-wide Linear is the point of the model: a dense root of its Fisher would be
 * 11617² floats (540 MB) and 11617³ multiply-adds per refresh, so it trains with a Nyström Fisher
 * layer (SNGD.md §4; `--max-fisher-dim auto`, the default, chooses it: passes/cost/choose.ts). The
 * LogSoftmax output is what the trainer's cross-entropy reads through (passes/training: a model
 * ending in LogSoftmax trains on its input).
 */
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor } from '../src/onnx/tensor.js';
import { GraphBuilder } from './builder.js';

export interface CnnBnOptions {
  seed?: number;
}

/** Width of the flattened features: 24 channels of 22×22 after three unpadded 3×3 convolutions. */
export const CNN_BN_FEATURES = 24 * 22 * 22;

export function buildCnnBn(opts: CnnBnOptions = {}): Model {
  const rng = new Rng(opts.seed ?? 2017);
  const b = new GraphBuilder('cnn_bn');
  const param = (name: string, dims: number[], fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return b.init(name, float32Tensor(dims, rng.floats(dims.reduce((a, d) => a * d, 1), -bound, bound)));
  };
  const filled = (name: string, n: number, value: number) => b.init(name, float32Tensor([n], new Float32Array(n).fill(value)));
  const batchNorm = (x: string, name: string, channels: number) =>
    b.op('BatchNormalization', [x, filled(`${name}.weight`, channels, 1), filled(`${name}.bias`, channels, 0), filled(`${name}.running_mean`, channels, 0), filled(`${name}.running_var`, channels, 1)], { epsilon: 1e-5, momentum: 0.9 }, { name });
  const conv = (x: string, name: string, cin: number, cout: number) => {
    const fanIn = cin * 9;
    return b.op('Conv', [x, param(`${name}.weight`, [cout, cin, 3, 3], fanIn), param(`${name}.bias`, [cout], fanIn)], { kernel_shape: [3, 3] }, { name });
  };
  const linear = (x: string, name: string, fanIn: number, out: number, output?: string) =>
    b.op('Gemm', [x, param(`${name}.weight`, [out, fanIn], fanIn), param(`${name}.bias`, [out], fanIn)], { transB: 1 }, { name, output });

  let h = b.input('input', 'float32', ['N', 1, 28, 28]);
  h = b.op('Relu', [conv(h, 'conv1', 1, 8)], {}, { name: 'act1' });
  h = b.op('Relu', [conv(h, 'conv2', 8, 16)], {}, { name: 'act2' });
  h = b.op('Relu', [conv(h, 'conv3', 16, 24)], {}, { name: 'act3' });
  h = batchNorm(h, 'bn1', 24);
  h = b.op('Flatten', [h], { axis: 1 }, { name: 'flatten' });
  h = b.op('Relu', [linear(h, 'fc1', CNN_BN_FEATURES, 32)], {}, { name: 'act4' });
  h = linear(h, 'fc2', 32, 10);
  h = batchNorm(h, 'bn2', 10);
  h = b.op('LogSoftmax', [h], { axis: 1 }, { name: 'log_softmax', output: 'log_probs' });
  b.output(h, 'float32', ['N', 10]);
  return b.build();
}
