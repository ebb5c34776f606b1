/**
 * The Fisher-root refresh (SNGD.md §2–§3) on onnxruntime: for every rebuilt layer, from its damped
 * Fisher matrix F (SPD, d × d) compute P and S with S·P = I and PᵀP = F⁻¹ (cold start: P = F^{-1/2},
 * S = F^{1/2}, both symmetric), plus the residual ‖S·P − I‖_F/√d. The math and the graph are in
 * runtime/roots/graph.ts; this module runs it and judges the results.
 *
 *   const r = new RootRefresher([785, 81, 81, 81], { dampingRel: 1e-4 });   // 'ns' by default
 *   const first = await r.refresh(F);                     // cold
 *   const next = await r.refresh(F2, first);              // warm from the previous {P, S}
 *   for (const [i, l] of next.entries()) if (!l.ok) ...   // keep the old roots, raise damping
 *
 * Warm-started roots are not symmetric: they satisfy PᵀP = F⁻¹ and S = P⁻¹, the natural-gradient
 * condition for W̃ = W̃'·P (weight side, folding, remap). The activation side computes x' = x̃·P,
 * the column map Pᵀ·x̃: it agrees with the rest only for a symmetric P, so a layer on the
 * activation side must read x̃·Pᵀ, or be refreshed cold (`warmStart: false`).
 *
 * `ok` is false when an input is not finite, not symmetric or has a non-positive diagonal, or the
 * residual is not finite (any non-finite P or S entry makes it so) or exceeds `tolerance`;
 * `reason` says which. An invalid layer is fed as the identity so it cannot disturb the layers
 * batched with it, and a layer that breaks down inside the iteration does not stop or prolong
 * the Loop for the others.
 */
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { createSession, type Session, type SessionOptions } from './ort.js';
import { buildGateGraph, buildRootGraph, rootNames, TRACK_FAR, type RootGraphOptions, type RootMethod, type RootScale } from './roots/graph.js';
import type { Tensor } from '../src/onnx/tensor.js';

export { buildGateGraph, buildRootGraph, rootNames, type RootGraphOptions, type RootMethod, type RootScale } from './roots/graph.js';

export interface LayerRoots {
  /**
   * P (row-major d × d): P = F^{-1/2} after a cold start; PᵀP = F⁻¹ after a warm one. A layer
   * with unit blocks gets its units' roots stacked, [m, d, d] (stackRoots).
   */
  P: Float32Array;
  /** S = P⁻¹ (= F^{1/2} after a cold start). */
  S: Float32Array;
  /** ‖S·P − I‖_F/√d as computed in the graph (NaN when not finite). */
  residual: number;
  ok: boolean;
  /** Why `ok` is false. */
  reason?: string;
  /** Steps the iteration took (fewer than the graph's most with `stopAt`). */
  iterations: number;
  /** Which graph produced these roots. */
  start: 'cold' | 'warm' | 'track';
  /**
   * A 'track' refresh (runtime/roots/graph.ts): P = Z·P0 with Z ≈ (P0·F·P0ᵀ)^{-1/2} and Y ≈ Z⁻¹;
   * no S (`S` is empty; the remap solves W̃'_new·Z = W̃' instead). `residual` is then the whitening
   * error ‖P·F·Pᵀ − I‖_F/√d left, `gate` the previous roots' ρ(P0·F·P0ᵀ − I), and `keep` says the
   * previous roots were within the gate: install nothing.
   */
  track?: { Z: Float32Array; Y: Float32Array; gate: number; keep: boolean };
  /** Per-iteration ‖M_k − I‖_F/√d, when the graph was built with `trace`. */
  trace?: Float32Array;
  /**
   * A Nyström layer's roots (runtime/nystrom.ts): P = U·diag(a)·Uᵀ + s·I, S = U·diag(b)·Uᵀ + t·I;
   * `P` and `S` are then empty, `residual` is max |UᵀU − I|.
   */
  nystrom?: import('../passes/reconstruct/remap.js').NystromParts & { lambdas: Float64Array; lambda: number };
}

/**
 * Previous roots of a layer for a warm start (S = P⁻¹). Without S (or P alone), the refresh forms
 * S = F·Pᵀ, whose S·P is accurate only to ~ε·cond(F) (see runtime/roots/graph.ts).
 */
export type PreviousRoots = { P: Float32Array; S?: Float32Array } | Float32Array;

function previousParts(p: PreviousRoots): { P: Float32Array; S?: Float32Array } {
  return p instanceof Float32Array ? { P: p } : p;
}

export interface ComputeRootsOptions {
  /** Previous roots per layer: required by a warm-start graph, refused by a cold one. */
  previous?: readonly PreviousRoots[];
  /** Largest residual accepted as ok. Defaults to 1e-3 (a 'track' graph: 0.1, its whitening error). */
  tolerance?: number;
  /** 'track' graphs: a layer whose gate is at most this keeps its roots (the graph's own `gate`). Defaults to 0. */
  gate?: number;
  /** Largest |F_ij − F_ji| / max_k F_kk accepted as symmetric. Defaults to 1e-4. */
  symmetryTolerance?: number;
  /** Check each F (finite, symmetric, positive diagonal) and previous root (finite) before the run. Defaults to true. */
  validate?: boolean;
  /** The gates a 'track' graph built with gateInput takes (from buildGateGraph). */
  gates?: readonly number[];
}

/**
 * Runs a root graph (a Session, or a Model run once in a fresh session) on the layers' Fisher
 * matrices and returns each layer's roots. `F[i]` is row-major d_i × d_i float32.
 */
export async function computeRoots(graph: Session | Model, F: readonly Float32Array[], opts: ComputeRootsOptions = {}): Promise<LayerRoots[]> {
  if (!('run' in graph)) {
    const session = await createSession(graph, {}, 'root graph');
    try {
      return await computeRoots(session, F, opts);
    } finally {
      await session.release();
    }
  }
  const session = graph;
  const warm = session.inputNames.includes(rootNames.P0(0));
  const needsS = session.inputNames.includes(rootNames.S0(0));
  const gateIn = session.inputNames.includes(rootNames.gate(0));
  const track = gateIn || session.outputNames.includes(rootNames.gate(0));
  const layers = session.outputNames.filter((n) => n.startsWith('residual/')).length;
  if (F.length !== layers) throw new SngdError(`root graph has ${layers} layers, got ${F.length} Fisher matrices`);
  if (gateIn && opts.gates?.length !== layers) throw new SngdError(`this root graph takes each layer's gate: pass ${layers} gates`);
  if (warm && !opts.previous) throw new SngdError('this root graph is warm-started: pass the previous roots');
  if (!warm && opts.previous) throw new SngdError('this root graph is cold-started: build it with warmStart to use previous roots');
  if (opts.previous && opts.previous.length !== layers) throw new SngdError(`root graph has ${layers} layers, got ${opts.previous.length} previous roots`);
  const tolerance = opts.tolerance ?? (track ? DEFAULT_TRACK_TOLERANCE : 1e-3);
  const symTol = opts.symmetryTolerance ?? 1e-4;

  const feeds: Record<string, Tensor> = {};
  const problems: (string | undefined)[] = [];
  F.forEach((f, i) => {
    const d = Math.round(Math.sqrt(f.length));
    if (d * d !== f.length || d === 0) throw new SngdError(`layer ${i}: Fisher matrix has ${f.length} values, not d×d`);
    let problem = opts.validate === false ? undefined : inputProblem(f, d, symTol, 'Fisher matrix');
    const prev = opts.previous?.[i] === undefined ? undefined : previousParts(opts.previous[i]!);
    if (prev) {
      const parts: [string, Float32Array | undefined][] = needsS ? [['P', prev.P], ['S', prev.S]] : [['P', prev.P]];
      for (const [name, a] of parts) {
        if (!a || a.length !== f.length) throw new SngdError(`layer ${i}: previous ${name} has ${a?.length ?? 0} values, expected ${d}×${d}`);
        if (opts.validate !== false) problem ??= finiteProblem(a, `previous ${name}`);
      }
    }
    problems.push(problem);
    feeds[rootNames.F(i)] = { dtype: 'float32', dims: [d, d], data: problem ? identityData(d) : f };
    if (prev) {
      feeds[rootNames.P0(i)] = { dtype: 'float32', dims: [d, d], data: problem ? identityData(d) : prev.P };
      if (needsS) feeds[rootNames.S0(i)] = { dtype: 'float32', dims: [d, d], data: problem ? identityData(d) : prev.S! };
    }
  });

  if (gateIn) opts.gates!.forEach((g, i) => (feeds[rootNames.gate(i)] = { dtype: 'float32', dims: [], data: Float32Array.of(g) }));
  const out = await session.run(feeds);
  return F.map((_, i) => {
    const P = out[rootNames.P(i)]!.data as Float32Array;
    const S = track ? new Float32Array(0) : out[rootNames.S(i)]!.data as Float32Array;
    const residual = (out[rootNames.residual(i)]!.data as Float32Array)[0]!;
    const trace = out[rootNames.trace(i)]?.data as Float32Array | undefined;
    const steps = out[rootNames.iterations(i)]?.data as BigInt64Array | undefined;
    // A non-finite entry of P or S makes S·P, hence the residual, non-finite: P and S are only
    // scanned (to say which) when the residual is not finite.
    let reason = problems[i];
    if (!reason && !Number.isFinite(residual)) reason = finiteProblem(P, 'P') ?? finiteProblem(S, 'S') ?? `residual is ${residual}`;
    if (!reason && !(residual <= tolerance)) reason = `${track ? 'whitening error ‖P·F·Pᵀ − I‖' : 'residual ‖S·P − I‖'}/√d = ${residual.toExponential(2)} exceeds ${tolerance}`;
    const roots: LayerRoots = {
      P, S, residual: Number.isFinite(residual) ? residual : Number.NaN, ok: !reason, start: track ? 'track' : warm ? 'warm' : 'cold',
      iterations: steps ? Number(steps[0]) : Number.NaN,
    };
    if (track) {
      const gate = gateIn ? opts.gates![i]! : (out[rootNames.gate(i)]!.data as Float32Array)[0]!;
      // A kept layer installs nothing, so only its gate must be sound.
      const keep = !problems[i] && gate <= (opts.gate ?? 0);
      if (keep) roots.ok = true;
      roots.track = { Z: out[rootNames.Z(i)]!.data as Float32Array, Y: out[rootNames.Y(i)]!.data as Float32Array, gate, keep };
    }
    if (reason && !roots.ok) roots.reason = reason;
    if (trace) roots.trace = trace;
    return roots;
  });
}

/** The graphs a refresher runs: 'gates' and 'track' are the two stages of a tracked refresh. */
type RootStart = 'cold' | 'warm' | 'warmP' | 'gates' | `track${1 | 2}:${number}` | `cold:${number}`;

export interface RootRefresherOptions {
  /** Defaults to 'ns' (standard ops only; on the CPU EP faster than 'db', whose Inverse is single-threaded). */
  method?: RootMethod;
  /**
   * Most steps of a cold / warm refresh. With `stopAt` (the default) a refresh stops as soon as
   * it has converged, so these only bound the cost of a refresh that does not converge.
   * Defaults: DEFAULT_ITERATIONS.
   */
  coldIterations?: number;
  warmIterations?: number;
  /**
   * Stop once ‖M_k − I‖_F/√d ≤ stopAt; `false` unrolls exactly the iteration counts. Defaults to
   * tolerance/10 cold (the residual is that distance) and tolerance/100 warm (the residual
   * S0·(Y·Z)·P0 − I amplifies it by up to √cond(F); 2–40× measured at cond 1e4).
   */
  stopAt?: number | false;
  /**
   * Use previous roots when given: true roots F again from them ('warm', needs P and S); 'track'
   * corrects P for the drift of F (P alone, no S; see runtime/roots/graph.ts). Defaults to true.
   */
  warmStart?: boolean | 'track';
  /** 'track': keep a layer's roots while ρ(P·F·Pᵀ − I) ≤ gate. Defaults to DEFAULT_TRACK_GATE. */
  gate?: number;
  /** A warm start that fails is retried cold for the failing layers. Defaults to true. */
  fallbackToCold?: boolean;
  /** Largest residual ‖S·P − I‖_F/√d accepted as ok. Defaults to 1e-3. */
  tolerance?: number;
  symmetryTolerance?: number;
  /** The smallest ε_rel the trainer damps with (F = F₀ + ε_rel·tr(F₀)·I): enables the scaled NS steps on cold starts. */
  dampingRel?: number;
  /** 'ns': take the scaled steps where a spectral lower bound is known. Defaults to true. */
  scaledNs?: boolean;
  scale?: RootScale;
  sessionOptions?: SessionOptions;
  /** How to open a root graph's session (default: createSession on this thread; see runtime/worker-session.ts). */
  sessionFactory?: (model: Model, options: SessionOptions, label: string) => Promise<Session>;
}

/** Most steps per refresh: ample for cond(F) ≤ 1e6 cold (NS plain needs ~22 there) and for drifted warm starts. */
export const DEFAULT_ITERATIONS: Record<RootMethod, { cold: number; warm: number }> = {
  ns: { cold: 30, warm: 16 },
  db: { cold: 12, warm: 8 },
};

/**
 * 'track' refreshes. The gate: previous roots that whiten the new F to within 30% in every
 * direction (eigenvalues of P·F·Pᵀ in [0.7, 1.3]) are kept: the EMA's own noise between refreshes
 * is of that order with a statistic every 10 steps (gates of the 785-wide MNIST layer hover at
 * 0.15–0.25 at T = 100), so re-rooting buys nothing. bench/defaults.ts (3 seeds, epochs 1 / 2 / 3)
 * measured gates 0.2 and 0.3 alike at T = 20 (96.51 / 97.15 / 97.38 and 96.51 / 97.13 / 97.45 %)
 * and at T = 100 (95.69 / 96.62 / 96.98 and 95.72 / 96.66 / 96.99 %), and earlier 0.1 and 0.2
 * alike; 0.3 leaves the 785-wide layer's roots alone at T = 100 (2–3 corrections in 3 epochs
 * instead of ~13), the difference between 7 % and under 5 % of training time. Beyond the gate, one
 * or two NS steps correct the roots (runtime/roots/graph.ts); a drift beyond reach (ρ > 0.5) roots
 * the group cold.
 */
export const DEFAULT_TRACK_GATE = 0.3;

export const DEFAULT_TRACK_TOLERANCE = 0.1;
/** The largest gate a one-step correction is used for (it leaves ≈ ¾·0.3² ≈ 0.07). */
const TRACK_ONE_STEP = 0.3;

/**
 * Owns the root graphs (cold and, lazily, warm) for a fixed list of layer dimensions.
 * `refresh(F)` starts cold; `refresh(F, previous)` starts warm from the previous roots.
 */
export class RootRefresher {
  private readonly sessions = new Map<RootStart, Promise<Session>>();
  readonly method: RootMethod;

  constructor(readonly dims: readonly number[], readonly options: RootRefresherOptions = {}) {
    this.method = options.method ?? 'ns';
    this.graph('cold'); // validates dims and options now
    // Open the first (cold) refresh's session now: its ~20 ms of graph optimisation is set-up, not
    // refresh time (a failure surfaces when the refresh awaits it).
    this.session('cold').catch(() => undefined);
    if (options.warmStart === 'track') {
      // Open the tracked graphs now, so their compilation does not land inside a refresh's time
      // (a failure surfaces when the refresh awaits them).
      // A gate at or above TRACK_ONE_STEP leaves only two-step corrections.
      const steps = (options.gate ?? DEFAULT_TRACK_GATE) < TRACK_ONE_STEP ? [1, 2] : [2];
      const starts = new Set(dims.flatMap((d) => [...steps.map((n) => `track${n}:${d}`), `cold:${d}`]));
      for (const start of ['gates', ...starts] as RootStart[]) this.session(start).catch(() => undefined);
    }
  }

  async refresh(F: readonly Float32Array[], previous?: readonly PreviousRoots[]): Promise<LayerRoots[]> {
    if (F.length !== this.dims.length) throw new SngdError(`RootRefresher: ${this.dims.length} layers, got ${F.length} Fisher matrices`);
    F.forEach((f, i) => {
      if (f.length !== this.dims[i]! ** 2) throw new SngdError(`RootRefresher: layer ${i} is ${this.dims[i]}×${this.dims[i]}, got ${f.length} values`);
    });
    const opts = { tolerance: this.options.tolerance, symmetryTolerance: this.options.symmetryTolerance };
    if (!previous || this.options.warmStart === false) return computeRoots(await this.session('cold'), F, opts);
    if (this.options.warmStart === 'track') return this.track(F, previous.map((p) => previousParts(p).P), opts);
    const start = previous.every((p) => !(p instanceof Float32Array) && p.S) ? 'warm' : 'warmP';
    const warm = await computeRoots(await this.session(start), F, { ...opts, previous });
    if (this.options.fallbackToCold === false || warm.every((l) => l.ok)) return warm;
    const cold = await computeRoots(await this.session('cold'), F, opts);
    return warm.map((l, i) => (l.ok ? l : cold[i]!.ok ? cold[i]! : { ...cold[i]!, reason: `warm: ${l.reason}; cold: ${cold[i]!.reason}` }));
  }

  /**
   * A tracked refresh: the gates first (power iterations, scalar outputs), then per dimension group
   * only what it needs: nothing when every layer is within the gate; a one- or two-step correction;
   * or, when a layer is far (gate > TRACK_FAR) or a correction fails, a cold refresh of that group.
   * So a kept 785-wide layer costs no d×d feeds or outputs while its 81-wide neighbours are
   * corrected, and a far 81-wide group is rooted cold without the 785-wide one. The blocks of a
   * unit layer share a dimension, hence a group, hence one kind of roots (a layer installs one remap).
   */
  private async track(F: readonly Float32Array[], P0: Float32Array[], opts: ComputeRootsOptions): Promise<LayerRoots[]> {
    const gate = this.options.gate ?? DEFAULT_TRACK_GATE;
    const feeds: Record<string, Tensor> = {};
    F.forEach((f, i) => {
      const d = this.dims[i]!;
      feeds[rootNames.F(i)] = { dtype: 'float32', dims: [d, d], data: f };
      feeds[rootNames.P0(i)] = { dtype: 'float32', dims: [d, d], data: P0[i]! };
    });
    const out = await (await this.session('gates')).run(feeds);
    const gates = F.map((_, i) => (out[rootNames.gate(i)]!.data as Float32Array)[0]!);
    const roots = gates.map((g, i) => keptRoots(P0[i]!, g));
    for (const d of new Set(this.dims)) {
      const members = this.dims.flatMap((di, i) => (di === d ? [i] : []));
      const pick = <T>(xs: readonly T[]) => members.map((i) => xs[i]!);
      const mine = pick(gates);
      if (mine.every((g) => g <= gate)) continue;
      let group: LayerRoots[] | undefined;
      if (mine.every((g) => g <= TRACK_FAR)) {
        // One NS step leaves ≈ ¾ρ²; beyond TRACK_ONE_STEP (¾·0.3² ≈ 0.07) take two.
        const steps = Math.max(...mine) <= TRACK_ONE_STEP ? 1 : 2;
        // No input scan: a non-finite F or P0 makes its gate NaN, which lands in the cold branch (scanned).
        group = await computeRoots(await this.session(`track${steps}:${d}`), pick(F), { ...opts, previous: pick(P0), gates: mine, tolerance: DEFAULT_TRACK_TOLERANCE, gate, validate: false });
      }
      if (!group || (this.options.fallbackToCold !== false && !group.every((l) => l.ok))) {
        group = await computeRoots(await this.session(`cold:${d}`), pick(F), opts);
      }
      members.forEach((i, j) => (roots[i] = group![j]!));
    }
    return roots;
  }

  /**
   * The graph a refresh runs (for inspection or export); 'warmP' is the warm start from P alone;
   * 'gates' and 'track1:<d>' / 'track2:<d>' (one or two NS steps for the layers of dimension d)
   * the two stages of a tracked refresh.
   */
  graph(start: RootStart): Model {
    const { scale, dampingRel, scaledNs } = this.options;
    const method = this.method;
    if (start === 'gates') return buildGateGraph([...this.dims]);
    const group = /^cold:(\d+)$/.exec(start);
    if (group) return buildRootGraph(this.dims.filter((x) => x === Number(group[1])), this.coldOptions());
    const tracked = /^track([12]):(\d+)$/.exec(start);
    if (tracked) {
      const d = Number(tracked[2]);
      return buildRootGraph(this.dims.filter((x) => x === d), { method, iterations: Number(tracked[1]), warmStart: 'track', gateInput: true, gate: this.options.gate ?? DEFAULT_TRACK_GATE });
    }
    if (start === 'cold') return buildRootGraph([...this.dims], this.coldOptions());
    const iterations = this.options.warmIterations ?? DEFAULT_ITERATIONS[method].warm;
    // A warm start's residual S0·(Y·Z)·P0 − I amplifies ‖Y·Z − I‖ by up to √cond(F): stop later.
    const tolerance = this.options.tolerance ?? 1e-3;
    const stopAt = this.options.stopAt === false ? undefined : this.options.stopAt ?? tolerance / 100;
    return buildRootGraph([...this.dims], { method, iterations, warmStart: start === 'warm' ? true : 'P', scale, dampingRel, scaledNs, stopAt });
  }

  private coldOptions(): RootGraphOptions {
    const { scale, dampingRel, scaledNs } = this.options;
    const tolerance = this.options.tolerance ?? 1e-3;
    const stopAt = this.options.stopAt === false ? undefined : this.options.stopAt ?? tolerance / 10;
    return { method: this.method, iterations: this.options.coldIterations ?? DEFAULT_ITERATIONS[this.method].cold, scale, dampingRel, scaledNs, stopAt };
  }

  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) await (await s).release();
  }

  private session(start: RootStart): Promise<Session> {
    let s = this.sessions.get(start);
    if (!s) {
      const options = this.options.sessionOptions ?? {};
      // The gate graph is ~60 thin ops (d × 6 blocks): one thread, so no pool is woken for each.
      const threads = start === 'gates' ? { intraOpNumThreads: 1 } : {};
      s = (this.options.sessionFactory ?? createSession)(this.graph(start), { ...options, ...threads }, `${this.method} root graph (${start})`);
      this.sessions.set(start, s);
    }
    return s;
  }
}

/**
 * The roots of one layer's unit blocks (B per-block results of a refresh) as one: P and S stacked
 * [B, d, d], the worst residual, ok only when every block is (the reason names the first failing
 * unit), so a layer keeps or replaces all its blocks together.
 */
export function stackRoots(blocks: readonly LayerRoots[]): LayerRoots {
  const stack = (part: (r: LayerRoots) => Float32Array) => {
    const size = part(blocks[0]!).length;
    const out = new Float32Array(blocks.length * size);
    blocks.forEach((r, j) => out.set(part(r), j * size));
    return out;
  };
  const failed = blocks.findIndex((r) => !r.ok);
  const out: LayerRoots = {
    P: stack((r) => r.P), S: stack((r) => r.S), ok: failed < 0, start: blocks[0]!.start,
    residual: blocks.some((r) => Number.isNaN(r.residual)) ? Number.NaN : Math.max(...blocks.map((r) => r.residual)),
    iterations: Math.max(...blocks.map((r) => r.iterations)),
  };
  // Tracked units: the layer is kept when every unit is; otherwise a kept unit installs as it was
  // (the graph outputs Z = Y = I, P = P0 for it).
  if (blocks.every((r) => r.track)) {
    out.track = { Z: stack((r) => r.track!.Z), Y: stack((r) => r.track!.Y), gate: Math.max(...blocks.map((r) => r.track!.gate)), keep: blocks.every((r) => r.track!.keep) };
  } else if (blocks.some((r) => r.track)) {
    throw new SngdError('stackRoots: tracked and cold roots in one layer (RootRefresher redoes a failed tracked refresh cold everywhere)');
  }
  if (failed >= 0) out.reason = `unit ${failed}: ${blocks[failed]!.reason}`;
  return out;
}

/** A tracked layer whose previous roots are within the gate: nothing to install. */
function keptRoots(P: Float32Array, gate: number): LayerRoots {
  const none = new Float32Array(0);
  return { P, S: none, residual: gate, ok: true, start: 'track', iterations: 0, track: { Z: none, Y: none, gate, keep: true } };
}

function identityData(d: number): Float32Array {
  const a = new Float32Array(d * d);
  for (let i = 0; i < d; i++) a[i * d + i] = 1;
  return a;
}

function finiteProblem(a: Float32Array, what: string): string | undefined {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return `${what} has a non-finite value (${a[i]}) at ${i}`;
  return undefined;
}

/**
 * Why a Fisher matrix cannot be an SPD input, or undefined. For SPD F, |F_ij| ≤ max_k F_kk, so the
 * symmetry tolerance is relative to the largest diagonal entry; the comparisons are written so a
 * NaN fails them. One pass over the upper triangle, in tiles for cache locality.
 */
function inputProblem(f: Float32Array, d: number, symTol: number, what: string): string | undefined {
  let maxDiag = 0;
  for (let i = 0; i < d; i++) {
    const v = f[i * d + i]!;
    if (!(v > 0 && v < Number.POSITIVE_INFINITY)) return `${what} is not positive definite (diagonal entry ${i} is ${v})`;
    if (v > maxDiag) maxDiag = v;
  }
  const tol = symTol * maxDiag;
  const TILE = 32;
  for (let i0 = 0; i0 < d; i0 += TILE) {
    for (let j0 = i0; j0 < d; j0 += TILE) {
      const iEnd = Math.min(i0 + TILE, d);
      const jEnd = Math.min(j0 + TILE, d);
      for (let i = i0; i < iEnd; i++) {
        for (let j = Math.max(j0, i + 1); j < jEnd; j++) {
          const a = f[i * d + j]!;
          const b = f[j * d + i]!;
          if (!(Math.abs(a - b) <= tol)) {
            return Number.isFinite(a) && Number.isFinite(b)
              ? `${what} is not symmetric (entries (${i},${j}) and (${j},${i}) differ by ${Math.abs(a - b)})`
              : `${what} has a non-finite value at (${i},${j})`;
          }
          if (!(Math.abs(a) <= maxDiag)) return `${what} is not positive definite (|F(${i},${j})| = ${Math.abs(a)} exceeds every diagonal entry)`;
        }
      }
    }
  }
  return undefined;
}
