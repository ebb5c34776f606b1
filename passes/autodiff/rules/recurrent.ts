/**
 * Recurrent ops (LSTM, GRU, RNN) have no gradient rule of their own: passes/recurrent/decompose.ts
 * (`decomposeRecurrent`) unrolls each into primitive ops before differentiation, and the rules of
 * those ops (MatMul, Add, Mul, Sub, Split, Concat, Where, Sigmoid, Tanh, Clip, …) give the
 * backward through time. With the per-step math of that file (gates a = x·Wᵀ + h·Rᵀ + b, then
 * h' = cell(a, h, c)), reverse mode yields the usual BPTT:
 *
 *   dh_{t−1} = Σ_gates (da ⊙ ∂a/∂h)·R   (+ the direct paths through z ⊙ h, f ⊙ c, Where)
 *   dW = Σ_t daᵀ·x_t     dR = Σ_t daᵀ·h_{t−1}     dB = Σ_t Σ_batch da     dx_t = da·W
 *
 * These entries only turn the driver's generic "no gradient rule" into an error that says what to do.
 */
import type { GradRule, GradRuleTable } from '../types.js';

const unrollFirst: GradRule = (ctx) =>
  ctx.fail('recurrent ops are differentiated after unrolling: run decomposeRecurrent (passes/recurrent/decompose.ts) on the model first (it needs a static sequence length)');

export const rules = {
  LSTM: unrollFirst,
  GRU: unrollFirst,
  RNN: unrollFirst,
} satisfies GradRuleTable;
