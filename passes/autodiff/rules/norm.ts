/**
 * Normalization and dropout. X is [N, C, D…] for the channel norms; "Σ" and "mean" below run
 * over the statistics axes A (BatchNorm: N and spatial; InstanceNorm: spatial;
 * LayerNorm: axis…rank−1), with x̂ = (x − μ)·r, r = 1/√(σ² + ε), σ² the biased variance.
 *
 *   BatchNormalization, inference (running μ, σ² given as inputs, constants of the forward):
 *     y = γ·x̂ + β        dx = dy·γ·r              dγ = Σ_{N,D} dy·x̂      dβ = Σ_{N,D} dy
 *                          dμ = −r·γ·Σ dy            dσ² = −½·γ·r²·Σ dy·x̂
 *   BatchNormalization, training_mode=1 (μ, σ² are the batch statistics over N and D):
 *     y = γ·x̂ + β        dx = γ·r·(dy − mean(dy) − x̂·mean(dy·x̂))        dγ, dβ as above
 *     (the full derivative through μ and σ²; the running-mean/var outputs are state updates and
 *     carry no gradient, so the running inputs get 0)
 *   InstanceNormalization: as BatchNorm training, statistics over D per (n, c); dγ, dβ sum over N and D
 *   LayerNormalization:  y = x̂·γ + β over axes A = axis…  dx = r·(g − mean_A(g) − x̂·mean_A(g·x̂)), g = dy·γ
 *                        dγ = Σ_{leading axes} dy·x̂, dβ = Σ_{leading axes} dy
 *                        (μ and r come from the forward node's Mean and InvStdDev outputs)
 *   Dropout:  inference (no training_mode, or false): y = x, dx = dy
 *             training: y = x·m/(1 − p), dx = dy·m/(1 − p), m the forward's mask output
 */
import { attrFloat, attrInt, attrTensor } from '../../../src/ir/attrs.js';
import { tensorToNumbers } from '../../../src/onnx/tensor.js';
import { sumToShape } from '../broadcast.js';
import type { GradContext, GradRuleTable, GradThunks } from '../types.js';

function rankOf(ctx: GradContext, v: string): number {
  const s = ctx.shape(v);
  if (!s) ctx.fail(`the rank of '${v}' is unknown (shape inference could not tell)`);
  return s.length;
}

/** A thunk computed at most once, so that dγ and dx can share Σ dy·x̂. */
function once<T>(f: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: f() }).value;
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** ReduceMean keeping dims; its axes are an attribute until opset 18 and an input from 18. */
function reduceMean(ctx: GradContext, v: string, axes: number[]): string {
  return ctx.opset >= 18 ? ctx.b.op('ReduceMean', [v, ctx.ints(axes)], { keepdims: 1 }) : ctx.b.op('ReduceMean', [v], { axes, keepdims: 1 });
}

function reduceSum(ctx: GradContext, v: string, axes: number[], keepdims: 0 | 1): string {
  return ctx.b.op('ReduceSum', [v, ctx.ints(axes)], { keepdims });
}

/** A per-channel vector [C] as [C, 1, …, 1], to broadcast against [N, C, D…]. */
function perChannel(ctx: GradContext, v: string, rank: number): string {
  return rank <= 2 ? v : ctx.b.op('Reshape', [v, ctx.ints([-1, ...new Array<number>(rank - 2).fill(1)])]);
}

/** The values of a graph constant (initializer or Constant node), if `name` is one. */
function constValues(ctx: GradContext, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const g = ctx.b.graph;
  const init = g.initializers.get(name);
  if (init) return init.tensor.dtype === 'string' ? undefined : tensorToNumbers(init.tensor);
  const producer = g.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name);
  const t = producer && attrTensor(producer, 'value');
  if (t) return t.dtype === 'string' ? undefined : tensorToNumbers(t);
  const f = producer && attrFloat(producer, 'value_float');
  return f === undefined ? undefined : [f];
}

/**
 * dx = r·(g − mean_A(g) − x̂·mean_A(g·x̂)): the derivative of y = x̂ through the mean and the variance,
 * with g = dy·γ already scaled and r, x̂ broadcastable to x.
 */
function throughStats(ctx: GradContext, g: string, xhat: string, r: string, axes: number[]): string {
  const { b } = ctx;
  const centered = b.op('Sub', [g, reduceMean(ctx, g, axes)]);
  const projected = b.op('Mul', [xhat, reduceMean(ctx, b.op('Mul', [g, xhat]), axes)]);
  return b.op('Mul', [r, b.op('Sub', [centered, projected])]);
}

/** μ, r and x̂ of x over `axes` (keepdims), recomputed in the backward graph. */
function statistics(ctx: GradContext, x: string, axes: number[], epsilon: number): { r: string; xhat: string } {
  const { b } = ctx;
  const xc = b.op('Sub', [x, reduceMean(ctx, x, axes)]);
  const variance = reduceMean(ctx, b.op('Mul', [xc, xc]), axes);
  const r = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, ctx.scalar(epsilon)])])]);
  return { r, xhat: b.op('Mul', [xc, r]) };
}

/** BatchNorm (training mode) and InstanceNorm: statistics recomputed over `statAxes`. */
function batchStatsGrad(ctx: GradContext, statAxes: number[]): GradThunks {
  const { b } = ctx;
  const x = ctx.x[0]!;
  const rank = rankOf(ctx, x);
  const paramAxes = [0, ...range(2, rank)];
  const dy = ctx.dyOrZeros(0);
  const stats = once(() => statistics(ctx, x, statAxes, attrFloat(ctx.node, 'epsilon', 1e-5)));
  return {
    0: () => {
      const { r, xhat } = stats();
      return throughStats(ctx, b.op('Mul', [dy, perChannel(ctx, ctx.x[1]!, rank)]), xhat, r, statAxes);
    },
    1: () => reduceSum(ctx, b.op('Mul', [dy, stats().xhat]), paramAxes, 0),
    2: () => reduceSum(ctx, dy, paramAxes, 0),
  };
}

function zerosLike(ctx: GradContext, v: string): string {
  return ctx.b.op('ConstantOfShape', [ctx.b.op('Shape', [v])], { value: { dtype: 'float32', dims: [1], data: Float32Array.of(0) } });
}

export const rules = {
  BatchNormalization: (ctx) => {
    const { b, x } = ctx;
    const rank = rankOf(ctx, x[0]!);
    const training = ctx.opset >= 14 && attrInt(ctx.node, 'training_mode', 0) !== 0;
    if (training) {
      return {
        ...batchStatsGrad(ctx, [0, ...range(2, rank)]),
        3: () => zerosLike(ctx, x[3]!),
        4: () => zerosLike(ctx, x[4]!),
      };
    }
    // Inference: μ and σ² are the given running statistics.
    const axes = [0, ...range(2, rank)];
    const dy = ctx.dyOrZeros(0);
    const r = once(() => b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [x[4]!, ctx.scalar(attrFloat(ctx.node, 'epsilon', 1e-5))])])]));
    const xhat = once(() => b.op('Mul', [b.op('Sub', [x[0]!, perChannel(ctx, x[3]!, rank)]), perChannel(ctx, r(), rank)]));
    const sumDy = once(() => reduceSum(ctx, dy, axes, 0));
    const sumDyXhat = once(() => reduceSum(ctx, b.op('Mul', [dy, xhat()]), axes, 0));
    const scaleR = once(() => b.op('Mul', [x[1]!, r()]));
    return {
      0: () => b.op('Mul', [dy, perChannel(ctx, scaleR(), rank)]),
      1: sumDyXhat,
      2: sumDy,
      3: () => b.op('Neg', [b.op('Mul', [sumDy(), scaleR()])]),
      4: () => b.op('Mul', [b.op('Mul', [sumDyXhat(), b.op('Mul', [scaleR(), r()])]), ctx.scalar(-0.5)]),
    };
  },

  InstanceNormalization: (ctx) => batchStatsGrad(ctx, range(2, rankOf(ctx, ctx.x[0]!))),

  LayerNormalization: (ctx) => {
    const { b, x } = ctx;
    if (ctx.dy[1] || ctx.dy[2]) ctx.fail('a gradient through the Mean or InvStdDev outputs is not supported');
    const axis = attrInt(ctx.node, 'axis', -1);
    const shape = ctx.shape(x[0]!);
    // Negative axes need no rank: ReduceMean takes them as they are.
    let axes: number[];
    if (axis < 0) axes = range(axis, 0);
    else if (shape) axes = range(axis, shape.length);
    else return ctx.fail(`axis=${axis} with an input of unknown rank`);
    const dy = ctx.dy[0]!;
    const r = ctx.forwardOutput(2);
    const xhat = once(() => b.op('Mul', [b.op('Sub', [x[0]!, ctx.forwardOutput(1)]), r]));
    // γ and β have the normalized shape (or one broadcastable to it): sum dy over the rest.
    const toParam = (grad: string, param: string): string => sumToShape(b, grad, shape, ctx.shape(param), param);
    return {
      0: () => throughStats(ctx, b.op('Mul', [dy, x[1]!]), xhat(), r, axes),
      1: () => toParam(b.op('Mul', [dy, xhat()]), x[1]!),
      2: () => toParam(dy, x[2]!),
    };
  },

  Dropout: (ctx) => {
    const { b, x } = ctx;
    const dy = ctx.dy[0]!;
    // Before opset 12 Dropout has no training_mode: onnxruntime runs it as the identity.
    const trainingInput = ctx.opset >= 12 ? x[2] : undefined;
    if (!trainingInput) return { 0: () => dy };
    const training = constValues(ctx, trainingInput);
    if (training && training[0] === 0) return { 0: () => dy };
    return {
      0: () => {
        const ratio = x[1];
        const p = ratio ? constValues(ctx, ratio) : [0.5];
        const scale = p ? ctx.scalar(1 / (1 - p[0]!)) : b.op('Reciprocal', [b.op('Sub', [ctx.scalar(1), b.op('Cast', [ratio!], { to: 1 })])]);
        // When training_mode is only known at run time: onnxruntime's mask is all true in inference,
        // so dy·mask·1 = dy there.
        const factor = training ? scale : b.op('Where', [trainingInput, scale, ctx.scalar(1)]);
        const mask = b.op('Cast', [ctx.forwardOutput(1)], { to: 1 });
        return b.op('Mul', [dy, b.op('Mul', [mask, factor])]);
      },
    };
  },
} satisfies GradRuleTable;
