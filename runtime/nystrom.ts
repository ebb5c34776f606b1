/**
 * The refresh of a Nyström Fisher layer (SNGD.md §4), on the host in float64: from the landmark
 * column and diagonal EMAs, F̂ = U·diag(Λ)·Uᵀ (src/numerics/nystrom.ts), damping
 * λ = ε_rel·tr(F) + ε_abs with tr(F) from the diagonal EMA, then the coefficients of P and S.
 * Cost O(d̃·k² + k³), the d̃-sized products through `gemm` (onnxruntime's float64 Gemm in training:
 * runtime/gemm.ts).
 */
import { gramError, hostGemm, nystromCoefficients, nystromEigen, type Gemm } from '../src/numerics/nystrom.js';
import type { NystromEma } from './fisher.js';
import type { LayerRoots } from './roots.js';

export interface NystromRefreshOptions {
  epsRel: number;
  epsAbs: number;
  /** 'damping': P = (F̂ + λI)^{-1/2}; 'mean': the unexplained spectrum at its mean level μ. */
  tail: 'damping' | 'mean';
  /** Largest max |UᵀU − I| accepted. Defaults to 1e-6. */
  tolerance?: number;
}

export async function refreshNystrom(ema: NystromEma, landmarks: number[], opts: NystromRefreshOptions, gemm: Gemm = hostGemm): Promise<LayerRoots> {
  const empty = new Float32Array(0);
  const fail = (reason: string): LayerRoots => ({ P: empty, S: empty, residual: Number.NaN, ok: false, reason, iterations: 0, start: 'cold' });
  const d = ema.dim;
  const k = ema.rank;
  const scale = ema.scale();
  // A loop, not Float64Array.from with a callback: d̃·k values (743k for d̃ = 11617, k = 64).
  const columns = ema.columns;
  const c = new Float64Array(columns.length);
  let finite = true;
  for (let i = 0; i < c.length; i++) {
    c[i] = columns[i]! * scale;
    finite &&= Number.isFinite(c[i]!);
  }
  if (!finite) return fail('landmark columns have a non-finite value');
  const trace = ema.trace();
  const lambda = opts.epsRel * trace + opts.epsAbs;
  if (!(lambda > 0 && Number.isFinite(lambda))) return fail(`damping λ = ${lambda} is not positive (tr F = ${trace})`);
  const { U, lambdas } = await nystromEigen(c, d, landmarks, gemm);
  let mu = 0;
  if (opts.tail === 'mean' && d > k) {
    const explained = lambdas.reduce((a, l) => a + l, 0);
    mu = Math.max(0, (trace - explained) / (d - k));
  }
  const { a, s, b, t } = nystromCoefficients(lambdas, lambda, mu);
  const residual = gramError(await gemm(U, U, { transA: true }));
  const tolerance = opts.tolerance ?? 1e-6;
  if (!(residual <= tolerance)) return fail(`U is not orthonormal (max |UᵀU − I| = ${residual})`);
  return { P: empty, S: empty, residual, ok: true, iterations: 0, start: 'cold', nystrom: { U, a, s, b, t, lambdas, lambda } };
}
