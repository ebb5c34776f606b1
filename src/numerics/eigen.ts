/**
 * Symmetric eigendecomposition (cyclic Jacobi) and the matrix powers built on it: the float64
 * reference the Fisher-root graphs (runtime/roots.ts) are checked against.
 *
 *   A = Q·diag(λ)·Qᵀ,   A^p = Q·diag(λ^p)·Qᵀ
 *
 * Cyclic Jacobi rotates away one off-diagonal pair at a time; it converges quadratically once the
 * off-diagonal mass is small and is accurate to a few ulps in every eigenvalue, which is what a
 * reference needs. Cost is about 6·n³ per sweep and ~6–10 sweeps: fine for n ≤ ~200.
 */
import { mat, type Mat } from './linalg.js';

export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /** Eigenvectors as columns, in the order of `values`. */
  vectors: Mat;
}

/** Eigendecomposition of the symmetric part of `a` (½(A + Aᵀ)); stops when off-diagonal² ≤ offTolerance·total² (default 1e-30). */
export function symmetricEigen(a: Mat, opts: { maxSweeps?: number; offTolerance?: number } = {}): SymmetricEigen {
  const n = a.rows;
  if (a.cols !== n) throw new Error(`symmetricEigen: ${a.rows}x${a.cols} is not square`);
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i * n + j] = 0.5 * (a.data[i * n + j]! + a.data[j * n + i]!);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const maxSweeps = opts.maxSweeps ?? 60;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const x = w[i * n + j]! ** 2;
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= (opts.offTolerance ?? 1e-30) * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = w[p * n + q]!;
        if (apq === 0) continue;
        const app = w[p * n + p]!;
        const aqq = w[q * n + q]!;
        // Rotation angle that zeroes a_pq (Golub & Van Loan, Alg. 8.4.1, the stable form).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ A J on rows/columns p and q.
        for (let k = 0; k < n; k++) {
          const akp = w[k * n + p]!;
          const akq = w[k * n + q]!;
          w[k * n + p] = c * akp - s * akq;
          w[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = w[p * n + k]!;
          const aqk = w[q * n + k]!;
          w[p * n + k] = c * apk - s * aqk;
          w[q * n + k] = s * apk + c * aqk;
        }
        w[p * n + q] = 0;
        w[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => w[x * n + x]! - w[y * n + y]!);
  const values = Float64Array.from(order, (i) => w[i * n + i]!);
  const vectors = mat(n, n);
  for (let col = 0; col < n; col++) for (let k = 0; k < n; k++) vectors.data[k * n + col] = v[k * n + order[col]!]!;
  return { values, vectors };
}

/** Q·diag(f(λ))·Qᵀ from an eigendecomposition. */
export function spectralFunction(e: SymmetricEigen, f: (lambda: number) => number): Mat {
  const n = e.values.length;
  const q = e.vectors.data;
  const fl = Float64Array.from(e.values, f);
  const out = mat(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q[i * n + k]! * fl[k]! * q[j * n + k]!;
      out.data[i * n + j] = s;
      out.data[j * n + i] = s;
    }
  }
  return out;
}

/**
 * Principal square root and inverse square root of a symmetric positive-definite matrix:
 * `S = A^{1/2}`, `P = A^{-1/2}` (both symmetric). Throws when A is not positive definite.
 */
export function spdRoots(a: Mat): { S: Mat; P: Mat; eigenvalues: Float64Array } {
  const e = symmetricEigen(a);
  const lo = e.values[0]!;
  if (!(lo > 0)) throw new Error(`spdRoots: matrix is not positive definite (smallest eigenvalue ${lo})`);
  return { S: spectralFunction(e, Math.sqrt), P: spectralFunction(e, (l) => 1 / Math.sqrt(l)), eigenvalues: e.values };
}

/**
 * A symmetric matrix Q·diag(λ)·Qᵀ with the given eigenvalues and a random orthogonal Q (a product
 * of `reflections` Householder reflections drawn from `normal`).
 */
export function withSpectrum(lambda: ArrayLike<number>, normal: () => number, reflections = 4): Mat {
  const n = lambda.length;
  const q = mat(n, n);
  for (let i = 0; i < n; i++) q.data[i * n + i] = 1;
  for (let r = 0; r < reflections; r++) {
    const v = new Float64Array(n);
    let norm = 0;
    for (let i = 0; i < n; i++) norm += (v[i] = normal()) ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    for (let i = 0; i < n; i++) v[i]! /= norm;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += q.data[i * n + j]! * v[j]!;
      for (let j = 0; j < n; j++) q.data[i * n + j]! -= 2 * dot * v[j]!;
    }
  }
  return spectralFunction({ values: Float64Array.from(lambda), vectors: q }, (l) => l);
}
