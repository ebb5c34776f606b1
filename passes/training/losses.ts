/**
 * Loss heads, each with its gradient w.r.t. the model output in closed form (the backward pass
 * starts there instead of differentiating the loss's own ops). Mean over the batch (and over
 * every position for per-position outputs).
 *
 *   ce:   L = −mean log softmax(z)[label]         dL/dz = (softmax(z) − onehot(label)) / M
 *   mse:  L = mean (y − t)²                        dL/dy = 2(y − t) / M
 *   bce:  L = mean max(z,0) − z·t + log(1+e^−|z|)  dL/dz = (σ(z) − t) / M
 *
 * M counts the averaged terms: label positions for ce, output elements for mse and bce.
 */
import type { Emitter } from '../../src/ir/emit.js';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor.js';

export type LossKind = 'ce' | 'mse' | 'bce';
export const LOSS_KINDS: LossKind[] = ['ce', 'mse', 'bce'];

export interface LossHead {
  /** Scalar loss value. */
  loss: string;
  /** dL/d(prediction). */
  grad: string;
  /** Number of correct predictions (ce only). */
  correct?: string;
}

/**
 * Emits the loss on `prediction` (logits for ce and bce) against `labels`.
 * `classAxis` is the class axis of the logits for ce.
 */
export function emitLoss(b: Emitter, kind: LossKind, prediction: string, labels: string, classAxis: number): LossHead {
  const scalar = (v: number) => b.init('c', float32Tensor([], [v]));
  const count = (t: string) => b.op('Cast', [b.op('Size', [t])], { to: 1 });
  switch (kind) {
    case 'ce': {
      const logp = b.op('LogSoftmax', [prediction], { axis: classAxis });
      const idx = b.op('Unsqueeze', [labels, b.init('class_axis', int64Tensor([1], [classAxis]))]);
      const picked = b.op('GatherElements', [logp, idx], { axis: classAxis });
      const loss = b.op('Neg', [b.op('ReduceMean', [picked], { keepdims: 0 })], {}, { output: b.names.fresh('loss') });
      // onehot(label) along the class axis: scatter ones into zeros shaped like the logits.
      const zeros = b.op('ConstantOfShape', [b.op('Shape', [prediction])], { value: float32Tensor([1], [0]) });
      const ones = b.op('ConstantOfShape', [b.op('Shape', [idx])], { value: float32Tensor([1], [1]) });
      const onehot = b.op('ScatterElements', [zeros, idx, ones], { axis: classAxis });
      const grad = b.op('Div', [b.op('Sub', [b.op('Exp', [logp]), onehot]), count(labels)]);
      const predicted = b.op('ArgMax', [prediction], { axis: classAxis, keepdims: 0 });
      const correct = b.op('ReduceSum', [b.op('Cast', [b.op('Equal', [predicted, labels])], { to: 1 })], { keepdims: 0 });
      return { loss, grad, correct };
    }
    case 'mse': {
      const diff = b.op('Sub', [prediction, labels]);
      const loss = b.op('ReduceMean', [b.op('Mul', [diff, diff])], { keepdims: 0 }, { output: b.names.fresh('loss') });
      const grad = b.op('Div', [b.op('Mul', [diff, scalar(2)]), count(prediction)]);
      return { loss, grad };
    }
    case 'bce': {
      const z = prediction;
      const softplusNegAbs = b.op('Log', [b.op('Add', [scalar(1), b.op('Exp', [b.op('Neg', [b.op('Abs', [z])])])])]);
      const terms = b.op('Add', [b.op('Sub', [b.op('Relu', [z]), b.op('Mul', [z, labels])]), softplusNegAbs]);
      const loss = b.op('ReduceMean', [terms], { keepdims: 0 }, { output: b.names.fresh('loss') });
      const grad = b.op('Div', [b.op('Sub', [b.op('Sigmoid', [z]), labels]), count(z)]);
      return { loss, grad };
    }
  }
}
