/**
 * models/cnn-bn.ts, the pt_mnist_cnn_bn architecture: its shapes and PyTorch-default
 * initialisation, and its SNGD training graph (batch norm in training mode, a Nyström Fisher layer
 * on the 11616-wide linear) against central differences.
 */
import { describe, expect, it } from 'vitest';
import { CNN_BN_FEATURES, buildCnnBn } from '../models/cnn-bn.js';
import { compileModel } from '../passes/compile.js';
import { nystromOf, readLayerRecords } from '../passes/reconstruct/record.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor, int64Tensor } from '../src/onnx/tensor.js';
import { runModel } from '../runtime/ort.js';
import { checkStepGradients } from './helpers/step-check.js';

const images = (n: number, seed: number) => float32Tensor([n, 1, 28, 28], new Rng(seed).floats(n * 784, 0, 1));

describe('cnn-bn (pt_mnist_cnn_bn architecture)', () => {
  it('maps [N,1,28,28] to log-probabilities [N,10] through an 11616-wide linear', async () => {
    const model = buildCnnBn({ seed: 1 });
    const fc1 = model.graph.initializers.get('fc1.weight')!.tensor;
    expect(fc1.dims).toEqual([32, CNN_BN_FEATURES]);
    expect(CNN_BN_FEATURES).toBe(11616);
    const out = (await runModel(model, { input: images(4, 2) }))['log_probs']!;
    expect(out.dims).toEqual([4, 10]);
    for (let n = 0; n < 4; n++) {
      const row = Array.from((out.data as Float32Array).subarray(n * 10, n * 10 + 10));
      expect(row.reduce((a, v) => a + Math.exp(v), 0)).toBeCloseTo(1, 5);
    }
  });

  it('is initialised as PyTorch does, from its seed', () => {
    const a = buildCnnBn({ seed: 3 });
    const bound = (name: string, fanIn: number) => {
      const data = a.graph.initializers.get(name)!.tensor.data as Float32Array;
      const max = data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // U(−1/√fan_in, 1/√fan_in): the largest of many draws comes close to the bound.
      expect(max).toBeLessThanOrEqual(1 / Math.sqrt(fanIn));
      expect(max).toBeGreaterThan(0.9 / Math.sqrt(fanIn));
    };
    bound('conv1.weight', 9);
    bound('conv3.weight', 16 * 9);
    bound('fc1.weight', CNN_BN_FEATURES);
    bound('fc2.weight', 32);
    const values = (name: string) => Array.from(a.graph.initializers.get(name)!.tensor.data as Float32Array);
    expect(values('bn1.weight')).toEqual(new Array(24).fill(1));
    expect(values('bn2.running_var')).toEqual(new Array(10).fill(1));
    expect(values('bn2.running_mean')).toEqual(new Array(10).fill(0));
    const same = buildCnnBn({ seed: 3 }).graph.initializers.get('fc2.weight')!.tensor.data;
    const other = buildCnnBn({ seed: 4 }).graph.initializers.get('fc2.weight')!.tensor.data;
    expect(same).toEqual(a.graph.initializers.get('fc2.weight')!.tensor.data);
    expect(other).not.toEqual(same);
  });

  it('trains with batch norm in training mode and a Nyström fc1: every gradient matches finite differences', async () => {
    const { model: rebuilt } = compileModel(buildCnnBn({ seed: 5 }), { maxFisherDim: 1000, nystromRank: 8 });
    expect(readLayerRecords(rebuilt).filter((r) => nystromOf(r)).map((r) => r.name)).toEqual(['fc1']);
    const graphs = buildTrainingGraphs(rebuilt, { loss: 'ce' });
    expect(graphs.trainContract.inputs.filter((i) => i.role === 'state').map((i) => i.name)).toEqual(['bn1.running_mean', 'bn1.running_var', 'bn2.running_mean', 'bn2.running_var']);
    const data = { input: images(3, 6), labels: int64Tensor([3], [1, 7, 3]) };
    expect(await checkStepGradients(rebuilt, graphs, data, { seed: 7 })).toEqual([]);
  });
});
