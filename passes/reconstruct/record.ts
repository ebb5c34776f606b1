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

export interface LayerRecord {
  /** The weighted node's name (the layer's identity). */
  name: string;
  op: string;
  kind: LayerKind;
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
  /** Everything the rewrite added (removed again by folding). */
  added: { nodes: string[]; initializers: string[] };
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
