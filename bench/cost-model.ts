/**
 * The cost model (passes/cost) against measured step times.
 *
 *   npx tsx bench/cost-model.ts [--batch 50] [--steps 50] [--only NAME,…]   (writes bench/results/cost-model.json)
 *
 * The machine is calibrated in this process right before each model (runtime/calibrate.ts, three
 * repeats; not the cache: the speed of a shared machine drifts over minutes). Then for every model — each zoo model (test/fixtures/zoo.ts), the reference MLP a 784-80-80-80-10 and the
 * CNN (models/), and every corpus model when ../shared/corpus (or $SNGD_CORPUS) exists — at the
 * batch size:
 *
 *   SGD step      TrainingRun.step of the plain graph: the median of --steps steps after 10
 *                 warm-up steps, taken in 5 interleaved rounds (the median of the rounds' medians)
 *   SNGD step     the same with Fisher layers (reference settings, T = 100)
 *   refresh       TrainingRun.refresh: median of 3 after one that opens the root sessions, on a
 *                 run whose EMA keeps the last few batches (wide layers' statistics singular,
 *                 so their roots take the damping-bound steps of a long run)
 *   SNGD total    SNGD step + refresh / T: what a training step costs on average
 *   graph         a bare session run of each training graph (diagnostic: separates the graph from the host)
 *
 * and the predictions of the same quantities. Error = predicted / measured − 1. Classifier-shaped
 * models train with softmax cross-entropy, the others with mean squared error on random targets.
 * The load average and the share of the CPU other processes used while measuring are recorded:
 * the machine is shared, and load inflates measurements the calibration did not see.
 */
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildCnn } from '../models/cnn.js';
import { buildMlp } from '../models/mlp.js';
import { compileModel } from '../passes/compile.js';
import { costOf, DEFAULT_PROFILE, type MachineProfile } from '../passes/cost/index.js';
import { L2_INPUT } from '../passes/training/index.js';
import type { LossKind } from '../passes/training/losses.js';
import { calibrate, timeIt } from '../runtime/calibrate.js';
import { resolveDevice } from '../runtime/device.js';
import { createSession } from '../runtime/ort.js';
import { REFERENCE_SNGD, TrainingRun } from '../runtime/run.js';
import type { Model } from '../src/ir/graph.js';
import { loadModel } from '../src/onnx/import.js';
import { Rng } from '../src/numerics/random.js';
import { elementCount, float32Tensor, type Tensor } from '../src/onnx/tensor.js';
import { zooModels } from '../test/fixtures/zoo.js';
import { corpusAvailable, corpusModels } from '../test/helpers/corpus.js';
import { costTable, err, ms, type CostModelResults, type CostModelRow } from './cost-table.js';
import { argValue, BENCH_DIR, cpuTimes, log, machine, ownCpuSeconds, writeJson } from './lib.js';

const batch = Number(argValue('batch') ?? 50);
const stepCount = Number(argValue('steps') ?? 50);
/** Interleaved rounds per quantity, and steps timed per round. */
const ROUNDS = 5;
const per = Math.max(3, Math.round(stepCount / ROUNDS));
const only = argValue('only')?.split(',');
/**
 * The SNGD settings measured and predicted: the reference ones (statistics every step, cold
 * refreshes every 100 steps), as this bench's header says. Not DEFAULT_SNGD: its statistics every
 * 10 steps make the median step a step without them, and its tracked refreshes take fewer
 * Newton–Schulz steps than the cold ones passes/cost/refresh.ts predicts.
 */
const SNGD = REFERENCE_SNGD;
const REFRESH_EVERY = SNGD.refreshEvery;
const sessionOptions = resolveDevice('cpu').sessionOptions;

interface Case {
  name: string;
  model: Model;
  feeds: (n: number) => Record<string, Tensor>;
  loss: LossKind;
}

const rng = new Rng(5);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** Sizes of the inputs' symbolic dims after the batch axis, read off the feeds. */
function dimsFromFeeds(model: Model, feeds: Record<string, Tensor>): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const v of model.graph.inputs) (v.shape ?? []).forEach((d, i) => i > 0 && typeof d === 'string' && feeds[v.name] && (dims[d] = feeds[v.name]!.dims[i]!));
  return dims;
}

function cases(): Case[] {
  const zoo = zooModels().map((z): Case => ({ name: `zoo/${z.name}`, model: z.model, feeds: z.feeds, loss: 'mse' }));
  const mnist = (n: number, shape: number[]): Record<string, Tensor> => ({ input: float32Tensor([n, ...shape], rng.floats(n * elementCount(shape))) });
  const refs: Case[] = [
    { name: 'mlp-a 784-80-80-80-10', model: buildMlp({ layers: [784, 80, 80, 80, 10] }), feeds: (n) => mnist(n, [784]), loss: 'ce' },
    { name: 'cnn conv8-conv16/2-pool-fc10', model: buildCnn(), feeds: (n) => mnist(n, [1, 28, 28]), loss: 'ce' },
  ];
  const corpus = corpusAvailable() ? corpusModels().map((file): Case => {
    const model = loadModel(file);
    return { name: `corpus/${path.basename(file)}`, model, loss: 'mse', feeds: (n) => randomFeeds(model, n) };
  }) : [];
  return [...refs, ...zoo, ...corpus].filter((c) => !only || only.some((o) => c.name.includes(o)));
}

/** Random feeds for a corpus model: symbolic dims are the batch (first) or 8; int64 inputs small ids. */
function randomFeeds(model: Model, n: number): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name))) {
    const dims = (v.shape ?? []).map((d, i) => (typeof d === 'number' ? d : i === 0 ? n : 8));
    feeds[v.name] = v.elemType === 7
      ? { dtype: 'int64', dims, data: BigInt64Array.from({ length: elementCount(dims) }, () => BigInt(rng.int(2))) }
      : float32Tensor(dims, rng.floats(elementCount(dims)));
  }
  return feeds;
}

/** Labels for the loss, shaped from a run of the model's first output. */
function labelsFor(c: Case, out: Tensor): Tensor {
  if (c.loss === 'ce') {
    const dims = out.dims.filter((_, i) => i !== 1);
    return { dtype: 'int64', dims, data: BigInt64Array.from({ length: elementCount(dims) }, () => BigInt(rng.int(out.dims[1]!))) };
  }
  return float32Tensor(out.dims, rng.floats(elementCount(out.dims)));
}

/** A bare session of a compiled training graph, fed its initial state (diagnostic: the graph without the host). */
async function bareGraph(compiled: ReturnType<typeof compileModel>, data: Record<string, Tensor>): Promise<{ run: () => Promise<unknown>; release: () => Promise<void> }> {
  const feeds: Record<string, Tensor> = { ...data, [L2_INPUT]: float32Tensor([], [1e-3]) };
  for (const i of compiled.manifest.train!.inputs) if (i.init) feeds[i.name] = compiled.model.graph.initializers.get(i.init)!.tensor;
  const s = await createSession(compiled.train!, sessionOptions, 'training graph');
  return { run: () => s.run(feeds), release: () => s.release() };
}

async function measure(c: Case, profile: MachineProfile): Promise<CostModelRow> {
  const feeds = c.feeds(batch);
  const dims = dimsFromFeeds(c.model, feeds);
  const options = { loss: c.loss, l2: true, side: 'auto' as const, batchSize: batch, dims };
  const sngdCompiled = compileModel(c.model, { ...options, fisher: true });
  const plainCompiled = compileModel(c.model, { ...options, fisher: false });
  const cost = costOf(sngdCompiled, plainCompiled, { batch, dims, optimizer: 'sngd', refreshEvery: REFRESH_EVERY, statEvery: SNGD.statEvery, epsRel: SNGD.epsRel }, profile);
  const sgdRun = await TrainingRun.create(c.model, { optimizer: 'sgd', sngd: SNGD, loss: c.loss, side: 'auto', batchSize: batch, sessionOptions, source: c.name, dims });
  const data = { ...feeds, labels: labelsFor(c, await probeOutput(sgdRun, feeds)) };
  const run = await TrainingRun.create(c.model, { optimizer: 'sngd', sngd: SNGD, loss: c.loss, side: 'auto', batchSize: batch, sessionOptions, source: c.name, dims });
  const bare = [await bareGraph(plainCompiled, data), await bareGraph(sngdCompiled, data)];
  // Tiny steps: the parameters barely move, so no step trips the divergence guard. Each quantity
  // is measured in ROUNDS interleaved rounds and the median taken: a burst of other load then
  // touches one round of each, not all of one.
  const steps = (r: TrainingRun) => () => r.step(data, 1e-6, 1e-3);
  const rounds: number[][] = [];
  for (let k = 0; k < ROUNDS; k++) {
    rounds.push([await timeIt(steps(sgdRun), per, k ? 3 : 10), await timeIt(steps(run), per, k ? 3 : 10), await timeIt(bare[0]!.run, per, 3), await timeIt(bare[1]!.run, per, 3)]);
  }
  const [sgd, sngd, graphPlain, graphSngd] = [0, 1, 2, 3].map((i) => med(rounds.map((r) => r[i]!)));
  // Refreshes: on a run whose EMA keeps only the last few batches (decay 0.5), so a layer wider
  // than the batch has a singular statistic and its roots take the damping-bound Newton–Schulz
  // steps of a long run (an EMA still near its identity start converges in fewer).
  const refreshRun = await TrainingRun.create(c.model, { optimizer: 'sngd', sngd: { ...SNGD, emaDecay: 0.5 }, loss: c.loss, side: 'auto', batchSize: batch, sessionOptions, source: c.name, dims });
  for (let k = 0; k < 5; k++) await refreshRun.step(data, 1e-6, 1e-3);
  let iterations: number[] = [];
  const refresh = refreshRun.layers.length ? await timeIt(async () => (iterations = (await refreshRun.refresh()).map((l) => l.iterations)), 3, 1) : 0;
  for (const r of [sgdRun, run, refreshRun]) await r.release();
  for (const b of bare) await b.release();
  const total = sngd + refresh / REFRESH_EVERY;
  return {
    name: c.name, loss: c.loss, dims, layers: cost.layers.length,
    sgd: { predicted: cost.plain.seconds, measured: sgd, graphPredicted: cost.plain.graph.seconds, graphMeasured: graphPlain },
    sngd: { predicted: cost.sngd.seconds - cost.sngd.refreshPerStep, measured: sngd, graphPredicted: cost.sngd.graph.seconds, graphMeasured: graphSngd },
    refresh: { predicted: cost.sngd.refresh.seconds, measured: refresh },
    total: { predicted: cost.sngd.seconds, measured: total },
    ratio: { predicted: cost.ratio, measured: total / sgd },
    nodes: { sgd: cost.plain.graph.nodes, sngd: cost.sngd.graph.nodes },
    nsSteps: { predicted: Object.fromEntries(cost.sngd.refresh.steps), measured: iterations.filter((n) => Number.isFinite(n)) },
  };
}

/** The model's first output on the batch (labels are shaped from it). */
async function probeOutput(run: TrainingRun, feeds: Record<string, Tensor>): Promise<Tensor> {
  const out = run.rebuilt.graph.outputs[0]!.name;
  const s = await createSession(run.rebuilt, sessionOptions, 'model');
  try {
    return (await s.run(feeds))[out]!;
  } finally {
    await s.release();
  }
}


const loadBefore = os.loadavg();
log(`cost-model: load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
const cpu0 = cpuTimes();
const own0 = ownCpuSeconds();
const t0 = performance.now();
const rows: CostModelRow[] = [];
const skipped: { name: string; reason: string }[] = [];
const profiles: MachineProfile[] = [];
for (const c of cases()) {
  try {
    // Calibrated again right before each model: the machine's speed drifts (a shared host).
    const profile = await calibrate(sessionOptions, 3);
    profiles.push(profile);
    const r = await measure(c, profile);
    rows.push({ ...r, gemmGflops: profile.gemmFlops / 1e9 });
    log(`${r.name}: SGD ${ms(r.sgd.predicted)}/${ms(r.sgd.measured)} ms (${err(r.sgd.predicted, r.sgd.measured)}), SNGD step ${ms(r.sngd.predicted)}/${ms(r.sngd.measured)} ms (${err(r.sngd.predicted, r.sngd.measured)}), refresh ${ms(r.refresh.predicted)}/${ms(r.refresh.measured)} ms, total ${err(r.total.predicted, r.total.measured)}`);
  } catch (e) {
    skipped.push({ name: c.name, reason: (e as Error).message.split('\n')[0]! });
    log(`${c.name}: skipped (${skipped.at(-1)!.reason})`);
  }
}
const cpu1 = cpuTimes();
const wall = (performance.now() - t0) / 1000;
const otherLoad = cpu0 && cpu1 ? Math.max(0, (cpu1.busy - cpu0.busy - (ownCpuSeconds() - own0)) / (wall * cpu1.cores)) : undefined;
const results: CostModelResults = { machine: machine(), batch, steps: stepCount, refreshEvery: REFRESH_EVERY, loadBefore, loadAfter: os.loadavg(), otherLoad, profile: profiles[0] ?? DEFAULT_PROFILE, rows, skipped };
writeJson(path.join(BENCH_DIR, 'results', 'cost-model.json'), results);

console.log(`\nbatch ${batch}, T = ${REFRESH_EVERY}; ms per step predicted / measured (error); load average ${loadBefore[0]!.toFixed(2)} → ${results.loadAfter[0]!.toFixed(2)}, other processes ${otherLoad === undefined ? '?' : `${(100 * otherLoad).toFixed(0)} %`} of the CPU\n`);
console.log(costTable(results).join('\n'));
