/**
 * Shape and data-movement ops: attributes that became inputs, and renamed ops.
 *
 *   Reshape-1(x; shape)             → Reshape(x, shape)                      (at 5)
 *   Concat-1 without axis           → Concat(axis=1)                         (at 4)
 *   Slice-1(x; starts, ends, axes)  → Slice(x, starts, ends, axes)           (at 10)
 *   Pad-1 `paddings`                → Pad-2 `pads`                           (at 2)
 *   Pad-2(x; pads, value)           → Pad(x, pads, value)                    (at 11)
 *   Squeeze/Unsqueeze-11(x; axes)   → Squeeze/Unsqueeze(x, axes)             (at 13)
 *   Split-1(x, split)               → Split-2(x; split)  (constant split)    (at 2)
 *   Split-11(x; split)              → Split(x, split)                        (at 13)
 *   Split-13(x) (equal parts)       → Split(x; num_outputs)                  (at 18)
 *   Tile-1(x, tiles, axis)          → Tile(x, repeats)                       (at 6)
 *   TopK-1(x; k)                    → TopK(x, [k])                           (at 10)
 *   Upsample-1(x; height_scale, width_scale, 'bilinear') → Upsample-7(x; scales, 'linear') (at 7)
 *   Upsample-7(x; scales)           → Upsample-9(x, scales)                  (at 9)
 *   Upsample-9                      → Resize-10 (same inputs and semantics)  (at 10)
 *   Resize-10(x, scales)            → Resize(x, '', scales; asymmetric, nearest_mode floor|ceil) (at 11)
 *   Scatter-9                       → ScatterElements                        (at 11)
 */
import { attrFloat, attrInt, attrString, floatsAttr, getAttr, hasAttr, intAttr, intsAttr, removeAttr, setAttr, stringAttr } from '../../../src/ir/attrs.js';
import { tensorToNumbers } from '../../../src/onnx/tensor.js';
import { attrInt64s, int64s, intsAttrToInput, renameOp, same, setInput, step, trimInputs } from '../helpers.js';
import type { UpgradeStep, UpgradeTable } from '../types.js';

const reshape5: UpgradeStep = step(5, (n, ctx) => {
  removeAttr(n, 'consumed_inputs');
  const shape = attrInt64s(n, 'shape');
  removeAttr(n, 'shape');
  if (n.inputs[1]) return;
  if (!shape) return ctx.fail('Reshape has neither a shape attribute nor a shape input');
  setInput(n, 1, ctx.addInit('shape', int64s(shape)));
});

const concat4: UpgradeStep = step(4, (n) => {
  if (!hasAttr(n, 'axis')) setAttr(n, intAttr('axis', 1));
});

const slice10: UpgradeStep = step(10, (n, ctx) => {
  const starts = attrInt64s(n, 'starts');
  const ends = attrInt64s(n, 'ends');
  const axes = attrInt64s(n, 'axes');
  if (!starts || !ends) return ctx.fail('Slice-1 needs starts and ends attributes');
  for (const a of ['starts', 'ends', 'axes']) removeAttr(n, a);
  n.inputs = [n.inputs[0]!, ctx.addInit('starts', int64s(starts)), ctx.addInit('ends', int64s(ends))];
  if (axes) n.inputs.push(ctx.addInit('axes', int64s(axes)));
});

const pad2: UpgradeStep = step(2, (n) => {
  const paddings = getAttr(n, 'paddings');
  if (!paddings) return;
  removeAttr(n, 'paddings');
  setAttr(n, { ...paddings, name: 'pads' });
});

const pad11: UpgradeStep = step(11, (n, ctx) => {
  const pads = attrInt64s(n, 'pads');
  if (!pads) return ctx.fail('Pad needs a pads attribute');
  const value = attrFloat(n, 'value') ?? 0;
  removeAttr(n, 'pads');
  removeAttr(n, 'value');
  const x = n.inputs[0]!;
  n.inputs = [x, ctx.addInit('pads', int64s(pads))];
  if (attrString(n, 'mode', 'constant') === 'constant' && value !== 0) {
    // constant_value has X's type: a float32 scalar, cast like X unless X is known float32/64.
    const type = ctx.elemType(x);
    if (type === 11) n.inputs.push(ctx.addInit('value', { dtype: 'float64', dims: [], data: Float64Array.of(value) }));
    else {
      const f = ctx.addInit('value', { dtype: 'float32', dims: [], data: Float32Array.of(value) });
      n.inputs.push(type === 1 ? f : ctx.before('CastLike', [f, x])[0]!);
    }
  }
});

const axesToInput: UpgradeStep = step(13, (n, ctx) => intsAttrToInput(n, ctx, 'axes', 1));

const split2: UpgradeStep = step(2, (n, ctx) => {
  const input = n.inputs[1];
  if (!input) return;
  const c = ctx.constant(input);
  if (!c) return ctx.fail(`the split sizes come from '${input}', which is not a constant; Split-2 takes them as an attribute`);
  setAttr(n, intsAttr('split', tensorToNumbers(c)));
  n.inputs = [n.inputs[0]!];
});

const split13: UpgradeStep = step(13, (n, ctx) => intsAttrToInput(n, ctx, 'split', 1));

const split18: UpgradeStep = step(18, (n) => {
  if (!n.inputs[1] && !hasAttr(n, 'num_outputs')) setAttr(n, intAttr('num_outputs', n.outputs.length));
});

/** Tile-1 repeated along one axis: repeats = [1, ..., tiles (at axis), ..., 1]. */
const tile6: UpgradeStep = step(6, (n, ctx) => {
  if (n.inputs.length < 3) return; // already the (input, repeats) form
  const [x, tilesName, axisName] = n.inputs as [string, string, string];
  const tiles = ctx.constant(tilesName);
  const axis = ctx.constant(axisName);
  const r = ctx.rank(x);
  if (!tiles || !axis) return ctx.fail('Tile-1 tiles and axis must be constants to become a repeats input');
  if (r === undefined) return ctx.fail(`the rank of '${x}' is unknown; declare its shape in value_info`);
  const repeats = Array<number>(r).fill(1);
  const a = tensorToNumbers(axis)[0]!;
  repeats[a < 0 ? a + r : a] = tensorToNumbers(tiles)[0]!;
  n.inputs = [x, ctx.addInit('repeats', int64s(repeats))];
});

const topk10: UpgradeStep = step(10, (n, ctx) => {
  const k = attrInt(n, 'k');
  removeAttr(n, 'k');
  if (n.inputs[1]) return;
  if (k === undefined) return ctx.fail('TopK-1 has no k attribute');
  n.inputs = [n.inputs[0]!, ctx.addInit('k', int64s([k]))];
});

/** Upsample-1 (experimental): height_scale/width_scale on NCHW, mode 'bilinear'. */
const upsample7: UpgradeStep = step(7, (n) => {
  if (hasAttr(n, 'height_scale') || hasAttr(n, 'width_scale')) {
    const h = attrFloat(n, 'height_scale') ?? 1;
    const w = attrFloat(n, 'width_scale') ?? 1;
    removeAttr(n, 'height_scale');
    removeAttr(n, 'width_scale');
    setAttr(n, floatsAttr('scales', [1, 1, h, w]));
  }
  if (attrString(n, 'mode', 'nearest') === 'bilinear') setAttr(n, stringAttr('mode', 'linear'));
});

const upsample9: UpgradeStep = step(9, (n, ctx) => {
  const a = getAttr(n, 'scales');
  removeAttr(n, 'scales');
  if (n.inputs[1]) return;
  if (!a) return ctx.fail('Upsample has no scales');
  const scales = [...(a.floats ?? [])];
  n.inputs = [n.inputs[0]!, ctx.addInit('scales', { dtype: 'float32', dims: [scales.length], data: Float32Array.from(scales) })];
});

/**
 * Resize-10 (and Upsample) sample at x_in = x_out / scale (asymmetric); nearest picks
 * floor(x_in) when upsampling and ceil(x_in) when downsampling (onnxruntime's reading).
 */
const resize11: UpgradeStep = step(11, (n, ctx) => {
  const [x, scales] = n.inputs as [string, string];
  const mode = attrString(n, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') return ctx.fail(`mode '${mode}' is not nearest or linear`);
  n.inputs = [x, '', scales];
  setAttr(n, stringAttr('coordinate_transformation_mode', 'asymmetric'));
  if (mode === 'nearest') {
    const c = ctx.constant(scales);
    if (!c) return ctx.fail(`nearest resizing with non-constant scales '${scales}': its rounding (floor when upsampling, ceil when downsampling) depends on them`);
    const s = tensorToNumbers(c);
    if (s.every((v) => v >= 1)) setAttr(n, stringAttr('nearest_mode', 'floor'));
    else if (s.every((v) => v <= 1)) setAttr(n, stringAttr('nearest_mode', 'ceil'));
    else return ctx.fail(`nearest resizing that upsamples some axes and downsamples others (scales [${s.join(', ')}]) has no single rounding mode`);
  }
  trimInputs(n);
});

export const rules = {
  Reshape: [reshape5, same(14, 'allowzero added, default 0 = old behaviour')],
  Concat: [concat4, same(11, 'negative axis')],
  Slice: [slice10, same(11, 'negative starts/ends/axes')],
  Pad: [pad2, pad11, same(18, 'axes input added'), same(19, 'wrap mode added')],
  Squeeze: [same(11, 'negative axes'), axesToInput],
  Unsqueeze: [same(11, 'negative axes'), axesToInput],
  Split: [split2, same(11, 'negative axis'), split13, split18],
  Tile: [tile6],
  TopK: [topk10, same(11, 'largest/sorted added, defaults = old behaviour')],
  Upsample: [upsample7, upsample9, renameOp(10, 'Resize')],
  Resize: [resize11, same(13, 'roi/scales optional'), same(18, 'antialias, axes added'), same(19, 'half_pixel_symmetric added')],
  Scatter: [renameOp(11, 'ScatterElements')],
} satisfies UpgradeTable;
