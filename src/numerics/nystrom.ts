/**
 * Nyström local Fisher roots (SNGD.md §4), float64.
 *
 * From the landmark columns C = F[:, I] (d × k) of a Fisher matrix F (d × d):
 *
 *   W = C[I, :] (symmetrized),  W = Q·diag(w)·Qᵀ,  B = C·Q·diag(w)^{-1/2} (eigenvalues below
 *   1e-8·max cut),  BᵀB = V·diag(Λ)·Vᵀ,  U₁ = B·V·diag(Λ)^{-1/2},  U = U₁·(3I − U₁ᵀU₁)/2
 *
 * so F̂ = C·W⁺·Cᵀ = B·Bᵀ = U·diag(Λ)·Uᵀ with orthonormal U (d × k; padded with orthonormal
 * columns of eigenvalue 0 when eigenvalues were cut). U₁ holds F̂'s eigenvectors; in floating
 * point its columns are orthonormal only to about 1e-12 (the Jacobi tolerance) or ε·Λ_max/Λ_j,
 * and the second pass (a Newton–Schulz step to the nearest orthonormal matrix, in the spirit of
 * Cholesky-QR2) brings them to working precision. Every product with a
 * d-sized factor goes through `gemm`: the host loops here (tests, small layers), onnxruntime's
 * float64 Gemm in training (runtime/gemm.ts: ~100× faster at d = 11617, k = 64); the rest is k × k.
 * With damping λ and a tail level μ ≥ 0 (the eigenvalue assumed for every direction outside
 * span U; 0 is the plain Nyström approximation):
 *
 *   P = U·diag(a)·Uᵀ + s·I,  a_i = (λ_i+λ)^{-1/2} − (μ+λ)^{-1/2},  s = (μ+λ)^{-1/2}
 *   S = U·diag(b)·Uᵀ + t·I,  b_i = (λ_i+λ)^{1/2} − (μ+λ)^{1/2},    t = (μ+λ)^{1/2}
 *
 * Then S·P = I and P² = (F̂ + μ(I − UUᵀ) + λI)^{-1} exactly (UᵀU = I).
 */
import { mat, matmul, transpose, type Mat } from './linalg.js';
import { symmetricEigen } from './eigen.js';

/** op(A)·op(B) with op(X) = Xᵀ where asked; may run elsewhere (onnxruntime), hence a Promise. */
export type Gemm = (a: Mat, b: Mat, t?: { transA?: boolean; transB?: boolean }) => Promise<Mat>;

/** The host's float64 loops (src/numerics/linalg.ts). */
export const hostGemm: Gemm = async (a, b, t = {}) => matmul(t.transA ? transpose(a) : a, t.transB ? transpose(b) : b);

export interface NystromRoots {
  /** d × k, orthonormal columns (row-major). */
  U: Mat;
  /** Eigenvalues of F̂ along U's columns (≥ 0). */
  lambdas: Float64Array;
  a: Float64Array;
  s: number;
  b: Float64Array;
  t: number;
}

/** Relative cut for the eigenvalues of W = C[I, :] in its pseudo-inverse root, and of BᵀB. */
export const NYSTROM_CUT = 1e-8;
/** Jacobi stops once the off-diagonal mass is below this fraction of the total (eigenvalues to ~1e-12 relative). */
const EIGEN_TOLERANCE = 1e-24;

/**
 * U and Λ of F̂ = C·W⁺·Cᵀ from the landmark columns `c` (row-major d × k) and landmark indices.
 */
export async function nystromEigen(c: Float64Array, d: number, landmarks: ArrayLike<number>, gemm: Gemm = hostGemm): Promise<{ U: Mat; lambdas: Float64Array }> {
  const k = landmarks.length;
  if (c.length !== d * k) throw new Error(`nystromEigen: C has ${c.length} values, expected ${d}×${k}`);
  const w = mat(k, k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) w.data[i * k + j] = 0.5 * (c[landmarks[i]! * k + j]! + c[landmarks[j]! * k + i]!);
  const U = mat(d, k);
  const lambdas = new Float64Array(k);
  const ew = symmetricEigen(w, { offTolerance: EIGEN_TOLERANCE });
  const wKept = keptDescending(ew.values);
  // B = C·Q_kept·diag(w^{-1/2}): d × r.
  const bMat = wKept.length > 0 ? await gemm(mat(d, k, c), scaledColumns(ew, wKept, -0.5)) : undefined;
  // F̂ = B·Bᵀ has the nonzero eigenvalues of BᵀB (r × r) and eigenvectors B·V·Λ^{-1/2}.
  const gram = bMat && symmetricEigen(await gemm(bMat, bMat, { transA: true }), { offTolerance: EIGEN_TOLERANCE });
  const kept = gram ? keptDescending(gram.values) : [];
  const r = kept.length;
  if (bMat && gram && r > 0) {
    const u1 = await gemm(bMat, scaledColumns(gram, kept, -0.5));
    // Second pass, one Newton–Schulz step towards the polar factor: U = U₁·(3I − U₁ᵀU₁)/2. U₁ is
    // orthonormal up to δ ≈ 1e-12 (Jacobi's stopping point on BᵀB, and ε·Λ_max/Λ_j), so U is up to ~δ².
    const e = await gemm(u1, u1, { transA: true });
    for (let i = 0; i < e.data.length; i++) e.data[i] = (i % (r + 1) === 0 ? 3 : 0) / 2 - e.data[i]! / 2;
    const u = await gemm(u1, e);
    const ud = u.data;
    const out = U.data;
    for (let j = 0; j < r; j++) lambdas[j] = Math.max(0, gram.values[kept[j]!]!);
    for (let i = 0; i < d; i++) for (let j = 0; j < r; j++) out[i * k + j] = ud[i * r + j]!;
  }
  if (r < k) completeBasis(U, r);
  return { U, lambdas };
}

/** Indices of the eigenvalues above NYSTROM_CUT·max, largest first. */
function keptDescending(values: Float64Array): number[] {
  const max = Math.max(0, ...values);
  return Array.from(values.keys()).filter((i) => max > 0 && values[i]! > NYSTROM_CUT * max).sort((x, y) => values[y]! - values[x]!);
}

/** Q[:, cols]·diag(v[cols]^p) for A = Q·diag(v)·Qᵀ. */
function scaledColumns(e: { values: Float64Array; vectors: Mat }, cols: number[], p: number): Mat {
  const n = e.values.length;
  const q = mat(n, cols.length);
  cols.forEach((col, j) => {
    const f = e.values[col]! ** p;
    for (let i = 0; i < n; i++) q.data[i * cols.length + j] = e.vectors.data[i * n + col]! * f;
  });
  return q;
}

/** a, s, b, t of P and S from Λ, damping λ > 0 and tail level μ ≥ 0. */
export function nystromCoefficients(lambdas: Float64Array, lambda: number, mu = 0): { a: Float64Array; s: number; b: Float64Array; t: number } {
  const base = mu + lambda;
  const s = 1 / Math.sqrt(base);
  const t = Math.sqrt(base);
  const a = Float64Array.from(lambdas, (l) => 1 / Math.sqrt(l + lambda) - s);
  const b = Float64Array.from(lambdas, (l) => Math.sqrt(l + lambda) - t);
  return { a, s, b, t };
}

export async function nystromRoots(c: Float64Array, d: number, landmarks: ArrayLike<number>, lambda: number, mu = 0, gemm: Gemm = hostGemm): Promise<NystromRoots> {
  const { U, lambdas } = await nystromEigen(c, d, landmarks, gemm);
  return { U, lambdas, ...nystromCoefficients(lambdas, lambda, mu) };
}

/**
 * X·(U·diag(coef)·Uᵀ + scalar·I) for X (rows × d): O(rows·d·k). The second product reads U's rows
 * as they lie (out[i, c] = Σ_j xu[i, j]·U[c, j]), so Uᵀ (d × k, as large as U) is never built.
 */
export function applyLowRankRight(x: Mat, u: Mat, coef: ArrayLike<number>, scalar: number): Mat {
  const xu = matmul(x, u);
  const { rows, cols: d } = x;
  const k = u.cols;
  const xd = x.data;
  const ud = u.data;
  const xud = xu.data;
  for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) xud[i * k + j]! *= coef[j]!;
  const out = mat(rows, d);
  const od = out.data;
  for (let i = 0; i < rows; i++) {
    const xi = i * k;
    for (let c = 0; c < d; c++) {
      const uc = c * k;
      let v = 0;
      for (let j = 0; j < k; j++) v += xud[xi + j]! * ud[uc + j]!;
      od[i * d + c] = v + scalar * xd[i * d + c]!;
    }
  }
  return out;
}

/** applyLowRankRight with its two d-sized products through `gemm` (the runtime's remap at a refresh). */
export async function applyLowRankRightBy(x: Mat, u: Mat, coef: ArrayLike<number>, scalar: number, gemm: Gemm): Promise<Mat> {
  const xu = await gemm(x, u);
  const k = u.cols;
  const xud = xu.data;
  for (let i = 0; i < xu.rows; i++) for (let j = 0; j < k; j++) xud[i * k + j]! *= coef[j]!;
  const out = await gemm(xu, u, { transB: true });
  const od = out.data;
  const xd = x.data;
  for (let i = 0; i < od.length; i++) od[i]! += scalar * xd[i]!;
  return out;
}

/** max |G − I| for a Gram matrix G = UᵀU. */
export function gramError(g: Mat): number {
  let worst = 0;
  for (let p = 0; p < g.rows; p++) for (let q = 0; q < g.cols; q++) worst = Math.max(worst, Math.abs(g.data[p * g.cols + q]! - (p === q ? 1 : 0)));
  return worst;
}

/** U·diag(coef)·Uᵀ + scalar·I as a dense d × d matrix (tests, small layers). */
export function lowRankDense(u: Mat, coef: ArrayLike<number>, scalar: number): Mat {
  const d = u.rows;
  const eye = mat(d, d);
  for (let i = 0; i < d; i++) eye.data[i * d + i] = 1;
  return applyLowRankRight(eye, u, coef, scalar);
}

/** max |UᵀU − I|: how far U's columns are from orthonormal. */
export function orthonormalityError(u: Mat): number {
  // UᵀU = Σ_rows uᵢ·uᵢᵀ: one pass over U's rows, upper triangle only (half of matmul(Uᵀ, U), no transpose).
  const { rows: d, cols: k } = u;
  const ud = u.data;
  const g = new Float64Array(k * k);
  for (let i = 0; i < d; i++) {
    const row = i * k;
    for (let p = 0; p < k; p++) {
      const v = ud[row + p]!;
      if (v === 0) continue;
      const gp = p * k;
      for (let q = p; q < k; q++) g[gp + q] += v * ud[row + q]!;
    }
  }
  let worst = 0;
  for (let p = 0; p < k; p++) for (let q = p; q < k; q++) worst = Math.max(worst, Math.abs(g[p * k + q]! - (p === q ? 1 : 0)));
  // A NaN in U reaches a diagonal entry, and Math.max passes it on: it never reads as a small error.
  return worst;
}

/** Fills columns [from, k) of U with unit vectors orthogonalized against the columns before them. */
function completeBasis(u: Mat, from: number): void {
  const { rows: d, cols: k } = u;
  let col = from;
  for (let e = 0; e < d && col < k; e++) {
    const v = new Float64Array(d);
    v[e] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < col; p++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += u.data[i * k + p]! * v[i]!;
        for (let i = 0; i < d; i++) v[i]! -= dot * u.data[i * k + p]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += v[i]! ** 2;
    norm = Math.sqrt(norm);
    if (norm < 0.5) continue;
    for (let i = 0; i < d; i++) u.data[i * k + col] = v[i]! / norm;
    col++;
  }
}
