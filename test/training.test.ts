/**
 * Training graphs end to end: gradients of the whole step against central differences of the
 * eval graph's loss; SNGD's gradient identity ∂L/∂W̃' = (∂L/∂W̃)·P; Fisher statistics against a
 * float64 recomputation (im2col written here independently of the graph's patch extraction).
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/builder.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { remapLayer } from '../passes/reconstruct/remap.js';
import { readLayerRecords } from '../passes/reconstruct/record.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import { checkStepGradients, initialFeeds, outputName } from './helpers/step-check.js';
import type { Model } from '../src/ir/graph.js';
import { mat, matmul, randomOrthogonal, randomSpd, transpose } from '../src/numerics/linalg.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor, int64Tensor, type Tensor } from '../src/onnx/tensor.js';
import { createSession } from '../runtime/ort.js';

/** Directional finite-difference check of every gradient output of a train graph. */
async function checkStep(rebuilt: Model, loss: 'ce' | 'mse' | 'bce', data: Record<string, Tensor>, seed: number): Promise<string[]> {
  return checkStepGradients(rebuilt, buildTrainingGraphs(rebuilt, { loss }), data, { seed });
}

const output = outputName;


function mnistLikeBatch(rng: Rng, n: number, features: number, classes: number): { x: Tensor; labels: Tensor } {
  return { x: float32Tensor([n, features], rng.floats(n * features, 0, 1)), labels: int64Tensor([n], Array.from({ length: n }, () => rng.int(classes))) };
}

describe('training graph', () => {
  it.each(['weight', 'activation'] as const)('MLP (%s side): every gradient matches finite differences of the loss', async (side) => {
    const rng = new Rng(5);
    // Tanh keeps the loss smooth: ReLU kinks within ±ε of a pre-activation spoil central differences
    // over many parameters at once (the ReLU rule itself is checked per op).
    const model = buildMlp({ layers: [12, 8, 6, 4], seed: 3, activation: 'Tanh' });
    const { model: rebuilt } = compileModel(model, { side });
    // Random SPD roots so the check covers P ≠ I.
    let spd = rebuilt;
    for (const r of readLayerRecords(rebuilt)) {
      const { P, S } = randomSpd(r.fisherDim, rng);
      spd = remapLayer(spd, r.name, P, S);
    }
    const { x, labels } = mnistLikeBatch(rng, 5, 12, 4);
    expect(await checkStep(spd, 'ce', { input: x, labels }, 9)).toEqual([]);
  });

  it.each(['mse', 'bce'] as const)('%s loss: gradients match finite differences', async (loss) => {
    const rng = new Rng(6);
    const { model: rebuilt } = compileModel(buildMlp({ layers: [5, 7, 3], seed: 4, activation: 'Tanh' }), {});
    const x = float32Tensor([4, 5], rng.floats(20));
    const labels = float32Tensor([4, 3], loss === 'bce' ? Array.from({ length: 12 }, () => rng.int(2)) : rng.floats(12));
    expect(await checkStep(rebuilt, loss, { input: x, labels }, 10)).toEqual([]);
  });

  // Identity 1 of SNGD.md: with y = W̃′·P·x̃ the gradient is (∂L/∂W̃)·Pᵀ, which is (∂L/∂W̃)·P for the
  // symmetric roots of a cold refresh; warm-started roots (PᵀP = F⁻¹) are not symmetric.
  it.each([['symmetric', true], ['non-symmetric', false]] as const)('∂L/∂W̃′ equals (∂L/∂W̃)·Pᵀ for a rebuilt layer, %s P (SNGD.md §2), both sides', async (_label, symmetric) => {
   for (const side of ['weight', 'activation'] as const) {
    const rng = new Rng(8);
    const model = buildMlp({ layers: [6, 5, 3], seed: 5 });
    const { model: identityRoots } = compileModel(model, { side });
    const { x, labels } = mnistLikeBatch(rng, 4, 6, 3);
    // Identity P: W̃′ = W̃, so the gradient is ∂L/∂W̃.
    const plain = buildTrainingGraphs(identityRoots, { loss: 'ce' });
    const s1 = await createSession(plain.train);
    const g1 = await s1.run(initialFeeds(identityRoots, plain.trainContract, { input: x, labels }));
    // Random P, W̃′ = W̃·P⁻¹: the same function, a reparametrized gradient.
    const rec = readLayerRecords(identityRoots)[0]!;
    const spdRoots = randomSpd(rec.fisherDim, rng);
    // A single Householder reflection H (orthogonal, symmetric): P = H·F^{-1/2}, S = F^{1/2}·H keep S·P = I, PᵀP = F⁻¹.
    const h = randomOrthogonal(rec.fisherDim, rng, 1);
    const P = symmetric ? spdRoots.P : matmul(h, spdRoots.P);
    const S = symmetric ? spdRoots.S : matmul(spdRoots.S, h);
    const spd = remapLayer(identityRoots, rec.name, P, S);
    const graphs = buildTrainingGraphs(spd, { loss: 'ce' });
    const s2 = await createSession(graphs.train);
    const g2 = await s2.run(initialFeeds(spd, graphs.trainContract, { input: x, labels }));
    const dW = mat(rec.m, rec.fisherDim, g1[output(plain.trainContract, 'grad', rec.params.W)]!.data as Float32Array);
    const expected = matmul(dW, transpose(P));
    const actual = g2[output(graphs.trainContract, 'grad', rec.params.W)]!.data as Float32Array;
    const scale = Math.max(...expected.data.map(Math.abs));
    const worst = Math.max(...expected.data.map((v, i) => Math.abs(v - actual[i]!)));
    expect(worst / scale).toBeLessThan(1e-5);
    await s1.release();
    await s2.release();
   }
  });

  it('dense statistic equals the float64 second moment of [x; 1]', async () => {
    const rng = new Rng(11);
    const { model: rebuilt } = compileModel(buildMlp({ layers: [7, 5, 2], seed: 6 }), {});
    const { x, labels } = mnistLikeBatch(rng, 6, 7, 2);
    const graphs = buildTrainingGraphs(rebuilt, { loss: 'ce' });
    const s = await createSession(graphs.train);
    const out = await s.run(initialFeeds(rebuilt, graphs.trainContract, { input: x, labels }));
    await s.release();
    const rec = readLayerRecords(rebuilt).find((r) => r.name === 'fc1')!;
    const stat = out[output(graphs.trainContract, 'stat', rec.params.P)]!;
    const xd = x.data as Float32Array;
    const d = 8;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let sum = 0;
        for (let n = 0; n < 6; n++) sum += (i < 7 ? xd[n * 7 + i]! : 1) * (j < 7 ? xd[n * 7 + j]! : 1);
        expect((stat.data as Float32Array)[i * d + j]).toBeCloseTo(sum / 6, 5);
      }
    }
  });

  it('conv statistic (stride, pads, dilation, groups) equals a float64 im2col recomputation', async () => {
    const rng = new Rng(12);
    const [n, cin, h, w, cout, group, k] = [2, 4, 6, 5, 6, 2, 2];
    const b = new GraphBuilder('conv');
    const x = b.input('x', 'float32', ['N', cin, h, w]);
    const conv = b.op('Conv', [x, b.init('w', float32Tensor([cout, cin / group, k, k], rng.floats(cout * (cin / group) * k * k))), b.init('b', float32Tensor([cout], rng.floats(cout)))], { strides: [2, 1], pads: [1, 0, 0, 1], dilations: [1, 2], group }, { name: 'conv' });
    const y = b.op('ReduceMean', [conv], { axes: [2, 3], keepdims: 0 }, { output: 'y' });
    b.output(y, 'float32');
    const { model: rebuilt } = compileModel(b.build(), {});
    const xs = float32Tensor([n, cin, h, w], rng.floats(n * cin * h * w));
    const graphs = buildTrainingGraphs(rebuilt, { loss: 'mse' });
    const s = await createSession(graphs.train);
    const out = await s.run(initialFeeds(rebuilt, graphs.trainContract, { x: xs, labels: float32Tensor([n, cout], rng.floats(n * cout)) }));
    await s.release();
    const rec = readLayerRecords(rebuilt)[0]!;
    const stat = out[output(graphs.trainContract, 'stat', rec.params.P)]!.data as Float32Array;
    // im2col: output positions of a conv with strides [2,1], pads [1,0,0,1], dilations [1,2].
    const cig = cin / group;
    const oh = Math.floor((h + 1 + 0 - 1 * (k - 1) - 1) / 2) + 1;
    const ow = Math.floor((w + 0 + 1 - 2 * (k - 1) - 1) / 1) + 1;
    const d = cig * k * k + 1;
    const acc = new Float64Array(d * d);
    let rows = 0;
    const xd = xs.data as Float32Array;
    for (let ni = 0; ni < n; ni++) {
      for (let gi = 0; gi < group; gi++) {
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            const v = new Float64Array(d);
            for (let ci = 0; ci < cig; ci++) {
              for (let ky = 0; ky < k; ky++) {
                for (let kx = 0; kx < k; kx++) {
                  const iy = oy * 2 - 1 + ky * 1;
                  const ix = ox * 1 - 0 + kx * 2;
                  const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                  v[(ci * k + ky) * k + kx] = inside ? xd[((ni * cin + gi * cig + ci) * h + iy) * w + ix]! : 0;
                }
              }
            }
            v[d - 1] = 1;
            for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) acc[i * d + j] += v[i]! * v[j]!;
            rows++;
          }
        }
      }
    }
    expect(rec.fisherDim).toBe(d);
    for (let i = 0; i < d * d; i++) expect(stat[i]).toBeCloseTo(acc[i]! / rows, 5);
  });
});

describe('training graph errors', () => {
  it('an op without a gradient rule on the path names the op, the node and the path', () => {
    const b = new GraphBuilder('no-rule');
    const x = b.input('x', 'float32', ['N', 4]);
    const h = b.op('Gemm', [x, b.init('w', float32Tensor([3, 4], new Rng(1).floats(12))), b.init('c', float32Tensor([3], [0, 0, 0]))], { transB: 1 }, { name: 'fc' });
    const y = b.op('Hardmax', [h], { axis: 1 }, { name: 'oddball', output: 'y' });
    b.output(y, 'float32');
    const { model: rebuilt } = compileModel(b.build(), {});
    expect(() => buildTrainingGraphs(rebuilt, { loss: 'mse' })).toThrow(/no gradient rule for Hardmax at node 'oddball' on the path loss ← \[oddball\] ← fc ← .*sngd\/fc\/W/);
  });
});
