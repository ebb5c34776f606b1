/**
 * What the time model knows about the machine: a handful of rates and fixed costs, measured by
 * runtime/calibrate.ts (microbenchmarks) or, uncalibrated, DEFAULT_PROFILE. Each is a structural
 * constant of onnxruntime's CPU EP or of the host's JavaScript loops, never of a model:
 *
 *   graph run  = run + inputs·input + outputs·output + output bytes·outputByte + Σ nodes
 *   node       = node overhead + one of
 *                  gemm    flops/gemmFlops + outputs·gemmOut + poolWake   (MLAS threads the product)
 *                          flops/gemmFlopsSingle + outputs·gemmOut·threads (m·k·n below gemmThreadWork)
 *                          separate calls (convolutions per image × group, batched MatMuls):
 *                          per call gemmCall + its product + its im2col/col2im copy
 *                          (elements·im2col + rows·im2colRow); Conv's and MatMul's calls spread
 *                          over the threads, ConvTranspose's in sequence; a Conv onnxruntime
 *                          runs in its NCHWc layout: flops/nchwcFlops, no im2col
 *                  memory  bytes/memoryBytes (+ poolWake from parallelBytes on: split over the pool)
 *                          + spans·span.broadcast                (a broadcasting elementwise op)
 *                  loop    steps·loopStep                     (index kernels: one element at a time)
 *                  copy    bytes/memoryBytes + spans·span[loop] + steps·loopStep
 *                          + transposeCalls·transposeCall       (layout kernels: Slice, Pad, Concat, Transpose)
 *                  view    0
 *   host       = per-element costs of the JavaScript loops of TrainingRun.step (runtime/run.ts),
 *                plus its fixed work per step, per parameter tensor and per Fisher layer
 */
import type { GraphWork, NodeCost } from './graph.js';
import type { OpWork, SpanLoop } from './work.js';

export interface HostRates {
  /** Seconds per element of a Fisher EMA update (float64 β·F + (1−β)·stat). */
  ema: number;
  /** Seconds per element of the finite check over gradients and statistics. */
  finite: number;
  /** Seconds per parameter element of the optimizer updates. */
  sgd: number;
  momentum: number;
  adam: number;
  /** Seconds per byte of a typed-array copy (snapshots, installed roots). */
  copyByte: number;
  /** Seconds per float64 multiply-add of a host matrix loop (Nyström refreshes). */
  f64Mac: number;
  /** Seconds of a training step's fixed JavaScript work (feeds, maps, the divergence guard). */
  step: number;
  /**
   * Seconds per parameter tensor of a step, beyond its elements: its feed and gradient entries in
   * the step's maps, the call of its finite check and of its optimizer update.
   */
  param: number;
  /** Seconds per Fisher layer of a step that folds statistics, beyond their elements (its statistic outputs, the EMA update call). */
  layer: number;
}

export interface MachineProfile {
  /** Whether these numbers were measured on this machine, and when and on what. */
  calibrated: boolean;
  date?: string;
  machine?: string;
  /** Seconds per session run, per fed tensor, per output, per output byte copied to JavaScript. */
  run: number;
  input: number;
  output: number;
  outputByte: number;
  /** Seconds per kernel launched. */
  node: number;
  /** FLOP/s of a threaded gemm, and of a single-threaded one. */
  gemmFlops: number;
  gemmFlopsSingle: number;
  /** Seconds per result element of a threaded product (starting and storing each dot product). */
  gemmOut: number;
  /** Seconds to wake onnxruntime's thread pool for a parallel section (threaded products, large elementwise kernels, spread calls). */
  poolWake: number;
  /** Bytes moved from which an elementwise kernel runs in parallel (onnxruntime's cost model: about 16K elements of a binary float op). */
  parallelBytes: number;
  /** m·k·n below which MLAS runs a product on one thread (MLAS_SGEMM_THREAD_COMPLEXITY, 64K). */
  gemmThreadWork: number;
  /** Bytes/s of memory-bound kernels. */
  memoryBytes: number;
  /** Seconds per scalar step of an index kernel (ScatterElements, GatherElements, …). */
  loopStep: number;
  /** onnxruntime's intra-op threads (one per core). */
  threads: number;
  /** Channels per block of onnxruntime's NCHWc convolutions (16 with AVX-512, 8 with AVX2; 1: none), and their FLOP/s. */
  nchwcBlock: number;
  nchwcFlops: number;
  /** Seconds per element and per contiguous row through im2col/col2im (one thread). */
  im2col: number;
  im2colRow: number;
  /** Seconds per product call of a convolution or batched MatMul (setup, packing). */
  gemmCall: number;
  /** Seconds per contiguous span of each of onnxruntime's span loops (broadcasting elementwise ops, layout kernels: passes/cost/work.ts). */
  span: Record<SpanLoop, number>;
  /** Seconds per MlasTranspose call (one per outer index of a Transpose moving one axis of small elements; a pool hand-off with two or more threads). */
  transposeCall: number;
  host: HostRates;
}

/**
 * Uncalibrated: round figures between this project's 2-core AVX-512 machine (calibrated quiet:
 * gemm ~450 GFLOP/s) and a common AVX2 laptop, so an uncalibrated report is right within ~2×. The
 * span, MlasTranspose-call, fetch and host step/param/layer figures are this machine's, calibrated
 * quiet on 2026-11-28 (AMD EPYC × 2, onnxruntime-node 1.30).
 */
export const DEFAULT_PROFILE: MachineProfile = {
  calibrated: false,
  run: 4e-6,
  input: 1.4e-6,
  output: 1.6e-6,
  outputByte: 0.1e-9,
  node: 0.55e-6,
  gemmFlops: 200e9,
  gemmFlopsSingle: 100e9,
  gemmOut: 0.3e-9,
  poolWake: 3e-6,
  parallelBytes: 192 * 1024,
  gemmThreadWork: 65536,
  memoryBytes: 80e9,
  loopStep: 1.5e-9,
  threads: 2,
  nchwcBlock: 8,
  nchwcFlops: 150e9,
  im2col: 0.15e-9,
  im2colRow: 3e-9,
  gemmCall: 0.2e-6,
  span: { broadcast: 6.2e-9, slice: 2.1e-9, pad: 6.3e-9, concat: 1.8e-9, strided: 6.8e-9 },
  transposeCall: 0.45e-6,
  host: { ema: 2e-9, finite: 1.2e-9, sgd: 1.6e-9, momentum: 2.4e-9, adam: 4.5e-9, copyByte: 0.07e-9, f64Mac: 1.9e-9, step: 5e-6, param: 0.7e-6, layer: 1.9e-6 },
};

/** Seconds of one kernel doing this work. */
export function workSeconds(w: OpWork, p: MachineProfile): number {
  const { overhead, compute } = workParts(w, p);
  return overhead + compute;
}

/** Seconds of one node (0 for a node onnxruntime removes). */
export function nodeSeconds(c: NodeCost, p: MachineProfile): number {
  return c.skipped ? 0 : workSeconds(c.work, p);
}

/** A kernel's fixed costs (launch, pool wake-ups, per-call setup) and its FLOP, copy or memory time. */
function workParts(w: OpWork, p: MachineProfile): { overhead: number; compute: number } {
  if (w.kind === 'view') return { overhead: p.node, compute: 0 };
  // Large elementwise kernels are split over the pool (and wake it).
  const spans = (w.spans ?? 0) * (w.loop ? p.span[w.loop] : 0);
  if (w.kind === 'memory') return { overhead: p.node + (w.bytes >= p.parallelBytes ? p.poolWake : 0), compute: w.bytes / p.memoryBytes + spans };
  if (w.kind === 'loop') return { overhead: p.node, compute: (w.steps ?? 0) * p.loopStep };
  if (w.kind === 'copy') return { overhead: p.node + (w.transposeCalls ?? 0) * p.transposeCall, compute: w.bytes / p.memoryBytes + spans + (w.steps ?? 0) * p.loopStep };
  const threaded = (w.parallelWork ?? Infinity) >= p.gemmThreadWork;
  // A result element costs gemmOut on the pool (threads× that on one thread).
  const out = (w.outputs ?? 0) * p.gemmOut;
  if (!w.calls) return { overhead: p.node + (threaded ? p.poolWake : 0), compute: threaded ? w.flops / p.gemmFlops + out : w.flops / p.gemmFlopsSingle + out * p.threads };
  const { count: calls, spread, direct } = w.calls;
  const flops = w.flops / calls;
  const outCall = ((w.outputs ?? 0) / calls) * p.gemmOut;
  // onnxruntime's NCHWc layout: output channels in whole blocks, input channels too or fewer than a block.
  const nchwc = direct !== undefined && p.nchwcBlock > 1 && direct.out % p.nchwcBlock === 0 && (direct.in % p.nchwcBlock === 0 || direct.in < p.nchwcBlock);
  // NCHWc convolves directly, the whole batch in one threaded kernel, at its own rate.
  if (nchwc) return { overhead: p.node + p.poolWake, compute: w.flops / p.nchwcFlops + out };
  const copy = w.calls.copied * p.im2col + w.calls.rows * p.im2colRow;
  if (spread && calls > 1 && p.threads > 1) {
    // MLAS hands whole calls to its threads; each runs its im2col and product alone.
    const share = calls / Math.min(p.threads, calls);
    return { overhead: p.node + p.poolWake + share * p.gemmCall, compute: share * (flops / p.gemmFlopsSingle + outCall * p.threads + copy) };
  }
  return {
    overhead: p.node + calls * (p.gemmCall + (threaded ? p.poolWake : 0)),
    compute: calls * (threaded ? flops / p.gemmFlops + outCall : flops / p.gemmFlopsSingle + outCall * p.threads) + calls * copy,
  };
}

export interface GraphSeconds {
  seconds: number;
  /** The run's fixed costs: the call, feeding inputs, copying outputs back. */
  io: number;
  /** Kernel overheads (node, pool wake-ups, product calls), FLOP and im2col time, memory and index-loop time. */
  overhead: number;
  gemm: number;
  memory: number;
  /** Kernels run, and those onnxruntime removes. */
  nodes: number;
  skipped: number;
  flops: number;
  /** Seconds per layer (its nodes and its output copies). */
  layers: Map<string, number>;
}

export function graphSeconds(w: GraphWork, p: MachineProfile): GraphSeconds {
  const io = p.run + w.inputs * p.input + w.outputs * p.output + w.outputBytes * p.outputByte;
  const out: GraphSeconds = { seconds: io, io, overhead: 0, gemm: 0, memory: 0, nodes: 0, skipped: 0, flops: 0, layers: new Map() };
  for (const [layer, bytes] of w.outputBytesByLayer) out.layers.set(layer, bytes * p.outputByte);
  for (const c of w.nodes) {
    if (c.skipped) {
      out.skipped++;
      continue;
    }
    const { overhead, compute } = workParts(c.work, p);
    const s = overhead + compute;
    out.nodes++;
    out.seconds += s;
    out.flops += c.work.flops;
    out.overhead += overhead;
    if (c.work.kind === 'gemm') out.gemm += compute;
    else out.memory += compute;
    if (c.layer) out.layers.set(c.layer, (out.layers.get(c.layer) ?? 0) + s);
  }
  return out;
}
