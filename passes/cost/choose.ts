/**
 * `--max-fisher-dim auto`: dense or Nyström, per layer, from the time model and memory.
 *
 *   chooseFisherForms(model, { batchSize: 50, loss: 'ce', refreshEvery: 20, statEvery: 10, … })
 *     → { layers: [{ name, kind: 'dense' | 'nystrom', reason, dense, nystrom }], plainStep }
 *   reconstruct(model, { fisherForms: formsOf(choice) })
 *
 * A layer gets a Nyström Fisher layer of rank k (SNGD.md §4) when all of
 *
 *   it can       a Gemm/MatMul/Conv/ConvTranspose layer (recurrent streams are dense only)
 *   it is large  d̃ ≥ MIN_DIM_PER_RANK·k: below that Nyström saves little and keeps little of F
 *   dense hurts  its dense form costs more than TIME_SHARE × the whole plain-GD step, or keeps
 *                more than MEMORY_BUDGET bytes of d̃ × d̃ state
 *   Nyström helps  the Nyström form is predicted cheaper in what hurt (time, or memory)
 *
 * and stays dense otherwise: dense is the exact method, Nyström an approximation, so the rule only
 * trades when dense is clearly unaffordable.
 *
 * A form's cost is what it adds to a plain-GD step (formCost below): W_eff = W̃'·P and its
 * gradient, the statistic (every statEvery steps) and its copy out, the host's EMA update and
 * finite check, and one cold refresh amortized over T (passes/cost/refresh.ts). It is computed from
 * the layer's sizes, not from a compiled graph, because compiling the dense form of the layers in
 * question is what is unaffordable (fc1 of pt_mnist_cnn_bn: P and S alone are 2 × 540 MB).
 * test/choose.test.ts checks it against the graph-based model (passes/cost/step.ts) where both run.
 *
 * The machine rates are DEFAULT_PROFILE's, not this machine's calibration: the choice decides the
 * model's tensors, so a resumed run, another machine or a re-calibration must rebuild the same
 * forms. The rule's margins (below) are wide enough that a 2× error in the rates changes nothing
 * for the reference models.
 */
import { SngdError } from '../../src/errors.js';
import type { Dim, Model } from '../../src/ir/graph.js';
import { elementCount } from '../../src/onnx/tensor.js';
import { inferShapes } from '../../src/shape/index.js';
import { compileModel, WORKING_OPSET, type CompileOptions } from '../compile.js';
import { findLayers, type FormDecision } from '../reconstruct/index.js';
import type { LayerMatch } from '../reconstruct/layers.js';
import { recurrentStreams } from '../reconstruct/recurrent.js';
import type { LossKind } from '../training/losses.js';
import { upgradeOpset } from '../upgrade/index.js';
import { layerIndex } from './graph.js';
import { DEFAULT_PROFILE, workSeconds, type MachineProfile } from './machine.js';
import { denseRemapSeconds, denseRootSeconds, nystromRefreshSeconds, refreshFixedSeconds, type RefreshSettings } from './refresh.js';
import { predictStep } from './step.js';
import type { OpWork } from './work.js';

/**
 * A layer goes Nyström when its dense form costs more than this many plain-GD steps.
 *
 * Why 30. Dense is what SNGD's results were measured with, and a dense layer is worth several
 * plain steps: the reference MLP's 785-wide first layer, which the headline results rest on and
 * which must stay dense, is predicted at 10–15 plain steps (batch 1–500; T = 20 with a statistic
 * every 10 steps, or T = 100 with one every step). bench/fisher-forms.ts measured, for an MLP
 * (d̃−1)-80-10 on MNIST at batch 50 with the defaults (2 shared cores, so ±2×): d̃ = 785 adds
 * 6–9 plain steps (predicted 15.7: the model assumes cold refreshes and runs the plain step's
 * kernels hot), d̃ = 1537 adds 17–59 (predicted 55) and d̃ = 2049 96–122 (predicted 96), where
 * a rank-64 Nyström fc1 adds 0.3–4. 30 sits between 785 and 1537 with about 2× on either side, so
 * the reference MLP stays dense under a 2× error in the rates, and a Linear at batch 50 goes
 * Nyström from d̃ ≈ 1100–1500 (1024: 20–26 plain steps, 1536: 33–55). fc1 of pt_mnist_cnn_bn
 * (d̃ = 11617) is predicted at 220–8400 plain steps, whatever the settings.
 */
export const TIME_SHARE = 30;

/**
 * A layer goes Nyström when its dense state exceeds this: the float64 EMA and its last-good copy,
 * and the float32 roots P and S, 24 bytes per element of d̃ × d̃ (1 GiB: d̃ ≈ 6700), before the
 * root graph's workspace and the checkpoints' copies. Memory rarely decides before time does at the
 * default settings; it guards large T and large batches, where the time rule lets big layers pass.
 */
export const MEMORY_BUDGET = 2 ** 30;

/** Nyström only for d̃ ≥ this × k (k = 64: d̃ ≥ 256): a smaller layer keeps more of F dense at a small cost. */
export const MIN_DIM_PER_RANK = 4;

/** Bytes per element of d̃ × d̃ a dense layer keeps (see MEMORY_BUDGET). */
const DENSE_BYTES = 8 + 8 + 4 + 4;

/** Good steps between the trainer's last-good snapshots (runtime/run.ts SNAPSHOT_EVERY). */
const SNAPSHOT_EVERY = 10;

export interface FormSettings {
  /** Batch size, refresh period T, a statistic every k steps, ε_rel (sets the refresh's Newton–Schulz steps). */
  batch: number;
  refreshEvery: number;
  statEvery: number;
  epsRel: number;
  /** Momentum buffers are remapped at every refresh (SNGD with momentum). */
  momentum: boolean;
}

/** A layer as the cost of its Fisher forms sees it: m outputs, d̃, and the rows of x̃ per step. */
export interface FormShape {
  m: number;
  fisherDim: number;
  rows: number;
}

export interface FormCost {
  /** Seconds per step the form adds to plain GD: graph kernels, host loops, refresh / T. */
  seconds: number;
  graph: number;
  host: number;
  refresh: number;
  /** Bytes of state the form keeps (EMA, its snapshot, roots). */
  bytes: number;
}

export interface LayerFormChoice extends FormDecision {
  name: string;
  fisherDim: number;
  /** The Nyström rank considered (min(--nystrom-rank, d̃)). */
  rank: number;
  /** Both forms' costs, for layers that could take either (absent for small and recurrent layers). */
  dense?: FormCost;
  nystrom?: FormCost;
}

export interface FormChoice {
  layers: LayerFormChoice[];
  /** The predicted plain-GD step the time rule compares with (computed only when some layer could go Nyström, and absent when the training graph could not be built). */
  plainStep?: number;
  profile: MachineProfile;
}

export interface ChooseOptions extends Pick<CompileOptions, 'output' | 'dims' | 'only'> {
  batchSize: number;
  /** The loss the training step uses (the plain step's cost). Default 'ce'. */
  loss?: LossKind;
  nystromRank: number;
  refreshEvery: number;
  statEvery: number;
  epsRel: number;
  momentum?: boolean;
}

/** The per-layer forms for `reconstruct({ fisherForms })`. */
export function formsOf(choice: FormChoice): Record<string, FormDecision> {
  return Object.fromEntries(choice.layers.map((l) => [l.name, { kind: l.kind, reason: l.reason }]));
}

export function chooseFisherForms(model: Model, o: ChooseOptions, profile: MachineProfile = DEFAULT_PROFILE): FormChoice {
  // Symbolic dims bound (the batch, a sequence length), so every layer's rows per step are known.
  const shaped = inferShapes(withDims(upgradeOpset(model, WORKING_OPSET), o.batchSize, o.dims ?? {}));
  const { matches, recurrent } = findLayers(shaped.graph);
  const wanted = (name: string) => !o.only || o.only.includes(name);
  const s: FormSettings = { batch: o.batchSize, refreshEvery: o.refreshEvery, statEvery: o.statEvery, epsRel: o.epsRel, momentum: o.momentum ?? false };
  const layers: LayerFormChoice[] = [];
  const candidates: { choice: LayerFormChoice; shape: FormShape }[] = [];
  for (const match of matches.filter((mt) => wanted(mt.node.name))) {
    const fisherDim = match.d + (match.bias ? 1 : 0);
    const rank = Math.min(o.nystromRank, fisherDim);
    const choice: LayerFormChoice = { name: match.node.name, fisherDim, rank, kind: 'dense', reason: '' };
    layers.push(choice);
    if (fisherDim < MIN_DIM_PER_RANK * rank) {
      choice.reason = `d̃ = ${fisherDim} < ${MIN_DIM_PER_RANK}·k = ${MIN_DIM_PER_RANK * rank}: small layers stay dense`;
      continue;
    }
    candidates.push({ choice, shape: { m: match.m, fisherDim, rows: rowsPerStep(shaped, match, o.batchSize) } });
  }
  for (const r of recurrent.filter((rc) => wanted(rc.node.name))) {
    for (const stream of recurrentStreams(r)) layers.push({ ...stream, rank: Math.min(o.nystromRank, stream.fisherDim), kind: 'dense', reason: 'recurrent streams have no Nyström form' });
  }
  if (!candidates.length) return { layers, profile };

  const plain = plainStepSeconds(model, o, profile);
  const plainStep = typeof plain === 'number' ? plain : undefined;
  for (const { choice, shape } of candidates) {
    const dense = formCost(shape, undefined, s, profile);
    const nystrom = formCost(shape, choice.rank, s, profile);
    Object.assign(choice, { dense, nystrom });
    const slow = plainStep !== undefined && dense.seconds > TIME_SHARE * plainStep;
    const big = dense.bytes > MEMORY_BUDGET;
    const share = plainStep !== undefined ? `${times(dense.seconds / plainStep)} the plain-GD step of ${time(plainStep)}; limit ${TIME_SHARE}×` : String(plain);
    const denseSize = `${size(dense.bytes)} (limit ${size(MEMORY_BUDGET)})`;
    const nystromText = `Nyström k=${choice.rank}: ${time(nystrom.seconds)}/step, ${size(nystrom.bytes)}`;
    if ((slow && nystrom.seconds < dense.seconds) || (big && nystrom.bytes < dense.bytes)) {
      choice.kind = 'nystrom';
      choice.reason = `dense would cost ${time(dense.seconds)}/step (${share}) and ${denseSize}; ${nystromText}`;
    } else {
      choice.reason = `dense costs ${time(dense.seconds)}/step (${share}) and ${denseSize}${slow || big ? `, but ${nystromText} is no cheaper` : ''}`;
    }
  }
  return { layers, ...(plainStep !== undefined ? { plainStep } : {}), profile };
}

/**
 * The predicted plain-GD step (SGD on the model without Fisher layers), as `sngd train` runs it;
 * or why the training graph could not be built (sngd-compile without --dims for a symbolic
 * sequence length, a loss that does not fit the output): then only memory decides.
 */
function plainStepSeconds(model: Model, o: ChooseOptions, p: MachineProfile): number | string {
  try {
    const plain = compileModel(model, { fisher: false, loss: o.loss ?? 'ce', output: o.output, l2: true, batchSize: o.batchSize, dims: o.dims });
    return predictStep(plain.train!, plain.manifest.train!, [], layerIndex([]), { batch: o.batchSize, dims: o.dims, optimizer: 'sgd', refreshEvery: o.refreshEvery }, p).seconds;
  } catch (err) {
    if (!(err instanceof SngdError)) throw err;
    return `time not weighed, no training step: ${err.message}`;
  }
}

const gemm = (m: number, k: number, n: number): OpWork => ({ kind: 'gemm', flops: 2 * m * k * n, bytes: 0, parallelWork: m * k * n, outputs: m * n });
const memory = (bytes: number): OpWork => ({ kind: 'memory', flops: 0, bytes });

/**
 * What a dense (rank undefined) or Nyström (rank k) Fisher layer adds to a plain-GD step, kernel by
 * kernel as passes/training builds them (weight side; the activation side is chosen only when
 * cheaper):
 *
 *   dense    W̃'·P and dW̃'·Pᵀ (m·d̃² each); the statistic x̃ᵀx̃ (R·d̃²) and its d̃² copy out;
 *            host EMA and finite check over d̃²; a root of d̃ × d̃ and a remap per refresh
 *   Nyström  W̃'·U, ·Uᵀ and their gradients (m·d̃·k each) and m·d̃ elementwise passes; the
 *            landmark columns x̃ᵀ·x̃[:, I] (R·d̃·k) and the diagonal (R·d̃); host work over
 *            d̃·(k+1); the host's k × k refresh and low-rank remap
 */
export function formCost(l: FormShape, rank: number | undefined, s: FormSettings, p: MachineProfile): FormCost {
  const { m, fisherDim: d, rows: R } = l;
  const w = (work: OpWork) => workSeconds(work, p);
  const refreshSettings: RefreshSettings = { epsRel: s.epsRel, momentum: s.momentum };
  const ones = w(memory(8 * R * d));
  if (rank === undefined) {
    const apply = 2 * w(gemm(m, d, d)) + 2 * w(memory(8 * m * d));
    const stat = ones + w(gemm(d, R, d)) + w(memory(8 * d * d)) + p.output + 4 * d * d * p.outputByte;
    const host = (d * d * (p.host.finite + p.host.ema)) / s.statEvery + (8 * d * d * p.host.copyByte) / SNAPSHOT_EVERY;
    const refresh = refreshFixedSeconds(p, refreshSettings) + denseRootSeconds(d, 1, p, refreshSettings) + denseRemapSeconds(m, d, 1, p, refreshSettings);
    return total(apply + stat / s.statEvery, host, refresh / s.refreshEvery, DENSE_BYTES * d * d);
  }
  const k = rank;
  const apply = 2 * (w(gemm(m, d, k)) + w(gemm(m, k, d)) + w(memory(8 * m * k)) + w(memory(8 * m * d)) + w(memory(12 * m * d))) + 2 * w(memory(8 * m * d));
  const stat = ones + w(memory(8 * R * k)) + w(gemm(d, R, k)) + w(memory(8 * d * k)) + w(memory(12 * R * d)) + w(memory(4 * R * d)) + w(memory(8 * d)) + 2 * p.output + 4 * d * (k + 1) * p.outputByte;
  const n = d * (k + 1);
  const host = (n * (p.host.finite + p.host.ema)) / s.statEvery + (8 * n * p.host.copyByte) / SNAPSHOT_EVERY;
  const refresh = nystromRefreshSeconds(m, d, k, p, refreshSettings);
  // EMA and its snapshot (float64), U and the k-vectors (float32).
  return total(apply + stat / s.statEvery, host, refresh / s.refreshEvery, 16 * n + 4 * d * k);
}

function total(graph: number, host: number, refresh: number, bytes: number): FormCost {
  return { seconds: graph + host + refresh, graph, host, refresh, bytes };
}

/**
 * Rows of x̃ per step: each row gives one row of the layer's m outputs, whatever the op (a Gemm's
 * batch rows, a MatMul's leading axes, a convolution's batch × output positions; a grouped
 * convolution has `group` rows per output position, counted as one). When the output's shape is
 * unknown: the batch × the registry's positions per sample (1 when unknown).
 */
function rowsPerStep(shaped: Model, match: LayerMatch, batch: number): number {
  const shape = shaped.graph.valueInfo.get(match.output)?.shape ?? shaped.graph.outputs.find((v) => v.name === match.output)?.shape;
  if (shape && shape.every((d) => typeof d === 'number')) return elementCount(shape as number[]) / match.m;
  return batch * (Number.isFinite(match.positions) ? match.positions : 1);
}

/** The model with its inputs' symbolic dims bound: the given sizes, and the batch for every input's leading dim (as graph.ts binds them). */
function withDims(model: Model, batch: number, dims: Record<string, number>): Model {
  const bind = (d: Dim, i: number): Dim => (typeof d !== 'string' ? d : dims[d] ?? (i === 0 ? batch : d));
  const inputs = model.graph.inputs.map((v) => (v.shape ? { ...v, shape: v.shape.map(bind) } : v));
  return { ...model, graph: { ...model.graph, inputs } };
}

function times(x: number): string {
  return `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)}×`;
}

function time(s: number): string {
  return s >= 1 ? `${s.toFixed(1)} s` : `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms`;
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 2 ** 10).toFixed(0)} KiB`;
}
