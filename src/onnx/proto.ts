/**
 * Plain-object shapes of decoded ONNX messages (camelCase, as protobufjs reflection produces them).
 * Only what the importer/exporter reads is typed; every other field rides along untouched.
 * int64 fields arrive as `Long` (protobufjs with the `long` package) or number.
 */
import type Long from 'long';

export type Int64 = number | Long;

export interface StringStringEntry { key?: string; value?: string }
export interface OperatorSetId { domain?: string; version?: Int64 }

export interface TensorProto {
  dims?: Int64[];
  dataType?: number;
  segment?: unknown;
  floatData?: number[];
  int32Data?: number[];
  stringData?: Uint8Array[];
  int64Data?: Int64[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntry[];
  dataLocation?: number;
  doubleData?: number[];
  uint64Data?: Int64[];
  metadataProps?: StringStringEntry[];
}

export interface Dimension { dimValue?: Int64; dimParam?: string; denotation?: string }
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim?: Dimension[] } };
  sequenceType?: unknown;
  mapType?: unknown;
  optionalType?: unknown;
  sparseTensorType?: unknown;
  opaqueType?: unknown;
  denotation?: string;
}
export interface ValueInfoProto { name?: string; type?: TypeProto; docString?: string; metadataProps?: StringStringEntry[] }

export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: unknown;
  tp?: TypeProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparseTensors?: unknown[];
  typeProtos?: TypeProto[];
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  docString?: string;
  metadataProps?: StringStringEntry[];
  deviceConfigurations?: unknown[];
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: unknown[];
  docString?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  quantizationAnnotation?: unknown[];
  metadataProps?: StringStringEntry[];
}

export interface ModelProto {
  irVersion?: Int64;
  opsetImport?: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntry[];
  trainingInfo?: unknown[];
  functions?: unknown[];
  configuration?: unknown[];
}

/** AttributeProto.AttributeType */
export const AttrType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
  TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;

/** Converts a decoded int64 to a JS number; values beyond ±2^53 saturate (INT64_MAX stays INT64_MAX on encode). */
export function int64ToNumber(v: Int64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  return v.toNumber();
}

/**
 * A name from a model file, made safe to show in a one-line message: control characters are
 * escaped and very long names are cut (model files are untrusted; a name may hold anything).
 */
export function shownName(name: string | undefined | null, max = 80): string {
  const s = name ?? '';
  const cut = s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** dims for a message: `[1, 2, 3]`, cut after a few entries. */
export function shownDims(dims: readonly (number | string)[], max = 8): string {
  const head = dims.slice(0, max).join(', ');
  return dims.length > max ? `[${head}, … ${dims.length} dims]` : `[${head}]`;
}
