/**
 * The Fisher-root refresh as one ONNX graph (SNGD.md §3), so it runs on the training graph's
 * execution provider. For L layers with damped Fisher matrices F_i (d_i × d_i, SPD, float32):
 *
 *   inputs   F/<i> [d_i, d_i]                    (+ P0/<i> [d_i, d_i] with warmStart)
 *   outputs  P/<i> [d_i, d_i], S/<i> [d_i, d_i], residual/<i> []  (+ trace/<i> [K+1] with trace)
 *
 * Layers of equal dimension are stacked into one [B, d, d] batch, so each iteration is one
 * batched MatMul per group, not one per layer.
 *
 * Scale. Both iterations want the spectrum of A = X/c inside (0, 1]. c is the Wolkowicz–Styan
 * bound from the first two spectral moments (μ = tr X / d, σ² = ‖X‖²_F / d − μ²):
 *
 *   λ_max ≤ c = μ + σ·√(d − 1) ≤ ‖X‖_F ≤ tr X          (Cauchy–Schwarz gives the middle step)
 *
 * It costs a trace and a Frobenius norm like the alternatives and is never larger, so the
 * smallest scaled eigenvalue λ_min/c (which sets the iteration count) is the largest of the
 * three. For a warm-start M ≈ I it gives c ≈ 1 + ‖M − I‖_F/√d·√(d−1) instead of ‖M‖_F ≈ √d,
 * which would throw the warm start away. 'frobenius' and 'trace' are kept for measurement.
 *
 * Coupled Newton–Schulz ('ns'; MatMul/Add/Mul only), Y₀ = A, Z₀ = I:
 *   T_k = ½(3I − Z_k Y_k),  Y_{k+1} = Y_k T_k,  Z_{k+1} = T_k Z_k       (3 MatMuls; the first: 1)
 *
 * Denman–Beavers, product form with Frobenius-norm scaling ('db'; com.microsoft Inverse):
 *   μ_k = (‖M_k⁻¹‖_F / ‖M_k‖_F)^{1/4}                                 (1 with scaled: false)
 *   W_k = ½(μ_k I + μ_k⁻¹ M_k⁻¹),  Z_{k+1} = Z_k W_k,  M_{k+1} = ½I + ¼μ_k² M_k + ¼μ_k⁻² M_k⁻¹
 * with M₀ = A, Z₀ = I (Higham, Functions of Matrices, (6.17)/(6.29)). Y_k = A·Z_k holds throughout,
 * so Y is not carried: one Inverse and one MatMul per iteration, S formed once at the end.
 *
 * Cold start (X = F):  P = Z/√c,  S = √c·Y (ns) or F·P (db); both symmetrized (½(B + Bᵀ), O(d²)).
 *
 * Warm start from the previous P0 (X = M = P0·F·P0ᵀ ≈ I when F moved little):
 *   P = M^{-1/2}·P0,   S = F·Pᵀ
 * Then PᵀP = P0ᵀ(P0 F P0ᵀ)⁻¹P0 = F⁻¹ and S·P = F·PᵀP = I, with P not symmetric in general.
 * That is the natural-gradient condition for the convention W̃ = W̃'·P (y = W̃'·P·x̃) used by the
 * weight side, folding and the refresh remap: ∂L/∂W̃' = (∂L/∂W̃)·Pᵀ, so a GD step on W̃' moves
 * W̃ by −η·(∂L/∂W̃)·PᵀP = −η·(∂L/∂W̃)·F⁻¹. (The activation side's x' = x̃·P is the column map
 * Pᵀ·x̃: with a non-symmetric P it must read x̃·Pᵀ instead; see runtime/roots.ts.) S is rebuilt
 * from P and F rather than carried as S0·M^{1/2}, so an error in S0 does not accumulate across
 * refreshes and S0 is not an input.
 *
 * residual_i = ‖S_i·P_i − I‖_F / √d_i from the returned S and P (one MatMul per group).
 */
import { GraphBuilder } from '../../models/builder.js';
import { SngdError } from '../../src/errors.js';
import type { Model } from '../../src/ir/graph.js';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor.js';

export type RootMethod = 'db' | 'ns';
export type RootScale = 'bound' | 'frobenius' | 'trace';

export interface RootGraphOptions {
  method: RootMethod;
  /** Unrolled iterations (≥ 1). */
  iterations: number;
  /** Extra inputs `P0/<i>`; iterate on P0·F·P0ᵀ instead of F. Defaults to false. */
  warmStart?: boolean;
  /** How A = X/c is scaled (see above). Defaults to 'bound'. */
  scale?: RootScale;
  /** 'db' only: Frobenius-norm scaling of each iteration. Defaults to true. */
  scaled?: boolean;
  /**
   * 'ns' only: the inputs were damped as F₀ + ε·tr(F₀)·I with ε ≥ dampingRel, so
   * λ_min(F) ≥ dampingRel/(1 + d·dampingRel)·tr(F). Enables the scaled NS steps. Defaults to none.
   */
  dampingRel?: number;
  /** 'ns' only: use the scaled steps where a lower bound is known. Defaults to true. */
  scaledNs?: boolean;
  /** Cap on the NS scaling α (< 3). Defaults to 2.95. */
  alphaMax?: number;
  /** Also output `trace/<i>` [iterations + 1]: ‖M_k − I‖_F/√d for k = 0..K (M_k = Z_k·Y_k). Defaults to false. */
  trace?: boolean;
}

/** Input and output names of a root graph, by layer. */
export const rootNames = {
  F: (i: number) => `F/${i}`,
  P0: (i: number) => `P0/${i}`,
  P: (i: number) => `P/${i}`,
  S: (i: number) => `S/${i}`,
  residual: (i: number) => `residual/${i}`,
  trace: (i: number) => `trace/${i}`,
};

/** Opset of the graph's com.microsoft domain (Inverse). */
const MS_DOMAIN = 'com.microsoft';

export function buildRootGraph(dims: number[], opts: RootGraphOptions): Model {
  if (dims.length === 0) throw new SngdError('buildRootGraph: no layers');
  for (const d of dims) if (!Number.isInteger(d) || d < 1) throw new SngdError(`buildRootGraph: layer dimension ${d} is not a positive integer`);
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1) throw new SngdError(`buildRootGraph: iterations must be a positive integer, got ${opts.iterations}`);
  if (opts.method !== 'ns' && opts.method !== 'db') throw new SngdError(`buildRootGraph: unknown method '${String(opts.method)}' (use 'ns' or 'db')`);

  const b = new GraphBuilder(`sngd_roots_${opts.method}`, 17);
  dims.forEach((d, i) => {
    b.input(rootNames.F(i), 'float32', [d, d]);
    if (opts.warmStart) b.input(rootNames.P0(i), 'float32', [d, d]);
  });
  const groups = new Map<number, number[]>();
  dims.forEach((d, i) => groups.set(d, [...(groups.get(d) ?? []), i]));
  for (const [d, layers] of groups) emitGroup(b, d, layers, opts);
  dims.forEach((d, i) => {
    b.output(rootNames.P(i), 'float32', [d, d]);
    b.output(rootNames.S(i), 'float32', [d, d]);
    b.output(rootNames.residual(i), 'float32', []);
    if (opts.trace) b.output(rootNames.trace(i), 'float32', [opts.iterations + 1]);
  });
  return b.build({ opsets: opts.method === 'db' ? { [MS_DOMAIN]: 1 } : {} });
}

/** One group of equal-dimension layers: stacked to [B, d, d] when B > 1, kept 2-D otherwise. */
function emitGroup(b: GraphBuilder, d: number, layers: number[], opts: RootGraphOptions): void {
  const batched = layers.length > 1;
  const tag = `d${d}`;
  const consts = new Map<number, string>();
  const k = (v: number): string => {
    let name = consts.get(v);
    if (!name) consts.set(v, (name = b.init(`${tag}/const`, float32Tensor([], [v]))));
    return name;
  };
  const op = (type: string, inputs: string[], attrs: Record<string, number | number[]> = {}) => b.op(type, inputs, attrs, { name: `${tag}/${type}` });
  const mul = (x: string, y: string) => op('Mul', [x, y]);
  const add = (x: string, y: string) => op('Add', [x, y]);
  const sub = (x: string, y: string) => op('Sub', [x, y]);
  const div = (x: string, y: string) => op('Div', [x, y]);
  const sqrt = (x: string) => op('Sqrt', [x]);
  const matmul = (x: string, y: string) => op('MatMul', [x, y]);
  const transpose = (x: string) => op('Transpose', [x], { perm: batched ? [0, 2, 1] : [1, 0] });
  const symmetrize = (x: string) => mul(add(x, transpose(x)), k(0.5));
  /** ‖x‖²_F per matrix, shaped [B, 1, 1] (or [1, 1]). */
  const sumSq = (x: string) => op('ReduceSumSquare', [x], { axes: [-2, -1], keepdims: 1 });
  const axes0 = b.init(`${tag}/axes0`, int64Tensor([1], [0]));
  const stack = (names: string[]) => (batched ? op('Concat', names.map((n) => op('Unsqueeze', [n, axes0])), { axis: 0 }) : names[0]!);
  const eyeData = new Float32Array(d * d);
  for (let i = 0; i < d; i++) eyeData[i * d + i] = 1;
  const eye = b.init(`${tag}/eye`, float32Tensor([d, d], eyeData));
  /** s·I for a per-matrix scalar s [B, 1, 1]. */
  const eyeTimes = (s: string) => mul(eye, s);
  /** ‖x − I‖_F/√d per matrix, shaped [B, 1, 1]. */
  const distToI = (x: string) => mul(sqrt(sumSq(sub(x, eye))), k(1 / Math.sqrt(d)));

  const F = stack(layers.map(rootNames.F));
  let X = F;
  let P0: string | undefined;
  if (opts.warmStart) {
    P0 = stack(layers.map(rootNames.P0));
    X = symmetrize(matmul(matmul(P0, F), transpose(P0)));
  }

  // Spectral moments of X: μ = tr X/d, Σ(λ−μ)² = ‖X‖²_F − dμ², and for NS Σ(λ−μ)⁴ = ‖(X − μI)²‖²_F
  // from X² (which the first NS step needs anyway).
  const tr = op('ReduceSum', [mul(X, eye), b.init(`${tag}/axes_last2`, int64Tensor([2], [-2, -1]))], { keepdims: 1 });
  const mu = mul(tr, k(1 / d));
  const spread2 = mul(sqrt(op('Relu', [sub(mul(sumSq(X), k(1 / d)), mul(mu, mu))])), k(Math.sqrt(d - 1))); // σ√(d−1)
  const X2 = opts.method === 'ns' ? matmul(X, X) : undefined;
  const spread4 = X2 ? sqrt(sqrt(sumSq(add(sub(X2, mul(X, mul(mu, k(2)))), eyeTimes(mul(mu, mu)))))) : undefined; // (Σ(λ−μ)⁴)^{1/4}
  const scale = opts.scale ?? 'bound';
  const c = scale === 'trace' ? tr
    : scale === 'frobenius' ? sqrt(sumSq(X))
    : spread4 ? add(mu, op('Min', [spread2, spread4]))
    : add(mu, spread2);
  const sqrtC = sqrt(c);
  const A = div(X, c);

  const traceRows: string[] = [];
  let Z: string;
  let Y: string | undefined;
  if (opts.method === 'ns') {
    const A2 = div(X2!, mul(c, c));
    // Lower end l of an interval [l, 1] holding the spectrum of M_k = Z_k·Y_k, when known.
    let l: string | undefined;
    if (opts.scaledNs !== false && (opts.warmStart || opts.dampingRel !== undefined)) {
      let low = div(sub(mu, op('Min', [spread2, spread4!])), c);
      if (opts.dampingRel !== undefined && !opts.warmStart) {
        const f = opts.dampingRel / (1 + d * opts.dampingRel);
        low = op('Max', [low, div(mul(tr, k(f)), c)]);
      }
      // Nothing known (bound ≤ 0): l = 1 gives α = 1, the plain step.
      l = op('Where', [op('Greater', [low, k(0)]), op('Min', [low, k(1)]), k(1)]);
    }
    /** T̃ = s1·I − s2·M for the next step; advances l. */
    const coefficients = (): [string, string] => {
      if (!l) return [k(1.5), k(0.5)];
      // α = 3/(1 + √l + l) balances g(αl) = g(α), g(x) = x(3 − x)²/4; capped below 3.
      const alpha = op('Min', [div(k(3), add(add(k(1), sqrt(l)), l)), k(opts.alphaMax ?? 2.95)]);
      const g = (x: string) => mul(mul(x, k(0.25)), op('Pow', [sub(k(3), x), k(2)]));
      l = op('Min', [g(mul(alpha, l)), g(alpha)]);
      const sa = sqrt(alpha);
      return [mul(sa, k(1.5)), mul(mul(alpha, sa), k(0.5))];
    };
    // k = 0: Z₀ = I, so T̃₀ = s1·I − s2·A, Y₁ = A·T̃₀ = s1·A − s2·A², Z₁ = T̃₀: no MatMul.
    if (opts.trace) traceRows.push(distToI(A));
    let [s1, s2] = coefficients();
    Y = sub(mul(A, s1), mul(A2, s2));
    Z = sub(eyeTimes(s1), mul(A, s2));
    for (let it = 1; it < opts.iterations; it++) {
      const M = matmul(Z, Y);
      if (opts.trace) traceRows.push(distToI(M));
      [s1, s2] = coefficients();
      const T = sub(eyeTimes(s1), mul(M, s2));
      Y = matmul(Y, T);
      Z = matmul(T, Z);
    }
    if (opts.trace) traceRows.push(distToI(matmul(Z, Y)));
  } else {
    let M = A;
    let Zc: string | undefined; // undefined = I
    for (let it = 0; it < opts.iterations; it++) {
      if (opts.trace) traceRows.push(distToI(M));
      const Minv = b.op('Inverse', [M], {}, { domain: MS_DOMAIN, name: `${tag}/Inverse` });
      let W: string;
      if (opts.scaled ?? true) {
        // μ = (‖M⁻¹‖_F/‖M‖_F)^{1/4} = (‖M⁻¹‖²/‖M‖²)^{1/8}; [B, 1, 1].
        const muK = op('Pow', [div(sumSq(Minv), sumSq(M)), k(0.125)]);
        const inv = op('Reciprocal', [muK]);
        W = mul(add(eyeTimes(muK), mul(Minv, inv)), k(0.5));
        M = add(eyeTimes(k(0.5)), mul(add(mul(M, mul(muK, muK)), mul(Minv, mul(inv, inv))), k(0.25)));
      } else {
        W = mul(add(eye, Minv), k(0.5));
        M = add(eyeTimes(k(0.5)), mul(add(M, Minv), k(0.25)));
      }
      Zc = Zc === undefined ? W : matmul(Zc, W);
    }
    if (opts.trace) traceRows.push(distToI(M));
    Z = Zc!;
  }

  // X^{-1/2} = Z/√c.
  const Xinvsqrt = div(Z, sqrtC);
  let P: string;
  let S: string;
  if (!opts.warmStart) {
    P = symmetrize(Xinvsqrt);
    S = symmetrize(Y ? mul(Y, sqrtC) : matmul(F, P));
  } else {
    P = matmul(Xinvsqrt, P0!);
    S = matmul(F, transpose(P));
  }
  const residual = op('Reshape', [distToI(matmul(S, P)), b.init(`${tag}/shape_b`, int64Tensor([1], [-1]))]); // [B]
  const traceMat = opts.trace
    ? op('Concat', traceRows.map((r) => op('Reshape', [r, b.init(`${tag}/shape_b1`, int64Tensor([2], [-1, 1]))])), { axis: 1 })
    : undefined;

  layers.forEach((layer, j) => {
    const idx = b.init(`${tag}/index`, int64Tensor([], [j]));
    const pick = (x: string, output: string) =>
      batched ? b.op('Gather', [x, idx], { axis: 0 }, { output }) : b.op('Identity', [x], {}, { output });
    pick(P, rootNames.P(layer));
    pick(S, rootNames.S(layer));
    b.op('Gather', [residual, idx], { axis: 0 }, { output: rootNames.residual(layer) });
    if (traceMat) b.op('Gather', [traceMat, idx], { axis: 0 }, { output: rootNames.trace(layer) });
  });
}
