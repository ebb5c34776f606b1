/**
 * Checks every gradient output of a training graph against central differences of the same
 * graph's loss output (so batch-norm training mode and the like are differentiated as trained).
 */
import type { GraphContract, TrainingGraphs } from '../../passes/training/index.js';
import type { Model } from '../../src/ir/graph.js';
import { Rng } from '../../src/numerics/random.js';
import { elementCount, type Tensor } from '../../src/onnx/tensor.js';
import { createSession } from '../../runtime/ort.js';

export function initialFeeds(rebuilt: Model, contract: GraphContract, data: Record<string, Tensor>): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = { ...data };
  for (const i of contract.inputs) if (i.init) feeds[i.name] = rebuilt.graph.initializers.get(i.init)!.tensor;
  return feeds;
}

export function outputName(contract: GraphContract, role: string, of?: string): string {
  const o = contract.outputs.find((x) => x.role === role && (of === undefined || x.of === of));
  if (!o) throw new Error(`no ${role} output${of ? ` for ${of}` : ''}`);
  return o.name;
}

/**
 * Returns failure descriptions (empty when all directions agree). Each parameter's direction has
 * unit norm, so a step of ε moves every layer's pre-activations by about ε·|x| whatever its width
 * (a per-coordinate normal direction would move a 784-wide layer 28× more and cross ReLU and
 * max-pool kinks). Tolerances as in gradcheck.ts, with the absolute floor scaled to the loss.
 */
export async function checkStepGradients(rebuilt: Model, graphs: TrainingGraphs, data: Record<string, Tensor>, opts: { seed: number; eps?: number; directions?: number }): Promise<string[]> {
  const contract = graphs.trainContract;
  const train = await createSession(graphs.train);
  const feeds = initialFeeds(rebuilt, contract, data);
  const out = await train.run(feeds);
  const params = contract.inputs.filter((i) => i.role === 'param').map((i) => i.name);
  const rng = new Rng(opts.seed);
  const eps = opts.eps ?? 3e-4;
  const lossName = outputName(contract, 'loss');
  const failures: string[] = [];
  const lossAt = async (dir: Record<string, Float32Array>, s: number) => {
    const shifted = { ...feeds };
    for (const p of params) shifted[p] = { ...feeds[p]!, data: Float32Array.from(feeds[p]!.data as Float32Array, (x, i) => x + s * dir[p]![i]!) };
    return Number(((await train.run(shifted))[lossName]!.data as Float32Array)[0]);
  };
  const loss0 = Math.abs(Number((out[lossName]!.data as Float32Array)[0]));
  for (let k = 0; k < (opts.directions ?? 3); k++) {
    const dir: Record<string, Float32Array> = {};
    let analytic = 0;
    for (const p of params) {
      const n = elementCount(feeds[p]!.dims);
      const v = Float32Array.from({ length: n }, () => rng.normal() / Math.sqrt(n));
      dir[p] = v;
      const gp = out[outputName(contract, 'grad', p)]!.data as Float32Array;
      for (let i = 0; i < n; i++) analytic += gp[i]! * v[i]!;
    }
    const numeric = ((await lossAt(dir, eps)) - (await lossAt(dir, -eps))) / (2 * eps);
    // float32 rounding of the loss contributes about 1e-7·|L|/ε ≈ 3e-4·|L| to the quotient.
    if (!(Math.abs(analytic - numeric) <= 1e-2 * Math.max(Math.abs(analytic), Math.abs(numeric)) + 5e-4 * (1 + loss0))) failures.push(`direction ${k}: analytic ${analytic}, numeric ${numeric}`);
  }
  await train.release();
  return failures;
}
