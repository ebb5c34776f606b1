/**
 * Experimental ops of opsets 1–9, removed at 10. Those with a plain formula are rewritten into
 * standard ops; the rest are refused.
 *
 *   ImageScaler(x; scale, bias[C]) = x·scale + bias[1,C,1,1]  → Add(Mul(x, scale), bias)
 *   Affine(x; alpha, beta)         = alpha·x + beta            → Add(Mul(x, alpha), beta)
 *   Scale(x; scale)                = scale·x                   → Mul(x, scale)
 *   ScaledTanh(x; alpha, beta)     = alpha·tanh(beta·x)        → Mul(Tanh(Mul(x, beta)), alpha)
 *   ParametricSoftplus(x; α, β)    = α·ln(1 + exp(β·x))        → Mul(Softplus(Mul(x, β)), α)
 *   DynamicSlice(x, starts, ends, axes)                        → Slice (same inputs)
 *   ThresholdedRelu: promoted to a standard op at 10, same semantics.
 */
import { attrFloat, attrFloats } from '../../../src/ir/attrs.js';
import type { Node } from '../../../src/ir/graph.js';
import { floatLike, refuse, removedAt, renameOp, same, step } from '../helpers.js';
import type { UpgradeContext, UpgradeStep, UpgradeTable } from '../types.js';

/** Turns the node into `opType(inputs)` with no attributes (keeping its outputs). */
function become(n: Node, opType: string, inputs: string[]): void {
  n.opType = opType;
  n.inputs = inputs;
  n.attrs = [];
}

const scalar = (ctx: UpgradeContext, x: string, role: string, v: number): string => floatLike(ctx, x, role, [v]);

const imageScaler: UpgradeStep = removedAt(step(10, (n, ctx) => {
  const x = n.inputs[0]!;
  const scale = attrFloat(n, 'scale') ?? 1;
  const bias = attrFloats(n, 'bias');
  const scaled = scale === 1 ? x : ctx.before('Mul', [x, scalar(ctx, x, 'scale', scale)])[0]!;
  if (!bias?.length) return become(n, 'Identity', [scaled]);
  const rank = ctx.rank(x) ?? 4; // ImageScaler is defined on NCHW
  const dims = [1, bias.length, ...Array<number>(Math.max(rank - 2, 0)).fill(1)];
  become(n, 'Add', [scaled, floatLike(ctx, x, 'bias', bias, dims)]);
}));

const affine: UpgradeStep = removedAt(step(10, (n, ctx) => {
  const x = n.inputs[0]!;
  const alpha = attrFloat(n, 'alpha') ?? 1;
  const beta = attrFloat(n, 'beta') ?? 0;
  const [scaled] = ctx.before('Mul', [x, scalar(ctx, x, 'alpha', alpha)]);
  become(n, 'Add', [scaled!, scalar(ctx, x, 'beta', beta)]);
}));

const scaleOp: UpgradeStep = removedAt(step(10, (n, ctx) => {
  const x = n.inputs[0]!;
  become(n, 'Mul', [x, scalar(ctx, x, 'scale', attrFloat(n, 'scale') ?? 1)]);
}));

/** alpha·f(beta·x) for f = Tanh (ScaledTanh) or Softplus (ParametricSoftplus). */
const scaledUnary = (f: string): UpgradeStep =>
  removedAt(step(10, (n, ctx) => {
    const x = n.inputs[0]!;
    const alpha = attrFloat(n, 'alpha') ?? 1;
    const beta = attrFloat(n, 'beta') ?? 1;
    const [inner] = ctx.before('Mul', [x, scalar(ctx, x, 'beta', beta)]);
    const [fx] = ctx.before(f, [inner!]);
    become(n, 'Mul', [fx!, scalar(ctx, x, 'alpha', alpha)]);
  }));

const removed = (op: string): UpgradeStep[] => [removedAt(refuse(10, `${op} was an experimental op, removed at opset 10, and has no rewrite here; replace it before upgrading`))];

export const rules = {
  ImageScaler: [imageScaler],
  Affine: [affine],
  Scale: [scaleOp],
  ScaledTanh: [scaledUnary('Tanh')],
  ParametricSoftplus: [scaledUnary('Softplus')],
  DynamicSlice: [renameOp(10, 'Slice')],
  ThresholdedRelu: [same(10, 'promoted from experimental, same semantics')],
  Crop: removed('Crop'),
  ATen: removed('ATen'),
  ConstantFill: removed('ConstantFill'),
  GivenTensorFill: removed('GivenTensorFill'),
  GRUUnit: removed('GRUUnit'),
} satisfies UpgradeTable;
