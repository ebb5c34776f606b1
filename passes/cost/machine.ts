/**
 * What the time model knows about the machine: a handful of rates and fixed costs, measured by
 * runtime/calibrate.ts (microbenchmarks) or, uncalibrated, DEFAULT_PROFILE. Each is a structural
 * constant of onnxruntime's CPU EP or of the host's JavaScript loops, never of a model:
 *
 *   graph run  = run + inputs·input + outputs·output + output bytes·outputByte + Σ nodes
 *   node       = node overhead + one of
 *                  gemm    flops/gemmFlops + gemmOverhead     (MLAS threads the product)
 *                          flops/gemmFlopsSingle              (m·k·n below gemmThreadWork: one thread)
 *                          convolutions: per call (image × group) convCall + its product + its
 *                          im2col/col2im copy (elements·im2col + rows·im2colRow); Conv's calls
 *                          spread over the threads
 *                  memory  bytes/memoryBytes
 *                  loop    steps·loopStep                     (index kernels: one element at a time)
 *                  view    0
 *   host       = per-element costs of the JavaScript loops of TrainingRun.step (runtime/run.ts)
 */
import type { GraphWork, NodeCost } from './graph.js';
import type { OpWork } from './work.js';

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
  /** FLOP/s of a threaded gemm, its extra fixed cost (waking the pool), FLOP/s of a single-threaded one. */
  gemmFlops: number;
  gemmOverhead: number;
  gemmFlopsSingle: number;
  /** m·k·n below which MLAS runs a product on one thread (MLAS_SGEMM_THREAD_COMPLEXITY, 64K). */
  gemmThreadWork: number;
  /** Bytes/s of memory-bound kernels. */
  memoryBytes: number;
  /** Seconds per scalar step of an index kernel (ScatterElements, GatherElements, …). */
  loopStep: number;
  /** onnxruntime's intra-op threads (one per core). */
  threads: number;
  /** Convolutions: seconds per element and per contiguous row through im2col/col2im (one thread), and per product call. */
  im2col: number;
  im2colRow: number;
  convCall: number;
  host: HostRates;
}

/**
 * Uncalibrated: round numbers of a current 2-core x86 server core pair (measured ballpark on this
 * project's machine, rounded), so an uncalibrated report is right within a factor of ~2.
 */
export const DEFAULT_PROFILE: MachineProfile = {
  calibrated: false,
  run: 8e-6,
  input: 1e-6,
  output: 2e-6,
  outputByte: 0.08e-9,
  node: 0.8e-6,
  gemmFlops: 150e9,
  gemmOverhead: 2e-6,
  gemmFlopsSingle: 80e9,
  gemmThreadWork: 65536,
  memoryBytes: 40e9,
  loopStep: 3e-9,
  threads: 2,
  im2col: 0.2e-9,
  im2colRow: 4e-9,
  convCall: 0.2e-6,
  host: { ema: 2e-9, finite: 1.2e-9, sgd: 1.5e-9, momentum: 2e-9, adam: 5e-9, copyByte: 0.06e-9, f64Mac: 1e-9, step: 20e-6 },
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
  if (w.kind === 'memory') return { overhead: p.node, compute: w.bytes / p.memoryBytes };
  if (w.kind === 'loop') return { overhead: p.node, compute: (w.steps ?? 0) * p.loopStep };
  const threaded = (w.parallelWork ?? Infinity) >= p.gemmThreadWork;
  if (!w.conv) return { overhead: p.node + (threaded ? p.gemmOverhead : 0), compute: w.flops / (threaded ? p.gemmFlops : p.gemmFlopsSingle) };
  const { calls, spread } = w.conv;
  const flops = w.flops / calls;
  const copy = w.conv.copied * p.im2col + w.conv.rows * p.im2colRow;
  if (spread && calls > 1 && p.threads > 1) {
    // MLAS hands whole calls to its threads; each runs its im2col and product alone.
    const share = calls / Math.min(p.threads, calls);
    return { overhead: p.node + share * p.convCall, compute: share * (flops / p.gemmFlopsSingle + copy) };
  }
  return {
    overhead: p.node + calls * (p.convCall + (threaded ? p.gemmOverhead : 0)),
    compute: calls * (flops / (threaded ? p.gemmFlops : p.gemmFlopsSingle) + copy),
  };
}

export interface GraphSeconds {
  seconds: number;
  /** The run's fixed costs: the call, feeding inputs, copying outputs back. */
  io: number;
  /** Kernel overheads (node + gemm pool wake-ups, convolution calls), FLOP and im2col time, memory and index-loop time. */
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
