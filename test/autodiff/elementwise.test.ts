/** Per-op gradient checks: elementwise arithmetic and activations (central differences through onnxruntime). */
import { describe, expect, it } from 'vitest';
import { float } from '../../models/builder.js';
import { rules } from '../../passes/autodiff/rules/elementwise.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { opModel, type OpCase } from '../helpers/op-model.js';

const cases: OpCase[] = [
  { op: 'Add', inputs: [[2, 3], [3]] },
  { op: 'Sub', inputs: [[2, 1, 3], [4, 1]] },
  { op: 'Mul', inputs: [[2, 3], [2, 1]] },
  { op: 'Div', inputs: [[2, 3], { shape: [3], kind: 'positive' }] },
  { op: 'Pow', inputs: [{ shape: [2, 3], kind: 'positive' }, { shape: [3], kind: 'float', lo: 0.5, hi: 2 }] },
  { op: 'Sqrt', inputs: [{ shape: [2, 3], kind: 'positive' }] },
  { op: 'Exp', inputs: [[2, 3]] },
  { op: 'Log', inputs: [{ shape: [2, 3], kind: 'positive' }] },
  { op: 'Neg', inputs: [[2, 3]] },
  { op: 'Abs', inputs: [{ shape: [2, 3], kind: 'nonzero' }] },
  { op: 'Reciprocal', inputs: [{ shape: [2, 3], kind: 'positive' }] },
  { op: 'Identity', inputs: [[2, 3]] },
  { op: 'Relu', inputs: [{ shape: [3, 4], kind: 'nonzero' }] },
  { op: 'LeakyRelu', attrs: { alpha: float(0.2) }, inputs: [{ shape: [3, 4], kind: 'nonzero' }] },
  { op: 'Elu', attrs: { alpha: float(0.7) }, inputs: [{ shape: [3, 4], kind: 'nonzero' }] },
  { op: 'Selu', inputs: [{ shape: [3, 4], kind: 'nonzero' }] },
  { op: 'PRelu', inputs: [{ shape: [2, 3, 2, 2], kind: 'nonzero' }, [3, 1, 1]] },
  { op: 'Sigmoid', inputs: [[3, 4]] },
  { op: 'Tanh', inputs: [[3, 4]] },
  { op: 'Softplus', inputs: [[3, 4]] },
  { op: 'Erf', inputs: [[3, 4]] },
  { op: 'Gelu', opset: 20, inputs: [[3, 4]], label: 'Gelu (erf)' },
  { op: 'Gelu', opset: 20, attrs: { approximate: 'tanh' }, inputs: [[3, 4]], label: 'Gelu (tanh)' },
  { op: 'Clip', inputs: [{ shape: [3, 4], kind: 'float', lo: -2, hi: 2 }, { shape: [], kind: 'const', lo: -0.5, hi: -0.5 }, { shape: [], kind: 'const', lo: 0.5, hi: 0.5 }] },
  { op: 'Clip', inputs: [[3, 4], '', { shape: [], kind: 'const', lo: 0.3, hi: 0.3 }], label: 'Clip (max only)' },
  // Min/Max are piecewise linear: a small step keeps the difference quotient off the kinks
  // (no truncation error to trade against), where ε = 1e-2 crossed one in a few seeds.
  { op: 'Min', inputs: [[3, 4], [4]], check: { eps: 1e-3 } },
  { op: 'Max', inputs: [[3, 4], [3, 1], [4]], check: { eps: 1e-3 } },
  { op: 'Where', inputs: [{ bools: [true, false, true, false], dims: [4] }, [3, 4], [4]] },
  { op: 'Sum', inputs: [[3, 4], [4], [3, 1]] },
  { op: 'Mean', inputs: [[3, 4], [4]] },
];

describe('elementwise gradient rules', () => {
  it.each(cases.map((c) => [c.label ?? c.op, c] as const))('%s matches central differences', async (_label, c) => {
    const { model, feeds, wrt } = opModel(c);
    const result = await gradcheck(model, { wrt, feeds, ...c.check });
    expect(result.worst, result.worst).toBe('');
  });

  it('has a test row for every rule', () => {
    const tested = new Set(cases.map((c) => c.op));
    expect(Object.keys(rules).filter((op) => !tested.has(op))).toEqual([]);
  });
});
