/**
 * The activation functions of ONNX's LSTM, GRU and RNN (their `activations` attribute), as
 * primitive ops that have gradient rules:
 *
 *   Sigmoid, Tanh, Relu, LeakyRelu(α), Elu(α), Softplus      the op itself
 *   Affine(α, β)           α·x + β
 *   ThresholdedRelu(α)     x > α ? x : 0                     Where(Greater(x, α), x, 0)
 *   ScaledTanh(α, β)       α·tanh(β·x)
 *   HardSigmoid(α, β)      max(0, min(1, α·x + β))           Clip(α·x + β, 0, 1)
 *   Softsign               x / (1 + |x|)
 *
 * Names are case-insensitive. `activation_alpha` / `activation_beta` are consumed in the order of
 * the activation list, each only by a function that takes that parameter; where a list runs out
 * the function keeps its default (LeakyRelu α = 0.01, ThresholdedRelu α = 1, HardSigmoid
 * α = 0.2, β = 0.5, Elu α = 1; Affine and ScaledTanh have none, so 0): onnxruntime's
 * rnn_helpers.cc ActivationFuncs reads them exactly so.
 */
import { float, type Emitter } from '../../src/ir/emit.js';
import { float32Tensor } from '../../src/onnx/tensor.js';

export interface Activation {
  /** Lower-case name. */
  name: string;
  alpha: number;
  beta: number;
}

/** Which parameters each function takes, and their defaults. */
const PARAMS: Record<string, { alpha: boolean; beta: boolean; defaults: [number, number] }> = {
  sigmoid: { alpha: false, beta: false, defaults: [0, 0] },
  tanh: { alpha: false, beta: false, defaults: [0, 0] },
  relu: { alpha: false, beta: false, defaults: [0, 0] },
  softsign: { alpha: false, beta: false, defaults: [0, 0] },
  softplus: { alpha: false, beta: false, defaults: [0, 0] },
  affine: { alpha: true, beta: true, defaults: [0, 0] },
  scaledtanh: { alpha: true, beta: true, defaults: [0, 0] },
  leakyrelu: { alpha: true, beta: false, defaults: [0.01, 0] },
  thresholdedrelu: { alpha: true, beta: false, defaults: [1, 0] },
  elu: { alpha: true, beta: false, defaults: [1, 0] },
  hardsigmoid: { alpha: true, beta: true, defaults: [0.2, 0.5] },
};

/**
 * Resolves the activation list of a node: `names` (or `defaults` when absent), with alphas and
 * betas consumed in order. Returns the list, or a reason it is unsupported.
 */
export function resolveActivations(names: string[], alphas: number[], betas: number[]): Activation[] | string {
  let ai = 0;
  let bi = 0;
  const out: Activation[] = [];
  for (const raw of names) {
    const name = raw.toLowerCase();
    const p = PARAMS[name];
    if (!p) return `activation '${raw}' is not one of ONNX's recurrent activations (${Object.keys(PARAMS).join(', ')})`;
    let [alpha, beta] = p.defaults;
    if (p.alpha && ai < alphas.length) alpha = alphas[ai++]!;
    if (p.beta && bi < betas.length) beta = betas[bi++]!;
    out.push({ name, alpha, beta });
  }
  return out;
}

/** Emits f(x) for one activation. */
export function emitActivation(b: Emitter, f: Activation, x: string, scalar: (v: number) => string): string {
  switch (f.name) {
    case 'sigmoid':
      return b.op('Sigmoid', [x]);
    case 'tanh':
      return b.op('Tanh', [x]);
    case 'relu':
      return b.op('Relu', [x]);
    case 'softplus':
      return b.op('Softplus', [x]);
    case 'leakyrelu':
      return b.op('LeakyRelu', [x], { alpha: float(f.alpha) });
    case 'elu':
      return b.op('Elu', [x], { alpha: float(f.alpha) });
    case 'affine':
      return b.op('Add', [b.op('Mul', [x, scalar(f.alpha)]), scalar(f.beta)]);
    case 'thresholdedrelu':
      return b.op('Where', [b.op('Greater', [x, scalar(f.alpha)]), x, scalar(0)]);
    case 'scaledtanh':
      return b.op('Mul', [b.op('Tanh', [b.op('Mul', [x, scalar(f.beta)])]), scalar(f.alpha)]);
    case 'hardsigmoid':
      return b.op('Clip', [b.op('Add', [b.op('Mul', [x, scalar(f.alpha)]), scalar(f.beta)]), scalar(0), scalar(1)]);
    case 'softsign':
      return b.op('Div', [x, b.op('Add', [b.op('Abs', [x]), scalar(1)])]);
    default:
      throw new Error(`unreachable: activation '${f.name}'`);
  }
}

/** A float32 scalar initializer, one per distinct value per emitter. */
export function scalarCache(b: Emitter): (v: number) => string {
  const made = new Map<number, string>();
  return (v) => {
    let name = made.get(v);
    if (!name) made.set(v, (name = b.init('c', float32Tensor([], [v]))));
    return name;
  };
}
