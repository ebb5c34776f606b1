/**
 * Reconstruction and folding (SNGD.md §2, §5; identity 3): the rebuilt graph computes the same
 * function as the original, with identity P and with random SPD P (W̃' = W̃·P⁻¹), on both sides;
 * folding gives back the original graph: same nodes, names, inputs, outputs, and values.
 */
import { describe, expect, it } from 'vitest';
import { fold } from '../passes/fold.js';
import { findLayers, reconstruct } from '../passes/reconstruct/index.js';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { runModel } from '../runtime/ort.js';
import { maxRelError } from './helpers/compare.js';
import { layerCases, skippedLayersModel } from './helpers/layer-models.js';
import { signature, withRandomRoots } from './helpers/roots.js';
import { compileModel, WORKING_OPSET } from '../passes/compile.js';
import { upgradeOpset } from '../passes/upgrade/index.js';
import { loadModel } from '../src/onnx/import.js';
import { elementCount, float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { zooModels } from './fixtures/zoo.js';
import { CORPUS_SKIP_MESSAGE, corpusAvailable, corpusModels } from './helpers/corpus.js';

/** Float32 rounding through W̃'·P and x̃·P: 1e-5 relative is the acceptance bound. */
const TOL = 1e-5;

describe.each(layerCases())('$name', ({ model, feeds, layers }) => {
  it.each(['weight', 'activation', 'auto'] as const)('rebuilds every layer (%s side) with an unchanged function, and folds back', async (side) => {
    const reference = await runModel(model, feeds);
    const rebuilt = reconstruct(model, { side, batchSize: 4 });
    expect(rebuilt.layers).toHaveLength(layers);
    expect(rebuilt.skipped).toEqual([]);

    expect(maxRelError(await runModel(rebuilt.model, feeds), reference)).toBeLessThanOrEqual(TOL);

    const spd = withRandomRoots(rebuilt.model, 11);
    const spdOut = await runModel(spd, feeds);
    expect(maxRelError(spdOut, reference)).toBeLessThanOrEqual(TOL);
    expect(maxRelError(await runModel(withRandomRoots(rebuilt.model, 12, true), feeds), reference)).toBeLessThanOrEqual(TOL);

    const folded = fold(spd);
    expect(signature(folded)).toEqual(signature(model));
    expect(folded.graph.nodes).toHaveLength(model.graph.nodes.length);
    expect(maxRelError(await runModel(folded, feeds), reference)).toBeLessThanOrEqual(TOL);
    // Folding with identity P is exact.
    const exact = fold(rebuilt.model);
    for (const [name, init] of model.graph.initializers) {
      expect(Array.from(exact.graph.initializers.get(name)!.tensor.data as Float32Array)).toEqual(Array.from(init.tensor.data as Float32Array));
    }
  });
});

describe('layer discovery', () => {
  it('matches recurrent layers, lists embeddings and shared weights as skipped with reasons, and ignores activation×activation MatMul', () => {
    const { matches, recurrent, skipped } = findLayers(skippedLayersModel().graph);
    expect(matches).toEqual([]);
    expect(recurrent.map((r) => r.node.name)).toEqual(['lstm']);
    const byName = Object.fromEntries(skipped.map((s) => [s.name, s]));
    expect(byName.embed?.reason).toMatch(/embedding/);
    expect(byName.lstm).toBeUndefined();
    expect(byName.shared_1?.reason).toMatch(/shared/);
    expect(byName.shared_2?.reason).toMatch(/shared/);
    expect(byName.attention_like).toBeUndefined();
  });

  it('refuses to rebuild a model twice, and to fold a model that was never rebuilt', () => {
    const { model } = layerCases()[0]!;
    const once = reconstruct(model).model;
    expect(() => reconstruct(once)).toThrow(/already reconstructed/);
    expect(() => fold(model)).toThrow(/no local Fisher layers/);
  });

  it('does not modify its input model', () => {
    const { model } = layerCases()[0]!;
    const before = signature(model);
    reconstruct(model, { side: 'activation' });
    expect(signature(model)).toEqual(before);
  });
});

/** Random feeds for a model's data inputs: symbolic dims → 2, integer inputs → small ids. */
function randomFeeds(model: Model, seed: number): Record<string, Tensor> {
  const rng = new Rng(seed);
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name))) {
    const dims = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 2));
    const n = elementCount(dims);
    feeds[v.name] = v.elemType === 7
      ? { dtype: 'int64', dims, data: BigInt64Array.from({ length: n }, () => BigInt(rng.int(2))) }
      : float32Tensor(dims, rng.floats(n));
  }
  return feeds;
}

async function checkWholeModel(model: Model, feeds: Record<string, Tensor>): Promise<void> {
  const upgraded = upgradeOpset(model, WORKING_OPSET);
  const reference = await runModel(upgraded, feeds);
  for (const side of ['weight', 'activation'] as const) {
    const { model: rebuilt } = compileModel(model, { side });
    expect(maxRelError(await runModel(rebuilt, feeds), reference)).toBeLessThanOrEqual(TOL);
    const spd = withRandomRoots(rebuilt, 5);
    expect(maxRelError(await runModel(spd, feeds), reference)).toBeLessThanOrEqual(TOL);
    const folded = fold(spd);
    expect(signature(folded).nodes).toEqual(signature(upgraded).nodes);
    expect(signature(folded).inputs).toEqual(signature(upgraded).inputs);
    expect(signature(folded).outputs).toEqual(signature(upgraded).outputs);
    expect(maxRelError(await runModel(folded, feeds), reference)).toBeLessThanOrEqual(TOL);
  }
}

describe('whole models', () => {
  it.each(zooModels().map((z) => [z.name, z] as const))('zoo %s: rebuilt, random SPD roots and folded all match the original', async (_name, z) => {
    await checkWholeModel(z.model, z.feeds(3));
  });

  describe.skipIf(!corpusAvailable())('corpus', () => {
    it.each(corpusAvailable() ? corpusModels() : [])('%s', async (file) => {
      const model = loadModel(file);
      await checkWholeModel(model, randomFeeds(model, 17));
    });
  });
  it.skipIf(corpusAvailable())('corpus', () => console.log(CORPUS_SKIP_MESSAGE));
});
