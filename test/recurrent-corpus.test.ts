/**
 * Every recurrent model of ../shared/corpus (issue 6's acceptance): 100 SNGD steps on synthetic
 * data of its input shape lower the loss, and the export has the original recurrent node types and
 * computes the trained function. Targets come from a teacher: the same model with its weights
 * scaled by 0.5, so the loss is one the student can lower. Skipped where the corpus is absent.
 */
import { describe, expect, it } from 'vitest';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { loadModel } from '../src/onnx/import.js';
import { elementCount, float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { runModel } from '../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun } from '../runtime/run.js';
import { upgradeOpset } from '../passes/upgrade/index.js';
import { maxRelError } from './helpers/compare.js';
import { CORPUS_SKIP_MESSAGE, corpusAvailable, corpusModels } from './helpers/corpus.js';

const RECURRENT = ['LSTM', 'GRU', 'RNN'];
const recurrentModels = corpusAvailable()
  ? corpusModels().filter((f) => {
      try {
        return loadModel(f).graph.nodes.some((n) => RECURRENT.includes(n.opType));
      } catch {
        return false;
      }
    })
  : [];

function randomFeeds(model: Model, rng: Rng): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name))) {
    const dims = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 3));
    const n = elementCount(dims);
    feeds[v.name] = v.elemType === 7 ? { dtype: 'int64', dims, data: BigInt64Array.from({ length: n }, () => BigInt(rng.int(2))) } : float32Tensor(dims, rng.floats(n));
  }
  return feeds;
}

function halved(model: Model): Model {
  const inits = new Map([...model.graph.initializers].map(([k, v]) => [k, v.tensor.dtype === 'float32' && v.tensor.dims.length >= 2 ? { tensor: { ...v.tensor, data: (v.tensor.data as Float32Array).map((x) => x * 0.5) } } : v]));
  return { ...model, graph: { ...model.graph, initializers: inits } };
}

describe.skipIf(recurrentModels.length === 0)('recurrent corpus models', () => {
  it.each(recurrentModels)('%s: 100 SNGD steps lower the loss; the export keeps the recurrent nodes and the trained function', async (file) => {
    const model = upgradeOpset(loadModel(file), 17);
    const rng = new Rng(5);
    const inputs = model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name));
    if (inputs.length !== 1) return; // the trainer feeds one data input
    const teacher = halved(model);
    const batches = await Promise.all(Array.from({ length: 4 }, async () => {
      const feeds = randomFeeds(model, rng);
      return { ...feeds, labels: (await runModel(teacher, feeds))[model.graph.outputs[0]!.name]! };
    }));
    const dims: Record<string, number> = {};
    (inputs[0]!.shape ?? []).forEach((d, i) => i > 0 && typeof d === 'string' && (dims[d] = 3));
    const run = await TrainingRun.create(model, { optimizer: 'sngd', sngd: { ...REFERENCE_SNGD, emaDecay: 0.9, refreshEvery: 20 }, loss: 'mse', side: 'auto', batchSize: 3, sessionOptions: {}, source: file, dims });
    try {
      const losses: number[] = [];
      for (let step = 0; step < 100; step++) {
        const r = await run.step(batches[step % 4]!, 0.05, 0);
        losses.push(r.loss);
        if (run.refreshDue()) await run.refresh();
      }
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
      const exported = run.exportModel();
      expect(exported.graph.nodes.map((n) => n.opType).sort()).toEqual(model.graph.nodes.map((n) => n.opType).sort());
      const { labels: _labels, ...feeds } = batches[0]!;
      expect(maxRelError(await runModel(exported, feeds), await runModel(run.rebuilt, feeds))).toBeLessThanOrEqual(1e-5);
    } finally {
      await run.release();
    }
  });
});
it.skipIf(recurrentModels.length > 0)('recurrent corpus models', () => console.log(CORPUS_SKIP_MESSAGE));
