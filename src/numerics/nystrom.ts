/**
 * Nyström local Fisher roots (SNGD.md §4), float64 on the host.
 *
 * From the landmark columns C = F[:, I] (d × k) of a Fisher matrix F (d × d):
 *
 *   W = C[I, :] (symmetrized),  W = Q·diag(w)·Qᵀ,  B = C·Q·diag(w)^{-1/2} (eigenvalues below
 *   1e-8·max cut),  B = Q_B·R (thin QR, modified Gram–Schmidt twice),  R·Rᵀ = V·Λ·Vᵀ,  U = Q_B·V
 *
 * so F̂ = C·W⁺·Cᵀ = B·Bᵀ = U·diag(Λ)·Uᵀ with orthonormal U (d × k; padded with orthonormal
 * columns of eigenvalue 0 when eigenvalues were cut). With damping λ and a tail level μ ≥ 0 (the
 * eigenvalue assumed for every direction outside span U; 0 is the plain Nyström approximation):
 *
 *   P = U·diag(a)·Uᵀ + s·I,  a_i = (λ_i+λ)^{-1/2} − (μ+λ)^{-1/2},  s = (μ+λ)^{-1/2}
 *   S = U·diag(b)·Uᵀ + t·I,  b_i = (λ_i+λ)^{1/2} − (μ+λ)^{1/2},    t = (μ+λ)^{1/2}
 *
 * Then S·P = I and P² = (F̂ + μ(I − UUᵀ) + λI)^{-1} exactly (UᵀU = I).
 */
import { mat, matmul, transpose, type Mat } from './linalg.js';
import { symmetricEigen } from './eigen.js';

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

/** Relative cut for the eigenvalues of W = C[I, :] in its pseudo-inverse root. */
export const NYSTROM_CUT = 1e-8;
/** Jacobi stops once the off-diagonal mass is below this fraction of the total (eigenvalues to ~1e-12 relative). */
const EIGEN_TOLERANCE = 1e-24;

/**
 * U and Λ of F̂ = C·W⁺·Cᵀ from the landmark columns `c` (row-major d × k) and landmark indices.
 */
export function nystromEigen(c: Float64Array, d: number, landmarks: ArrayLike<number>): { U: Mat; lambdas: Float64Array } {
  const k = landmarks.length;
  if (c.length !== d * k) throw new Error(`nystromEigen: C has ${c.length} values, expected ${d}×${k}`);
  const w = mat(k, k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) w.data[i * k + j] = 0.5 * (c[landmarks[i]! * k + j]! + c[landmarks[j]! * k + i]!);
  const ew = symmetricEigen(w, { offTolerance: EIGEN_TOLERANCE });
  const wMax = Math.max(0, ...ew.values);
  const kept: number[] = [];
  for (let i = 0; i < k; i++) if (wMax > 0 && ew.values[i]! > NYSTROM_CUT * wMax) kept.push(i);
  const r = kept.length;
  // B = C·Q_kept·diag(w^{-1/2}): d × r.
  const qk = mat(k, r);
  kept.forEach((col, j) => {
    const scale = 1 / Math.sqrt(ew.values[col]!);
    for (let i = 0; i < k; i++) qk.data[i * r + j] = ew.vectors.data[i * k + col]! * scale;
  });
  const bMat = matmul(mat(d, k, c), qk);
  const { q, rMat } = thinQr(bMat);
  const rrt = matmul(rMat, transpose(rMat));
  const e = symmetricEigen(rrt, { offTolerance: EIGEN_TOLERANCE });
  // Descending eigenvalues.
  const order = Array.from({ length: r }, (_, i) => r - 1 - i);
  const v = mat(r, r);
  for (let i = 0; i < r; i++) order.forEach((src, j) => (v.data[i * r + j] = e.vectors.data[i * r + src]!));
  const ur = matmul(q, v);
  const U = mat(d, k);
  const lambdas = new Float64Array(k);
  for (let j = 0; j < r; j++) {
    lambdas[j] = Math.max(0, e.values[order[j]!]!);
    for (let i = 0; i < d; i++) U.data[i * k + j] = ur.data[i * r + j]!;
  }
  if (r < k) completeBasis(U, r);
  return { U, lambdas };
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

export function nystromRoots(c: Float64Array, d: number, landmarks: ArrayLike<number>, lambda: number, mu = 0): NystromRoots {
  const { U, lambdas } = nystromEigen(c, d, landmarks);
  return { U, lambdas, ...nystromCoefficients(lambdas, lambda, mu) };
}

/** X·(U·diag(coef)·Uᵀ + scalar·I) for X (rows × d): O(rows·d·k). */
export function applyLowRankRight(x: Mat, u: Mat, coef: ArrayLike<number>, scalar: number): Mat {
  const xu = matmul(x, u);
  const k = u.cols;
  for (let i = 0; i < xu.rows; i++) for (let j = 0; j < k; j++) xu.data[i * k + j]! *= coef[j]!;
  const out = matmul(xu, transpose(u));
  for (let i = 0; i < out.data.length; i++) out.data[i]! += scalar * x.data[i]!;
  return out;
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
  const g = matmul(transpose(u), u);
  let worst = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) worst = Math.max(worst, Math.abs(g.data[i * g.cols + j]! - (i === j ? 1 : 0)));
  return worst;
}

/** Thin QR by modified Gram–Schmidt, each column orthogonalized twice (stable to working precision). */
function thinQr(b: Mat): { q: Mat; rMat: Mat } {
  const { rows: d, cols: r } = b;
  // Columns stored contiguously (qt is Qᵀ) for cache-friendly dot products.
  const qt = transpose(b).data;
  const rMat = mat(r, r);
  for (let j = 0; j < r; j++) {
    const cj = j * d;
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const cp = p * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += qt[cp + i]! * qt[cj + i]!;
        for (let i = 0; i < d; i++) qt[cj + i]! -= dot * qt[cp + i]!;
        rMat.data[p * r + j]! += dot;
      }
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += qt[cj + i]! ** 2;
    norm = Math.sqrt(norm);
    rMat.data[j * r + j] = norm;
    if (norm > 0) for (let i = 0; i < d; i++) qt[cj + i]! /= norm;
  }
  return { q: transpose(mat(r, d, qt)), rMat };
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
