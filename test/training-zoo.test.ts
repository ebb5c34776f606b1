/**
 * Whole networks: every zoo model (and every ../shared/corpus model) is compiled with Fisher
 * layers, gets a training graph that onnxruntime runs (recurrent nodes unrolled, their symbolic
 * sequence length bound from the feeds), and its gradients for all trainable tensors match central
 * differences of the training loss. The loss is mse against random targets so any float output works.
 */
import { describe, expect, it } from 'vitest';
import { compileModel } from '../passes/compile.js';
import { buildTrainingGraphs } from '../passes/training/index.js';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { elementCount, float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { loadModel } from '../src/onnx/import.js';
import { runModel } from '../runtime/ort.js';
import { zooModels } from './fixtures/zoo.js';
import { CORPUS_SKIP_MESSAGE, corpusAvailable, corpusModels } from './helpers/corpus.js';
import { checkStepGradients } from './helpers/step-check.js';

const CONTROL_FLOW = new Set(['Loop', 'Scan']);
const hasControlFlow = (m: Model) => m.graph.nodes.some((n) => CONTROL_FLOW.has(n.opType));

/** Sizes of the inputs' symbolic dims other than the batch, read off the feeds. */
function dimsFromFeeds(model: Model, feeds: Record<string, Tensor>): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const v of model.graph.inputs) {
    (v.shape ?? []).forEach((d, i) => {
      if (i > 0 && typeof d === 'string' && feeds[v.name]) dims[d] = feeds[v.name]!.dims[i]!;
    });
  }
  return dims;
}

async function checkModel(model: Model, feeds: Record<string, Tensor>, seed: number): Promise<string[]> {
  const { model: rebuilt } = compileModel(model, {});
  const outputs = await runModel(rebuilt, feeds);
  const first = outputs[rebuilt.graph.outputs[0]!.name]!;
  const rng = new Rng(seed);
  const labels = float32Tensor(first.dims, rng.floats(elementCount(first.dims)));
  const graphs = buildTrainingGraphs(rebuilt, { loss: 'mse', dims: dimsFromFeeds(model, feeds) });
  // Unrolled recurrences move ~100 coordinates per direction and compound: a larger step
  // (see test/autodiff/recurrent.test.ts).
  const recurrent = model.graph.nodes.some((n) => ['LSTM', 'GRU', 'RNN'].includes(n.opType));
  return checkStepGradients(rebuilt, graphs, { ...feeds, labels }, { seed, eps: recurrent ? 1e-3 : undefined });
}

describe('training graphs of whole networks', () => {
  const zoo = zooModels().filter((z) => !hasControlFlow(z.model));
  it.each(zoo.map((z) => [z.name, z] as const))('%s: all gradients match finite differences', async (_name, z) => {
    expect(await checkModel(z.model, z.feeds(3), 21)).toEqual([]);
  });

  describe.skipIf(!corpusAvailable())('corpus', () => {
    const models = corpusAvailable() ? corpusModels() : [];
    it.each(models)('%s', async (file) => {
      const model = loadModel(file);
      if (hasControlFlow(model)) return;
      const rng = new Rng(3);
      const feeds: Record<string, Tensor> = {};
      for (const v of model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name))) {
        const dims = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 2));
        feeds[v.name] = v.elemType === 7
          ? { dtype: 'int64', dims, data: BigInt64Array.from({ length: elementCount(dims) }, () => BigInt(rng.int(2))) }
          : float32Tensor(dims, rng.floats(elementCount(dims)));
      }
      expect(await checkModel(model, feeds, 4)).toEqual([]);
    });
  });
  it.skipIf(corpusAvailable())('corpus', () => {
    console.log(CORPUS_SKIP_MESSAGE);
  });
});
