/**
 * What a reconstructed model remembers about each rebuilt layer, so that folding needs nothing
 * but the model file: stored as JSON under the model metadata key `sngd.layers`.
 */
import { SngdError } from '../../src/errors.js';
import type { Model, Node } from '../../src/ir/graph.js';
import { nodeToProto } from '../../src/onnx/export.js';
import type { NodeProto } from '../../src/onnx/proto.js';
import { NodeProtoType } from '../../src/onnx/schema.js';
import type { LayerKind, Layout } from './layers.js';

export const LAYERS_METADATA_KEY = 'sngd.layers';

export type Side = 'weight' | 'activation';

/** A record's kind: a registry layer, or one input stream and direction of a recurrent node. */
export type RecordKind = LayerKind | 'Recurrent';

/**
 * One local Fisher layer of an LSTM/GRU/RNN node (SNGD.md §5): the input stream W̃_W = [W_d, Wb_d]
 * sees x̃_t = [x_t; 1], the recurrent stream W̃_R = [R_d, Rb_d] sees h̃_{t−1} = [h_{t−1}; 1]. Every
 * record of one node shares `original`, so folding restores that node once.
 */
export interface RecurrentInfo {
  stream: 'W' | 'R';
  /** Direction index d (0 forward, 1 reverse for 'bidirectional') and the node's direction count D. */
  direction: number;
  directions: number;
  /** Whether this direction runs t = T−1 … 0. */
  reverse: boolean;
  /** Gates G (LSTM 4, GRU 3, RNN 1), hidden size H and input size I. */
  gates: number;
  hidden: number;
  input: number;
  /** The node's `layout` attribute (0: X [T, B, I], Y [T, D, B, H]; 1: X [B, T, I], Y [B, T, D, H]). */
  layoutAttr: number;
  /** The node's X, its Y output (added when the model did not use it) and initial_h (if any). */
  x: string;
  y: string;
  initialH?: string;
  /** W, R and B initializer names of the original node (B shared by both streams). */
  W: string;
  R: string;
  B?: string;
}

/** The activations whose derivative weights a unit block (passes/reconstruct/units.ts). */
export type UnitActivation = 'Relu' | 'Sigmoid' | 'Tanh';

/**
 * The form of a layer's local Fisher layer. 'dense': P and S are d̃ × d̃ (`params.P`, `params.S`).
 * 'nystrom' (SNGD.md §4, layers with d̃ above the compile budget `maxFisherDim`, or chosen by
 * passes/cost/choose.ts):
 * P = U·diag(a)·Uᵀ + s·I and S = U·diag(b)·Uᵀ + t·I with U [d̃, rank] orthonormal, a, b [rank],
 * s, t scalars; the statistic is the landmark columns C = F[:, landmarks] and diag(F). Here
 * `params.P` names U and `params.S` names b. Weight side only.
 * 'unit' (SNGD.md §5, `fisherBlocks: 'unit'`): one block per output unit j, F_j = E[w_j·x̃x̃ᵀ] with
 * w_j a function of the layer's own pre-activation z_j (σ(z)² before a Relu, …); `params.P` and
 * `params.S` are [m, d̃, d̃] (unit j's roots P_j, S_j), row j of W̃ is W̃'_j·P_j. Weight side only.
 */
export type FisherForm =
  | { kind: 'dense' }
  | {
      kind: 'nystrom';
      rank: number;
      landmarks: 'uniform' | 'diagonal';
      /** Initializers: U [d̃, rank], a [rank], s [], b [rank], t [], landmark indices (int64 [rank]). */
      U: string;
      a: string;
      s: string;
      b: string;
      t: string;
      index: string;
    }
  | {
      kind: 'unit';
      /** Number of blocks: the layer's output units m. */
      units: number;
      /** The op that consumes z, which decides the weight w(z). */
      activation: UnitActivation;
      /** The pre-activation z [.., m] (after a fused bias Add): the value the activation reads. */
      z: string;
    };

export type NystromForm = Extract<FisherForm, { kind: 'nystrom' }>;

/** The record's Nyström form, or undefined for a dense Fisher layer (records without `fisher` are dense). */
export function nystromOf(rec: LayerRecord): NystromForm | undefined {
  return rec.fisher?.kind === 'nystrom' ? rec.fisher : undefined;
}

export type UnitForm = Extract<FisherForm, { kind: 'unit' }>;

/** The record's per-unit form, or undefined (one block for the whole layer). */
export function unitOf(rec: LayerRecord): UnitForm | undefined {
  return rec.fisher?.kind === 'unit' ? rec.fisher : undefined;
}

/** Fisher blocks of a layer with dense roots: m for a unit layer, 1 for a layer block (Nyström: 0, no dense roots). */
export function denseBlocks(rec: LayerRecord): number {
  return rec.fisher?.kind === 'nystrom' ? 0 : rec.fisher?.kind === 'unit' ? rec.fisher.units : 1;
}

export interface LayerRecord {
  /** The weighted node's name (the layer's identity). */
  name: string;
  op: string;
  kind: RecordKind;
  side: Side;
  /** Why this side was chosen (cost model or a constraint). */
  sideReason: string;
  /** Output units m, input features d, and the Fisher dimension d̃ = d + [bias]. */
  m: number;
  d: number;
  fisherDim: number;
  hasBias: boolean;
  /** The layer's activation input x (x̃ = [x; 1] feeds the Fisher statistic). */
  x: string;
  /** Original initializers: names, and where they were also listed as graph inputs (old exporters). */
  weight: { name: string; graphInputIndex?: number };
  bias?: { name: string; graphInputIndex?: number };
  layout: Layout;
  /** Initializers of the reconstructed model: W̃' (trainable), P and S (the Fisher roots). */
  params: { W: string; P: string; S: string };
  /** Dense (the default when absent), Nyström or per-unit; see FisherForm. */
  fisher?: FisherForm;
  /** Why the layer is dense or Nyström, when a rule chose (`maxFisherDim`, or `fisherForms` from `--max-fisher-dim auto`). */
  fisherReason?: string;
  /**
   * With `fisherBlocks: 'unit'` requested: why this layer has unit blocks, or why it keeps one
   * block for the whole layer (first or output layer, size, activation, op). Absent otherwise.
   */
  blocksReason?: string;
  /** Everything the rewrite added (removed again by folding). */
  added: { nodes: string[]; initializers: string[] };
  /** Recurrent nodes only: which stream and direction this Fisher layer serves. */
  recurrent?: RecurrentInfo;
  /** The original nodes the rewrite replaced or rewired, serialized, with their positions. */
  original: { index: number; node: Record<string, unknown> }[];
}

export function serializeNode(n: Node): Record<string, unknown> {
  const msg = NodeProtoType.fromObject(nodeToProto(n) as Record<string, unknown>);
  return NodeProtoType.toObject(msg, { longs: String, bytes: String }) as Record<string, unknown>;
}

export function deserializeNode(json: Record<string, unknown>): NodeProto {
  return NodeProtoType.toObject(NodeProtoType.fromObject(json)) as NodeProto;
}

/** Whether sngd-compile produced this model (even one where no layer qualified). */
export function isReconstructed(model: Model): boolean {
  return model.extra?.metadataProps?.some((p) => p.key === LAYERS_METADATA_KEY) ?? false;
}

export function readLayerRecords(model: Model): LayerRecord[] {
  const entry = model.extra?.metadataProps?.find((p) => p.key === LAYERS_METADATA_KEY);
  if (!entry?.value) return [];
  try {
    const parsed = JSON.parse(entry.value) as unknown;
    if (!Array.isArray(parsed)) throw new Error('not a list');
    return parsed as LayerRecord[];
  } catch (err) {
    throw new SngdError(`${model.source ?? 'model'}: metadata '${LAYERS_METADATA_KEY}' is not valid sngd layer data (${(err as Error).message})`);
  }
}

/** Returns a copy of the model with the layer records set, or removed when `records` is null. */
export function withLayerRecords(model: Model, records: LayerRecord[] | null): Model {
  const props = (model.extra?.metadataProps ?? []).filter((p) => p.key !== LAYERS_METADATA_KEY);
  if (records) props.push({ key: LAYERS_METADATA_KEY, value: JSON.stringify(records) });
  const extra: NonNullable<Model['extra']> = { ...model.extra };
  if (props.length > 0) extra.metadataProps = props;
  else delete extra.metadataProps;
  return { ...model, extra };
}
