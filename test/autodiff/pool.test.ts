/** Per-op gradient checks: pooling (central differences through onnxruntime). */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/builder.js';
import { differentiate } from '../../passes/autodiff/index.js';
import { rules } from '../../passes/autodiff/rules/pool.js';
import { createSession } from '../../runtime/ort.js';
import { Rng } from '../../src/numerics/random.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { opModel, type OpCase } from '../helpers/op-model.js';

interface PoolCase extends OpCase {
  /**
   * Max-type ops: feed a shuffled ladder of values 0.1 apart, so no two elements of a window are
   * within the finite-difference step of each other (the argmax stays put).
   */
  distinct?: boolean;
  /** Declare these axes of the input as symbolic ('N', 'C', …) in the model. */
  symbolic?: number[];
}

const SYMBOLS = ['N', 'C', 'H', 'W', 'D'];

const cases: PoolCase[] = [
  { op: 'MaxPool', attrs: { kernel_shape: [3], strides: [2] }, inputs: [[2, 2, 7]], distinct: true, label: 'MaxPool 1-D' },
  { op: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], storage_order: 0 }, inputs: [[2, 3, 4, 5]], distinct: true, label: 'MaxPool 2-D pads, overlapping' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, inputs: [[1, 2, 5, 5]], distinct: true, label: 'MaxPool ceil_mode' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2], dilations: [2, 2] }, inputs: [[1, 2, 5, 5]], distinct: true, label: 'MaxPool dilations' },
  { op: 'MaxPool', attrs: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [[1, 2, 5, 4]], distinct: true, label: 'MaxPool SAME_UPPER' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [1, 1], auto_pad: 'SAME_LOWER' }, inputs: [[1, 2, 4, 4]], distinct: true, label: 'MaxPool SAME_LOWER' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 3], strides: [2, 1], auto_pad: 'VALID' }, inputs: [[1, 2, 5, 5]], distinct: true, label: 'MaxPool VALID' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2, 2], strides: [1, 2, 2] }, inputs: [[1, 2, 3, 4, 4]], distinct: true, label: 'MaxPool 3-D' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [[2, 2, 4, 4]], outputs: 2, distinct: true, label: 'MaxPool with Indices requested' },
  { op: 'MaxPool', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [[2, 3, 4, 4]], distinct: true, symbolic: [0, 1], label: 'MaxPool symbolic N, C' },

  { op: 'AveragePool', attrs: { kernel_shape: [3], strides: [2] }, inputs: [[2, 2, 7]], label: 'AveragePool 1-D' },
  { op: 'AveragePool', attrs: { kernel_shape: [2], strides: [2] }, inputs: [[2, 2, 5]], label: 'AveragePool 1-D uncovered tail' },
  { op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 0 }, inputs: [[2, 2, 5, 5]], label: 'AveragePool pads, exclude pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }, inputs: [[2, 2, 5, 5]], label: 'AveragePool pads, include pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 0], ceil_mode: 1, count_include_pad: 0 }, inputs: [[1, 2, 6, 5]], label: 'AveragePool ceil_mode, exclude pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 0], ceil_mode: 1, count_include_pad: 1 }, inputs: [[1, 2, 6, 5]], label: 'AveragePool ceil_mode, include pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [2], strides: [2], ceil_mode: 1, count_include_pad: 1 }, inputs: [[2, 2, 5]], label: 'AveragePool 1-D ceil_mode partial window' },
  { op: 'AveragePool', attrs: { kernel_shape: [2, 3], strides: [2, 2], auto_pad: 'SAME_UPPER', count_include_pad: 1 }, inputs: [[1, 2, 5, 4]], label: 'AveragePool SAME_UPPER include pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [2, 3], strides: [2, 2], auto_pad: 'SAME_LOWER', count_include_pad: 0 }, inputs: [[1, 2, 5, 4]], label: 'AveragePool SAME_LOWER exclude pad' },
  { op: 'AveragePool', attrs: { kernel_shape: [2, 2], strides: [2, 1], auto_pad: 'VALID' }, inputs: [[1, 2, 5, 4]], label: 'AveragePool VALID' },
  { op: 'AveragePool', attrs: { kernel_shape: [2, 2, 2], strides: [2, 1, 2], pads: [0, 1, 0, 1, 0, 1] }, inputs: [[1, 2, 3, 3, 4]], label: 'AveragePool 3-D' },
  { op: 'AveragePool', opset: 19, attrs: { kernel_shape: [3, 2], strides: [2, 1], dilations: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }, inputs: [[1, 2, 7, 5]], label: 'AveragePool dilations (opset 19)' },
  { op: 'AveragePool', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 0, 0] }, inputs: [[2, 3, 4, 5]], symbolic: [0, 1], label: 'AveragePool symbolic N, C' },

  { op: 'GlobalAveragePool', inputs: [[2, 3, 4, 5]] },
  { op: 'GlobalAveragePool', inputs: [[2, 3, 5]], symbolic: [0, 2], label: 'GlobalAveragePool 1-D symbolic N, length' },
  { op: 'GlobalMaxPool', inputs: [[2, 3, 4, 5]], distinct: true },
  { op: 'GlobalMaxPool', inputs: [[2, 3, 5]], distinct: true, symbolic: [0], label: 'GlobalMaxPool 1-D symbolic N' },
];

function build(c: PoolCase): ReturnType<typeof opModel> {
  const built = opModel(c);
  const x = built.wrt[0]!;
  if (c.distinct) {
    const t = built.feeds[x]!;
    const n = t.data.length;
    const rng = new Rng(11);
    const ladder = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [ladder[i], ladder[j]] = [ladder[j]!, ladder[i]!];
    }
    built.feeds[x] = { ...t, data: Float32Array.from(ladder) };
  }
  if (c.symbolic) {
    const input = built.model.graph.inputs.find((v) => v.name === x)!;
    input.shape = input.shape!.map((d, i) => (c.symbolic!.includes(i) ? SYMBOLS[i]! : d));
  }
  return built;
}

describe('pool gradient rules', () => {
  it.each(cases.map((c) => [c.label ?? c.op, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = build(c);
    const result = await gradcheck(model, { wrt, feeds });
    expect(result.worst).toBe('');
  });

  it('GlobalMaxPool shares dY equally among tied maxima', async () => {
    const b = new GraphBuilder('tie', 17);
    const x = b.input('x', 'float32', [1, 1, 4]);
    const y = b.op('GlobalMaxPool', [x]);
    b.output(y, 'float32');
    const { model, grads } = differentiate(b.build(), { loss: y, wrt: ['x'] });
    model.graph.outputs = [{ name: grads.get('x')!, elemType: 1 }];
    const session = await createSession(model);
    const out = await session.run({ x: { dtype: 'float32', dims: [1, 1, 4], data: Float32Array.of(2, -1, 2, 0) } });
    await session.release();
    expect(Array.from(out[grads.get('x')!]!.data as Float32Array)).toEqual([0.5, 0, 0.5, 0]);
  });

  it('refuses what it cannot differentiate, naming the reason', () => {
    const refused = (c: PoolCase): (() => unknown) => () => {
      const { model, wrt } = build(c);
      return differentiate(model, { loss: model.graph.outputs[0]!.name, wrt });
    };
    expect(refused({ op: 'MaxPool', attrs: { kernel_shape: [2, 2], storage_order: 1 }, inputs: [[1, 1, 3, 3]] })).toThrow(/storage_order=1/);
    expect(refused({ op: 'AveragePool', attrs: { kernel_shape: [2, 2] }, inputs: [[1, 1, 3, 3]], symbolic: [2, 3] })).toThrow(/static spatial sizes/);
  });

  it('has a test row for every rule', () => {
    const tested = new Set(cases.map((c) => c.op));
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });
});
