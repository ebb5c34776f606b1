/**
 * The Fisher-root refresh as one ONNX graph (SNGD.md §3), so it runs on the training graph's
 * execution provider. For L layers with damped Fisher matrices F_i (d_i × d_i, SPD, float32):
 *
 *   inputs   F/<i> [d_i, d_i]                (+ P0/<i>, S0/<i> [d_i, d_i] with warmStart)
 *   outputs  P/<i> [d_i, d_i], S/<i> [d_i, d_i], residual/<i> [], iterations/<i> [] (int64)
 *            (+ trace/<i> [K+1] with trace)
 *
 * Layers of equal dimension are stacked into one [B, d, d] batch: each iteration is one batched
 * MatMul per group, not one per layer.
 *
 * Scale. Both iterations want the spectrum of A = X/c inside (0, 1], with λ_min/c as large as
 * possible (it sets the iteration count). With μ = tr X/d the mean eigenvalue:
 *
 *   λ_max ≤ μ + σ√(d − 1)  (Wolkowicz–Styan, σ² = ‖X‖²_F/d − μ²)  ≤ ‖X‖_F ≤ tr X
 *   λ_max ≤ μ + (Σ(λ − μ)⁴)^{1/4} = μ + ‖(X − μI)²‖_F^{1/2}
 *
 * 'bound' takes the smaller of the two (the second only for 'ns', from X², which its first step
 * needs anyway; the first costs a trace and a Frobenius norm). Both are never above ‖X‖_F, and
 * for a warm-start M ≈ I they give c ≈ 1 + (spread of M) instead of ‖M‖_F ≈ √d, which would
 * throw the warm start away. The same moments give a lower bound μ − min(·) on λ_min.
 * 'frobenius' and 'trace' are kept for measurement (bench/roots.ts).
 *
 * Coupled Newton–Schulz ('ns'; MatMul/Add/Mul only), Y₀ = A, Z₀ = I, M_k = Z_k·Y_k:
 *   T_k = ½(3I − M_k),  Y_{k+1} = Y_k T_k,  Z_{k+1} = T_k Z_k            (3 MatMuls; the first: 0)
 * Scaled steps (Chen & Chow 2014) when a lower bound l ≤ λ_min(M_k) is known (from dampingRel,
 * or from the moments as for a warm start): with g(x) = x(3 − x)²/4 the map of the eigenvalues
 * of M, α_k = 3/(1 + √l_k + l_k) balances g(α l_k) = g(α), so
 *   T_k = √α_k·½(3I − α_k M_k),  l_{k+1} = g(α_k l_k)
 * which multiplies small eigenvalues by ≈ 6.7 per step instead of 2.25 (cold, cond 1e4: 14 → 7
 * steps). α is capped at alphaMax < 3: near 3, 3 − αM cancels for the top eigenvalues.
 *
 * Denman–Beavers, product form with Frobenius-norm scaling ('db'; com.microsoft Inverse):
 *   μ_k = (‖M_k⁻¹‖_F / ‖M_k‖_F)^{1/4}                                 (1 with scaled: false)
 *   W_k = ½(μ_k I + μ_k⁻¹ M_k⁻¹),  Y_{k+1} = Y_k W_k,  Z_{k+1} = Z_k W_k,
 *   M_{k+1} = ½I + ¼μ_k² M_k + ¼μ_k⁻² M_k⁻¹
 * with M₀ = Y₀ = A, Z₀ = I (Higham, Functions of Matrices, (6.17)/(6.29)): one Inverse and two
 * MatMuls per step (the first: one). Y_k = A·Z_k holds in exact arithmetic, but carrying Y keeps
 * S·P = Y·Z accurate to ~ε, where S = F·P would be off by ~ε·cond(F).
 *
 * stopAt: the iteration runs in a Loop (at most `iterations` steps) that stops once every layer
 * of the group has ‖M_k − I‖_F/√d ≤ stopAt (M_k is computed by the step anyway: free for both).
 *
 * Cold start (X = F):  P = Z/√c,  S = √c·Y; both symmetrized (½(B + Bᵀ), O(d²)).
 *
 * Warm start from the previous roots P0, S0 = P0⁻¹ (X = M = P0·F·P0ᵀ ≈ I when F moved little):
 *   P = M^{-1/2}·P0,   S = S0·M^{1/2}          (M^{∓1/2} = Z/√c, √c·Y as above)
 * Then PᵀP = P0ᵀ(P0 F P0ᵀ)⁻¹P0 = F⁻¹, S·P = S0·P0 = I and S·Sᵀ = S0·M·S0ᵀ = F, with P and S not
 * symmetric in general. PᵀP = F⁻¹ is the natural-gradient condition for the convention
 * W̃ = W̃'·P (y = W̃'·P·x̃) of the weight side, folding and the refresh remap: ∂L/∂W̃' =
 * (∂L/∂W̃)·Pᵀ, so a GD step on W̃' moves W̃ by −η·(∂L/∂W̃)·PᵀP = −η·(∂L/∂W̃)·F⁻¹. (The activation
 * side's x' = x̃·P is the column map Pᵀ·x̃: with a non-symmetric P it must read x̃·Pᵀ instead;
 * see runtime/roots.ts.) S = F·Pᵀ (warmStart 'P', no S0 needed) also inverts P, but forming it
 * in float32 costs ~ε·cond(F) in S·P (7.6e-4 measured at cond 1e4); S0·M^{1/2} costs ~ε·√cond(F)
 * per refresh, plus whatever S0·P0 − I it inherits (the residual shows it; a cold refresh resets it).
 *
 * Polish: S ← (2I − S·P)·S (a Newton step for P⁻¹: the residual squares; two MatMuls), so S·P = I
 * to float32 rounding whatever the stop test allowed: the refresh remap's function preservation.
 *
 * residual_i = ‖S_i·P_i − I‖_F / √d_i from the returned S and P (one MatMul per group).
 */
import { GraphBuilder } from '../../models/builder.js';
import { SngdError } from '../../src/errors.js';
import type { Model } from '../../src/ir/graph.js';
import { graphToProto } from '../../src/onnx/export.js';
import { AttrType } from '../../src/onnx/proto.js';
import { float32Tensor, int64Tensor } from '../../src/onnx/tensor.js';

export type RootMethod = 'db' | 'ns';
export type RootScale = 'bound' | 'frobenius' | 'trace';

export interface RootGraphOptions {
  method: RootMethod;
  /** Steps (≥ 1): unrolled, or the most a `stopAt` Loop runs; 'track': the NS steps of a correction (1 or 2). */
  iterations: number;
  /**
   * Extra inputs `P0/<i>`, `S0/<i>` (the previous roots); iterate on P0·F·P0ᵀ instead of F.
   * 'P' takes P0 alone and forms S = F·Pᵀ (less accurate: see above). Defaults to false.
   */
  warmStart?: boolean | 'P' | 'track';
  /**
   * 'track' only: a layer whose whitening error ρ(P0·F·P0ᵀ − I) (power-iteration estimate) is at
   * most `gate` is kept: its outputs are P = P0, Z = Y = I. Defaults to 0 (every layer is corrected).
   */
  gate?: number;
  /**
   * 'track' only: take each layer's gate as an input `gate/<i>` (a scalar, from buildGateGraph)
   * instead of estimating it in the graph. Defaults to false.
   */
  gateInput?: boolean;
  /** Cold and warm starts: stop early once ‖M_k − I‖_F/√d ≤ stopAt in every layer of a group (runs the steps in a Loop). Defaults to none (unrolled). */
  stopAt?: number;
  /** How A = X/c is scaled (see above). Defaults to 'bound'. */
  scale?: RootScale;
  /** 'db' only: Frobenius-norm scaling of each step. Defaults to true. */
  scaled?: boolean;
  /**
   * 'ns', cold start: the inputs were damped as F₀ + ε·tr(F₀)·I with ε ≥ dampingRel, so
   * λ_min(F) ≥ dampingRel/(1 + d·dampingRel)·tr(F): a lower bound for the scaled steps.
   * Defaults to none.
   */
  dampingRel?: number;
  /** 'ns' only: take scaled steps where a lower bound is known. Defaults to true. */
  scaledNs?: boolean;
  /** Cap on the NS scaling α (< 3). Defaults to 2.95. */
  alphaMax?: number;
  /** Also output `trace/<i>` [iterations + 1]: ‖M_k − I‖_F/√d for k = 0..K. Unrolled graphs only. Defaults to false. */
  trace?: boolean;
}

/** Input and output names of a root graph, by layer. */
export const rootNames = {
  F: (i: number) => `F/${i}`,
  P0: (i: number) => `P0/${i}`,
  S0: (i: number) => `S0/${i}`,
  P: (i: number) => `P/${i}`,
  S: (i: number) => `S/${i}`,
  residual: (i: number) => `residual/${i}`,
  iterations: (i: number) => `iterations/${i}`,
  trace: (i: number) => `trace/${i}`,
  /** 'track': the correction Z ≈ M^{-1/2} (P = Z·P0), and Y ≈ Z⁻¹ (= M^{1/2}) for the remap's solve. */
  Z: (i: number) => `Z/${i}`,
  Y: (i: number) => `Y/${i}`,
  /** 'track': the whitening error ρ(M − I) of the previous roots, M = P0·F·P0ᵀ (estimate). */
  gate: (i: number) => `gate/${i}`,
};

const MS_DOMAIN = 'com.microsoft';

export function buildRootGraph(dims: number[], opts: RootGraphOptions): Model {
  if (dims.length === 0) throw new SngdError('buildRootGraph: no layers');
  for (const d of dims) if (!Number.isInteger(d) || d < 1) throw new SngdError(`buildRootGraph: layer dimension ${d} is not a positive integer`);
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1) throw new SngdError(`buildRootGraph: iterations must be a positive integer, got ${opts.iterations}`);
  if (opts.method !== 'ns' && opts.method !== 'db') throw new SngdError(`buildRootGraph: unknown method '${String(opts.method)}' (use 'ns' or 'db')`);
  if (opts.trace && opts.stopAt !== undefined) throw new SngdError('buildRootGraph: trace needs an unrolled graph (no stopAt)');
  if (opts.stopAt !== undefined && !(opts.stopAt > 0)) throw new SngdError(`buildRootGraph: stopAt must be positive, got ${opts.stopAt}`);
  if (opts.alphaMax !== undefined && !(opts.alphaMax >= 1 && opts.alphaMax < 3)) throw new SngdError(`buildRootGraph: alphaMax must be in [1, 3), got ${opts.alphaMax}`);

  const b = new GraphBuilder(`sngd_roots_${opts.method}`, 17);
  dims.forEach((d, i) => {
    b.input(rootNames.F(i), 'float32', [d, d]);
    if (opts.warmStart) b.input(rootNames.P0(i), 'float32', [d, d]);
    if (opts.warmStart === true) b.input(rootNames.S0(i), 'float32', [d, d]);
  });
  if (opts.gateInput && opts.warmStart !== 'track') throw new SngdError("buildRootGraph: gateInput needs the 'track' start");
  if (opts.gateInput) dims.forEach((_, i) => b.input(rootNames.gate(i), 'float32', []));
  if (opts.warmStart === 'track') {
    if (opts.method !== 'ns') throw new SngdError("buildRootGraph: the 'track' start uses Newton–Schulz steps (method 'ns')");
    if (opts.trace) throw new SngdError("buildRootGraph: the 'track' start has no trace output");
  }
  const groups = new Map<number, number[]>();
  dims.forEach((d, i) => groups.set(d, [...(groups.get(d) ?? []), i]));
  for (const [d, layers] of groups) (opts.warmStart === 'track' ? emitTrackGroup : emitGroup)(b, d, layers, opts);
  dims.forEach((d, i) => {
    b.output(rootNames.P(i), 'float32', [d, d]);
    if (opts.warmStart === 'track') {
      b.output(rootNames.Z(i), 'float32', [d, d]);
      b.output(rootNames.Y(i), 'float32', [d, d]);
      if (!opts.gateInput) b.output(rootNames.gate(i), 'float32', []);
    } else {
      b.output(rootNames.S(i), 'float32', [d, d]);
    }
    b.output(rootNames.residual(i), 'float32', []);
    b.output(rootNames.iterations(i), 'int64', []);
    if (opts.trace) b.output(rootNames.trace(i), 'float32', [opts.iterations + 1]);
  });
  return b.build({ opsets: opts.method === 'db' ? { [MS_DOMAIN]: 1 } : {} });
}

/** Main-graph values shared by a group's ops (a Loop body reads them from the outer scope). */
interface Outer {
  /** A float32 scalar constant (one initializer per value). */
  k: (v: number) => string;
  eye: string;
  invSqrtD: string;
  /** int64 scalar 1. */
  one64: string;
}

/**
 * Op helpers bound to a builder (the main graph or a Loop body) under a name prefix. Constants
 * and the identity live in the main graph; a Loop body reads them from the outer scope.
 */
class Ops {
  constructor(
    readonly b: GraphBuilder,
    readonly prefix: string,
    readonly batched: boolean,
    readonly outer: Outer,
  ) {}

  k(v: number): string {
    return this.outer.k(v);
  }
  get eye(): string {
    return this.outer.eye;
  }
  op(type: string, inputs: string[], attrs: Record<string, number | number[]> = {}, domain?: string): string {
    return this.b.op(type, inputs, attrs, { name: `${this.prefix}/${type}`, domain });
  }
  mul(x: string, y: string): string { return this.op('Mul', [x, y]); }
  add(x: string, y: string): string { return this.op('Add', [x, y]); }
  sub(x: string, y: string): string { return this.op('Sub', [x, y]); }
  div(x: string, y: string): string { return this.op('Div', [x, y]); }
  sqrt(x: string): string { return this.op('Sqrt', [x]); }
  matmul(x: string, y: string): string { return this.op('MatMul', [x, y]); }
  transpose(x: string): string { return this.op('Transpose', [x], { perm: this.batched ? [0, 2, 1] : [1, 0] }); }
  symmetrize(x: string): string { return this.mul(this.add(x, this.transpose(x)), this.k(0.5)); }
  /** ‖x‖²_F per matrix, shaped [B, 1, 1] (or [1, 1]). */
  sumSq(x: string): string { return this.op('ReduceSumSquare', [x], { axes: [-2, -1], keepdims: 1 }); }
  /** s·I for a per-matrix scalar s. */
  eyeTimes(s: string): string { return this.mul(this.eye, s); }
  /** ‖x − I‖_F/√d per matrix, shaped [B, 1, 1]. */
  distToI(x: string): string { return this.mul(this.sqrt(this.sumSq(this.sub(x, this.eye))), this.outer.invSqrtD); }
}

/** State of an iteration between steps (all [B, d, d] or [B, 1, 1]). */
interface NsState { Y: string; Z: string; l?: string }
interface DbState { M: string; Y: string; Z: string }

/**
 * One NS step from M = Z·Y: T = s1·I − s2·M, Y' = Y·T, Z' = T·Z. With a lower bound l, the
 * scaled step (α = min(3/(1 + √l + l), alphaMax), s1 = 1.5√α, s2 = ½α^{3/2}, l' = g(α l));
 * otherwise s1 = 1.5, s2 = 0.5.
 */
function nsCoefficients(o: Ops, l: string | undefined, alphaMax: number): { s1: string; s2: string; l?: string } {
  if (!l) return { s1: o.k(1.5), s2: o.k(0.5) };
  const alpha = o.op('Min', [o.div(o.k(3), o.add(o.add(o.k(1), o.sqrt(l)), l)), o.k(alphaMax)]);
  const g = (x: string) => o.mul(o.mul(x, o.k(0.25)), o.op('Pow', [o.sub(o.k(3), x), o.k(2)]));
  const sa = o.sqrt(alpha);
  return { s1: o.mul(sa, o.k(1.5)), s2: o.mul(o.mul(alpha, sa), o.k(0.5)), l: o.op('Min', [g(o.mul(alpha, l)), g(alpha)]) };
}

function nsStep(o: Ops, s: NsState, M: string, alphaMax: number): NsState {
  const { s1, s2, l } = nsCoefficients(o, s.l, alphaMax);
  const T = o.sub(o.eyeTimes(s1), o.mul(M, s2));
  return { Y: o.matmul(s.Y, T), Z: o.matmul(T, s.Z), l };
}

/** One product-form DB step: Y' = Y·W, Z' = Z·W (Z undefined = I), M' from M and M⁻¹ alone. */
function dbStep(o: Ops, M: string, Y: string, Z: string | undefined, scaled: boolean): DbState {
  const Minv = o.op('Inverse', [M], {}, MS_DOMAIN);
  let W: string;
  let next: string;
  if (scaled) {
    // μ = (‖M⁻¹‖_F/‖M‖_F)^{1/4} = (‖M⁻¹‖²/‖M‖²)^{1/8}; [B, 1, 1].
    const mu = o.op('Pow', [o.div(o.sumSq(Minv), o.sumSq(M)), o.k(0.125)]);
    const inv = o.op('Reciprocal', [mu]);
    W = o.mul(o.add(o.eyeTimes(mu), o.mul(Minv, inv)), o.k(0.5));
    next = o.add(o.eyeTimes(o.k(0.5)), o.mul(o.add(o.mul(M, o.mul(mu, mu)), o.mul(Minv, o.mul(inv, inv))), o.k(0.25)));
  } else {
    W = o.mul(o.add(o.eye, Minv), o.k(0.5));
    next = o.add(o.eyeTimes(o.k(0.5)), o.mul(o.add(M, Minv), o.k(0.25)));
  }
  return { M: next, Y: o.matmul(Y, W), Z: Z === undefined ? W : o.matmul(Z, W) };
}

/**
 * x where finite, else 0: a layer that has broken down (NaN/Inf) must not stop or prolong the
 * Loop for the other layers of its group (x ≤ 1e30 is false for NaN and +Inf; a distance is ≥ 0).
 */
function finiteOrZero(o: Ops, x: string): string {
  return o.op('Where', [o.op('LessOrEqual', [x, o.k(1e30)]), x, o.k(0)]);
}

/**
 * Runs `body` on the carried tensors inside a Loop of at most `maxTrips` trips that goes on while
 * the largest finite `measure` (‖M − I‖_F/√d of the state the body produced) of the group exceeds
 * stopAt; `measureInitial` decides whether it starts at all. Returns the final state and the trip
 * count (int64 scalar).
 */
function emitLoop(
  o: Ops,
  state: Record<string, string>,
  shapes: Record<string, (number | string)[]>,
  measureInitial: string,
  body: (bo: Ops, s: Record<string, string>) => { next: Record<string, string>; measure: string },
  maxTrips: number,
  stopAt: number,
): { state: Record<string, string>; trips: string } {
  const keys = Object.keys(state);
  const prefix = `${o.prefix}/loop`;
  const bb = new GraphBuilder(`${prefix}/body`, 17);
  const bo = new Ops(bb, prefix, o.batched, o.outer);
  bb.input(`${prefix}/iter`, 'int64', []);
  bb.input(`${prefix}/cond_in`, 'bool', []);
  const count = bb.input(`${prefix}/count_in`, 'int64', []);
  const inner: Record<string, string> = {};
  for (const key of keys) inner[key] = bb.input(`${prefix}/${key}_in`, 'float32', shapes[key]!);
  const { next, measure } = body(bo, inner);
  const cond = bo.op('Greater', [bo.op('ReduceMax', [finiteOrZero(bo, measure)], { keepdims: 0 }), o.k(stopAt)]);
  const countOut = bo.op('Add', [count, o.outer.one64]);
  bb.output(bb.op('Identity', [cond], {}, { name: `${prefix}/cond_out` }), 'bool', []);
  bb.output(bb.op('Identity', [countOut], {}, { name: `${prefix}/count_out` }), 'int64', []);
  for (const key of keys) bb.output(bb.op('Identity', [next[key]!], {}, { name: `${prefix}/${key}_out` }), 'float32', shapes[key]!);

  const initialCond = o.op('Greater', [o.op('ReduceMax', [finiteOrZero(o, measureInitial)], { keepdims: 0 }), o.k(stopAt)]);
  const maxTripCount = o.b.init(`${o.prefix}/max_trips`, int64Tensor([], [maxTrips]));
  const zero = o.b.init(`${o.prefix}/count0`, int64Tensor([], [0]));
  const outs = o.b.opN('Loop', [maxTripCount, initialCond, zero, ...keys.map((key) => state[key]!)], 1 + keys.length,
    { body: { name: 'body', type: AttrType.GRAPH, g: graphToProto(bb.graph) } }, { name: `${o.prefix}/Loop` });
  const final: Record<string, string> = {};
  keys.forEach((key, i) => (final[key] = outs[i + 1]!));
  return { state: final, trips: outs[0]! };
}

/** What every group's ops share: constants, the identity, stacking of per-layer inputs. */
interface Group {
  o: Ops;
  b: GraphBuilder;
  tag: string;
  batched: boolean;
  k: (v: number) => string;
  /** Per-layer inputs stacked to [B, d, d] (batched) or the single input. */
  stack: (names: string[]) => string;
  matShape: number[];
  scalarShape: number[];
  /** Writes a group-level [B, d, d] / [B] / scalar value out as each layer's named output. */
  pick: (x: string, kind: 'matrix' | 'vector' | 'shared', output: (layer: number) => string) => void;
}

/** Layers of equal dimension d: stacked to [B, d, d] when B > 1, kept 2-D otherwise. */
function groupSetup(b: GraphBuilder, d: number, layers: number[]): Group {
  const batched = layers.length > 1;
  const tag = `d${d}`;
  const consts = new Map<number, string>();
  const k = (v: number): string => {
    let name = consts.get(v);
    if (!name) consts.set(v, (name = b.init(`${tag}/const`, float32Tensor([], [v]))));
    return name;
  };
  const eyeData = new Float32Array(d * d);
  for (let i = 0; i < d; i++) eyeData[i * d + i] = 1;
  let one64: string | undefined;
  const outer: Outer = {
    k,
    eye: b.init(`${tag}/eye`, float32Tensor([d, d], eyeData)),
    invSqrtD: k(1 / Math.sqrt(d)),
    get one64() {
      return (one64 ??= b.init(`${tag}/one64`, int64Tensor([], [1])));
    },
  };
  const o = new Ops(b, tag, batched, outer);
  const axes0 = batched ? b.init(`${tag}/axes0`, int64Tensor([1], [0])) : '';
  const stack = (names: string[]) => (batched ? o.op('Concat', names.map((n) => o.op('Unsqueeze', [n, axes0])), { axis: 0 }) : names[0]!);
  const pick: Group['pick'] = (x, kind, output) => {
    layers.forEach((layer, j) => {
      const idx = b.init(`${tag}/index`, int64Tensor([], [j]));
      if (kind === 'shared' || (kind === 'matrix' && !batched)) b.op('Identity', [x], {}, { output: output(layer) });
      else b.op('Gather', [x, idx], { axis: 0 }, { output: output(layer) });
    });
  };
  return { o, b, tag, batched, k, stack, pick, matShape: batched ? [layers.length, d, d] : [d, d], scalarShape: batched ? [layers.length, 1, 1] : [1, 1] };
}

/** One group of equal-dimension layers, cold or warm (see the top of this file). */
function emitGroup(b: GraphBuilder, d: number, layers: number[], opts: RootGraphOptions): void {
  const { o, tag, k, stack, pick, matShape, scalarShape } = groupSetup(b, d, layers);
  const outer = o.outer;
  const alphaMax = opts.alphaMax ?? 2.95;

  const F = stack(layers.map(rootNames.F));
  let X = F;
  let P0: string | undefined;
  if (opts.warmStart) {
    P0 = stack(layers.map(rootNames.P0));
    X = o.symmetrize(o.matmul(o.matmul(P0, F), o.transpose(P0)));
  }

  // Spectral moments of X: μ = tr X/d, σ√(d−1) from ‖X‖²_F, and for NS (Σ(λ−μ)⁴)^{1/4} from X².
  const tr = o.op('ReduceSum', [o.mul(X, o.eye), b.init(`${tag}/axes_last2`, int64Tensor([2], [-2, -1]))], { keepdims: 1 });
  const mu = o.mul(tr, k(1 / d));
  const spread2 = o.mul(o.sqrt(o.op('Relu', [o.sub(o.mul(o.sumSq(X), k(1 / d)), o.mul(mu, mu))])), k(Math.sqrt(d - 1)));
  const X2 = opts.method === 'ns' ? o.matmul(X, X) : undefined;
  const spread = X2 ? o.op('Min', [spread2, o.sqrt(o.sqrt(o.sumSq(o.add(o.sub(X2, o.mul(X, o.mul(mu, k(2)))), o.eyeTimes(o.mul(mu, mu))))))]) : spread2;
  const scale = opts.scale ?? 'bound';
  const c = scale === 'trace' ? tr : scale === 'frobenius' ? o.sqrt(o.sumSq(X)) : o.add(mu, spread);
  const sqrtC = o.sqrt(c);
  const A = o.div(X, c);

  const traceRows: string[] = [];
  let Z: string;
  let Y: string;
  let steps: string; // int64 scalar: steps taken
  if (opts.method === 'ns') {
    // Lower end l of an interval [l, 1] holding the spectrum of M_k, when one is known.
    let l: string | undefined;
    if (opts.scaledNs !== false && (opts.warmStart || opts.dampingRel !== undefined)) {
      let low = o.div(o.sub(mu, spread), c);
      if (opts.dampingRel !== undefined && !opts.warmStart) {
        low = o.op('Max', [low, o.div(o.mul(tr, k(opts.dampingRel / (1 + d * opts.dampingRel))), c)]);
      }
      // Nothing known (bound ≤ 0): l = 1 gives α = 1, the plain step.
      l = o.op('Where', [o.op('Greater', [low, k(0)]), o.op('Min', [low, k(1)]), k(1)]);
    }
    // Step 1 from Z₀ = I: T₀ = s1·I − s2·A, Y₁ = A·T₀ = s1·A − s2·A², Z₁ = T₀: no MatMul.
    if (opts.trace) traceRows.push(o.distToI(A));
    const first = nsCoefficients(o, l, alphaMax);
    let state: NsState = {
      Y: o.sub(o.mul(A, first.s1), o.mul(o.div(X2!, o.mul(c, c)), first.s2)),
      Z: o.sub(o.eyeTimes(first.s1), o.mul(A, first.s2)),
      l: first.l,
    };
    if (opts.stopAt === undefined) {
      for (let it = 1; it < opts.iterations; it++) {
        const M = o.matmul(state.Z, state.Y);
        if (opts.trace) traceRows.push(o.distToI(M));
        state = nsStep(o, state, M, alphaMax);
      }
      if (opts.trace) traceRows.push(o.distToI(o.matmul(state.Z, state.Y)));
      steps = b.init(`${tag}/steps`, int64Tensor([], [opts.iterations]));
    } else {
      // Carry M_k = Z_k·Y_k so the stop test sees the state the step produced.
      const carried: Record<string, string> = { Y: state.Y, Z: state.Z, M: o.matmul(state.Z, state.Y) };
      const shapes: Record<string, (number | string)[]> = { Y: matShape, Z: matShape, M: matShape };
      if (state.l) [carried.l, shapes.l] = [state.l, scalarShape];
      const loop = emitLoop(o, carried, shapes, o.distToI(carried.M!), (bo, s) => {
        const n = nsStep(bo, { Y: s.Y!, Z: s.Z!, l: s.l }, s.M!, alphaMax);
        const M = bo.matmul(n.Z, n.Y);
        const next: Record<string, string> = { Y: n.Y, Z: n.Z, M };
        if (n.l) next.l = n.l;
        return { next, measure: bo.distToI(M) };
      }, opts.iterations - 1, opts.stopAt);
      state = { Y: loop.state.Y!, Z: loop.state.Z! };
      steps = o.op('Add', [loop.trips, outer.one64]);
    }
    Y = state.Y;
    Z = state.Z;
  } else {
    const scaled = opts.scaled ?? true;
    if (opts.trace) traceRows.push(o.distToI(A));
    let state = dbStep(o, A, A, undefined, scaled);
    if (opts.stopAt === undefined) {
      for (let it = 1; it < opts.iterations; it++) {
        if (opts.trace) traceRows.push(o.distToI(state.M));
        state = dbStep(o, state.M, state.Y, state.Z, scaled);
      }
      if (opts.trace) traceRows.push(o.distToI(state.M));
      steps = b.init(`${tag}/steps`, int64Tensor([], [opts.iterations]));
    } else {
      const loop = emitLoop(o, { M: state.M, Y: state.Y, Z: state.Z }, { M: matShape, Y: matShape, Z: matShape }, o.distToI(state.M), (bo, s) => {
        const n = dbStep(bo, s.M!, s.Y!, s.Z!, scaled);
        return { next: { M: n.M, Y: n.Y, Z: n.Z }, measure: bo.distToI(n.M) };
      }, opts.iterations - 1, opts.stopAt);
      state = { M: loop.state.M!, Y: loop.state.Y!, Z: loop.state.Z! };
      steps = o.op('Add', [loop.trips, outer.one64]);
    }
    Y = state.Y;
    Z = state.Z;
  }

  // X^{-1/2} = Z/√c, X^{1/2} = √c·Y.
  const Xinvsqrt = o.div(Z, sqrtC);
  const Xsqrt = o.mul(Y, sqrtC);
  let P: string;
  let S: string;
  if (!opts.warmStart) {
    P = o.symmetrize(Xinvsqrt);
    S = o.symmetrize(Xsqrt);
  } else {
    P = o.matmul(Xinvsqrt, P0!);
    S = opts.warmStart === true ? o.matmul(stack(layers.map(rootNames.S0)), Xsqrt) : o.matmul(F, o.transpose(P));
  }
  // One Newton step for the inverse, S ← (2I − S·P)·S, squares the residual: I − S'·P = (I − S·P)².
  // The refresh remap preserves the function only as well as S·P = I holds, so this makes the
  // preservation float32-exact for two MatMuls instead of the extra iterations the stop test would need.
  const SP = o.matmul(S, P);
  S = o.sub(o.mul(S, o.k(2)), o.matmul(SP, S));
  const residual = o.op('Reshape', [o.distToI(o.matmul(S, P)), b.init(`${tag}/shape_b`, int64Tensor([1], [-1]))]); // [B]
  const traceMat = opts.trace
    ? o.op('Concat', traceRows.map((r) => o.op('Reshape', [r, b.init(`${tag}/shape_b1`, int64Tensor([2], [-1, 1]))])), { axis: 1 })
    : undefined;

  pick(P, 'matrix', rootNames.P);
  pick(S, 'matrix', rootNames.S);
  pick(residual, 'vector', rootNames.residual);
  pick(steps, 'shared', rootNames.iterations);
  if (traceMat) pick(traceMat, 'vector', rootNames.trace);
}

/**
 * A 'track' layer whose previous roots are further than this from whitening F (ρ(M − I)) is left
 * to a cold refresh: plain NS steps from a spectrum of A down to (1 − ρ)/(1 + 1.5ρ) cost more
 * MatMuls there than the scaled cold iteration (~4 steps at ρ = 0.5, 3 MatMuls each).
 */
export const TRACK_FAR = 0.5;

/**
 * Power-iteration steps and vectors for the spectral radius estimate of a 'track' group. Four
 * steps of six vectors came within 3–6 % of ρ on the 785-wide MNIST layer's E (whose extremes are
 * many near-equal eigenvalues of both signs, so neither more steps nor Rayleigh–Ritz on the
 * Krylov block gained much: 8 steps 1–2 %), at 15 thin MatMuls instead of 27 (gate graph 3.6 →
 * 2.1 ms for 785/81/81/81). The gate only needs to tell "moved about g" from "moved much more".
 */
const POWER_STEPS = 4;
const POWER_VECTORS = 6;

/**
 * ρ(E) of a symmetric E (d × d, or [B, d, d]; given by its product `applyE(V)` with a d × r block)
 * from below: the largest ‖E·v‖ over a block of unit vectors after POWER_STEPS power steps (thin
 * MatMuls), shaped [B, 1, 1] (or [1, 1]). Iterating on
 * E = M − I rather than M: the extreme eigenvalues of E stand out from its bulk near 0, where
 * those of M sit in a cluster near 1 that power steps separate slowly. The start block is fixed
 * (seeded), so a refresh is reproducible.
 */
function spectralRadiusEstimate(g: Group, d: number, applyE: (V: string) => string): string {
  const { o } = g;
  const start = new Float32Array(d * POWER_VECTORS);
  let seed = 0x2545f491;
  for (let i = 0; i < start.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    start[i] = seed / 2 ** 32 - 0.5;
  }
  // Opset 17: ReduceL2/ReduceMax take their axes as an attribute.
  const colNorms = (V: string) => o.op('ReduceL2', [V], { axes: [-2], keepdims: 1 });
  const tiny = o.k(1e-30);
  let V = g.b.init(`${g.tag}/power_start`, float32Tensor([d, POWER_VECTORS], start));
  let EV = applyE(V);
  for (let it = 0; it < POWER_STEPS; it++) {
    V = o.div(EV, o.op('Max', [colNorms(EV), tiny])); // E = 0 (nothing moved): stays 0, not NaN
    EV = applyE(V);
  }
  return o.op('ReduceMax', [colNorms(EV)], { axes: [-1], keepdims: 1 });
}

/** The gate of a 'track' group without forming M: (M − I)·V = P0·(F·(P0ᵀ·V)) − V, three thin MatMuls a power step. */
function estimateGate(g: Group, d: number, F: string, P0: string, P0t: string): string {
  const { o } = g;
  return spectralRadiusEstimate(g, d, (V) => o.sub(o.matmul(P0, o.matmul(F, o.matmul(P0t, V))), V));
}

/**
 * The gates of a 'track' refresh alone: inputs F/<i>, P0/<i>; outputs gate/<i> ≈ ρ(P0·F·P0ᵀ − I).
 * A refresh runs this first and the correcting graph (buildRootGraph with gateInput) only when a
 * layer needs it, so keeping every layer costs power iterations and no d×d outputs.
 */
export function buildGateGraph(dims: number[]): Model {
  if (dims.length === 0) throw new SngdError('buildGateGraph: no layers');
  const b = new GraphBuilder('sngd_root_gates', 17);
  dims.forEach((d, i) => {
    b.input(rootNames.F(i), 'float32', [d, d]);
    b.input(rootNames.P0(i), 'float32', [d, d]);
  });
  const groups = new Map<number, number[]>();
  dims.forEach((d, i) => groups.set(d, [...(groups.get(d) ?? []), i]));
  for (const [d, layers] of groups) {
    const g = groupSetup(b, d, layers);
    const P0 = g.stack(layers.map(rootNames.P0));
    const gate = estimateGate(g, d, g.stack(layers.map(rootNames.F)), P0, g.o.transpose(P0));
    g.pick(g.o.op('Reshape', [gate, b.init(`${g.tag}/shape_b`, int64Tensor([1], [-1]))]), 'vector', rootNames.gate);
  }
  dims.forEach((_, i) => b.output(rootNames.gate(i), 'float32', []));
  return b.build();
}

/**
 * One group of a 'track' refresh: correct the previous roots P0 for the drift of F instead of
 * rooting F again. With M = P0·F·P0ᵀ = I + E (E small when F moved little):
 *
 *   gate ≈ ρ(E), from power iterations on E without forming it (or given: gateInput)
 *   Z₁ = ½(3I − M)                         one coupled Newton–Schulz step from Y₀ = M, Z₀ = I
 *   Z₂ = ½(3I − Z₁·M·Z₁)·Z₁                 a second step (opts.iterations = 2)
 *   P = Z·P0,   Y = 2I − Z ≈ Z⁻¹
 *
 * No scaling: the NS map of M's eigenvalues, g(1 + e) = 1 − ¾e² + ¼e³, converges from anywhere in
 * (0, 3), and a layer only gets here with ρ ≤ TRACK_FAR. One step leaves a whitening error
 * ρ(P·F·Pᵀ − I) ≈ ¾ρ², two ≈ ¾(¾ρ²)²; `residual` reports that estimate (from the gate, itself
 * an estimate from below). Then PᵀP = F⁻¹ up to that error, and the remap needs no S: with
 * W̃'·P0 = W̃'_new·P it is W̃'_new = W̃'·Z⁻¹, an m-row solve preconditioned by Y (‖I − Z·Y‖ =
 * ‖(I − Z)²‖ ≈ ρ²/4; runtime/remap.ts). One step costs three d³ MatMuls (M, and Z·P0), two steps six.
 *
 * A kept layer (gate ≤ opts.gate) outputs "no change" (P = P0, Z = Y = I); a far one
 * (gate > TRACK_FAR) reports its gate as the residual, above any tolerance: the host roots it cold.
 */
function emitTrackGroup(b: GraphBuilder, d: number, layers: number[], opts: RootGraphOptions): void {
  const g = groupSetup(b, d, layers);
  const { o, k, stack, pick } = g;
  const F = stack(layers.map(rootNames.F));
  const P0 = stack(layers.map(rootNames.P0));
  const gate = opts.gateInput
    ? o.op('Reshape', [stack(layers.map(rootNames.gate)), b.init(`${g.tag}/gate_shape`, int64Tensor([g.scalarShape.length], g.scalarShape))])
    : estimateGate(g, d, F, P0, o.transpose(P0)); // [B, 1, 1]
  const keep = o.op('LessOrEqual', [gate, k(opts.gate ?? 0)]);
  const far = o.op('Greater', [gate, k(TRACK_FAR)]);

  // P0·F·P0ᵀ is symmetric up to rounding, and Z only needs to be as symmetric as that.
  const M = o.matmul(o.matmul(P0, F), o.transpose(P0));
  const step = (m: string) => o.mul(o.sub(o.eyeTimes(k(3)), m), k(0.5));
  let Z = step(M);
  let error = o.mul(o.mul(gate, gate), k(0.75)); // ¾ρ²
  if (opts.iterations >= 2) {
    Z = o.matmul(step(o.matmul(Z, o.matmul(M, Z))), Z);
    error = o.mul(o.mul(error, error), k(0.75));
  }
  if (opts.iterations > 2) throw new SngdError(`buildRootGraph: a 'track' correction takes 1 or 2 steps, got ${opts.iterations}`);
  // Only a group with several layers can mix kept and corrected ones (a lone layer runs here only
  // when corrected, unless the gate is computed in the graph).
  const mixed = layers.length > 1 || !opts.gateInput;
  if (mixed) Z = o.op('Where', [keep, o.eye, Z]);
  const shapeB = b.init(`${g.tag}/shape_b`, int64Tensor([1], [-1]));
  const P = o.matmul(Z, P0);
  pick(mixed ? o.op('Where', [keep, P0, P]) : P, 'matrix', rootNames.P);
  pick(Z, 'matrix', rootNames.Z);
  pick(o.sub(o.eyeTimes(k(2)), Z), 'matrix', rootNames.Y);
  pick(o.op('Reshape', [o.op('Where', [far, gate, o.op('Where', [keep, gate, error])]), shapeB]), 'vector', rootNames.residual);
  if (!opts.gateInput) pick(o.op('Reshape', [gate, shapeB]), 'vector', rootNames.gate);
  pick(b.init(`${g.tag}/steps`, int64Tensor([], [opts.iterations])), 'shared', rootNames.iterations);
}

