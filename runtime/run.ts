/**
 * One training run's state and the operations on it, independent of data loading, logging and
 * checkpoint files: the compiled graphs and their sessions, every tensor fed to a step
 * (parameters, roots, batch-norm statistics), the Fisher EMAs, the optimizer, and
 *
 *   step(feeds)     one training step: loss, gradients, statistics → EMA and optimizer update
 *   refresh()       new roots from the damped EMAs, W̃' and momentum remapped (SNGD.md §2)
 *   installRoots()  install given roots (tests, warm starts from elsewhere)
 *   evaluate()      loss and accuracy on a dataset with the current state
 *   exportModel()   the trained model, folded to the original architecture (SNGD) or as is
 *   snapshot()/restore()  everything a checkpoint needs to continue bit for bit
 */
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { compileModel, type Manifest } from '../passes/compile.js';
import type { FormDecision } from '../passes/reconstruct/index.js';
import { fold } from '../passes/fold.js';
import { denseBlocks, nystromOf, readLayerRecords, unitOf, type LayerRecord } from '../passes/reconstruct/record.js';
import { L2_INPUT, withoutStatistics, type GraphContract } from '../passes/training/index.js';
import type { LossKind } from '../passes/training/losses.js';
import type { Checkpoint } from './checkpoint.js';
import { labelsPerSample, makeBatch, type Dataset } from './data/dataset.js';
import { FisherEma, NystromEma, type EmaInit } from './fisher.js';
import { refreshNystrom } from './nystrom.js';
import { applyLowRankRightBy } from '../src/numerics/nystrom.js';
import { OrtGemm } from './gemm.js';
import { mat } from '../src/numerics/linalg.js';
import type { NystromParts } from '../passes/reconstruct/remap.js';
import { Optimizer, defaultOptimizerConfig, type OptimizerName, type ParamInfo } from './optimizers.js';
import { createSession, type Session, type SessionOptions } from './ort.js';
import { buildRemapGraph, buildTrackRemapGraph } from './remap.js';
import { RootRefresher, stackRoots, type LayerRoots } from './roots.js';
import { createWorkerSession } from './worker-session.js';

export interface SngdSettings {
  emaDecay: number;
  epsRel: number;
  epsAbs: number;
  /** Refresh the roots every T steps. */
  refreshEvery: number;
  emaInit: EmaInit;
  rootMethod: 'ns' | 'db';
  /**
   * How a refresh starts once a layer has roots: 'cold' roots F_λ from scratch (the reference);
   * 'warm' roots it again from the previous P and S; 'track' corrects P for the drift of F and
   * keeps roots that still whiten F to within `refreshGate` (runtime/roots/graph.ts). The first
   * refresh is always cold.
   */
  refreshStart: 'cold' | 'warm' | 'track';
  /** 'track': keep a layer's roots while ρ(P·F_λ·Pᵀ − I) ≤ this. Defaults to DEFAULT_TRACK_GATE (0.3, runtime/roots.ts). */
  refreshGate?: number;
  /** Fold a statistic into the EMA every k steps (the graph computes it every step). */
  statEvery: number;
  /**
   * Nyström layers: the eigenvalue assumed outside the rank-k subspace. 'damping': 0, so
   * P = (F̂ + λI)^{-1/2} (SNGD.md §4; tail directions get steps ×1/λ, which diverges where F has a
   * flat spectrum); 'mean' (default): the mean of the unexplained spectrum,
   * μ = (tr F − tr F̂)/(d̃ − k), so P = (F̂ + μ(I − UUᵀ) + λI)^{-1/2}.
   */
  nystromTail?: 'damping' | 'mean';
  /**
   * Compute dense roots on a worker thread while training goes on, and install them
   * `asyncLag` steps after the refresh began (a fixed step, so runs stay reproducible): the main
   * loop waits only if the roots are not ready by then. The roots are those of the Fisher EMA at
   * the refresh's start, `asyncLag` steps old when installed. Defaults to false (the reference:
   * synchronous).
   */
  asyncRefresh?: boolean;
  asyncLag?: number;
  /**
   * Damping warm-up: over the first `dampingWarmup` steps ε_rel starts `dampingWarmupFactor`
   * (default 100) times larger and decays geometrically to its value, so the first roots, made from
   * few statistics, take cautious steps. 0 (default): none.
   */
  dampingWarmup?: number;
  dampingWarmupFactor?: number;
}

/** SNGD.md §6: the authors' reference settings (`sngd train --reference`). */
export const REFERENCE_SNGD: SngdSettings = { emaDecay: 0.995, epsRel: 1e-4, epsAbs: 0, refreshEvery: 100, emaInit: 'identity', rootMethod: 'ns', refreshStart: 'cold', statEvery: 1 };

/**
 * The defaults, chosen by measurement (bench/defaults.ts, MNIST MLP a, 3 seeds; README "Choosing
 * the defaults"): a bias-corrected EMA with damping 1e-2·tr(F) (+1.6 points after one epoch over
 * the reference), statistics every 10 steps (as accurate, a cheaper step), tracked refreshes every
 * 20 steps (97 % after two epochs instead of three; cheap because most refreshes keep or correct
 * the roots), and a 40-step damping warm-up (needed at batch 500, harmless at 50).
 */
export const DEFAULT_SNGD: SngdSettings = { ...REFERENCE_SNGD, emaInit: 'zero', epsRel: 1e-2, statEvery: 10, refreshEvery: 20, refreshStart: 'track', dampingWarmup: 40 };

/**
 * The defaults for models with convolutions (`sngd train --defaults conv`, and what `--defaults
 * auto` picks for them): SNGD.md §6's reference settings with a statistic every 10 steps. Measured
 * 2026-11-28 on the small CNN (`sngd model cnn`: conv 10, conv 73, fc 785), lr 0.1, 2 epochs, test
 * % on model and data seeds 2017 / 2018 / 2019: these 96.65 / 97.86, 97.20 / 97.94, 97.33 / 97.88
 * (9.4 s for 2 epochs); the reference (a statistic every step) 96.71 / 97.88, 97.22 / 97.92,
 * 97.39 / 97.89 (15.9 s); DEFAULT_SNGD 91.08 / 93.37, 93.38 / 95.58, 93.99 / 95.89; DEFAULT_SNGD
 * with ε_rel 1e-3 97.09 / 97.91, 95.73 / 96.82, 87.06 / 88.44; T = 50 97.66–97.82 after 2 epochs.
 * On pt_mnist_cnn_bn's architecture the reference EMA also beat the bias-corrected one (README).
 * The EMA from I makes early steps SGD-like and turns into natural-gradient steps as statistics
 * accumulate, which convolutions' small, pixel-level Fisher blocks need; the MLP does better with
 * natural-gradient steps from the first refresh (DEFAULT_SNGD).
 */
export const CONV_SNGD: SngdSettings = { ...REFERENCE_SNGD, statEvery: 10 };

export interface RunConfig {
  optimizer: OptimizerName;
  momentum?: number;
  weightDecay?: number;
  sngd: SngdSettings;
  loss: LossKind;
  output?: string;
  side: 'auto' | 'weight' | 'activation';
  batchSize: number;
  sessionOptions: SessionOptions;
  source: string;
  /** Sizes for symbolic dims other than the batch (the trainer binds them from the data). */
  dims?: Record<string, number>;
  /** Nyström Fisher layers for layers with d̃ above this (compile option; default Infinity: all dense). */
  maxFisherDim?: number;
  /** An explicit form per layer (passes/cost/choose.ts, `--max-fisher-dim auto`); replaces maxFisherDim. */
  fisherForms?: Readonly<Record<string, FormDecision>>;
  nystromRank?: number;
  landmarks?: 'uniform' | 'diagonal';
  /** 'unit': per-unit Fisher blocks for the hidden dense layers that qualify (compile option; default 'layer'). */
  fisherBlocks?: 'layer' | 'unit';
  maxUnitDim?: number;
  log?: (message: string) => void;
}

export interface LayerState {
  rec: LayerRecord;
  /** Dense layers: the d̃ × d̃ EMA (m of them for unit blocks); Nyström layers: the landmark-column and diagonal EMAs. */
  ema: FisherEma | NystromEma;
  /** Nyström layers with 'diagonal' landmarks: whether they have been chosen (at the first refresh). */
  landmarksFixed?: boolean;
  /** Multiplier of ε_rel, raised after a failed refresh or a non-finite step. */
  damping: number;
  /** Whether the layer's roots came from a refresh (warm and track refreshes need that). */
  rooted: boolean;
}

export interface StepResult {
  loss: number;
  /** false when the loss or a gradient was not finite: the step was undone. */
  ok: boolean;
  correct: number;
}

export class TrainingRun {
  /** Every input with a starting value: parameters, roots P, batch-norm running statistics. */
  readonly tensors = new Map<string, Tensor>();
  /** The roots S (not fed to a step; needed by the next remap and by checkpoints). */
  readonly sValues = new Map<string, Tensor>();
  readonly layers: LayerState[];
  readonly params: ParamInfo[];
  readonly optimizer: Optimizer;
  readonly fisher: boolean;
  stepCount = 0;
  /** An asynchronous refresh under way: its inputs (for checkpoints) and the step it is installed at. */
  private pending?: { roots: Promise<LayerRoots[]>; F: Float32Array[]; previous?: PreviousParts[]; applyAt: number };
  /** Parameters and Fisher EMAs at the last snapshot (every SNAPSHOT_EVERY good steps). */
  private lastGood: Map<string, Float32Array>;
  private lastGoodEma: Float64Array[] = [];
  /** Running mean of recent finite losses, and how many steps it has seen (the divergence test). */
  private lossAvg = 0;
  private readonly remapSessions = new Map<string, Promise<Session>>();
  private goodSteps = 0;
  /** Set by a diverging step: raised damping only acts through new roots, so refresh after it. */
  private rootAfterDivergence = false;

  private constructor(
    readonly config: RunConfig,
    readonly rebuilt: Model,
    readonly manifest: Manifest,
    readonly trainContract: GraphContract,
    readonly evalContract: GraphContract,
    private readonly trainSession: Session,
    /** The training graph without its Fisher statistics, for steps that fold none (statEvery > 1). */
    private readonly plainStepSession: Session | undefined,
    private readonly evalSession: Session,
    private readonly refresher: RootRefresher | undefined,
    /** float64 products of the Nyström layers' host refresh and remap. */
    private readonly gemm: OrtGemm | undefined,
  ) {
    this.fisher = config.optimizer === 'sngd';
    // The run's state is the rebuilt model's own initializers, copied once and updated in place
    // (never replaced), so every tensor is held once and the rebuilt model always shows the state.
    const own = (name: string): Tensor => {
      const t = cloneTensor(rebuilt.graph.initializers.get(name)!.tensor);
      rebuilt.graph.initializers.set(name, { tensor: t });
      return t;
    };
    for (const i of trainContract.inputs) if (i.init) this.tensors.set(i.name, own(i.init));
    this.params = trainContract.inputs.filter((i) => i.role === 'param').map((i) => ({ name: i.name, rank: this.tensors.get(i.name)!.dims.length }));
    const records = readLayerRecords(rebuilt);
    // With statistics every k steps, each update stands for k steps: decay β^k keeps the EMA's time constant in steps.
    const decay = config.sngd.emaDecay ** config.sngd.statEvery;
    this.layers = records.map((rec) => {
      const ny = nystromOf(rec);
      if (!ny) return { rec, ema: new FisherEma(rec.fisherDim, decay, config.sngd.emaInit, denseBlocks(rec)), damping: 1, rooted: false };
      const index = this.tensors.get(ny.index)!.data as BigInt64Array;
      const ema = new NystromEma(rec.fisherDim, ny.rank, Array.from(index, Number), decay, config.sngd.emaInit);
      return { rec, ema, damping: 1, rooted: false, landmarksFixed: ny.landmarks === 'uniform' };
    });
    // A tracked dense layer holds no S: its remap solves for W̃'_new instead (runtime/remap.ts).
    const holdsS = config.sngd.refreshStart !== 'track';
    for (const r of records) for (const name of sideRoots(r)) if (holdsS || nystromOf(r)) this.sValues.set(name, own(name));
    const optConfig = { ...defaultOptimizerConfig(config.optimizer), ...(config.momentum !== undefined ? { momentum: config.momentum } : {}), ...(config.weightDecay !== undefined ? { weightDecay: config.weightDecay } : {}) };
    this.optimizer = new Optimizer(optConfig);
    this.lastGood = this.snapshotParams();
  }

  static async create(model: Model, config: RunConfig): Promise<TrainingRun> {
    const fisher = config.optimizer === 'sngd';
    const compiled = compileModel(model, {
      loss: config.loss, output: config.output, l2: true, fisher, side: config.side, batchSize: config.batchSize, source: config.source, stem: 'model', dims: config.dims,
      maxFisherDim: config.maxFisherDim, fisherForms: config.fisherForms, nystromRank: config.nystromRank, landmarks: config.landmarks, fisherBlocks: config.fisherBlocks, maxUnitDim: config.maxUnitDim,
    });
    const { model: rebuilt, manifest } = compiled;
    const records = readLayerRecords(rebuilt);
    const opts = config.sessionOptions;
    const trainSession = await createSession(compiled.train!, opts, 'training graph');
    // Statistics only every k steps (SNGD.md §8: as good): the other steps run a graph without them,
    // skipping x̃ᵀx̃ (d̃²·rows multiply-adds per layer) and its d̃×d̃ output copy.
    const plainStep = fisher && records.length && config.sngd.statEvery > 1 ? await createSession(withoutStatistics(compiled.train!, manifest.train!), opts, 'training graph (no statistics)') : undefined;
    const evalSession = await createSession(compiled.eval!, opts, 'evaluation graph');
    // Damping guarantees λ_min(F_λ) ≥ ε_rel·tr/(1+d·ε_rel): the scaled Newton–Schulz steps use it.
    // Dense layers refresh and remap in onnxruntime graphs; Nyström layers on the host (runtime/nystrom.ts).
    // A layer with unit blocks gives the root graph one matrix per unit (stacked there with every
    // other matrix of its dimension).
    const dense = records.filter((r) => !nystromOf(r));
    const refresher = fisher && dense.length
      ? new RootRefresher(dense.flatMap((r) => Array<number>(denseBlocks(r)).fill(r.fisherDim)), {
          method: config.sngd.rootMethod, warmStart: config.sngd.refreshStart === 'cold' ? false : config.sngd.refreshStart === 'track' ? 'track' : true,
          gate: config.sngd.refreshGate, dampingRel: config.sngd.epsRel,
          // On a worker, one thread: the other core is the training steps'.
          ...(config.sngd.asyncRefresh ? { sessionOptions: { ...opts, intraOpNumThreads: 1 }, sessionFactory: createWorkerSession } : { sessionOptions: opts }),
        })
      : undefined;
    const gemm = fisher && records.some((r) => nystromOf(r)) ? new OrtGemm(opts) : undefined;
    const run = new TrainingRun(config, rebuilt, manifest, manifest.train!, manifest.eval!, trainSession, plainStep, evalSession, refresher, gemm);
    // Open the remap graphs now, not inside the first refreshes' timings.
    if (fisher) {
      for (const l of run.layers.filter((x) => !nystromOf(x.rec))) {
        await run.remapSession('roots', l);
        if (config.sngd.refreshStart === 'track') await run.remapSession('track', l);
      }
    }
    return run;
  }

  /** The single data input's name (the trainer feeds one). */
  dataInput(): string {
    const inputs = this.trainContract.inputs.filter((i) => i.role === 'data');
    if (inputs.length !== 1) throw new SngdError(`${this.config.source}: sngd train feeds models with exactly one data input; this one has ${inputs.length}`);
    return inputs[0]!.name;
  }

  /** How the data input is fed: int64 for token ids (an embedding's input), else float32. */
  inputType(): 'float32' | 'int64' {
    const v = this.rebuilt.graph.inputs.find((i) => i.name === this.dataInput());
    return v?.elemType === 7 ? 'int64' : 'float32';
  }

  /** One step on a batch: run the training graph, fold statistics into the EMAs, update parameters. */
  async step(data: Record<string, Tensor>, lr: number, l2: number): Promise<StepResult> {
    const feeds: Record<string, Tensor> = { ...data, [L2_INPUT]: scalar(l2) };
    for (const [k, v] of this.tensors) feeds[k] = v;
    const wantStats = this.fisher && this.stepCount % this.config.sngd.statEvery === 0;
    const out = await (wantStats || !this.plainStepSession ? this.trainSession : this.plainStepSession).run(feeds);
    const loss = Number((out[outputOf(this.trainContract, 'loss')]!.data as Float32Array)[0]);
    const grads = new Map(this.params.map((p) => [p.name, out[outputOf(this.trainContract, 'grad', p.name)]!.data as Float32Array]));
    this.stepCount++;
    const stats = wantStats ? this.layers.map((l) => statOutputs(l.rec).map((of) => out[outputOf(this.trainContract, 'stat', of)]!.data as Float32Array)) : [];
    const problem = !Number.isFinite(loss) ? `non-finite loss (${loss})`
      : [...grads.values()].some((g) => !allFinite(g)) ? 'non-finite gradient'
      : stats.some((st) => st.some((x) => !allFinite(x))) ? 'non-finite Fisher statistic'
      // A finite blow-up is divergence too: left alone it fills the Fisher EMAs with huge values.
      : this.goodSteps >= 10 && loss > DIVERGENCE_FACTOR * this.lossAvg ? `loss ${loss.toExponential(2)} is over ${DIVERGENCE_FACTOR}× its recent mean ${this.lossAvg.toExponential(2)}`
      : undefined;
    if (problem) {
      // Back to the last snapshot of parameters and EMAs; drop momentum; damp harder.
      for (const [k, v] of this.lastGood) assign(this.tensors, k, v);
      this.layers.forEach((l, i) => this.lastGoodEma[i] && l.ema.f.set(this.lastGoodEma[i]!));
      this.optimizer.buffers.clear();
      for (const l of this.layers) l.damping *= 10;
      this.rootAfterDivergence = this.fisher && this.layers.length > 0;
      this.config.log?.(`step ${this.stepCount}: ${problem}; restored the last good parameters and raised damping ×10${this.rootAfterDivergence ? ' (roots refreshed now)' : ''}`);
      return { loss, ok: false, correct: 0 };
    }
    // A slow mean (about 50 steps): a blow-up over a few steps must not drag it along.
    this.lossAvg = this.goodSteps === 0 ? loss : 0.98 * this.lossAvg + 0.02 * loss;
    this.goodSteps++;
    if (this.goodSteps % SNAPSHOT_EVERY === 0) this.takeSnapshot();
    for (const s of this.trainContract.outputs.filter((o) => o.role === 'state')) assign(this.tensors, s.of!, out[s.name]!.data as Float32Array);
    this.layers.forEach((l, i) => {
      const st = stats[i];
      if (!st) return;
      if (l.ema instanceof NystromEma) l.ema.update(st[0]!, st[1]!);
      else l.ema.update(st[0]!);
    });
    const params = new Map(this.params.map((p) => [p.name, this.tensors.get(p.name)!.data as Float32Array]));
    this.optimizer.step(params, grads, this.params, lr);
    return { loss, ok: true, correct: data.labels ? countCorrect(out, this.trainContract, data.labels) : 0 };
  }

  /** Whether a refresh is due after the current step. */
  refreshDue(): boolean {
    return this.fisher && this.layers.length > 0 && (this.rootAfterDivergence || this.stepCount % this.config.sngd.refreshEvery === 0);
  }

  /** The damped Fisher matrices F_λ the next refresh will root ([m, d̃, d̃] for unit blocks; an empty array for a Nyström layer). */
  dampedFisher(): Float32Array[] {
    return this.layers.map((l) => (l.ema instanceof FisherEma ? l.ema.damped(this.epsRel() * l.damping, this.config.sngd.epsAbs) : new Float32Array(0)));
  }

  /** ε_rel at the current step: the configured value, raised during the damping warm-up. */
  epsRel(): number {
    const { epsRel, dampingWarmup = 0, dampingWarmupFactor = 100 } = this.config.sngd;
    if (dampingWarmup <= 0 || this.stepCount >= dampingWarmup) return epsRel;
    return epsRel * dampingWarmupFactor ** (1 - this.stepCount / dampingWarmup);
  }

  /**
   * New roots for every layer from the damped EMAs; a layer whose root fails keeps its roots. A
   * synchronous refresh's kept layers report their P as a view of the live tensor: copy it to keep it.
   */
  async refresh(): Promise<LayerRoots[]> {
    if (!this.fisher || this.layers.length === 0) return [];
    if (this.pending) await this.finishRefresh(await this.pending.roots); // a lag ≥ T: install the previous one first
    this.pending = undefined;
    this.rootAfterDivergence = false;
    const started = this.startDenseRoots();
    if (this.config.sngd.asyncRefresh) {
      this.pending = { ...started, applyAt: this.stepCount + (this.config.sngd.asyncLag ?? DEFAULT_ASYNC_LAG) };
      return [];
    }
    return this.finishRefresh(await started.roots);
  }

  /** Whether an asynchronous refresh is due to be installed now. */
  pendingDue(): boolean {
    return this.pending !== undefined && this.stepCount >= this.pending.applyAt;
  }

  /** With asyncRefresh: installs the pending refresh if this is its step (waiting for it if needed). */
  async applyPendingRefresh(): Promise<LayerRoots[]> {
    if (!this.pending || this.stepCount < this.pending.applyAt) return [];
    const pending = this.pending;
    this.pending = undefined;
    return this.finishRefresh(await pending.roots);
  }

  /**
   * Starts the dense roots of the current damped EMAs (on the worker when asynchronous): cold, or
   * from the previous roots ('warm': P and S; 'track': P) once every dense layer has some. F and
   * previous hold one entry per root-graph matrix: a layer block, or one unit of a unit layer.
   */
  private startDenseRoots(F?: Float32Array[], previous?: PreviousParts[]): { roots: Promise<LayerRoots[]>; F: Float32Array[]; previous?: PreviousParts[] } {
    const denseLayers = this.layers.filter((l) => l.ema instanceof FisherEma);
    // An asynchronous refresh's inputs go to a worker and into checkpoints while steps change the
    // tensors: copies. A synchronous one reads them before the next step: views (a 785² copy saved).
    const copy = this.config.sngd.asyncRefresh === true;
    const blocks = (l: LayerState, data: Float32Array) => splitBlocks(data, (l.ema as FisherEma).blocks, copy);
    const start = this.config.sngd.refreshStart;
    const fromPrevious = start !== 'cold' && denseLayers.every((l) => l.rooted);
    const prev = previous ?? (fromPrevious
      ? denseLayers.flatMap((l) => {
          const P = blocks(l, this.tensors.get(l.rec.params.P)!.data as Float32Array);
          if (start === 'track') return P.map((p): PreviousParts => ({ P: p }));
          const S = blocks(l, this.sValues.get(l.rec.params.S)!.data as Float32Array);
          return P.map((p, j): PreviousParts => ({ P: p, S: S[j]! }));
        })
      : undefined);
    const f = F ?? denseLayers.flatMap((l) => blocks(l, (l.ema as FisherEma).damped(this.epsRel() * l.damping, this.config.sngd.epsAbs)));
    return { roots: this.refresher ? this.refresher.refresh(f, prev) : Promise.resolve([]), F: f, previous: prev };
  }

  /** Judges and installs dense roots, computing the Nyström layers' roots now. */
  private async finishRefresh(denseRoots: LayerRoots[]): Promise<LayerRoots[]> {
    let next = 0;
    const roots: LayerRoots[] = [];
    for (const l of this.layers) {
      if (l.ema instanceof FisherEma) {
        const mine = denseRoots.slice(next, (next += l.ema.blocks));
        roots.push(unitOf(l.rec) ? stackRoots(mine) : mine[0]!);
        continue;
      }
      const tail = this.config.sngd.nystromTail ?? 'mean';
      const index = Array.from(this.tensors.get(nystromOf(l.rec)!.index)!.data as BigInt64Array, Number);
      const r = await refreshNystrom(l.ema, index, { epsRel: this.epsRel() * l.damping, epsAbs: this.config.sngd.epsAbs, tail }, this.gemm?.gemm);
      if (r.ok && !l.landmarksFixed) this.fixDiagonalLandmarks(l, r.nystrom!);
      roots.push(r);
    }
    roots.forEach((r, i) => {
      if (r.ok) return;
      const l = this.layers[i]!;
      l.damping *= 10;
      this.config.log?.(`step ${this.stepCount}: refresh of layer '${l.rec.name}' failed (${r.reason}); kept its roots, damping ×${l.damping}`);
    });
    await this.installRoots(roots.map((r): NewRoots => {
      if (!r.ok || r.track?.keep) return undefined;
      if (r.nystrom) return { nystrom: r.nystrom };
      return r.track ? { P: r.P, Z: r.track.Z, Y: r.track.Y } : { P: r.P, S: r.S };
    }));
    return roots;
  }

  /**
   * 'diagonal' landmarks: after the first refresh (from the compile-time landmarks), the k largest
   * entries of diag(F) become the landmarks for good. The column EMA restarts from the refreshed
   * approximation's columns F̂[:, I_new], with the diagonal EMA on the landmark rows.
   */
  private fixDiagonalLandmarks(l: LayerState, roots: NystromParts & { lambdas: Float64Array }): void {
    const ema = l.ema as NystromEma;
    const ny = nystromOf(l.rec)!;
    const d = l.rec.fisherDim;
    const k = ny.rank;
    const order = Array.from({ length: d }, (_, i) => i).sort((x, y) => ema.diagonal[y]! - ema.diagonal[x]! || x - y);
    const chosen = order.slice(0, k).sort((x, y) => x - y);
    const u = roots.U.data;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < k; j++) {
        const c = chosen[j]!;
        let v = 0;
        for (let p = 0; p < k; p++) v += u[i * k + p]! * roots.lambdas[p]! * u[c * k + p]!;
        // F̂ is bias-corrected; the EMA stores the raw (uncorrected) sums.
        ema.columns[i * k + j] = i === c ? ema.diagonal[c]! : v / ema.scale();
      }
    }
    (this.tensors.get(ny.index)!.data as BigInt64Array).set(chosen.map(BigInt));
    l.landmarksFixed = true;
    this.config.log?.(`step ${this.stepCount}: layer '${l.rec.name}': Nyström landmarks fixed to the ${k} largest diagonal entries of F`);
  }

  /** Installs new roots (undefined: keep a layer's roots), remapping W̃' and momentum so the function is unchanged. */
  async installRoots(roots: NewRoots[]): Promise<void> {
    if (!this.fisher || this.layers.length === 0) throw new SngdError('this run has no Fisher layers');
    // Nyström layers: W̃'_new = W̃'_old·P_old·S_new in low-rank form (O(m·d̃·k)).
    for (const [i, l] of this.layers.entries()) {
      const r = roots[i];
      const ny = nystromOf(l.rec);
      if (!ny || !r) continue;
      if (!('nystrom' in r)) throw new SngdError(`layer '${l.rec.name}' is a Nyström layer: install Nyström roots`);
      const { U, a, s, b, t } = r.nystrom;
      const f = (name: string) => this.tensors.get(name)!.data as Float32Array;
      const d = l.rec.fisherDim;
      const uOld = mat(d, ny.rank, f(ny.U));
      const gemm = this.gemm!.gemm;
      const remap = async (w: Float32Array) => (await applyLowRankRightBy(await applyLowRankRightBy(mat(l.rec.m, d, w), uOld, f(ny.a), f(ny.s)[0]!, gemm), U, b, t, gemm)).data;
      const buffer = this.optimizer.buffers.get(l.rec.params.W);
      if (buffer?.v) buffer.v = Float32Array.from(await remap(buffer.v));
      assign(this.tensors, l.rec.params.W, await remap(f(l.rec.params.W)));
      assign(this.tensors, ny.U, U.data);
      assign(this.tensors, ny.a, a);
      assign(this.tensors, ny.s, [s]);
      assign(this.sValues, ny.b, b);
      assign(this.sValues, ny.t, [t]);
    }
    const dense = this.layers.map((l, i) => ({ l, r: roots[i] })).filter(({ l }) => !nystromOf(l.rec));
    for (const { l, r } of dense) {
      if (r && !('P' in r)) throw new SngdError(`layer '${l.rec.name}' is a dense layer: install dense roots`);
      const parts = !r ? [] : 'S' in r ? [r.P, r.S] : [r.P, r.Z, r.Y];
      if (parts.some((a) => a.length !== this.rootSize(l))) throw new SngdError(`layer '${l.rec.name}': roots must be [${this.rootDims(l)}], got ${parts.map((a) => a.length).join(' and ')} values`);
    }
    for (const { l, r } of dense) {
      if (!r || !('P' in r)) continue;
      if ('S' in r) {
        // Cold/warm roots: W̃'_new = W̃'·P_old·S_new.
        if (!(await this.remapLayer('roots', l, { P: this.tensors.get(l.rec.params.P)!, S: this.rootTensor(l, r.S) }))) continue;
        assign(this.tensors, l.rec.params.P, r.P);
        if (this.sValues.has(l.rec.params.S)) assign(this.sValues, l.rec.params.S, r.S);
      } else {
        // Tracked roots: solve W̃'_new·Z = W̃' (runtime/remap.ts).
        if (!(await this.remapLayer('track', l, { Z: this.rootTensor(l, r.Z), Y: this.rootTensor(l, r.Y) }))) continue;
        assign(this.tensors, l.rec.params.P, r.P);
      }
    }
    for (const [i, l] of this.layers.entries()) if (roots[i]) l.rooted = true;
    // New roots change what W̃' means: a rollback must not pair old W̃' with them. Nothing installed
    // (every layer kept its roots): the last snapshot still holds.
    if (roots.some((r) => r)) this.takeSnapshot();
  }

  /** A layer's remap graph ('roots': W̃'·P_old·S_new; 'track': the m-row solve), opened once. */
  private remapSession(kind: 'roots' | 'track', l: LayerState): Promise<Session> {
    const key = `${kind}:${l.rec.name}`;
    let s = this.remapSessions.get(key);
    if (!s) {
      const shape: [number, number, boolean] = [l.rec.m, l.rec.fisherDim, unitOf(l.rec) !== undefined];
      s = createSession(kind === 'roots' ? buildRemapGraph([shape]) : buildTrackRemapGraph([shape]), this.config.sessionOptions, `${kind === 'roots' ? 'remap' : 'tracked remap'} graph of layer '${l.rec.name}'`);
      this.remapSessions.set(key, s);
    }
    return s;
  }

  /**
   * Remaps a layer's W̃' (and its momentum buffer, if any) with its remap graph and the root inputs
   * given; false (and W̃' left as it is) when a tracked solve's relative residual is above
   * TRACK_REMAP_TOLERANCE, so the caller keeps the layer's roots.
   */
  private async remapLayer(kind: 'roots' | 'track', l: LayerState, roots: Record<string, Tensor>): Promise<boolean> {
    const session = await this.remapSession(kind, l);
    const feeds = Object.fromEntries(Object.entries(roots).map(([k, v]) => [`${k}/0`, v]));
    const remap = (w: Float32Array) => session.run({ ...feeds, 'W/0': { dtype: 'float32', dims: [l.rec.m, l.rec.fisherDim], data: w } });
    const buffer = this.optimizer.buffers.get(l.rec.params.W);
    const outs = [await remap(this.tensors.get(l.rec.params.W)!.data as Float32Array), ...(buffer?.v ? [await remap(buffer.v)] : [])];
    const bad = outs.map((o) => o['residual/0']).find((t) => t && !((t.data as Float32Array)[0]! <= TRACK_REMAP_TOLERANCE));
    if (bad) {
      this.config.log?.(`step ${this.stepCount}: the remap of layer '${l.rec.name}' did not converge (relative residual ${(bad.data as Float32Array)[0]}); kept its roots`);
      return false;
    }
    assign(this.tensors, l.rec.params.W, outs[0]!['out/0']!.data as Float32Array);
    if (buffer?.v) buffer.v = Float32Array.from(outs[1]!['out/0']!.data as Float32Array);
    return true;
  }

  /** A dense layer's root shape: [d̃, d̃], or [m, d̃, d̃] with unit blocks. */
  private rootDims(l: LayerState): number[] {
    const d = l.rec.fisherDim;
    return unitOf(l.rec) ? [l.rec.m, d, d] : [d, d];
  }

  private rootSize(l: LayerState): number {
    return this.rootDims(l).reduce((a, b) => a * b, 1);
  }

  private rootTensor(l: LayerState, data: Float32Array): Tensor {
    return { dtype: 'float32', dims: this.rootDims(l), data };
  }


  /** Loss and accuracy on a dataset with the current state (evaluation graph: batch norm in inference mode). */
  async evaluate(d: Dataset, sampleShape: number[]): Promise<{ loss: number; accuracy?: number }> {
    const state = Object.fromEntries([...this.tensors].filter(([k]) => this.evalContract.inputs.some((i) => i.name === k)));
    const order = Uint32Array.from({ length: d.count }, (_, i) => i);
    const lossName = outputOf(this.evalContract, 'loss');
    const correctName = this.evalContract.outputs.find((o) => o.role === 'metric' && o.of === 'correct')?.name;
    const input = this.dataInput();
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < d.count; start += 1000) {
      const b = makeBatch(d, order, start, Math.min(start + 1000, d.count), sampleShape, this.inputType());
      const out = await this.evalSession.run({ ...state, [input]: b.x, labels: b.labels });
      loss += Number((out[lossName]!.data as Float32Array)[0]) * b.size;
      if (correctName) correct += Number((out[correctName]!.data as Float32Array)[0]);
    }
    return { loss: loss / d.count, accuracy: correctName ? correct / (d.count * labelsPerSample(d)) : undefined };
  }

  /** The trained model: folded to the input model's architecture (SNGD) or the plain graph (baselines). */
  exportModel(): Model {
    // The rebuilt model's initializers are the run's state (see the constructor): copy for export.
    const inits = new Map([...this.rebuilt.graph.initializers].map(([k, v]) => [k, { tensor: cloneTensor(v.tensor) }]));
    const trained: Model = { ...this.rebuilt, graph: { ...this.rebuilt.graph, initializers: inits } };
    return this.fisher ? fold(trained) : trained;
  }

  /** Checkpoint content: this run's state plus the caller's position data in `meta`. */
  snapshot(meta: Record<string, unknown>): Checkpoint {
    const out: Checkpoint['tensors'] = {};
    for (const [k, v] of [...this.tensors, ...this.sValues]) out[`t:${k}`] = v.data as Float32Array | BigInt64Array;
    this.layers.forEach((l) => (out[`ema:${l.rec.name}`] = l.ema.f));
    for (const [k, b] of this.optimizer.buffers) {
      if (b.m) out[`m:${k}`] = b.m;
      if (b.v) out[`v:${k}`] = b.v;
    }
    // An asynchronous refresh under way is saved by its inputs: a resumed run starts it again.
    this.pending?.F.forEach((f, i) => (out[`pending:F:${i}`] = f));
    this.pending?.previous?.forEach((p, i) => {
      out[`pending:P:${i}`] = p.P;
      if (p.S) out[`pending:S:${i}`] = p.S;
    });
    return {
      meta: {
        ...meta,
        ...(this.pending ? { pendingRefresh: { applyAt: this.pending.applyAt, layers: this.pending.F.length, warm: this.pending.previous !== undefined } } : {}),
        step: this.stepCount,
        optimizerT: this.optimizer.t,
        divergence: { lossAvg: this.lossAvg, goodSteps: this.goodSteps, rootAfterDivergence: this.rootAfterDivergence },
        layers: this.layers.map((l) => ({ name: l.rec.name, count: l.ema.count, damping: l.damping, rooted: l.rooted, ...(l.landmarksFixed !== undefined ? { landmarksFixed: l.landmarksFixed } : {}) })),
        dims: Object.fromEntries([...this.tensors, ...this.sValues].map(([k, v]) => [k, v.dims])),
      },
      tensors: out,
    };
  }

  /** Restores a snapshot; returns its meta for the caller's position data. */
  restore(ckpt: Checkpoint): Record<string, unknown> {
    const meta = ckpt.meta as { step: number; optimizerT: number; layers: { name: string; count: number; damping: number; rooted?: boolean; landmarksFixed?: boolean }[]; dims: Record<string, number[]> };
    for (const map of [this.tensors, this.sValues]) {
      for (const [k, v] of map) {
        const saved = ckpt.tensors[`t:${k}`];
        const sameType = v.data instanceof BigInt64Array ? saved instanceof BigInt64Array : saved instanceof Float32Array;
        if (!sameType || saved.length !== (v.data as Float32Array).length) {
          throw new SngdError(`checkpoint does not match this model: tensor '${k}' is missing or has another size; train into a new --out folder or drop --resume`);
        }
        (v.data as Float32Array | BigInt64Array).set(saved as Float32Array & BigInt64Array);
      }
    }
    for (const l of this.layers) {
      const saved = ckpt.tensors[`ema:${l.rec.name}`];
      const info = meta.layers.find((x) => x.name === l.rec.name);
      if (!(saved instanceof Float64Array) || !info) throw new SngdError(`checkpoint has no Fisher state for layer '${l.rec.name}'`);
      l.ema.f.set(saved);
      l.ema.count = info.count;
      l.damping = info.damping;
      l.rooted = info.rooted ?? false;
      if (info.landmarksFixed !== undefined) l.landmarksFixed = info.landmarksFixed;
    }
    this.optimizer.t = meta.optimizerT;
    this.optimizer.buffers.clear();
    for (const [key, value] of Object.entries(ckpt.tensors)) {
      const m = /^([mv]):(.*)$/.exec(key);
      if (!m || !(value instanceof Float32Array)) continue;
      const b = this.optimizer.buffers.get(m[2]!) ?? {};
      b[m[1] as 'm' | 'v'] = value.slice();
      this.optimizer.buffers.set(m[2]!, b);
    }
    this.stepCount = meta.step;
    const guard = ckpt.meta.divergence as { lossAvg: number; goodSteps: number; rootAfterDivergence?: boolean } | undefined;
    this.lossAvg = guard?.lossAvg ?? 0;
    this.goodSteps = guard?.goodSteps ?? 0;
    this.rootAfterDivergence = guard?.rootAfterDivergence ?? false;
    this.takeSnapshot();
    const pending = ckpt.meta.pendingRefresh as { applyAt: number; layers: number; warm: boolean } | undefined;
    this.pending = undefined;
    if (pending) {
      const F = Array.from({ length: pending.layers }, (_, i) => (ckpt.tensors[`pending:F:${i}`] as Float32Array).slice());
      const saved = (key: string) => (ckpt.tensors[key] as Float32Array | undefined)?.slice();
      const previous = pending.warm
        ? Array.from({ length: pending.layers }, (_, i): PreviousParts => {
          const S = saved(`pending:S:${i}`);
          return S ? { P: saved(`pending:P:${i}`)!, S } : { P: saved(`pending:P:${i}`)! };
        })
        : undefined;
      this.pending = { ...this.startDenseRoots(F, previous), applyAt: pending.applyAt };
    }
    return ckpt.meta;
  }

  async release(): Promise<void> {
    await this.trainSession.release();
    await this.plainStepSession?.release();
    await this.evalSession.release();
    await this.refresher?.release();
    for (const sp of this.remapSessions.values()) await (await sp).release();
    this.remapSessions.clear();
    await this.gemm?.release();
  }

  private snapshotParams(): Map<string, Float32Array> {
    return new Map(this.params.map((p) => [p.name, (this.tensors.get(p.name)!.data as Float32Array).slice()]));
  }

  /** Parameters and EMAs to return to after a diverging step (taken every SNAPSHOT_EVERY good steps, not every step: the copy costs). */
  private takeSnapshot(): void {
    this.lastGood = this.snapshotParams();
    this.lastGoodEma = this.layers.map((l) => l.ema.f.slice());
  }
}

/**
 * Roots to install for one layer: dense P and S ([m, d̃, d̃] for unit blocks), a tracked
 * P = Z·P_old with Y ≈ Z⁻¹ (no S), Nyström parts, or undefined (keep the layer's roots).
 */
export type NewRoots = { P: Float32Array; S: Float32Array } | { P: Float32Array; Z: Float32Array; Y: Float32Array } | { nystrom: NystromParts } | undefined;

/** A dense block's roots as a refresh starts from them ('track' needs no S). */
type PreviousParts = { P: Float32Array; S?: Float32Array };

/** `blocks` consecutive equal-size matrices of `data`: copies, or views into it. */
function splitBlocks(data: Float32Array, blocks: number, copy: boolean): Float32Array[] {
  const size = data.length / blocks;
  return Array.from({ length: blocks }, (_, j) => (copy ? data.slice(j * size, (j + 1) * size) : data.subarray(j * size, (j + 1) * size)));
}

/** The roots a layer keeps beside W̃' for the next remap (never fed to a step): S, or b and t. */
function sideRoots(rec: LayerRecord): string[] {
  const ny = nystromOf(rec);
  return ny ? [ny.b, ny.t] : [rec.params.S];
}

/** The inputs a layer's statistic outputs belong to: P (dense), or U (columns) and s (diagonal). */
function statOutputs(rec: LayerRecord): string[] {
  const ny = nystromOf(rec);
  return ny ? [ny.U, ny.s] : [rec.params.P];
}

/** Steps between an asynchronous refresh's start and its installation. */
const DEFAULT_ASYNC_LAG = 20;

/** A step whose loss exceeds this multiple of the recent mean counts as diverging. */
const DIVERGENCE_FACTOR = 10;
/** Largest relative residual ‖W − X·Z‖/‖W‖ of a tracked remap's solve (float32 rounding is ~1e-7). */
const TRACK_REMAP_TOLERANCE = 1e-5;

/** Good steps between snapshots of the state a diverging step returns to. */
const SNAPSHOT_EVERY = 10;

export function outputOf(contract: GraphContract, role: string, of?: string): string {
  const o = contract.outputs.find((x) => x.role === role && (of === undefined || x.of === of));
  if (!o) throw new Error(`training graph has no ${role} output${of ? ` for '${of}'` : ''}`);
  return o.name;
}

/** Correct argmax predictions; classes lie on the last axis of rank-2 outputs, else on axis 1 (ONNX/PyTorch). */
function countCorrect(out: Record<string, Tensor>, contract: GraphContract, labels: Tensor): number {
  if (labels.dtype !== 'int64') return 0;
  const logits = out[contract.outputs.find((o) => o.role === 'output')!.name]!;
  const dims = logits.dims;
  const classes = dims.length === 2 ? dims[1]! : dims[1] ?? 1;
  const inner = dims.length > 2 ? dims.slice(2).reduce((a, b) => a * b, 1) : 1;
  const data = logits.data as Float32Array;
  const l = labels.data as BigInt64Array;
  let correct = 0;
  for (let n = 0; n < dims[0]!; n++) {
    for (let p = 0; p < inner; p++) {
      const at = (c: number) => data[(n * classes + c) * inner + p]!;
      let best = 0;
      for (let c = 1; c < classes; c++) if (at(c) > at(best)) best = c;
      if (BigInt(best) === l[n * inner + p]) correct++;
    }
  }
  return correct;
}

function scalar(v: number): Tensor {
  return { dtype: 'float32', dims: [], data: Float32Array.of(v) };
}

/** Overwrites a state tensor's values in place (same object, same length). */
function assign(map: Map<string, Tensor>, name: string, data: ArrayLike<number>): void {
  const t = map.get(name)!;
  (t.data as Float32Array).set(data);
}

export function cloneTensor(t: Tensor): Tensor {
  return { dtype: t.dtype, dims: [...t.dims], data: (t.data as Float32Array).slice() };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}
