/**
 * Measures the cost model's machine profile (passes/cost/machine.ts) with microbenchmarks, and
 * caches it per machine (CPU model, core count, Node and onnxruntime versions):
 *
 *   run, input, output   a one-kernel graph; Sums of N = 1, 8, 32, 128 fed tensors (per feed: the
 *                        slope); N Adds each fetched against N Adds chained into one output (per
 *                        fetch: the slope of the difference)
 *   node                 a chain of 65 tiny glue kernels (Add, broadcast Mul, Softmax, Where, Transpose,
 *                        ReduceSum, Concat, Slice, Relu) against 1
 *   memory, outputByte   a chain of Adds over 1M floats; outputs of 256 KiB…4 MiB returned against not
 *   loopStep             a ScatterElements of 256K updates
 *   gemm                 MatMuls of training-graph shapes (square 128…512, and 96×768×768, 768×64×768,
 *                        768×768×96, 64×512×64: threaded FLOP/s, a least-squares line); chains of
 *                        square ones at n = 48, 64 (the pool's wake-up) and n = 32 (below MLAS's
 *                        threading threshold); [2048, 16]·[16, 1024] (the cost per result element
 *                        of a short inner dimension)
 *   gemmCall             a MatMul of 256 batched 8×8 products
 *   im2col               two Convs whose time is their im2col (one output channel, 32·3·3 patches) in
 *                        rows of 32 and of 2 elements
 *   nchwc                Convs 8 → 16 channels, 3×3, stride 1 and 2, which onnxruntime runs in its
 *                        NCHWc layout
 *   span                 chains (graph optimizations off, so none folds or cancels) of a Mul of
 *                        [1600, 4] by [4] (broadcast spans), of Pad a column on, Slice one off and
 *                        Concat a tensor with itself on 6400 narrow rows, of Transpose [0, 2, 1, 3]
 *                        moving 1600 spans of 8 floats
 *   transposeCall        a chain of Transpose [0, 2, 1] on [100, 8, 16]: 100 MlasTranspose calls each
 *   host                 the trainer's own loops: FisherEma.update, the Optimizer updates, a finite
 *                        check, typed-array copies, a float64 matmul, and TrainingRun.step minus its
 *                        graph run on 4-wide MLPs of 1 and 16 layers, SGD (fixed and per-parameter
 *                        costs) and SNGD with statistics every step (per Fisher layer)
 *
 * Every timing is the median of repeated runs after a warm-up, and every figure the median of
 * five repeats of the whole set (a shared machine's bursts of load spoil single timings); the
 * whole takes about ten seconds.
 * The cache lives in $SNGD_CACHE_DIR, else $XDG_CACHE_HOME/sngd, else ~/.cache/sngd.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { GraphBuilder } from '../models/builder.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { DEFAULT_PROFILE, type MachineProfile } from '../passes/cost/index.js';
import { L2_INPUT } from '../passes/training/index.js';
import { writeFileAtomic } from '../src/onnx/codec.js';
import { matmul, mat } from '../src/numerics/linalg.js';
import { Rng } from '../src/numerics/random.js';
import { float32Tensor, int64Tensor, type Tensor } from '../src/onnx/tensor.js';
import { FisherEma } from './fisher.js';
import { Optimizer, defaultOptimizerConfig, type OptimizerName } from './optimizers.js';
import { createSession, type SessionOptions } from './ort.js';
import { REFERENCE_SNGD, TrainingRun } from './run.js';

/**
 * The cache's format: a cache of another version is measured again (its profile lacks rates or
 * measured them differently). 2: per-feed and per-fetch fits, layout-kernel runs, MlasTranspose
 * calls, the host's per-parameter and per-layer costs.
 */
export const CALIBRATION_VERSION = 2;

export interface CalibrationCache {
  version: number;
  /** The machine the profile was measured on (machineKey()). */
  key: string;
  profile: MachineProfile;
}

/** What a profile is valid for: CPU model, cores, Node and onnxruntime versions. */
export function machineKey(): string {
  let ort = 'unknown';
  try {
    ort = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    // keep 'unknown'
  }
  return `${os.cpus()[0]?.model?.trim() ?? 'cpu'} × ${os.availableParallelism()}; node ${process.version}; onnxruntime-node ${ort}`;
}

export function defaultCalibrationFile(): string {
  const dir = process.env.SNGD_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'sngd');
  return path.join(dir, 'calibration.json');
}

/** The cached profile, if the file exists and was measured on this machine. */
export function readCalibration(file = defaultCalibrationFile()): MachineProfile | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const cache = JSON.parse(fs.readFileSync(file, 'utf8')) as CalibrationCache;
    if (cache.version !== CALIBRATION_VERSION || cache.key !== machineKey() || !cache.profile?.calibrated) return undefined;
    return { ...DEFAULT_PROFILE, ...cache.profile, span: { ...DEFAULT_PROFILE.span, ...cache.profile.span }, host: { ...DEFAULT_PROFILE.host, ...cache.profile.host } };
  } catch {
    return undefined;
  }
}

export function writeCalibration(profile: MachineProfile, file = defaultCalibrationFile()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify({ version: CALIBRATION_VERSION, key: machineKey(), profile } satisfies CalibrationCache, null, 2) + '\n');
}

export interface ProfileRequest {
  /** true: measure again; false: never measure (the cache, else the defaults); undefined: measure only without a cache. */
  calibrate?: boolean;
  file?: string;
  sessionOptions?: SessionOptions;
  log?: (message: string) => void;
}

/** The machine profile for a report: cached, freshly measured (and cached), or the defaults. */
export async function machineProfile(req: ProfileRequest = {}): Promise<MachineProfile> {
  const file = req.file ?? defaultCalibrationFile();
  const cached = req.calibrate ? undefined : readCalibration(file);
  if (cached || req.calibrate === false) return cached ?? DEFAULT_PROFILE;
  req.log?.(`calibrating the cost model on this machine (about ten seconds; cached in ${file})`);
  const profile = await calibrate(req.sessionOptions ?? {});
  writeCalibration(profile, file);
  return profile;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** Median seconds of `fn` over `reps` runs after `warm` warm-up runs (bench/cost-model.ts times steps with it too). */
export async function timeIt(fn: () => unknown, reps = 30, warm = 5): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t) / 1000;
}

/** Seconds of one run of a graph built by `build` (inputs drawn at their shapes). */
async function graphTime(options: SessionOptions, build: (b: GraphBuilder) => void, reps = 30, symbols: number[] = []): Promise<number> {
  const b = new GraphBuilder('calibration');
  build(b);
  const model = b.build();
  const rng = new Rng(1);
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    const dims = (v.shape ?? []).map((d, i) => (typeof d === 'number' ? d : symbols[i]!));
    feeds[v.name] = float32Tensor(dims, rng.floats(dims.reduce((a, d) => a * d, 1), 0.5, 1.5));
  }
  const s = await createSession(model, options, 'calibration graph');
  try {
    return await timeIt(() => s.run(feeds), reps);
  } finally {
    await s.release();
  }
}

/**
 * The tiny-op chain's cycle, one kernel each, on [8, 8] (a training graph's glue: same-shape and
 * broadcasting arithmetic, a reduction, Where, Softmax, Transpose, Concat and Slice).
 */
const TINY_OPS: ((b: GraphBuilder, h: string, w: string) => string)[] = [
  (b, h, w) => b.op('Add', [h, w]),
  (b, h) => b.op('Mul', [h, tinyScalar(b)]),
  (b, h) => b.op('Softmax', [h], { axis: -1 }),
  (b, h, w) => b.op('Where', [tinyCondition(b), h, w]),
  (b, h) => b.op('Transpose', [h], { perm: [1, 0] }),
  (b, h) => b.op('ReduceSum', [h, tinyAxes(b)], { keepdims: 1 }),
  (b, h, w) => b.op('Add', [h, w]),
  (b, h, w) => b.op('Concat', [h, w], { axis: 1 }),
  (b, h) => b.op('Slice', [h, tinyAxes(b, 'zero', 0), tinyAxes(b, 'eight', 8), tinyAxes(b)]),
  (b, h) => b.op('Relu', [h]),
];

/** The chain's shared scalar input. */
function tinyScalar(b: GraphBuilder): string {
  return b.graph.inputs.some((v) => v.name === 's') ? 's' : b.input('s', 'float32', [1]);
}

/** A shared int64 [1] initializer (created once per graph). */
function tinyAxes(b: GraphBuilder, name = 'axes', value = 1): string {
  if (!b.graph.initializers.has(name)) b.init(name, int64Tensor([1], [value]));
  return name;
}

/** The shared condition of the chain's Where (computed once, outside the chain's count). */
function tinyCondition(b: GraphBuilder): string {
  return b.graph.nodes.find((n) => n.name === 'condition')?.outputs[0] ?? b.op('Greater', [b.input('c', 'float32', [8, 8]), b.init('half', float32Tensor([], [0.5]))], {}, { name: 'condition' });
}

/** A chain of `k` kernels: tiny ops on [n, n] (k ≡ 1 or 5 mod 10 ends on that shape), MatMuls on [n, n], or Adds over `n` floats. */
function chain(kind: 'tiny' | 'matmul' | 'add', k: number, n: number): (b: GraphBuilder) => void {
  return (b) => {
    const dims = kind === 'add' ? [n] : [n, n];
    let h = b.input('x', 'float32', dims);
    const w = b.input('w', 'float32', dims);
    for (let i = 0; i < k; i++) h = kind === 'matmul' ? b.op('MatMul', [h, w]) : kind === 'add' ? b.op('Add', [h, w]) : TINY_OPS[i % TINY_OPS.length]!(b, h, w);
    b.output(h, 'float32', dims);
  };
}

/** Seconds per kernel of a chain: (t(1 + k) − t(1)) / k. */
async function perKernel(o: SessionOptions, kind: 'tiny' | 'matmul' | 'add', n: number, k: number, reps = 30): Promise<number> {
  const one = await graphTime(o, chain(kind, 1, n), reps);
  const many = await graphTime(o, chain(kind, 1 + k, n), reps);
  return Math.max(0, (many - one) / k);
}

/**
 * Measures the machine profile: the whole set of microbenchmarks `repeats` times, each figure the
 * median of its repeats (a burst of other load then spoils one repeat, not the profile).
 */
export async function calibrate(options: SessionOptions, repeats = 5): Promise<MachineProfile> {
  const runs: MachineProfile[] = [];
  for (let i = 0; i < repeats; i++) runs.push(await measureProfile(options));
  const mid = <T extends object>(pick: (p: MachineProfile) => T): T => {
    const first = pick(runs[0]!) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(first).map(([k, v]) => [k, typeof v === 'number' ? median(runs.map((r) => (pick(r) as Record<string, number>)[k]!)) : v])) as T;
  };
  return { ...mid((p) => p), span: mid((p) => p.span), host: mid((p) => p.host) };
}

async function measureProfile(options: SessionOptions): Promise<MachineProfile> {
  const p: MachineProfile = { ...DEFAULT_PROFILE, span: { ...DEFAULT_PROFILE.span }, host: { ...DEFAULT_PROFILE.host }, calibrated: true, date: new Date().toISOString(), machine: machineKey(), threads: os.availableParallelism() };
  // Fixed costs of a run, and of a kernel.
  // Fixed costs of a run: one Relu returned (run + input + output + a simple kernel); a Sum of 33
  // inputs against 1 (inputs); 9 Relus returned (outputs, with a chain of simple kernels for theirs).
  const relu = (b: GraphBuilder, x: string) => b.op('Relu', [x]);
  const tiny = (b: GraphBuilder) => b.output(relu(b, b.input('x', 'float32', [8])), 'float32', [8]);
  await graphTime(options, tiny, 60); // the process's first sessions and runs are slower: not counted
  const one = await graphTime(options, tiny, 60);
  const simple = await graphTime(options, (b) => {
    let h = b.input('x', 'float32', [8]);
    for (let i = 0; i < 65; i++) h = b.op(['Relu', 'Neg', 'Abs'][i % 3]!, [h]);
    b.output(h, 'float32', [8]);
  }, 60);
  const simpleNode = Math.max(0, (simple - one) / 64);
  // Per feed: Sums of N fed tensors (the Sum's own reads are a few ns per input).
  const counts = [1, 8, 32, 128];
  const feeds: number[] = [];
  for (const n of counts) feeds.push(await graphTime(options, (b) => b.output(b.op('Sum', Array.from({ length: n }, (_, i) => b.input(`x${i}`, 'float32', [8]))), 'float32', [8]), 60));
  p.input = Math.max(0, relativeLineFit(counts, feeds).slope);
  // Per fetch: N Adds of the input and a distinct constant, each returned, against the same N
  // Adds chained into one output (distinct constants: onnxruntime merges identical nodes).
  const adds = (n: number, fetchEach: boolean) => (b: GraphBuilder) => {
    const x = b.input('x', 'float32', [8]);
    let h = x;
    for (let k = 0; k < n; k++) {
      const y = b.op('Add', [fetchEach ? x : h, b.init(`c${k}`, float32Tensor([8], new Float32Array(8).fill(k + 1)))]);
      if (fetchEach) b.output(y, 'float32', [8]);
      h = y;
    }
    if (!fetchEach) b.output(h, 'float32', [8]);
  };
  const fetches: number[] = [];
  for (const n of counts) fetches.push((await graphTime(options, adds(n, true), 60)) - (await graphTime(options, adds(n, false), 60)));
  // The difference is 0 at N = 1 (both graphs the same): the slope through the differences.
  p.output = Math.max(0, lineSlope(counts, fetches));
  p.run = Math.max(0, one - simpleNode - p.input - p.output);
  // A kernel of a training graph's glue: the mixed chain (its two extra inputs taken out).
  p.node = Math.max(0, (await perKernel(options, 'tiny', 8, 64, 60)) - (2 * p.input) / 64);

  // MatMul: the threaded rate from a relative least-squares line through products of the shapes
  // training graphs have (square, and with one short side: few rows, a short inner dimension, few
  // columns), each alone in a graph; the cost per result element of a very short inner dimension
  // from [2048, 16]·[16, 1024]; the two fitted in turn.
  const shapes: [number, number, number][] = [[128, 128, 128], [256, 256, 256], [512, 512, 512], [96, 768, 768], [768, 64, 768], [768, 768, 96], [64, 512, 64]];
  const product = (m: number, k: number, n: number) => graphTime(options, (b) => {
    const y = b.op('MatMul', [b.input('a', 'float32', ['N', k]), b.input('b', 'float32', [k, n])]);
    b.output(b.op('Shape', [y]), 'int64', [2]);
  }, m * k * n > 1e8 ? 10 : 20, [m]);
  const ts: number[] = [];
  for (const [m, k, n] of shapes) ts.push((await product(m, k, n)) - one - p.input - p.node);
  const skinny = (await product(2048, 16, 1024)) - one - p.input - p.node;
  p.gemmOut = 0;
  for (let i = 0; i < 2; i++) {
    p.gemmFlops = 1 / relativeLineFit(shapes.map(([m, k, n]) => 2 * m * k * n), ts.map((t, j) => t - shapes[j]![0] * shapes[j]![2] * p.gemmOut)).slope;
    p.gemmOut = Math.max(0, (skinny - (2 * 2048 * 16 * 1024) / p.gemmFlops) / (2048 * 1024));
  }
  const wake = [];
  for (const n of [48, 64]) wake.push((await perKernel(options, 'matmul', n, 32, 40)) - p.node - (2 * n ** 3) / p.gemmFlops - n * n * p.gemmOut);
  p.poolWake = Math.max(0, median(wake));
  p.gemmFlopsSingle = Math.min(p.gemmFlops, (2 * 32 ** 3) / Math.max(1e-9, (await perKernel(options, 'matmul', 32, 64, 60)) - p.node - 32 * 32 * p.gemmOut * p.threads));

  // Memory-bound kernels: Adds over 1M floats (4 MiB tensors, beyond the core's own caches).
  const N = 1 << 20;
  p.memoryBytes = (12 * N) / Math.max(1e-9, (await perKernel(options, 'add', N, 8, 15)) - p.node - p.poolWake);
  // Copying an output back: Relu(x) returned, against its Shape returned (x's length symbolic, so
  // onnxruntime runs the Relu in both). A fresh large buffer is either page-faulted in (~0.35 ns/B
  // here) or recycled (~0.05): the mean over sizes from 256 KiB to 4 MiB is the mixture a training
  // loop's outputs see.
  const copies: number[] = [];
  for (const n of [1 << 16, 1 << 18, 616225, 1 << 20]) {
    const run = (big: boolean) => graphTime(options, (b) => {
      const y = b.op('Relu', [b.input('x', 'float32', ['N'])]);
      if (big) b.output(y, 'float32', ['N']);
      else b.output(b.op('Shape', [y]), 'int64', [1]);
    }, 20, [n]);
    copies.push(((await run(true)) - (await run(false)) + p.node) / (4 * n));
  }
  p.outputByte = Math.max(0, copies.reduce((a, c) => a + c, 0) / copies.length);
  // Index kernels: a ScatterElements of 256K updates.
  const U = 1 << 18;
  const scatter = await graphTime(options, (b) => {
    const y = b.op('ScatterElements', [b.input('x', 'float32', ['N', 512]), b.init('i', int64Tensor([512, 512], Array.from({ length: U }, (_, k) => (k * 7) % 512))), b.input('u', 'float32', ['N', 512])], { axis: 1 });
    b.output(b.op('Shape', [y]), 'int64', [2]);
  }, 30, [512]);
  p.loopStep = Math.max(0, (scatter - one - p.input - (8 * U) / p.memoryBytes) / U);

  // Product calls: a MatMul of 256 batched 8×8 products (spread over the threads).
  p.nchwcBlock = nchwcBlock();
  const batched = await graphTime(options, (b) => b.output(b.op('MatMul', [b.input('x', 'float32', [256, 8, 8]), b.input('w', 'float32', [256, 8, 8])]), 'float32', [256, 8, 8]), 40);
  p.gemmCall = Math.max(0, (batched - one - p.input - p.poolWake - 4 * 256 * 64 * p.outputByte) / (256 / p.threads) - (2 * 512) / p.gemmFlopsSingle - 64 * p.gemmOut * p.threads);

  // im2col: two Convs whose time is their im2col (one output channel, 32·3·3 patches), in rows
  // of 32 and of 2 elements.
  const kernel = async (x: number[], w: number[], y: number[], attrs: Record<string, number[]>) => {
    const t = await graphTime(options, (b) => b.output(b.op('Conv', [b.input('x', 'float32', x), b.input('w', 'float32', w)], attrs), 'float32', y), 40);
    return Math.max(0, t - one + p.node - p.input - 4 * y.reduce((a, d) => a * d, 1) * p.outputByte);
  };
  const wide = await kernel([4, 32, 32, 32], [1, 32, 3, 3], [4, 1, 32, 32], { pads: [1, 1, 1, 1] });
  const narrow = await kernel([4, 32, 512, 2], [1, 32, 3, 3], [4, 1, 512, 2], { pads: [1, 1, 1, 1] });
  // Per call (4 calls over min(threads, 4)): elements·im2col + rows·im2colRow + its product.
  const perCall = (t: number) => (t - p.node - p.poolWake) / (4 / Math.min(p.threads, 4)) - p.gemmCall - (2 * 288 * 1024) / p.gemmFlopsSingle - 1024 * p.gemmOut * p.threads;
  const [a, b] = [perCall(wide), perCall(narrow)];
  // wide: 288·1024 elements in 288·32 rows; narrow: the same elements in 288·512 rows.
  p.im2colRow = Math.max(0, (b - a) / (288 * (512 - 32)));
  p.im2col = Math.max(1e-12, (a - 288 * 32 * p.im2colRow) / (288 * 1024));
  // NCHWc: Convs 8 → 16·b channels, 3×3, stride 1 and 2 (in the layout wherever MLAS has one: b = the block / 16).
  const cout = 16 * Math.max(1, p.nchwcBlock / 16);
  const one1 = await kernel([8, 8, 32, 32], [cout, 8, 3, 3], [8, cout, 32, 32], { pads: [1, 1, 1, 1] });
  const two = await kernel([8, 8, 32, 32], [cout, 8, 3, 3], [8, cout, 16, 16], { pads: [1, 1, 1, 1], strides: [2, 2] });
  const flops = 2 * 8 * cout * 72;
  p.nchwcFlops = (flops * (1024 + 256)) / Math.max(1e-9, one1 + two - 2 * (p.node + p.poolWake) - 8 * cout * (1024 + 256) * p.gemmOut);

  // Span loops: chains of 16 against 1, graph optimizations off (onnxruntime would fold or
  // cancel the chains), over thousands of narrow spans (their bytes a small part); per span, less
  // the kernel and its bytes.
  const raw = { ...options, graphOptimizationLevel: 'disabled' as const };
  const layout = async (shape: number[], step: (b: GraphBuilder, h: string) => string) => {
    const build = (k: number) => (b: GraphBuilder) => {
      let h = b.input('x', 'float32', shape);
      for (let i = 0; i < k; i++) h = step(b, h);
      b.output(h, 'float32');
    };
    return ((await graphTime(raw, build(17), 40)) - (await graphTime(raw, build(1), 40))) / 16;
  };
  const axes = (b: GraphBuilder, name: string, v: number[]) => (b.graph.initializers.has(name) ? name : b.init(name, int64Tensor([v.length], v)));
  const bytes = (floats: number) => (4 * floats) / p.memoryBytes;
  // A Mul of [1600, 4] by [4]: 1600 broadcast spans of 4 (51 KB: below the pool's threshold).
  const w4 = (b: GraphBuilder) => (b.graph.inputs.some((v) => v.name === 'w4') ? 'w4' : b.input('w4', 'float32', [4]));
  p.span.broadcast = Math.max(0, ((await layout([1600, 4], (b, h) => b.op('Mul', [h, w4(b)]))) - p.node - bytes(1600 * 8 + 4)) / 1600);
  // Pad a column on (width 4 → 20 along the chain) and Slice one off (21 → 5): 6400 spans
  // each, about 25 floats a row read and written.
  const rows = 6400;
  p.span.pad = Math.max(0, ((await layout([rows, 4], (b, h) => b.op('Pad', [h, axes(b, 'pads', [0, 0, 0, 1])]))) - p.node - bytes(rows * 25)) / rows);
  p.span.slice = Math.max(0, ((await layout([rows, 21], (b, h) => b.op('Slice', [h, axes(b, 'zero', [0]), axes(b, 'minus1', [-1]), axes(b, 'last', [-1])]))) - p.node - bytes(rows * 25)) / rows);
  // Concat(h, h) of [6400, 4] along the last axis (2 spans a row), sliced back to 4 columns.
  const concat = await layout([rows, 4], (b, h) => b.op('Slice', [b.op('Concat', [h, h], { axis: -1 }), axes(b, 'zero', [0]), axes(b, 'four', [4]), axes(b, 'last', [-1])]));
  p.span.concat = Math.max(0, (concat - 2 * p.node - bytes(rows * 28) - rows * p.span.slice) / (2 * rows));
  // Transpose [0, 2, 1, 3] of [100, 8, 2, 8]: one axis moved in runs of 8 floats (a strided copy).
  const strided = await layout([100, 8, 2, 8], (b, h) => b.op('Transpose', [h], { perm: [0, 2, 1, 3] }));
  p.span.strided = Math.max(0, (strided - p.node - bytes(2 * 1600 * 8)) / 1600);
  // Transpose [0, 2, 1] of [100, 8, 16]: one axis of single floats moved, 100 MlasTranspose calls.
  const calls = await layout([100, 8, 16], (b, h) => b.op('Transpose', [h], { perm: [0, 2, 1] }));
  p.transposeCall = Math.max(0, (calls - p.node - bytes(2 * 100 * 128)) / 100);

  p.host = await hostRates(options);
  return p;
}

/** The least-squares slope through the origin's offset: Σ(x − x̄)(y − ȳ) / Σ(x − x̄)². */
function lineSlope(x: number[], y: number[]): number {
  const mx = x.reduce((a, v) => a + v, 0) / x.length;
  const my = y.reduce((a, v) => a + v, 0) / y.length;
  let sxy = 0, sxx = 0;
  x.forEach((xi, i) => {
    sxy += (xi - mx) * (y[i]! - my);
    sxx += (xi - mx) ** 2;
  });
  return sxy / sxx;
}

/** MLAS's NCHWc block: 16 channels with AVX-512, 8 with AVX2, else none (x86 Linux; elsewhere the default). */
function nchwcBlock(): number {
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return /\bavx512f\b/.test(flags) ? 16 : /\bavx2\b/.test(flags) ? 8 : 1;
  } catch {
    return DEFAULT_PROFILE.nchwcBlock;
  }
}

/** Minimizes Σ((a + b·x_i)/y_i − 1)²: every size counts by its relative error. */
export function relativeLineFit(x: number[], y: number[]): { intercept: number; slope: number } {
  // Normal equations of the weighted problem with weights 1/y_i².
  let s00 = 0, s01 = 0, s11 = 0, r0 = 0, r1 = 0;
  x.forEach((xi, i) => {
    const w = 1 / y[i]! ** 2;
    s00 += w;
    s01 += w * xi;
    s11 += w * xi * xi;
    r0 += w * y[i]!;
    r1 += w * xi * y[i]!;
  });
  const det = s00 * s11 - s01 * s01;
  const intercept = (r0 * s11 - r1 * s01) / det;
  const slope = (s00 * r1 - s01 * r0) / det;
  // A negative intercept (noise) would let small products cost less than nothing: refit through 0.
  if (intercept < 0) return { intercept: 0, slope: r1 / s11 };
  return { intercept, slope };
}

async function hostRates(options: SessionOptions): Promise<MachineProfile['host']> {
  const rng = new Rng(2);
  const d = 512;
  const ema = new FisherEma(d, 0.995, 'identity');
  const stat = rng.floats(d * d);
  const n = 1 << 20;
  const w = rng.floats(n, -1, 1);
  const g = rng.floats(n, -1e-6, 1e-6);
  const update = async (name: OptimizerName) => {
    const opt = new Optimizer({ ...defaultOptimizerConfig(name), ...(name === 'momentum' ? { momentum: 0.9 } : {}) });
    const params = new Map([['w', w]]);
    const grads = new Map([['w', g]]);
    return (await timeIt(() => opt.step(params, grads, [{ name: 'w', rank: 2 }], 1e-9), 15, 3)) / n;
  };
  const a = mat(96, 96, rng.floats(96 * 96));
  const f64 = new Float64Array(n);
  return {
    ema: (await timeIt(() => ema.update(stat), 20, 3)) / (d * d),
    finite: (await timeIt(() => allFinite(w), 20, 3)) / n,
    sgd: await update('sgd'),
    momentum: await update('momentum'),
    adam: await update('adam'),
    copyByte: (await timeIt(() => f64.slice(), 20, 3)) / (8 * n),
    f64Mac: (await timeIt(() => matmul(a, a), 10, 2)) / 96 ** 3,
    ...(await stepCosts(options)),
  };
}

/** The same loop as TrainingRun's finite check. */
function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/**
 * TrainingRun.step minus a bare run of its training graph, on 4-wide softmax MLPs of 1 and 16
 * layers (elements too few to count): SGD gives the fixed cost and the cost per parameter tensor
 * (2 and 32 tensors), SNGD with statistics every step (1 and 16 merged weights) the cost per
 * Fisher layer beyond its parameter.
 */
async function stepCosts(options: SessionOptions): Promise<Pick<MachineProfile['host'], 'step' | 'param' | 'layer'>> {
  const sgd1 = await stepOverhead(options, 1, false);
  const sgd16 = await stepOverhead(options, 16, false);
  const sngd1 = await stepOverhead(options, 1, true);
  const sngd16 = await stepOverhead(options, 16, true);
  const param = Math.max(0, (sgd16.seconds - sgd1.seconds) / (sgd16.params - sgd1.params));
  const layer = Math.max(0, (sngd16.seconds - sngd1.seconds) / 15 - ((sngd16.params - sngd1.params) / 15) * param);
  return { step: Math.max(0, sgd1.seconds - sgd1.params * param), param, layer };
}

/** A TrainingRun.step of a softmax MLP 4-…-4-2 (`layers` weighted layers) minus a bare run of its training graph. */
async function stepOverhead(options: SessionOptions, layers: number, fisher: boolean): Promise<{ seconds: number; params: number }> {
  const model = buildMlp({ layers: [4, ...Array<number>(layers - 1).fill(4), 2] });
  const x = float32Tensor([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
  const labels: Tensor = { dtype: 'int64', dims: [2], data: BigInt64Array.of(0n, 1n) };
  const compiled = compileModel(model, { loss: 'ce', l2: true, fisher, batchSize: 2 });
  const feeds: Record<string, Tensor> = { [L2_INPUT]: float32Tensor([], [0]) };
  for (const i of compiled.manifest.train!.inputs) {
    if (i.role === 'data') feeds[i.name] = x;
    else if (i.role === 'label') feeds[i.name] = labels;
    else if (i.init) feeds[i.name] = compiled.model.graph.initializers.get(i.init)!.tensor;
  }
  const params = compiled.manifest.train!.inputs.filter((i) => i.role === 'param').length;
  const session = await createSession(compiled.train!, options, 'calibration training graph');
  // SNGD with statistics every step (the reference settings): every step folds its EMAs.
  const run = await TrainingRun.create(model, { optimizer: fisher ? 'sngd' : 'sgd', sngd: REFERENCE_SNGD, loss: 'ce', side: 'auto', batchSize: 2, sessionOptions: options, source: 'calibration' });
  try {
    // Bare runs and steps in alternating rounds (a burst of load then spoils a round of each, not
    // all of one); a learning rate of 0 keeps the parameters put, so no step trips the divergence guard.
    const diffs: number[] = [];
    for (let round = 0; round < 5; round++) {
      const bare = await timeIt(() => session.run(feeds), 20, round ? 2 : 10);
      const step = await timeIt(() => run.step({ [run.dataInput()]: x, labels }, 0, 0), 20, round ? 2 : 10);
      diffs.push(step - bare);
    }
    return { seconds: Math.max(0, median(diffs)), params };
  } finally {
    await session.release();
    await run.release();
  }
}
