/**
 * The compile pipeline behind `sngd-compile`: opset upgrade → shape inference (for the cost
 * model) → reconstruction. Returns the rebuilt model and the manifest that describes it.
 */
import path from 'node:path';
import type { Model } from '../src/ir/graph.js';
import { inferShapes } from '../src/shape/index.js';
import { reconstruct, type ReconstructOptions, type SkippedLayer } from './reconstruct/index.js';
import type { FisherForm, LayerRecord } from './reconstruct/record.js';
import { upgradeOpset } from './upgrade/index.js';
import { buildTrainingGraphs, type GraphContract } from './training/index.js';
import type { LossKind } from './training/losses.js';

/** The opset every compiled graph uses (ReduceSum takes axes as an input; LayerNormalization exists). */
export const WORKING_OPSET = 17;

export interface ManifestLayer {
  name: string;
  op: string;
  weight: string;
  bias: string | null;
  fisherDim: number;
  side: 'weight' | 'activation';
  sideReason: string;
  /** Parameters of the original layer (weight + bias). */
  paramCount: number;
  /** Initializers of the rebuilt model: trainable W̃', and the roots P and S. */
  W: string;
  P: string;
  S: string;
  /** The Fisher layer's form: dense d̃ × d̃ roots P, S; Nyström (P = U, S = b); or unit blocks (P, S [m, d̃, d̃]); see FisherForm. */
  fisher: FisherForm;
  /** Why this form, when a rule chose it (`--max-fisher-dim`, numeric or auto). */
  fisherReason?: string;
  /** With `fisherBlocks: 'unit'`: why the layer has unit blocks, or why it keeps one block. */
  blocksReason?: string;
  /** Recurrent nodes: the input stream ('W', sees x_t) or recurrent stream ('R', sees h_{t−1}) and its direction. */
  recurrent?: { node: string; stream: 'W' | 'R'; direction: 'forward' | 'reverse' };
}

export interface Manifest {
  source: string;
  reconstructed: string;
  opset: number;
  layers: ManifestLayer[];
  skipped: SkippedLayer[];
  /** Present when a loss was given: the training step's contract (see passes/training). */
  train?: GraphContract & { file: string; loss: LossKind; output: string };
  eval?: GraphContract & { file: string };
}

export interface CompileResult {
  model: Model;
  manifest: Manifest;
  train?: Model;
  eval?: Model;
}

export interface CompileOptions extends ReconstructOptions {
  source?: string;
  /** File stem used to name the written graphs in the manifest. */
  stem?: string;
  /** Build the training and evaluation graphs with this loss. */
  loss?: LossKind;
  /** Model output the loss reads (default: the first). */
  output?: string;
  /** Add the `hyper/l2` weight-decay input to the training graph. */
  l2?: boolean;
  /** false: no Fisher layers (the graphs first-order baselines train). Default true. */
  fisher?: boolean;
  /** Sizes for symbolic dims of the training graph (e.g. a recurrent model's sequence length). */
  dims?: Record<string, number>;
}

export function compileModel(model: Model, options: CompileOptions = {}): CompileResult {
  const upgraded = upgradeOpset(model, WORKING_OPSET);
  const shaped = inferShapes(upgraded);
  const result = options.fisher === false ? { model: shaped, layers: [], skipped: [] } : reconstruct(shaped, options);
  // Inferred shapes served the cost model; the written graph keeps only the value_info it came with.
  const kept = new Map([...result.model.graph.valueInfo].filter(([name]) => upgraded.graph.valueInfo.has(name)));
  const rebuilt = { ...result.model, graph: { ...result.model.graph, valueInfo: kept } };
  const stem = options.stem ?? 'model';
  const manifest: Manifest = {
    source: options.source ?? model.source ?? 'model',
    reconstructed: `${stem}.sngd.onnx`,
    opset: WORKING_OPSET,
    layers: result.layers.map(manifestLayer),
    skipped: result.skipped,
  };
  if (!options.loss) return { model: rebuilt, manifest };
  const graphs = buildTrainingGraphs(rebuilt, { loss: options.loss, output: options.output, l2: options.l2, dims: options.dims });
  manifest.train = { file: `${stem}.train.onnx`, loss: options.loss, output: options.output ?? rebuilt.graph.outputs[0]!.name, ...graphs.trainContract };
  manifest.eval = { file: `${stem}.eval.onnx`, ...graphs.evalContract };
  return { model: rebuilt, manifest, train: graphs.train, eval: graphs.eval };
}

function manifestLayer(r: LayerRecord): ManifestLayer {
  return {
    name: r.name,
    op: r.op,
    weight: r.weight.name,
    bias: r.bias?.name ?? null,
    fisherDim: r.fisherDim,
    side: r.side,
    sideReason: r.sideReason,
    paramCount: r.m * r.fisherDim,
    W: r.params.W,
    P: r.params.P,
    S: r.params.S,
    fisher: r.fisher ?? { kind: 'dense' },
    ...(r.fisherReason ? { fisherReason: r.fisherReason } : {}),
    ...(r.blocksReason ? { blocksReason: r.blocksReason } : {}),
    ...(r.recurrent ? { recurrent: { node: String(r.original[0]?.node.name ?? ''), stream: r.recurrent.stream, direction: r.recurrent.reverse ? 'reverse' as const : 'forward' as const } } : {}),
  };
}

/** `model.onnx` → `model`; `model.sngd.onnx` → `model`. */
export function modelStem(file: string): string {
  return path.basename(file).replace(/\.onnx$/i, '').replace(/\.sngd$/i, '');
}
