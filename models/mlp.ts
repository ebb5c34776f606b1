/**
 * The reference MLP of SNGD.md §6 (e.g. 784-80-80-80-10): Gemm(transB=1) + Relu layers, logits
 * out. Initialised as PyTorch's nn.Linear does by default: weight and bias ~ U(−1/√fan_in, 1/√fan_in).
 */
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor } from '../src/onnx/tensor.js';
import { GraphBuilder } from './builder.js';

export interface MlpOptions {
  layers: number[];
  seed?: number;
  activation?: 'Relu' | 'Tanh' | 'Sigmoid';
}

export function buildMlp(opts: MlpOptions): Model {
  const { layers } = opts;
  if (layers.length < 2 || layers.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new SngdError(`--layers needs at least two positive sizes (input,...,output), got '${layers.join(',')}'`);
  }
  const rng = new Rng(opts.seed ?? 2017);
  const b = new GraphBuilder('mlp');
  let h = b.input('input', 'float32', ['N', layers[0]!]);
  for (let i = 1; i < layers.length; i++) {
    const fanIn = layers[i - 1]!;
    const bound = 1 / Math.sqrt(fanIn);
    const w = b.init(`fc${i}.weight`, float32Tensor([layers[i]!, fanIn], rng.floats(layers[i]! * fanIn, -bound, bound)));
    const bias = b.init(`fc${i}.bias`, float32Tensor([layers[i]!], rng.floats(layers[i]!, -bound, bound)));
    const last = i === layers.length - 1;
    h = b.op('Gemm', [h, w, bias], { transB: 1 }, { name: `fc${i}`, output: last ? 'logits' : undefined });
    if (!last) h = b.op(opts.activation ?? 'Relu', [h], {}, { name: `act${i}` });
  }
  b.output(h, 'float32', ['N', layers[layers.length - 1]!]);
  return b.build();
}
