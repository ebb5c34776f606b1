/**
 * Nyström local Fisher layers in the graph (SNGD.md §4): the weight side
 * W_eff = W̃'·P = ((W̃'·U) ⊙ a)·Uᵀ + s·W̃', O(m·d̃·k) instead of m·d̃², and the starting roots.
 */
import type { Emitter } from '../../src/ir/emit.js';
import { Rng } from '../../src/numerics/random.js';

/** Emits W̃'·(U·diag(a)·Uᵀ + s·I) and returns its value name. */
export function emitNystromWeff(e: Emitter, w: string, u: string, a: string, s: string, name?: string): string {
  const wu = e.op('MatMul', [w, u]);
  const low = e.op('MatMul', [e.op('Mul', [wu, a]), e.op('Transpose', [u], { perm: [1, 0] })]);
  return e.op('Add', [low, e.op('Mul', [w, s])], {}, name ? { name } : {});
}

/**
 * k distinct landmark indices out of d̃, sorted, drawn with a seeded RNG; the homogeneous
 * coordinate (index d̃ − 1 of a layer with a bias) is always one of them: its column is the mean
 * input, the largest direction of most layers' F.
 */
export function uniformLandmarks(fisherDim: number, k: number, seed: number, hasBias: boolean): number[] {
  const rng = new Rng(seed);
  const pool = Array.from({ length: fisherDim }, (_, i) => i);
  const chosen: number[] = [];
  if (hasBias) {
    chosen.push(fisherDim - 1);
    pool.pop();
  }
  while (chosen.length < k) {
    const j = rng.int(pool.length);
    chosen.push(pool[j]!);
    pool[j] = pool[pool.length - 1]!;
    pool.pop();
  }
  return chosen.sort((x, y) => x - y);
}

/** A seed per layer name (FNV-1a), so landmarks do not depend on the layer order. */
export function layerSeed(name: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
