/**
 * Layers: Gemm, normalization, dropout, pooling, softmax, recurrent, signal.
 *
 *   Gemm-6 `broadcast` → gone at 7 (C broadcasts unidirectionally, which covers the old cases).
 *   BatchNormalization: `is_test` gone at 7 (refused when 0: training mode), `spatial` at 9
 *     (refused when 0: per-activation statistics), training outputs at 14 (dropped when unread).
 *   Dropout: `is_test` gone at 7 (inference is the identity), mask type T → bool at 10
 *     (CastLike back when read), `ratio` attribute → optional input at 12.
 *   Softmax/LogSoftmax/Hardmax < 13 coerce x to 2-D at `axis` (default 1); 13 works on one axis
 *     (default −1):  Softmax-11(x; axis=a) → Reshape(Softmax-13(Flatten(x, a); axis=1), Shape(x)),
 *     or just axis=a when a is the last axis.
 *   LpPool/GlobalLpPool `p` float → int at 2. RNN/GRU/LSTM `output_sequence` gone at 7.
 *   RoiAlign-16 default coordinate_transformation_mode became half_pixel (old: output_half_pixel).
 *   GroupNormalization-21 scale/bias are per channel (were per group). DFT-20 `axis` → input.
 */
import { attrFloat, attrInt, attrString, getAttr, hasAttr, intAttr, removeAttr, setAttr, stringAttr } from '../../../src/ir/attrs.js';
import { AttrType } from '../../../src/onnx/proto.js';
import type { Tensor, TensorData } from '../../../src/onnx/tensor.js';
import { consumedInputs, dropAttr, int64s, refuse, same, setInput, step } from '../helpers.js';
import type { UpgradeStep, UpgradeTable } from '../types.js';

const bnIsTest: UpgradeStep = step(7, (n, ctx) => {
  if (hasAttr(n, 'is_test') && attrInt(n, 'is_test', 0) === 0) {
    return ctx.fail('is_test=0 asks for training-mode statistics, which newer opsets do not express this way; re-export the model in inference (eval) mode');
  }
  removeAttr(n, 'is_test');
});

const bnSpatial: UpgradeStep = step(9, (n, ctx) => {
  if (attrInt(n, 'spatial', 1) === 0) return ctx.fail('spatial=0 (per-activation statistics) has no equivalent from opset 9 on; re-export with spatial=1');
  removeAttr(n, 'spatial');
});

/** BatchNormalization-14 has outputs (Y, running_mean, running_var) only in training mode. */
const bnOutputs: UpgradeStep = step(14, (n, ctx) => {
  for (const o of n.outputs.slice(1)) {
    if (o && ctx.isUsed(o)) return ctx.fail(`training output '${o}' is read, but inference-mode BatchNormalization has only output Y; re-export the model in inference (eval) mode`);
  }
  for (const o of n.outputs.slice(1)) if (o) ctx.graph.valueInfo.delete(o);
  n.outputs = n.outputs.slice(0, 1);
});

/** Dropout-10: mask is bool (was T); a reader of the old mask gets CastLike(mask, X). */
const dropoutMask: UpgradeStep = step(10, (n, ctx) => {
  const mask = n.outputs[1];
  if (!mask || !ctx.isUsed(mask)) return;
  const boolMask = ctx.fresh('mask');
  n.outputs[1] = boolMask;
  ctx.after('CastLike', [boolMask, n.inputs[0]!], [mask]);
});

/** Dropout-12: `ratio` attribute → optional input (training_mode, absent, keeps inference). */
const dropoutRatio: UpgradeStep = step(12, (n, ctx) => {
  const ratio = attrFloat(n, 'ratio');
  removeAttr(n, 'ratio');
  if (ratio === undefined) return;
  setInput(n, 1, ctx.addInit('ratio', { dtype: 'float32', dims: [], data: Float32Array.of(ratio) }));
});

/** Softmax-13 and friends: rewrite the opset < 13 "flatten to 2-D at axis" semantics. */
const softmax13: UpgradeStep = step(13, (n, ctx) => {
  const axis = attrInt(n, 'axis', 1);
  const x = n.inputs[0]!;
  const r = ctx.rank(x);
  if (r !== undefined && (axis < 0 ? axis + r : axis) === r - 1) {
    setAttr(n, intAttr('axis', r - 1));
    return;
  }
  const [shape] = ctx.before('Shape', [x]);
  const [flat] = ctx.before('Flatten', [x], [intAttr('axis', axis)]);
  const y = n.outputs[0]!;
  const y2d = ctx.fresh(`${n.opType}_2d`);
  n.inputs[0] = flat!;
  n.outputs[0] = y2d;
  setAttr(n, intAttr('axis', 1));
  ctx.after('Reshape', [y2d, shape!], [y]);
});

/** LpPool-2/GlobalLpPool-2: `p` is an int (was a float). */
const lpP: UpgradeStep = step(2, (n, ctx) => {
  const a = getAttr(n, 'p');
  if (!a || a.type !== AttrType.FLOAT) return;
  const p = a.f ?? 2;
  if (!Number.isInteger(p)) return ctx.fail(`p=${p} is not an integer; opset 2 and later take an integer p`);
  setAttr(n, intAttr('p', p));
});

const recurrent = [dropAttr(7, 'output_sequence'), same(14, 'layout added, default 0 = old layout')];

/** GroupNormalization-21: scale and bias have one value per channel (were one per group). */
const groupNorm21: UpgradeStep = step(21, (n, ctx) => {
  const groups = attrInt(n, 'num_groups');
  const channels = ctx.shape(n.inputs[0]!)?.[1];
  if (groups === undefined) return ctx.fail('num_groups is missing');
  if (typeof channels !== 'number') return ctx.fail('the channel count (dim 1 of X) is unknown; per-group scale/bias cannot be expanded per channel');
  if (channels === groups) return;
  for (const k of [1, 2]) {
    const t = ctx.constant(n.inputs[k] ?? '');
    if (!t) return ctx.fail(`input ${k} ('${n.inputs[k]}') is not a constant; per-group scale/bias cannot be expanded per channel`);
    n.inputs[k] = ctx.addInit(k === 1 ? 'scale' : 'bias', repeatEach(t, channels / groups));
  }
});

function repeatEach(t: Tensor, times: number): Tensor {
  const src = t.data as Exclude<TensorData, string[]>;
  const Ctor = src.constructor as new (n: number) => typeof src;
  const out = new Ctor(src.length * times);
  for (let i = 0; i < out.length; i++) out[i] = src[Math.floor(i / times)]!;
  return { dtype: t.dtype, dims: [out.length], data: out as TensorData };
}

/** DFT-20: `axis` attribute (default 1) → input 2 (whose own default became −2). */
const dft20: UpgradeStep = step(20, (n, ctx) => {
  const axis = attrInt(n, 'axis', 1);
  removeAttr(n, 'axis');
  setInput(n, 2, ctx.addInit('axis', int64s([axis], [])));
});

export const rules = {
  Gemm: [same(6, 'type constraints only'), dropAttr(7, 'broadcast'), same(11, 'C optional')],
  BatchNormalization: [consumedInputs(), bnIsTest, bnSpatial, bnOutputs, same(15, 'scale/bias and mean/var types split')],
  InstanceNormalization: [consumedInputs()],
  GroupNormalization: [groupNorm21],
  Dropout: [consumedInputs(), dropAttr(7, 'is_test'), dropoutMask, dropoutRatio],

  AveragePool: [
    same(7, 'count_include_pad added; its default 0 is the old behaviour'),
    same(10, 'ceil_mode added, default 0'),
    same(11, 'auto_pad/pads clarified'),
    same(19, 'dilations added'),
  ],
  MaxPool: [same(8, 'storage_order and Indices added'), same(10, 'ceil_mode, dilations added'), same(11, 'auto_pad/pads clarified'), same(12, 'int8/uint8')],
  LpPool: [lpP, same(11, 'auto_pad/pads clarified'), same(18, 'ceil_mode, dilations added')],
  GlobalLpPool: [lpP],

  Softmax: [same(11, 'negative axis'), softmax13],
  LogSoftmax: [same(11, 'negative axis'), softmax13],
  Hardmax: [same(11, 'negative axis'), softmax13],

  RNN: recurrent,
  GRU: [same(3, 'linear_before_reset added, default 0 = old behaviour'), ...recurrent],
  LSTM: recurrent,

  RoiAlign: [
    step(16, (n) => {
      if (!hasAttr(n, 'coordinate_transformation_mode')) setAttr(n, stringAttr('coordinate_transformation_mode', 'output_half_pixel'));
    }),
  ],
  MeanVarianceNormalization: [
    refuse(9, 'MeanVarianceNormalization-1 (experimental: across_channels/normalize_variance) has no exact opset-9 form; re-export at opset 9 or later'),
  ],
  DFT: [dft20],
  GridSample: [
    step(20, (n) => {
      const mode = attrString(n, 'mode', 'bilinear');
      setAttr(n, stringAttr('mode', mode === 'bilinear' ? 'linear' : mode === 'bicubic' ? 'cubic' : mode));
    }),
  ],
} satisfies UpgradeTable;
