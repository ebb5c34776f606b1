/**
 * Gradient checking through onnxruntime (STYLE.md §11; ORT's gradient_checker): the analytic
 * gradient from our backward graph against central finite differences of the same forward graph.
 *
 * The checked scalar is L = Σ y ⊙ R for a fixed random R, so every element of the output is
 * weighted (a plain sum would hide errors that cancel, e.g. in Softmax).
 *
 * Float32 throughout (onnxruntime's CPU Conv has no float64 kernel). With ε = 1e-2 on O(1) inputs,
 * truncation error is O(ε²)·|L'''| ≈ 1e-4 relative and rounding O(1e-7·|L|/ε) ≈ 1e-5·|L|, so a
 * 1e-2 relative tolerance (plus a small absolute floor) separates right from wrong gradients:
 * a wrong rule is typically off by O(1).
 */
import { differentiate } from '../../passes/autodiff/index.js';
import { cloneModel, type Model } from '../../src/ir/graph.js';
import { Rng } from '../../src/numerics/random.js';
import { dtypeCode, elementCount, type Tensor } from '../../src/onnx/tensor.js';
import { createSession } from '../../runtime/ort.js';

export interface GradcheckOptions {
  /** Inputs or initializers to check (float). */
  wrt: string[];
  feeds: Record<string, Tensor>;
  /** Model output to weight (default: the first). */
  output?: string;
  seed?: number;
  eps?: number;
  rtol?: number;
  atol?: number;
  directions?: number;
  coordinates?: number;
}

export interface GradcheckResult {
  checks: { label: string; analytic: number; numeric: number; ok: boolean }[];
  ok: boolean;
  worst: string;
}

export async function gradcheck(model: Model, opts: GradcheckOptions): Promise<GradcheckResult> {
  const rng = new Rng(opts.seed ?? 1);
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const m = cloneModel(model);
  const g = m.graph;
  const params: Record<string, Tensor> = {};
  for (const w of opts.wrt) {
    const init = g.initializers.get(w);
    if (init) {
      params[w] = init.tensor;
      g.initializers.delete(w);
      g.inputs = g.inputs.filter((v) => v.name !== w);
      g.inputs.push({ name: w, elemType: dtypeCode(init.tensor.dtype), shape: [...init.tensor.dims] });
    } else {
      if (!opts.feeds[w]) throw new Error(`gradcheck: '${w}' is neither an initializer nor fed`);
      params[w] = opts.feeds[w]!;
    }
  }
  const output = opts.output ?? g.outputs[0]!.name;

  // Forward once to learn the output's shape, then fix the weighting R.
  const fwd = await createSession(m);
  const base = { ...opts.feeds, ...params };
  const y = (await fwd.run(base))[output]!;
  await fwd.release();
  const r: Tensor = { dtype: 'float32', dims: y.dims, data: Float32Array.from({ length: elementCount(y.dims) }, () => rng.normal()) };

  g.inputs.push({ name: 'gradcheck/r', elemType: 1, shape: [...y.dims] });
  g.nodes.push({ name: 'gradcheck/weight', opType: 'Mul', domain: '', inputs: [output, 'gradcheck/r'], outputs: ['gradcheck/weighted'], attrs: [] });
  g.nodes.push({ name: 'gradcheck/sum', opType: 'ReduceSum', domain: '', inputs: ['gradcheck/weighted'], outputs: ['gradcheck/loss'], attrs: [{ name: 'keepdims', type: 2, i: 0 }] });
  g.outputs = [{ name: 'gradcheck/loss', elemType: 1, shape: [] }];

  // dL/dy = R exactly: seed the backward pass there, so the check depends on no rule but the op's own.
  const { model: gm, grads } = differentiate(m, { seeds: [{ value: output, grad: 'gradcheck/r' }], wrt: opts.wrt });
  // A gradient may alias another value (the seed, an input): give each output its own name.
  opts.wrt.forEach((w, k) => gm.graph.nodes.push({ name: `gradcheck/out${k}`, opType: 'Identity', domain: '', inputs: [grads.get(w)!], outputs: [`gradcheck/grad${k}`], attrs: [] }));
  gm.graph.outputs = [{ name: 'gradcheck/loss', elemType: 1, shape: [] }, ...opts.wrt.map((_, k) => ({ name: `gradcheck/grad${k}`, elemType: 1 }))];
  const gradSession = await createSession(gm);
  const lossSession = await createSession(m);
  const feeds = { ...base, 'gradcheck/r': r };
  const gout = await gradSession.run(feeds);
  const gradOf = (w: string): Float32Array => Float32Array.from(gout[`gradcheck/grad${opts.wrt.indexOf(w)}`]!.data as Float32Array);

  const lossAt = async (shift: Record<string, Float32Array>, scale: number): Promise<number> => {
    const shifted: Record<string, Tensor> = { ...feeds };
    for (const [w, v] of Object.entries(shift)) {
      const p = params[w]!;
      const data = Float32Array.from(p.data as Float32Array, (x, i) => x + scale * v[i]!);
      shifted[w] = { ...p, data };
    }
    return Number(((await lossSession.run(shifted))['gradcheck/loss']!.data as Float32Array)[0]);
  };

  const checks: GradcheckResult['checks'] = [];
  // A gradient shaped unlike its tensor would still be dotted element-wise below: reject it first.
  for (const [k, w] of opts.wrt.entries()) {
    const got = gout[`gradcheck/grad${k}`]!.dims;
    const want = params[w]!.dims;
    if (got.join() !== want.join()) checks.push({ label: `${w} gradient shaped [${got.join(', ')}], expected [${want.join(', ')}]`, analytic: NaN, numeric: NaN, ok: false });
  }
  const check = async (label: string, dir: Record<string, Float32Array>): Promise<void> => {
    let analytic = 0;
    for (const [w, v] of Object.entries(dir)) {
      const gw = gradOf(w);
      for (let i = 0; i < v.length; i++) analytic += gw[i]! * v[i]!;
    }
    const numeric = ((await lossAt(dir, eps)) - (await lossAt(dir, -eps))) / (2 * eps);
    const ok = Math.abs(analytic - numeric) <= rtol * Math.max(Math.abs(analytic), Math.abs(numeric)) + atol;
    checks.push({ label, analytic, numeric, ok });
  };

  for (let k = 0; k < (opts.directions ?? 3); k++) {
    const dir: Record<string, Float32Array> = {};
    for (const w of opts.wrt) dir[w] = Float32Array.from({ length: elementCount(params[w]!.dims) }, () => rng.normal());
    await check(`direction ${k}`, dir);
  }
  for (const w of opts.wrt) {
    const n = elementCount(params[w]!.dims);
    for (let k = 0; k < (opts.coordinates ?? 2); k++) {
      const i = rng.int(n);
      const v = new Float32Array(n);
      v[i] = 1;
      await check(`${w}[${i}]`, { [w]: v });
    }
  }
  await gradSession.release();
  await lossSession.release();
  const bad = checks.filter((c) => !c.ok);
  const worst = bad.length ? bad.map((c) => `${c.label}: analytic ${c.analytic} vs numeric ${c.numeric}`).join('; ') : '';
  return { checks, ok: bad.length === 0, worst };
}
