/**
 * Building blocks shared by the rule files: step makers (drop an attribute, move an attribute to
 * an input, legacy broadcasting, refuse) and constant makers that match another value's type.
 */
import { attrInt, getAttr, removeAttr } from '../../src/ir/attrs.js';
import type { Node } from '../../src/ir/graph.js';
import { DataType, elementCount, type Tensor } from '../../src/onnx/tensor.js';
import type { UpgradeContext, UpgradeStep } from './types.js';

export const step = (at: number, adapt: UpgradeStep['adapt']): UpgradeStep => ({ at, adapt });

/** A change at `at` that needs no rewrite (new optional attribute whose default is the old behaviour, new types, ...). */
export const same = (at: number, note: string): UpgradeStep => ({ at, note, adapt: () => {} });

/** A change at `at` this pass does not rewrite: the node is refused with `reason`. */
export const refuse = (at: number, reason: string): UpgradeStep => ({ at, adapt: (_n, ctx) => ctx.fail(reason) });

/** Removes an attribute that disappeared at `at`. */
export const dropAttr = (at: number, ...names: string[]): UpgradeStep => ({
  at,
  adapt: (n) => {
    for (const name of names) removeAttr(n, name);
  },
});

/** `consumed_inputs` (an in-place hint of opsets 1–5) disappeared at 6 (at 5 for Reshape). */
export const consumedInputs = (at = 6): UpgradeStep => dropAttr(at, 'consumed_inputs');

/** Marks a step as the op's deprecation or removal (see UpgradeStep.evenAfter). */
export const removedAt = (s: UpgradeStep): UpgradeStep => ({ ...s, evenAfter: true });

/** The op was replaced at `at` by one with the same inputs, outputs and attributes. */
export const renameOp = (at: number, opType: string): UpgradeStep => ({
  at,
  evenAfter: true,
  adapt: (n) => {
    n.opType = opType;
  },
});

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** An int attribute list read exactly as int64 (INT64_MAX sentinels in Slice ends survive). */
export function attrInt64s(n: Node, name: string): bigint[] | undefined {
  const a = getAttr(n, name);
  if (!a) return undefined;
  return (a.ints ?? []).map((v) => (typeof v === 'number' ? clampInt64(v) : BigInt(v.toString())));
}

function clampInt64(v: number): bigint {
  if (!Number.isFinite(v)) return v > 0 ? INT64_MAX : INT64_MIN;
  const b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

export function int64s(values: readonly (number | bigint)[], dims: number[] = [values.length]): Tensor {
  return { dtype: 'int64', dims, data: BigInt64Array.from(values, (v) => (typeof v === 'bigint' ? v : clampInt64(v))) };
}

/** Sets input `index`, padding skipped optional inputs with ''. */
export function setInput(n: Node, index: number, value: string): void {
  while (n.inputs.length < index) n.inputs.push('');
  n.inputs[index] = value;
}

/** Drops trailing omitted ('') inputs. */
export function trimInputs(n: Node): void {
  while (n.inputs.length > 0 && n.inputs[n.inputs.length - 1] === '') n.inputs.pop();
}

/** Moves an int-list attribute to an int64 input at `index` (nothing when the attribute is absent). */
export function intsAttrToInput(n: Node, ctx: UpgradeContext, attr: string, index: number): void {
  const values = attrInt64s(n, attr);
  removeAttr(n, attr);
  if (values === undefined) return;
  setInput(n, index, ctx.addInit(attr, int64s(values)));
}

/**
 * A float constant of `ref`'s element type. float32/float64 become an initializer directly;
 * otherwise (float16, bfloat16 or unknown) a float32 initializer goes through CastLike(·, ref).
 */
export function floatLike(ctx: UpgradeContext, ref: string, role: string, values: readonly number[], dims: number[] = []): string {
  if (elementCount(dims) !== values.length) throw new Error(`floatLike: ${values.length} values for dims [${dims}]`);
  const type = ctx.elemType(ref);
  if (type === DataType.DOUBLE) return ctx.addInit(role, { dtype: 'float64', dims, data: Float64Array.from(values) });
  const f32 = ctx.addInit(role, { dtype: 'float32', dims, data: Float32Array.from(values) });
  if (type === DataType.FLOAT) return f32;
  return ctx.before('CastLike', [f32, ref])[0]!;
}

/**
 * Appends `k` trailing 1-dimensions to `value` (so numpy broadcasting aligns it the way the old
 * axis-based broadcasting did): a reshaped copy for a constant, else an Unsqueeze node.
 */
export function appendOnes(ctx: UpgradeContext, value: string, k: number, role: string): string {
  if (k <= 0) return value;
  const c = ctx.constant(value);
  if (c) return ctx.addInit(role, { ...c, dims: [...c.dims, ...Array<number>(k).fill(1)] });
  const r = ctx.rank(value);
  if (r === undefined) return ctx.fail(`the rank of '${value}' is unknown, so it cannot be reshaped for numpy broadcasting; declare its shape in value_info`);
  const axes = ctx.addInit(`${role}_axes`, int64s(Array.from({ length: k }, (_, i) => r + i)));
  return ctx.before('Unsqueeze', [value, axes])[0]!;
}

/**
 * Opset 7 replaced the `broadcast`/`axis` attributes of binary ops with numpy broadcasting.
 * Old: with broadcast=1, B's shape matches a contiguous run of A's dims starting at `axis`
 * (a suffix when axis is absent). New: shapes align from the right, so B gets
 * rank(A) − axis − rank(B) trailing 1s.
 */
export const legacyBroadcast: UpgradeStep = step(7, (n, ctx) => {
  const broadcast = attrInt(n, 'broadcast', 0);
  const axis = attrInt(n, 'axis');
  removeAttr(n, 'broadcast');
  removeAttr(n, 'axis');
  if (!broadcast || axis === undefined) return;
  const [a, b] = n.inputs as [string, string];
  const rankB = ctx.rank(b);
  if (rankB === undefined) return ctx.fail(`broadcast=1 with axis=${axis} needs the rank of input B '${b}', which is unknown; declare its shape in value_info`);
  const rankA = ctx.rank(a);
  if (rankA === undefined) {
    if (axis >= 0 && rankB === 0) return;
    return ctx.fail(`broadcast=1 with axis=${axis} needs the rank of input A '${a}', which is unknown; declare its shape in value_info`);
  }
  const start = axis < 0 ? axis + rankA : axis;
  const k = rankA - start - rankB;
  if (start < 0 || k < 0) return ctx.fail(`broadcast axis=${axis} does not fit B of rank ${rankB} inside A of rank ${rankA}`);
  n.inputs[1] = appendOnes(ctx, b, k, 'B');
});
