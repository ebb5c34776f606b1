/** The per-step cost estimate of `sngd-compile --report`, against counts done by hand. */
import { expect, it } from 'vitest';
import { buildMlp } from '../models/mlp.js';
import { estimateCosts } from '../passes/cost.js';
import { reconstruct } from '../passes/reconstruct/index.js';
import { inferShapes } from '../src/shape/index.js';

it('counts the plain, Fisher-layer, statistic and amortized refresh multiply-adds of an MLP', () => {
  const { model, layers } = reconstruct(inferShapes(buildMlp({ layers: [10, 6, 3] })), { side: 'weight' });
  const r = estimateCosts(model.graph, layers, 8, 50);
  const [fc1, fc2] = r.layers;
  // fc1: m = 6, d = 10, d̃ = 11; fc2: m = 3, d = 6, d̃ = 7; batch 8.
  expect(fc1).toMatchObject({ rows: 8, plain: 3 * 8 * 6 * 10, fisher: 2 * 6 * 11 * 11, statistic: 8 * 11 * 11, refresh: (27 * 11 ** 3) / 50 });
  expect(fc2).toMatchObject({ rows: 8, plain: 3 * 8 * 3 * 6, fisher: 2 * 3 * 7 * 7, statistic: 8 * 7 * 7 });
  expect(r.plain).toBe(fc1!.plain + fc2!.plain);
  expect(r.ratio).toBeCloseTo(r.sngd / r.plain, 12);
  const act = reconstruct(inferShapes(buildMlp({ layers: [10, 6, 3] })), { side: 'activation' });
  expect(estimateCosts(act.model.graph, act.layers, 8, 50).layers[0]!.fisher).toBe(2 * 8 * 11 * 11);
});
