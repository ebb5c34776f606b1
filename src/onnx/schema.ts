/**
 * The ONNX protobuf schema (onnx.proto, IR version 11 / ONNX 1.18+) as a protobufjs reflection
 * descriptor.
 *
 * Why not only `onnx-proto`: that package is the ONNX 1.10 schema compiled to *static* protobufjs
 * code, whose decoders silently skip fields they do not know (node metadata_props, overload,
 * device configurations, graph metadata, TensorProto metadata, FunctionProto attribute_proto and
 * value_info, ...). A reflection descriptor can be complemented field by field; this one lists
 * every field of the current schema, so a decode → encode round trip keeps them all. The field
 * numbers are the wire contract defined by the ONNX IR specification.
 *
 * onnx.proto is proto2: protobufjs keeps field presence, so an unset optional field stays unset
 * after a round trip.
 */
import protobuf from 'protobufjs';

type FieldSpec = { type: string; id: number; rule?: 'repeated'; options?: { packed?: boolean } };
type Fields = Record<string, FieldSpec>;

const f = (type: string, id: number): FieldSpec => ({ type, id });
const r = (type: string, id: number): FieldSpec => ({ type, id, rule: 'repeated' });
/** proto2 repeated scalars are unpacked unless `[packed = true]`; ONNX packs the tensor data arrays. */
const packed = (type: string, id: number): FieldSpec => ({ type, id, rule: 'repeated', options: { packed: true } });
const unpacked = (type: string, id: number): FieldSpec => ({ type, id, rule: 'repeated', options: { packed: false } });

const messages: Record<string, { fields: Fields; oneofs?: Record<string, { oneof: string[] }>; nested?: Record<string, unknown> }> = {
  StringStringEntryProto: { fields: { key: f('string', 1), value: f('string', 2) } },
  IntIntListEntryProto: { fields: { key: f('int64', 1), value: unpacked('int64', 2) } },
  OperatorSetIdProto: { fields: { domain: f('string', 1), version: f('int64', 2) } },
  TensorAnnotation: {
    fields: { tensorName: f('string', 1), quantParameterTensorNames: r('StringStringEntryProto', 2) },
  },
  DeviceConfigurationProto: {
    fields: { name: f('string', 1), numDevices: f('int32', 2), device: r('string', 3) },
  },
  SimpleShardedDimProto: {
    fields: { dimValue: f('int64', 1), dimParam: f('string', 2), numShards: f('int64', 3) },
    oneofs: { dim: { oneof: ['dimValue', 'dimParam'] } },
  },
  ShardedDimProto: { fields: { axis: f('int64', 1), simpleSharding: r('SimpleShardedDimProto', 2) } },
  ShardingSpecProto: {
    fields: {
      tensorName: f('string', 1),
      device: unpacked('int64', 2),
      indexToDeviceGroupMap: r('IntIntListEntryProto', 3),
      shardedDim: r('ShardedDimProto', 4),
    },
  },
  NodeDeviceConfigurationProto: {
    fields: { configurationId: f('string', 1), shardingSpec: r('ShardingSpecProto', 2), pipelineStage: f('int32', 3) },
  },
  AttributeProto: {
    fields: {
      name: f('string', 1),
      refAttrName: f('string', 21),
      docString: f('string', 13),
      type: f('int32', 20),
      f: f('float', 2),
      i: f('int64', 3),
      s: f('bytes', 4),
      t: f('TensorProto', 5),
      g: f('GraphProto', 6),
      sparseTensor: f('SparseTensorProto', 22),
      tp: f('TypeProto', 14),
      floats: unpacked('float', 7),
      ints: unpacked('int64', 8),
      strings: r('bytes', 9),
      tensors: r('TensorProto', 10),
      graphs: r('GraphProto', 11),
      sparseTensors: r('SparseTensorProto', 23),
      typeProtos: r('TypeProto', 15),
    },
  },
  ValueInfoProto: {
    fields: { name: f('string', 1), type: f('TypeProto', 2), docString: f('string', 3), metadataProps: r('StringStringEntryProto', 4) },
  },
  NodeProto: {
    fields: {
      input: r('string', 1),
      output: r('string', 2),
      name: f('string', 3),
      opType: f('string', 4),
      domain: f('string', 7),
      overload: f('string', 8),
      attribute: r('AttributeProto', 5),
      docString: f('string', 6),
      metadataProps: r('StringStringEntryProto', 9),
      deviceConfigurations: r('NodeDeviceConfigurationProto', 10),
    },
  },
  TrainingInfoProto: {
    fields: {
      initialization: f('GraphProto', 1),
      algorithm: f('GraphProto', 2),
      initializationBinding: r('StringStringEntryProto', 3),
      updateBinding: r('StringStringEntryProto', 4),
    },
  },
  ModelProto: {
    fields: {
      irVersion: f('int64', 1),
      opsetImport: r('OperatorSetIdProto', 8),
      producerName: f('string', 2),
      producerVersion: f('string', 3),
      domain: f('string', 4),
      modelVersion: f('int64', 5),
      docString: f('string', 6),
      graph: f('GraphProto', 7),
      metadataProps: r('StringStringEntryProto', 14),
      trainingInfo: r('TrainingInfoProto', 20),
      functions: r('FunctionProto', 25),
      configuration: r('DeviceConfigurationProto', 26),
    },
  },
  GraphProto: {
    fields: {
      node: r('NodeProto', 1),
      name: f('string', 2),
      initializer: r('TensorProto', 5),
      sparseInitializer: r('SparseTensorProto', 15),
      docString: f('string', 10),
      input: r('ValueInfoProto', 11),
      output: r('ValueInfoProto', 12),
      valueInfo: r('ValueInfoProto', 13),
      quantizationAnnotation: r('TensorAnnotation', 14),
      metadataProps: r('StringStringEntryProto', 16),
    },
  },
  TensorProto: {
    fields: {
      dims: unpacked('int64', 1),
      dataType: f('int32', 2),
      segment: f('Segment', 3),
      floatData: packed('float', 4),
      int32Data: packed('int32', 5),
      stringData: r('bytes', 6),
      int64Data: packed('int64', 7),
      name: f('string', 8),
      docString: f('string', 12),
      rawData: f('bytes', 9),
      externalData: r('StringStringEntryProto', 13),
      dataLocation: f('int32', 14),
      doubleData: packed('double', 10),
      uint64Data: packed('uint64', 11),
      metadataProps: r('StringStringEntryProto', 16),
    },
    nested: { Segment: { fields: { begin: f('int64', 1), end: f('int64', 2) } } },
  },
  SparseTensorProto: {
    fields: { values: f('TensorProto', 1), indices: f('TensorProto', 2), dims: unpacked('int64', 3) },
  },
  TensorShapeProto: {
    fields: { dim: r('Dimension', 1) },
    nested: {
      Dimension: {
        fields: { dimValue: f('int64', 1), dimParam: f('string', 2), denotation: f('string', 3) },
        oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
      },
    },
  },
  TypeProto: {
    fields: {
      tensorType: f('Tensor', 1),
      sequenceType: f('Sequence', 4),
      mapType: f('Map', 5),
      optionalType: f('Optional', 9),
      sparseTensorType: f('SparseTensor', 8),
      opaqueType: f('Opaque', 7),
      denotation: f('string', 6),
    },
    oneofs: { value: { oneof: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType', 'opaqueType'] } },
    nested: {
      Tensor: { fields: { elemType: f('int32', 1), shape: f('TensorShapeProto', 2) } },
      Sequence: { fields: { elemType: f('TypeProto', 1) } },
      Map: { fields: { keyType: f('int32', 1), valueType: f('TypeProto', 2) } },
      Optional: { fields: { elemType: f('TypeProto', 1) } },
      SparseTensor: { fields: { elemType: f('int32', 1), shape: f('TensorShapeProto', 2) } },
      Opaque: { fields: { domain: f('string', 1), name: f('string', 2) } },
    },
  },
  FunctionProto: {
    fields: {
      name: f('string', 1),
      input: r('string', 4),
      output: r('string', 5),
      attribute: r('string', 6),
      attributeProto: r('AttributeProto', 11),
      node: r('NodeProto', 7),
      docString: f('string', 8),
      opsetImport: r('OperatorSetIdProto', 9),
      domain: f('string', 10),
      overload: f('string', 13),
      valueInfo: r('ValueInfoProto', 12),
      metadataProps: r('StringStringEntryProto', 14),
    },
  },
};

// protobufjs treats a JSON-described message as proto3 (implicit presence: empty strings and
// zeros are dropped on encode) unless its edition says otherwise.
const proto2Messages = Object.fromEntries(Object.entries(messages).map(([name, m]) => [name, { ...m, edition: 'proto2' }]));
const root = protobuf.Root.fromJSON({ nested: { onnx: { nested: proto2Messages } } } as protobuf.INamespace);

export const ModelProtoType = root.lookupType('onnx.ModelProto');
export const TensorProtoType = root.lookupType('onnx.TensorProto');
export const GraphProtoType = root.lookupType('onnx.GraphProto');
export const NodeProtoType = root.lookupType('onnx.NodeProto');
