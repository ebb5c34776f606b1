/**
 * The Fisher-root refresh graphs (runtime/roots.ts) against the float64 Jacobi reference
 * (src/numerics/eigen.ts). Identity 4 of SNGD.md §3:
 *   cold:  ‖S·S − F‖/‖F‖, ‖S·P − I‖, ‖P·F·P − I‖, P and S symmetric
 *   warm:  ‖S·Sᵀ − F‖/‖F‖, ‖S·P − I‖, ‖P·F·Pᵀ − I‖ (PᵀP = F⁻¹: W̃ = W̃'·P is natural-gradient)
 * for SPD F of dims 1, 5, 81 with condition numbers up to 1e4, all layers in one graph.
 */
import { describe, expect, it } from 'vitest';
import { buildRootGraph, computeRoots, RootRefresher, rootNames, type LayerRoots, type RootGraphOptions } from '../runtime/roots.js';
import { buildTrackRemapGraph } from '../runtime/remap.js';
import { runModel } from '../runtime/ort.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { SngdError } from '../src/errors.js';
import { spdRoots, symmetricEigen, withSpectrum } from '../src/numerics/eigen.js';
import { diffNorm, frobenius, identity, mat, matmul, transpose, type Mat } from '../src/numerics/linalg.js';
import { Rng } from '../src/numerics/random.js';

const DIMS = [1, 5, 81, 81];
const rng = new Rng(4);

/** Log-spaced spectrum from top/cond to top. */
function spectrum(d: number, cond: number, top = 3): number[] {
  return Array.from({ length: d }, (_, i) => top * cond ** (-i / Math.max(1, d - 1)));
}

/** Damped second moment of N random sparse [x; 1] rows, as the trainer builds it. */
function fromData(d: number, n: number, epsRel: number, r: Rng): Mat {
  const f = mat(d, d);
  for (let s = 0; s < n; s++) {
    const x = Float64Array.from({ length: d }, (_, i) => (i === d - 1 ? 1 : r.next() < 0.3 ? r.uniform(0, 1) : 0));
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) f.data[i * d + j] += (x[i]! * x[j]!) / n;
  }
  let tr = 0;
  for (let i = 0; i < d; i++) tr += f.data[i * d + i]!;
  for (let i = 0; i < d; i++) f.data[i * d + i] += epsRel * tr;
  return f;
}

/** F (float64, then rounded to float32 once so the reference sees exactly the graph's input). */
function rounded(m: Mat): Mat {
  return mat(m.rows, m.cols, Float32Array.from(m.data));
}

const layersF: Mat[] = [
  rounded(mat(1, 1, [0.37])),
  rounded(withSpectrum(spectrum(5, 1e4), () => rng.normal())),
  rounded(withSpectrum(spectrum(81, 1e4, 0.02), () => rng.normal())),
  rounded(fromData(81, 400, 1e-3, rng)),
];
/**
 * Fisher matrices after training moved on, for warm starts: the data layer as the trainer's EMA
 * sees it (0.9·F + 0.1·F_new from fresh rows); the others moved by 30% in their own metric,
 * F' = F^{1/2}(I + 0.3·R)F^{1/2} with ‖R‖₂ ≤ 1, so the warm-start M = P0·F'·P0ᵀ ≈ I + 0.3·R.
 */
const movedF: Mat[] = layersF.map((f, i) => {
  if (i === 3) {
    const fresh = fromData(81, 400, 1e-3, rng);
    return rounded(mat(81, 81, f.data.map((v, k) => 0.9 * v + 0.1 * fresh.data[k]!)));
  }
  const d = f.rows;
  const R = withSpectrum(Array.from({ length: d }, () => rng.uniform(-1, 1)), () => rng.normal());
  const IR = mat(d, d, identity(d).data.map((v, k) => v + 0.3 * R.data[k]!));
  const { S } = spdRoots(f);
  const moved = matmul(matmul(S, IR), S);
  return rounded(mat(d, d, moved.data.map((v, k) => 0.5 * (v + moved.data[(k % d) * d + Math.floor(k / d)]!))));
});
/** λ_min(F) ≥ f·tr(F) with f = dampingRel/(1 + d·dampingRel) holds for all four with this. */
const DAMPING_REL = 1e-5;

const f32 = (m: Mat) => Float32Array.from(m.data);
const asMat = (a: Float32Array, d: number) => mat(d, d, a);
const rel = (a: Mat, b: Mat) => diffNorm(a, b) / frobenius(b);
const distI = (a: Mat) => diffNorm(a, identity(a.rows)) / Math.sqrt(a.rows);
const asymmetry = (a: Mat) => diffNorm(a, transpose(a)) / frobenius(a);

interface Errors { ssF: number; spI: number; pfpI: number; pRef: number; sRef: number; metricRef: number; asymP: number }

/** Identity 4 and the distance to the float64 reference for one layer's roots. */
function errors(roots: LayerRoots, F: Mat, warm: boolean): Errors {
  const d = F.rows;
  const P = asMat(roots.P, d);
  const S = asMat(roots.S, d);
  const ref = spdRoots(F);
  const Pt = transpose(P);
  const finv = matmul(ref.P, ref.P);
  return {
    ssF: rel(warm ? matmul(S, transpose(S)) : matmul(S, S), F),
    spI: distI(matmul(S, P)),
    pfpI: distI(matmul(matmul(P, F), warm ? Pt : P)),
    // Warm roots are F^{±1/2} only up to an orthogonal factor: compare what is defined.
    pRef: warm ? Number.NaN : rel(P, ref.P),
    sRef: warm ? Number.NaN : rel(S, ref.S),
    metricRef: rel(matmul(Pt, P), finv),
    asymP: asymmetry(P),
  };
}

function expectIdentity4(roots: LayerRoots[], Fs: Mat[], warm: boolean, label: string): void {
  roots.forEach((r, i) => {
    const e = errors(r, Fs[i]!, warm);
    const where = `${label} layer ${i} (d=${Fs[i]!.rows}): ${JSON.stringify(e)} residual ${r.residual} ${r.reason ?? ''}`;
    expect(r.ok, where).toBe(true);
    expect(r.residual, where).toBeLessThan(1e-3);
    expect(e.ssF, where).toBeLessThan(2e-4);
    expect(e.spI, where).toBeLessThan(1e-3);
    expect(e.pfpI, where).toBeLessThan(1e-3);
    expect(e.metricRef, where).toBeLessThan(2e-3);
    if (!warm) {
      expect(e.pRef, where).toBeLessThan(1e-3);
      expect(e.sRef, where).toBeLessThan(1e-4);
      expect(e.asymP, where).toBeLessThan(1e-6);
    }
  });
}

describe('float64 reference (Jacobi)', () => {
  it('diagonalizes a known matrix and gives exact roots', () => {
    const e = symmetricEigen(mat(3, 3, [2, 1, 0, 1, 3, 1, 0, 1, 4]));
    expect(Array.from(e.values).map((v) => +v.toFixed(12))).toEqual([3 - Math.sqrt(3), 3, 3 + Math.sqrt(3)].map((v) => +v.toFixed(12)));
    for (const F of layersF) {
      const { S, P } = spdRoots(F);
      expect(rel(matmul(S, S), F)).toBeLessThan(1e-12);
      expect(distI(matmul(S, P))).toBeLessThan(1e-10);
    }
    expect(() => spdRoots(mat(2, 2, [1, 2, 2, 1]))).toThrow(/not positive definite/);
  });
});

/** Graph options per variant; a warm stop is stricter (its residual amplifies ‖Y·Z − I‖ by ≤ √cond F). */
const VARIANTS: { label: string; opts: Omit<RootGraphOptions, 'warmStart'>; warm: Partial<RootGraphOptions> }[] = [
  { label: 'ns plain', opts: { method: 'ns', iterations: 18, scaledNs: false }, warm: { iterations: 8 } },
  { label: 'ns scaled', opts: { method: 'ns', iterations: 10, dampingRel: DAMPING_REL }, warm: { iterations: 8 } },
  { label: 'ns loop', opts: { method: 'ns', iterations: 30, dampingRel: DAMPING_REL, stopAt: 1e-4 }, warm: { iterations: 16, stopAt: 1e-6 } },
  { label: 'db', opts: { method: 'db', iterations: 7 }, warm: { iterations: 5 } },
  { label: 'db loop', opts: { method: 'db', iterations: 12, stopAt: 1e-4 }, warm: { iterations: 8, stopAt: 1e-6 } },
];

describe('root graphs: identity 4 against the reference, dims [1, 5, 81, 81] in one graph', () => {
  for (const v of VARIANTS) {
    it(`${v.label}: cold, then warm from the cold roots after F moved`, async () => {
      const cold = await computeRoots(buildRootGraph(DIMS, { ...v.opts }), layersF.map(f32));
      expectIdentity4(cold, layersF, false, `${v.label} cold`);
      const warm = await computeRoots(buildRootGraph(DIMS, { ...v.opts, ...v.warm, warmStart: true }), movedF.map(f32), { previous: cold });
      expectIdentity4(warm, movedF, true, `${v.label} warm`);
      expect(warm.every((l) => l.start === 'warm')).toBe(true);
    });
  }

  it("warm start from P alone ('P'): S = F·Pᵀ, S·P accurate to ~ε·cond(F)", async () => {
    const cold = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 10, dampingRel: DAMPING_REL }), layersF.map(f32));
    const warm = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 8, warmStart: 'P' }), movedF.map(f32), { previous: cold.map((l) => l.P) });
    warm.forEach((l, i) => {
      const e = errors(l, movedF[i]!, true);
      const where = `layer ${i}: ${JSON.stringify(e)}`;
      expect(l.ok, where).toBe(true);
      expect(e.pfpI, where).toBeLessThan(1e-3);
      expect(e.metricRef, where).toBeLessThan(2e-3);
      // ε·cond = 6e-8·1e4: the S0 variant above is ~100× closer.
      expect(e.spI, where).toBeLessThan(1e-3);
    });
  });

  it("'track': one or two NS steps correct the cold roots for the moved F (P = Z·P0, Y ≈ Z⁻¹); the gate estimates ρ(P0·F·P0ᵀ − I) from below", async () => {
    const cold = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 10, dampingRel: DAMPING_REL }), layersF.map(f32));
    const whiteningAfter: number[][] = [];
    for (const steps of [1, 2]) {
      const tracked = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: steps, warmStart: 'track' }), movedF.map(f32), { previous: cold.map((l) => l.P) });
      whiteningAfter.push(tracked.map((l, i) => {
        const F = movedF[i]!;
        const d = F.rows;
        const P = asMat(l.P, d);
        const P0 = asMat(cold[i]!.P, d);
        const spectralDist = (m: Mat) => Math.max(...Array.from(symmetricEigen(m).values, (x) => Math.abs(x - 1)));
        const rho = spectralDist(matmul(matmul(P0, F), transpose(P0)));
        const whitening = spectralDist(matmul(matmul(P, F), transpose(P)));
        const where = `${steps} step(s), layer ${i}: ok ${l.ok} ${l.reason ?? ''} gate ${l.track?.gate} ρ ${rho} residual ${l.residual} whitening ${whitening}`;
        expect(l.ok && l.start === 'track' && !l.track!.keep && l.iterations === steps, where).toBe(true);
        // The residual estimates the whitening error left (¾ρ² per step, from the gate ≥ 0.85ρ).
        expect(whitening, where).toBeLessThan(1.6 * l.residual + 1e-4);
        expect(whitening, where).toBeLessThan(steps === 1 ? 0.85 * rho * rho + 1e-4 : 0.6 * rho ** 4 + 1e-4);
        expect(rel(matmul(transpose(P), P), matmul(spdRoots(F).P, spdRoots(F).P)), where).toBeLessThan(2 * whitening + 1e-3);
        expect(rel(P, matmul(asMat(l.track!.Z, d), P0)), where).toBeLessThan(1e-5);
        // Y = 2I − Z: ‖I − Z·Y‖ = ‖(I − Z)²‖, about ρ²/4.
        expect(distI(matmul(asMat(l.track!.Z, d), asMat(l.track!.Y, d))), where).toBeLessThan(0.3 * rho * rho + 1e-5);
        // Power iterations: never above ρ (beyond rounding), and close to it on these spectra.
        expect(l.track!.gate, where).toBeLessThan(rho * 1.001 + 1e-6);
        expect(l.track!.gate, where).toBeGreaterThan(i === 0 ? rho - 1e-6 : rho * 0.85);
        return whitening;
      }));
    }
    whiteningAfter[0]!.forEach((one, i) => expect(whiteningAfter[1]![i]!, `layer ${i}`).toBeLessThan(one));
    // A gate above every layer's ρ: all kept, as they were; an unmoved F is kept by any gate.
    const kept = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 1, warmStart: 'track', gate: 0.5 }), movedF.map(f32), { previous: cold.map((l) => l.P), gate: 0.5 });
    kept.forEach((l, i) => {
      expect([l.ok, l.track!.keep], `layer ${i}`).toEqual([true, true]);
      expect(Array.from(l.P), `layer ${i}`).toEqual(Array.from(cold[i]!.P));
      expect(distI(asMat(l.track!.Z, DIMS[i]!)), `layer ${i}`).toBe(0);
    });
    const still = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 1, warmStart: 'track', gate: 1e-3 }), layersF.map(f32), { previous: cold.map((l) => l.P), gate: 1e-3 });
    expect(still.every((l) => l.track!.keep && l.track!.gate < 1e-3)).toBe(true);
  });

  it("'track' remap: W̃'_new·Z = W̃' solved on the rows to float32 rounding, and P_new = Z·P0 keeps W̃'·P", async () => {
    const cold = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 10, dampingRel: DAMPING_REL }), layersF.map(f32));
    const tracked = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 1, warmStart: 'track' }), movedF.map(f32), { previous: cold.map((l) => l.P) });
    const shapes = DIMS.map((d, i): [number, number] => [3 + i, d]);
    const W = shapes.map(([m, d]) => mat(m, d, Array.from({ length: m * d }, () => rng.normal())));
    const feeds: Record<string, Tensor> = {};
    shapes.forEach(([m, d], i) => {
      feeds[`W/${i}`] = { dtype: 'float32', dims: [m, d], data: f32(W[i]!) };
      feeds[`Z/${i}`] = { dtype: 'float32', dims: [d, d], data: tracked[i]!.track!.Z };
      feeds[`Y/${i}`] = { dtype: 'float32', dims: [d, d], data: tracked[i]!.track!.Y };
    });
    const out = await runModel(buildTrackRemapGraph(shapes), feeds);
    shapes.forEach(([m, d], i) => {
      const X = mat(m, d, out[`out/${i}`]!.data as Float32Array);
      const residual = (out[`residual/${i}`]!.data as Float32Array)[0]!;
      expect(rel(matmul(X, asMat(tracked[i]!.track!.Z, d)), W[i]!), `layer ${i}`).toBeLessThan(1e-5);
      expect(residual, `layer ${i}`).toBeLessThan(1e-5);
      // The function: W̃'_new·P_new = W̃'·P_old.
      expect(rel(matmul(X, asMat(tracked[i]!.P, d)), matmul(W[i]!, asMat(cold[i]!.P, d))), `layer ${i}`).toBeLessThan(1e-5);
    });
  });

  it('a warm start needs fewer steps than a cold one, and scaled NS fewer than plain', async () => {
    const steps = async (opts: RootGraphOptions, F: Mat[], previous?: LayerRoots[]) =>
      Math.max(...(await computeRoots(buildRootGraph(DIMS, opts), F.map(f32), { previous })).map((l) => l.iterations));
    const cold = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 30, stopAt: 1e-4 }), layersF.map(f32));
    const plainCold = Math.max(...cold.map((l) => l.iterations));
    const scaledCold = await steps({ method: 'ns', iterations: 30, stopAt: 1e-4, dampingRel: DAMPING_REL }, layersF);
    const warm = await steps({ method: 'ns', iterations: 30, stopAt: 1e-4, warmStart: true }, movedF, cold);
    const dbCold = await steps({ method: 'db', iterations: 12, stopAt: 1e-4 }, layersF);
    const dbWarm = await steps({ method: 'db', iterations: 12, stopAt: 1e-4, warmStart: true }, movedF, cold);
    // cond 1e4: plain NS ~15 steps, scaled ~9, warm ~6; DB ~5 cold, ~4 warm.
    expect(scaledCold).toBeLessThan(plainCold - 3);
    expect(warm).toBeLessThan(scaledCold);
    expect(dbWarm).toBeLessThan(dbCold);
  });

  it('a dampingRel that overstates the damping costs steps, not correctness', async () => {
    for (const dampingRel of [1e-3, 0.1, 10]) {
      const out = await computeRoots(buildRootGraph(DIMS, { method: 'ns', iterations: 40, stopAt: 1e-4, dampingRel }), layersF.map(f32));
      expectIdentity4(out, layersF, false, `dampingRel ${dampingRel}`);
      expect(Math.max(...out.map((l) => l.iterations))).toBeLessThan(20);
    }
  });

  it('the scale choice: the moment bound is never above ‖F‖_F and converges in fewer plain steps', async () => {
    const traceOf = async (scale: 'bound' | 'frobenius' | 'trace') =>
      (await computeRoots(buildRootGraph([81], { method: 'ns', iterations: 24, scaledNs: false, scale, trace: true }), [f32(layersF[3]!)]))[0]!.trace!;
    const first = (t: Float32Array) => Array.from(t).findIndex((x) => x < 1e-3);
    const [bound, fro, tr] = [await traceOf('bound'), await traceOf('frobenius'), await traceOf('trace')];
    expect(first(bound)).toBeGreaterThan(0);
    expect(first(bound)).toBeLessThanOrEqual(first(fro));
    expect(first(fro)).toBeLessThan(first(tr));
  });
});

describe('one graph for all layers', () => {
  it('batches equal dimensions: three 81-dim layers cost the MatMuls of one', () => {
    const count = (dims: number[]) => buildRootGraph(dims, { method: 'ns', iterations: 6 }).graph.nodes.filter((n) => n.opType === 'MatMul').length;
    expect(count([81, 81, 81])).toBe(count([81]));
    expect(count([785, 81, 81, 81])).toBe(2 * count([81]));
  });

  it('names inputs and outputs by layer', () => {
    const m = buildRootGraph([3, 4], { method: 'db', iterations: 2, warmStart: true });
    expect(m.graph.inputs.map((v) => v.name)).toEqual(['F/0', 'P0/0', 'S0/0', 'F/1', 'P0/1', 'S0/1']);
    expect(buildRootGraph([3], { method: 'ns', iterations: 2, warmStart: 'P' }).graph.inputs.map((v) => v.name)).toEqual(['F/0', 'P0/0']);
    expect(m.graph.outputs.map((v) => v.name)).toEqual([0, 1].flatMap((i) => [rootNames.P(i), rootNames.S(i), rootNames.residual(i), rootNames.iterations(i)]));
    expect(m.opsets.get('com.microsoft')).toBe(1);
    expect(buildRootGraph([3], { method: 'ns', iterations: 2 }).graph.nodes.every((n) => n.domain === '')).toBe(true);
  });

  it('rejects bad arguments with an SngdError', () => {
    expect(() => buildRootGraph([], { method: 'ns', iterations: 3 })).toThrow(SngdError);
    expect(() => buildRootGraph([0], { method: 'ns', iterations: 3 })).toThrow(/positive integer/);
    expect(() => buildRootGraph([4], { method: 'ns', iterations: 0 })).toThrow(/iterations/);
    expect(() => buildRootGraph([4], { method: 'qr' as 'ns', iterations: 3 })).toThrow(/unknown method/);
    expect(() => buildRootGraph([4], { method: 'ns', iterations: 3, trace: true, stopAt: 1e-4 })).toThrow(/trace/);
  });
});

describe('failures are reported, not thrown', () => {
  const good = (d: number) => f32(withSpectrum(spectrum(d, 100), () => rng.normal()));

  for (const method of ['ns', 'db'] as const) {
    it(`${method}: indefinite, NaN and non-symmetric inputs give ok=false; their neighbours are unaffected`, async () => {
      const indefinite = f32(withSpectrum([2, 1, 0.5, -0.3, 1.5], () => rng.normal()));
      const nan = good(5);
      nan[7] = Number.NaN;
      const asym = good(5);
      asym[1]! += 0.5;
      const r = new RootRefresher([5, 5, 5, 5, 5], { method, dampingRel: 1e-6 });
      try {
        const out = await r.refresh([good(5), indefinite, nan, asym, good(5)]);
        expect(out.map((l) => l.ok)).toEqual([true, false, false, false, true]);
        expect(out[1]!.reason).toMatch(/residual|non-finite|positive definite/);
        expect(out[2]!.reason).toMatch(/non-finite|NaN/);
        expect(out[3]!.reason).toMatch(/not symmetric/);
        expect(out[0]!.residual).toBeLessThan(1e-4);
        expect(out[4]!.residual).toBeLessThan(1e-4);
      } finally {
        await r.release();
      }
    });
  }

  it('too few steps: ok=false with the residual as the reason', async () => {
    const [l] = await computeRoots(buildRootGraph([81], { method: 'ns', iterations: 3 }), [f32(layersF[2]!)]);
    expect(l!.ok).toBe(false);
    expect(l!.reason).toMatch(/residual .* exceeds 0.001/);
  });

  it('a zero diagonal entry or a singular F is not ok', async () => {
    const singular = new Float32Array(9).fill(1); // rank 1
    const zeroDiag = good(3);
    zeroDiag[4] = 0;
    const out = await computeRoots(buildRootGraph([3, 3], { method: 'db', iterations: 8 }), [singular, zeroDiag]);
    expect(out.map((l) => l.ok)).toEqual([false, false]);
  });

  it('cold/warm graph mismatches and wrong sizes throw', async () => {
    const cold = buildRootGraph([3], { method: 'ns', iterations: 2 });
    const warm = buildRootGraph([3], { method: 'ns', iterations: 2, warmStart: true });
    await expect(computeRoots(cold, [good(3)], { previous: [good(3)] })).rejects.toThrow(/cold-started/);
    await expect(computeRoots(warm, [good(3)])).rejects.toThrow(/previous roots/);
    await expect(computeRoots(cold, [new Float32Array(8)])).rejects.toThrow(/not d×d/);
    await expect(computeRoots(cold, [good(3), good(3)])).rejects.toThrow(/1 layers/);
  });
});

describe('RootRefresher', () => {
  it("'track': previous roots far from whitening F (ρ > 0.5) make their dimension group's refresh cold; the other groups are tracked", async () => {
    const refresher = new RootRefresher(DIMS, { warmStart: 'track', gate: 0, dampingRel: DAMPING_REL });
    try {
      const cold = await refresher.refresh(layersF.map(f32));
      // Layer 1 starts from the identity instead of its roots: P0·F·P0ᵀ = F, far from I.
      const previous = cold.map((l, i) => (i === 1 ? f32(identity(5)) : l.P));
      const next = await refresher.refresh(movedF.map(f32), previous);
      // DIMS = [1, 5, 81, 81]: layer 1 is the only 5-wide one.
      expect(next.map((l) => [l.ok, l.start])).toEqual([[true, 'track'], [true, 'cold'], [true, 'track'], [true, 'track']]);
      expect(errors(next[1]!, movedF[1]!, false).pfpI).toBeLessThan(1e-3);
      // Without the far layer, the same refresh is tracked.
      const near = await refresher.refresh(movedF.map(f32), cold.map((l) => l.P));
      expect(near.map((l) => [l.ok, l.start])).toEqual(DIMS.map(() => [true, 'track']));
    } finally {
      await refresher.release();
    }
  });

  it('cold, then warm; a broken previous root falls back to a cold refresh', async () => {
    const r = new RootRefresher(DIMS, { dampingRel: DAMPING_REL });
    try {
      const cold = await r.refresh(layersF.map(f32));
      expectIdentity4(cold, layersF, false, 'refresher cold');
      const warm = await r.refresh(movedF.map(f32), cold);
      expectIdentity4(warm, movedF, true, 'refresher warm');
      expect(Math.max(...warm.map((l) => l.iterations))).toBeLessThan(Math.max(...cold.map((l) => l.iterations)));
      const broken = cold.map((l) => ({ P: Float32Array.from(l.P) }));
      broken[2]!.P[0] = Number.NaN;
      const mixed = await r.refresh(movedF.map(f32), broken);
      expect(mixed.map((l) => l.start)).toEqual(['warm', 'warm', 'cold', 'warm']);
      expectIdentity4([mixed[2]!], [movedF[2]!], false, 'fallback');
    } finally {
      await r.release();
    }
  });

  it('repeated warm refreshes do not drift: S·P = I and PᵀP = F⁻¹ hold after ten of them', async () => {
    const r = new RootRefresher([81, 5], { method: 'ns', dampingRel: DAMPING_REL });
    try {
      let F = [layersF[3]!, layersF[1]!];
      let roots = await r.refresh(F.map(f32));
      const rr = new Rng(9);
      for (let k = 0; k < 10; k++) {
        const fresh = fromData(81, 400, 1e-3, rr);
        const d = 5;
        const R = withSpectrum(Array.from({ length: d }, () => rr.uniform(-1, 1)), () => rr.normal());
        const { S } = spdRoots(F[1]!);
        const moved = matmul(matmul(S, mat(d, d, identity(d).data.map((v, i) => v + 0.2 * R.data[i]!))), S);
        F = [
          rounded(mat(81, 81, F[0]!.data.map((v, i) => 0.6 * v + 0.4 * fresh.data[i]!))),
          rounded(mat(d, d, moved.data.map((v, i) => 0.5 * (v + moved.data[(i % d) * d + Math.floor(i / d)]!)))),
        ];
        roots = await r.refresh(F.map(f32), roots);
        expect(roots.map((l) => l.start)).toEqual(['warm', 'warm']);
      }
      expectIdentity4(roots, F, true, 'after 10 warm refreshes');
    } finally {
      await r.release();
    }
  });
});
