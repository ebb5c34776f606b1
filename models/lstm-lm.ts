/**
 * A character-level LSTM language model (SNGD.md §5 "Recurrent", "Embedding"):
 *
 *   tokens [N, T] int64 → Gather(embedding [V, E]) → [N, T, E] → Transpose → [T, N, E]
 *     → LSTM(hidden H, forward) → Y [T, 1, N, H] → Squeeze → [T, N, H]
 *     → MatMul(head.weight [H, V]) + Add(head.bias [V]) → [T, N, V] → Transpose → logits [N, V, T]
 *
 * Logits are laid out [N, V, T] (class axis 1, as PyTorch's cross-entropy takes them), so
 * `--loss ce` with labels [N, T] (the next character at every position) trains it and
 * exp(loss) is the per-character perplexity. The LSTM becomes four local Fisher layers' worth of
 * streams (input and recurrent, one direction: two records), the head one dense Fisher layer; the
 * embedding Gather is found but deferred (a per-row scale).
 *
 * Initialised as PyTorch does by default: embedding ~ N(0, 1); LSTM and Linear weights and biases
 * ~ U(−1/√H, 1/√H) (Linear: 1/√fan_in = 1/√H).
 */
import { SngdError } from '../src/errors.js';
import type { Dim, Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor, int64Tensor } from '../src/onnx/tensor.js';
import { GraphBuilder } from './builder.js';

export interface LstmLmOptions {
  /** Vocabulary size V (characters). */
  vocab: number;
  /** Embedding width E. Default 32. */
  embed?: number;
  /** LSTM hidden size H. Default 128. */
  hidden?: number;
  /** Sequence length: a number, or a symbolic name (default 'T', bound from the data when training). */
  seqLen?: number | string;
  seed?: number;
}

export function buildLstmLm(opts: LstmLmOptions): Model {
  const V = opts.vocab;
  const E = opts.embed ?? 32;
  const H = opts.hidden ?? 128;
  for (const [name, v] of [['vocab', V], ['embed', E], ['hidden', H]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new SngdError(`lstm-lm: ${name} must be a positive integer, got ${v}`);
  }
  const T: Dim = opts.seqLen ?? 'T';
  const rng = new Rng(opts.seed ?? 2017);
  const bound = 1 / Math.sqrt(H);
  const uniform = (dims: number[]) => float32Tensor(dims, rng.floats(dims.reduce((a, b) => a * b, 1), -bound, bound));
  const b = new GraphBuilder('lstm_lm');
  const tokens = b.input('tokens', 'int64', ['N', T]);
  const table = b.init('embedding.weight', float32Tensor([V, E], Float32Array.from({ length: V * E }, () => rng.normal())));
  const emb = b.op('Gather', [table, tokens], { axis: 0 }, { name: 'embedding' });
  const seqFirst = b.op('Transpose', [emb], { perm: [1, 0, 2] }, { name: 'to_seq_first' });
  const [y] = b.opN('LSTM', [seqFirst, b.init('lstm.W', uniform([1, 4 * H, E])), b.init('lstm.R', uniform([1, 4 * H, H])), b.init('lstm.B', uniform([1, 8 * H]))], 1, { hidden_size: H }, { name: 'lstm' });
  const h = b.op('Squeeze', [y!, b.init('dir_axis', int64Tensor([1], [1]))], {}, { name: 'drop_direction' });
  const proj = b.op('MatMul', [h, b.init('head.weight', uniform([H, V]))], {}, { name: 'head' });
  const biased = b.op('Add', [proj, b.init('head.bias', uniform([V]))], {}, { name: 'head_bias' });
  const logits = b.op('Transpose', [biased], { perm: [1, 2, 0] }, { name: 'to_class_axis', output: 'logits' });
  b.output(logits, 'float32', ['N', V, T]);
  return b.build();
}
