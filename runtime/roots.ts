/**
 * The Fisher-root refresh (SNGD.md §2–§3) on onnxruntime: for every rebuilt layer, from its damped
 * Fisher matrix F (SPD, d × d) compute P and S with S·P = I and PᵀP = F⁻¹ (cold start: P = F^{-1/2},
 * S = F^{1/2}, both symmetric), plus the residual ‖S·P − I‖_F/√d. The math and the graph are in
 * runtime/roots/graph.ts; this module runs it and judges the results.
 *
 *   const r = new RootRefresher([785, 81, 81, 81], { method: 'db' });
 *   const first = await r.refresh(F);                     // cold
 *   const next = await r.refresh(F2, first);              // warm from the previous roots
 *   for (const [i, l] of next.entries()) if (!l.ok) ...   // keep the old roots, raise damping
 *
 * Warm-started roots are not symmetric: they satisfy PᵀP = F⁻¹, the natural-gradient condition
 * for W̃ = W̃'·P (weight side, folding, remap). The activation side computes x' = x̃·P, i.e. the
 * column map Pᵀ·x̃: it is consistent with the rest only for a symmetric P, so a layer on the
 * activation side must either read x̃·Pᵀ or be refreshed cold (`warmStart: false`).
 *
 * `ok` is false when an input is not finite or not symmetric, or an output is not finite, or the
 * residual exceeds `tolerance`; `reason` says which. An invalid layer is fed as the identity so it
 * cannot disturb the layers batched with it.
 */
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { createSession, type Session, type SessionOptions } from './ort.js';
import { buildRootGraph, rootNames, type RootGraphOptions, type RootMethod, type RootScale } from './roots/graph.js';
import type { Tensor } from '../src/onnx/tensor.js';

export { buildRootGraph, rootNames, type RootGraphOptions, type RootMethod, type RootScale } from './roots/graph.js';

export interface LayerRoots {
  /** P (row-major d × d): P = F^{-1/2} after a cold start; PᵀP = F⁻¹ after a warm one. */
  P: Float32Array;
  /** S = P⁻¹ (= F^{1/2} after a cold start). */
  S: Float32Array;
  /** ‖S·P − I‖_F/√d as computed in the graph (NaN when not finite). */
  residual: number;
  ok: boolean;
  /** Why `ok` is false. */
  reason?: string;
  /** Which graph produced these roots. */
  start: 'cold' | 'warm';
  /** Per-iteration ‖M_k − I‖_F/√d, when the graph was built with `trace`. */
  trace?: Float32Array;
}

/** Previous roots of a layer for a warm start (only P is read; see runtime/roots/graph.ts). */
export type PreviousRoots = { P: Float32Array } | Float32Array;

export interface ComputeRootsOptions {
  /** Previous roots per layer: required by a warm-start graph, refused by a cold one. */
  previous?: readonly PreviousRoots[];
  /** Largest residual accepted as ok. Defaults to 1e-3. */
  tolerance?: number;
  /** Largest |F_ij − F_ji| / max|F| accepted as symmetric. Defaults to 1e-4. */
  symmetryTolerance?: number;
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
  const layers = session.outputNames.filter((n) => n.startsWith('residual/')).length;
  if (F.length !== layers) throw new SngdError(`root graph has ${layers} layers, got ${F.length} Fisher matrices`);
  if (warm && !opts.previous) throw new SngdError('this root graph is warm-started: pass the previous roots');
  if (!warm && opts.previous) throw new SngdError('this root graph is cold-started: build it with warmStart to use previous roots');
  if (opts.previous && opts.previous.length !== layers) throw new SngdError(`root graph has ${layers} layers, got ${opts.previous.length} previous roots`);
  const tolerance = opts.tolerance ?? 1e-3;
  const symTol = opts.symmetryTolerance ?? 1e-4;

  const feeds: Record<string, Tensor> = {};
  const problems: (string | undefined)[] = [];
  F.forEach((f, i) => {
    const d = Math.round(Math.sqrt(f.length));
    if (d * d !== f.length || d === 0) throw new SngdError(`layer ${i}: Fisher matrix has ${f.length} values, not d×d`);
    let problem = inputProblem(f, d, symTol, 'Fisher matrix');
    let p0 = opts.previous?.[i];
    const p0Data = p0 === undefined ? undefined : p0 instanceof Float32Array ? p0 : p0.P;
    if (p0Data) {
      if (p0Data.length !== f.length) throw new SngdError(`layer ${i}: previous P has ${p0Data.length} values, expected ${d}×${d}`);
      problem ??= finiteProblem(p0Data, 'previous P');
    }
    problems.push(problem);
    const fed = problem ? identityData(d) : f;
    feeds[rootNames.F(i)] = { dtype: 'float32', dims: [d, d], data: fed };
    if (p0Data) feeds[rootNames.P0(i)] = { dtype: 'float32', dims: [d, d], data: problem ? identityData(d) : p0Data };
  });

  const out = await session.run(feeds);
  return F.map((_, i) => {
    const P = out[rootNames.P(i)]!.data as Float32Array;
    const S = out[rootNames.S(i)]!.data as Float32Array;
    const residual = (out[rootNames.residual(i)]!.data as Float32Array)[0]!;
    const trace = out[rootNames.trace(i)]?.data as Float32Array | undefined;
    let reason = problems[i];
    reason ??= finiteProblem(P, 'P') ?? finiteProblem(S, 'S');
    if (!reason && !(residual <= tolerance)) reason = `residual ‖S·P − I‖/√d = ${residual.toExponential(2)} exceeds ${tolerance}`;
    const roots: LayerRoots = { P, S, residual: Number.isFinite(residual) ? residual : Number.NaN, ok: !reason, start: warm ? 'warm' : 'cold' };
    if (reason) roots.reason = reason;
    if (trace) roots.trace = trace;
    return roots;
  });
}

export interface RootRefresherOptions {
  method: RootMethod;
  /** Iterations of the cold-start graph. Defaults: 'ns' 18, 'db' 8 (enough for cond(F) ≤ 1e4). */
  coldIterations?: number;
  /** Iterations of the warm-start graph. Defaults: 'ns' 6, 'db' 4. */
  warmIterations?: number;
  /** Use previous roots when given. Defaults to true. */
  warmStart?: boolean;
  /** A warm start that fails is retried cold for the failing layers. Defaults to true. */
  fallbackToCold?: boolean;
  tolerance?: number;
  symmetryTolerance?: number;
  scale?: RootScale;
  sessionOptions?: SessionOptions;
}

export const DEFAULT_ITERATIONS: Record<RootMethod, { cold: number; warm: number }> = {
  ns: { cold: 18, warm: 6 },
  db: { cold: 8, warm: 4 },
};

/**
 * Owns the root graphs (cold and, lazily, warm) for a fixed list of layer dimensions.
 * `refresh(F)` starts cold; `refresh(F, previous)` starts warm from the previous roots.
 */
export class RootRefresher {
  private cold?: Promise<Session>;
  private warm?: Promise<Session>;

  constructor(readonly dims: readonly number[], readonly options: RootRefresherOptions) {
    buildRootGraph([...dims], { method: options.method, iterations: 1 }); // validates dims and method now
  }

  async refresh(F: readonly Float32Array[], previous?: readonly PreviousRoots[]): Promise<LayerRoots[]> {
    if (F.length !== this.dims.length) throw new SngdError(`RootRefresher: ${this.dims.length} layers, got ${F.length} Fisher matrices`);
    F.forEach((f, i) => {
      if (f.length !== this.dims[i]! ** 2) throw new SngdError(`RootRefresher: layer ${i} is ${this.dims[i]}×${this.dims[i]}, got ${f.length} values`);
    });
    const opts = { tolerance: this.options.tolerance, symmetryTolerance: this.options.symmetryTolerance };
    if (!previous || this.options.warmStart === false) return computeRoots(await this.session('cold'), F, opts);
    const warm = await computeRoots(await this.session('warm'), F, { ...opts, previous });
    if (this.options.fallbackToCold === false || warm.every((l) => l.ok)) return warm;
    const cold = await computeRoots(await this.session('cold'), F, opts);
    return warm.map((l, i) => (l.ok ? l : cold[i]!.ok ? cold[i]! : { ...cold[i]!, reason: `warm: ${l.reason}; cold: ${cold[i]!.reason}` }));
  }

  /** The graph a refresh runs (for inspection or export). */
  graph(start: 'cold' | 'warm'): Model {
    const { method, scale } = this.options;
    const iterations = start === 'cold'
      ? this.options.coldIterations ?? DEFAULT_ITERATIONS[method].cold
      : this.options.warmIterations ?? DEFAULT_ITERATIONS[method].warm;
    return buildRootGraph([...this.dims], { method, iterations, warmStart: start === 'warm', scale });
  }

  async release(): Promise<void> {
    const sessions = [this.cold, this.warm];
    this.cold = this.warm = undefined;
    for (const s of sessions) if (s) await (await s).release();
  }

  private session(start: 'cold' | 'warm'): Promise<Session> {
    const make = () => createSession(this.graph(start), this.options.sessionOptions ?? {}, `${this.options.method} root graph (${start})`);
    if (start === 'cold') return (this.cold ??= make());
    return (this.warm ??= make());
  }
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

function inputProblem(f: Float32Array, d: number, symTol: number, what: string): string | undefined {
  const nonFinite = finiteProblem(f, what);
  if (nonFinite) return nonFinite;
  let max = 0;
  for (let i = 0; i < f.length; i++) max = Math.max(max, Math.abs(f[i]!));
  for (let i = 0; i < d; i++) {
    if (!(f[i * d + i]! > 0)) return `${what} is not positive definite (diagonal entry ${i} is ${f[i * d + i]})`;
    for (let j = i + 1; j < d; j++) {
      if (Math.abs(f[i * d + j]! - f[j * d + i]!) > symTol * max) return `${what} is not symmetric (entries (${i},${j}) and (${j},${i}) differ by ${Math.abs(f[i * d + j]! - f[j * d + i]!)})`;
    }
  }
  return undefined;
}
