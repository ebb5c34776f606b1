/**
 * Model file I/O: lossless round trips (bytes and IR) for every field of the current ONNX schema,
 * agreement with the independent `onnx-proto` package on the ONNX 1.10 fields, one clear
 * SngdError per kind of bad file, safe external data, atomic saving, and the corpus helper.
 *
 * Normalizations of the IR round trip (modelFromProto → modelToProto), documented and tested in
 * 'IR round trip normalizations' below; everything else comes back unchanged:
 *  - a missing ir_version is written as 0;
 *  - a missing default-domain opset_import (with no opset_import at all) becomes opset 1;
 *    domain 'ai.onnx' is written as ''; a domain listed twice keeps its last version;
 *  - a graph without a name is named 'graph'; a node without a name is named `<op_type>_<index>`;
 *  - a node domain '' or 'ai.onnx' is left unset;
 *  - value_info entries with the same name collapse to the last one;
 *  - an empty dim_param ('') in a tensor shape is dropped (an unknown dimension either way).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Long from 'long';
import protobuf from 'protobufjs';
import onnxProto from 'onnx-proto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { GraphBuilder } from '../models/builder.js';
import { encodeNpz } from '../src/data/npz.js';
import { SngdError } from '../src/errors.js';
import { decodeModel, encodeModel, readModelFile, writeFileAtomic } from '../src/onnx/codec.js';
import { modelToProto, saveModel } from '../src/onnx/export.js';
import { loadModel, modelFromProto } from '../src/onnx/import.js';
import { AttrType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type TypeProto } from '../src/onnx/proto.js';
import { ModelProtoType, TensorProtoType } from '../src/onnx/schema.js';
import { float32Tensor, int64Tensor, tensorToProto, type Tensor } from '../src/onnx/tensor.js';
import { CORPUS_SKIP_MESSAGE, corpusAvailable, corpusDir, corpusModels, referenceData } from './helpers/corpus.js';
import { expectSngd } from './helpers/errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const { onnx } = onnxProto as any;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-io-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

// ---------------------------------------------------------------------------------------------
// Helpers

const L = (v: number | string): Long => Long.fromString(String(v));
const U = (v: string): Long => Long.fromString(v, true);
const I64_MAX = '9223372036854775807';
const I64_MIN = '-9223372036854775808';
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** The comparison view of a decoded message: int64 as decimal strings, bytes as base64. */
const TO_OBJECT = { longs: String, bytes: String, defaults: false } as const;
function view(model: ModelProto): Record<string, unknown> {
  return ModelProtoType.toObject(ModelProtoType.fromObject(model as Record<string, unknown>), TO_OBJECT);
}

/**
 * The same view computed from a hand-written object without protobufjs (Long → string,
 * Uint8Array → base64, empty lists and undefined dropped): comparing a decoded model against
 * this proves that no field of the fixture was silently dropped by the schema.
 */
function canonical(v: unknown): unknown {
  if (Long.isLong(v)) return (v as Long).toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined || (Array.isArray(x) && x.length === 0)) continue;
      out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

function writeModel(file: string, model: ModelProto): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encodeModel(model));
  return file;
}

const tensorType = (elemType: number, dims: (number | string)[]): TypeProto => ({
  tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: L(d) } : { dimParam: d })) } },
});

/** A small valid model: y = Relu(x + w), with the given initializer for w. */
function reluModel(w: TensorProto, extra: Partial<GraphProto> = {}): ModelProto {
  return {
    irVersion: L(9),
    opsetImport: [{ domain: '', version: L(17) }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: tensorType(1, [2, 3]) }],
      output: [{ name: 'y', type: tensorType(1, [2, 3]) }],
      initializer: [w],
      node: [
        { name: 'add', opType: 'Add', input: ['x', w.name ?? 'w'], output: ['s'] },
        { name: 'relu', opType: 'Relu', input: ['s'], output: ['y'] },
      ],
      ...extra,
    },
  };
}

const W = (): TensorProto => ({ name: 'w', dims: [L(2), L(3)], dataType: 1, rawData: new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer) });

// ---------------------------------------------------------------------------------------------
// Fixtures: every field of the current schema (IR 11 / ONNX 1.18+), and the ONNX 1.10 subset.

const FLOAT = 1;
const INT64 = 7;

function subgraph(name: string): GraphProto {
  return {
    name,
    docString: `${name} doc`,
    node: [{ name: `${name}_id`, opType: 'Identity', input: ['x'], output: [`${name}_out`], docString: 'reads x from the outer scope' }],
    output: [{ name: `${name}_out`, type: tensorType(FLOAT, ['N', 3]) }],
    initializer: [{ name: `${name}_c`, dims: [L(1)], dataType: FLOAT, floatData: [0.5] }],
  };
}

/** Every AttributeProto value kind, including INT64 max/min. */
function allAttributes(): AttributeProto[] {
  const t: TensorProto = { name: 'attr_t', dims: [L(2)], dataType: INT64, int64Data: [L(I64_MAX), L(I64_MIN)] };
  const sparse = {
    values: { name: 'sv', dims: [L(2)], dataType: FLOAT, floatData: [1, -2] },
    indices: { name: 'si', dims: [L(2)], dataType: INT64, int64Data: [L(0), L(7)] },
    dims: [L(8)],
  };
  return [
    { name: 'f', type: AttrType.FLOAT, f: 0.5, docString: 'a float' },
    { name: 'i_max', type: AttrType.INT, i: L(I64_MAX) },
    { name: 'i_min', type: AttrType.INT, i: L(I64_MIN) },
    { name: 'zero', type: AttrType.INT, i: L(0) },
    { name: 's', type: AttrType.STRING, s: bytes('héllo\u0000') },
    { name: 't', type: AttrType.TENSOR, t },
    { name: 'g', type: AttrType.GRAPH, g: subgraph('then') },
    { name: 'sparse', type: AttrType.SPARSE_TENSOR, sparseTensor: sparse },
    { name: 'tp', type: AttrType.TYPE_PROTO, tp: { optionalType: { elemType: tensorType(FLOAT, [1]) } } },
    { name: 'floats', type: AttrType.FLOATS, floats: [0.25, -1.5, 3] },
    { name: 'ints', type: AttrType.INTS, ints: [L(I64_MAX), L(I64_MIN), L(0), L(-1)] },
    { name: 'strings', type: AttrType.STRINGS, strings: [bytes('a'), bytes(''), bytes('ü')] },
    {
      name: 'tensors',
      type: AttrType.TENSORS,
      tensors: [
        t,
        { name: 'u8', dims: [L(1)], dataType: 2, int32Data: [255] },
        // Attribute tensors are decoded only where an op reads them: no file needed here.
        { name: 'chunk', dims: [L(4)], dataType: FLOAT, segment: { begin: L(0), end: L(4) }, dataLocation: 1, externalData: [{ key: 'location', value: 'chunk.bin' }, { key: 'offset', value: '0' }] },
      ],
    },
    { name: 'graphs', type: AttrType.GRAPHS, graphs: [subgraph('a'), subgraph('b')] },
    { name: 'sparse_list', type: AttrType.SPARSE_TENSORS, sparseTensors: [sparse, sparse] },
    { name: 'types', type: AttrType.TYPE_PROTOS, typeProtos: [{ sequenceType: { elemType: tensorType(INT64, []) } }, { mapType: { keyType: 8, valueType: tensorType(FLOAT, [2]) } }] },
  ];
}

/** Initializers in every storage form the importer reads. */
function allInitializers(): TensorProto[] {
  return [
    { name: 'w_raw', dims: [L(2), L(3)], dataType: FLOAT, rawData: new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer), docString: 'raw', metadataProps: [{ key: 'origin', value: 'test' }] },
    { name: 'w_float', dims: [L(3)], dataType: FLOAT, floatData: [1, -2.5, 0.125] },
    { name: 'w_int64', dims: [L(3)], dataType: INT64, int64Data: [L(I64_MAX), L(I64_MIN), L(-1)] },
    { name: 'w_string', dims: [L(2)], dataType: 8, stringData: [bytes('ab'), bytes('')] },
    { name: 'w_double', dims: [L(2)], dataType: 11, doubleData: [Math.PI, -0] },
    { name: 'w_uint64', dims: [L(2)], dataType: 13, uint64Data: [U('18446744073709551615'), U('1')] },
    { name: 'w_int8', dims: [L(2)], dataType: 3, int32Data: [-128, 127] },
    { name: 'w_half', dims: [L(1)], dataType: 10, int32Data: [0x3c00] },
    { name: 'w_scalar', dataType: FLOAT, floatData: [7] },
    { name: 'w_empty', dims: [L(0), L(4)], dataType: FLOAT },
  ];
}

/** A model using every field of the current onnx.proto. It passes the importer's checks. */
function fullModel(): ModelProto {
  const deviceConfigurations = [
    {
      configurationId: 'mesh',
      pipelineStage: 1,
      shardingSpec: [
        {
          tensorName: 'x',
          device: [L(0), L(1)],
          indexToDeviceGroupMap: [{ key: L(0), value: [L(0), L(1)] }],
          shardedDim: [{ axis: L(0), simpleSharding: [{ dimValue: L(4), numShards: L(2) }, { dimParam: 'N', numShards: L(2) }] }],
        },
      ],
    },
  ];
  return {
    irVersion: L(10),
    opsetImport: [{ domain: '', version: L(21) }, { domain: 'com.example', version: L(1) }],
    producerName: 'sngd-test',
    producerVersion: '0.1',
    domain: 'org.example',
    modelVersion: L(I64_MAX),
    docString: 'model doc',
    metadataProps: [{ key: 'author', value: 'tests' }, { key: 'empty', value: '' }],
    configuration: [{ name: 'mesh', numDevices: 2, device: ['cuda:0', 'cuda:1'] }],
    functions: [
      {
        name: 'Scale',
        domain: 'com.example',
        overload: 'v2',
        input: ['a'],
        output: ['b'],
        attribute: ['unused'],
        attributeProto: [{ name: 'alpha', type: AttrType.FLOAT, f: 2 }],
        node: [
          { opType: 'Constant', output: ['k'], attribute: [{ name: 'value_float', type: AttrType.FLOAT, refAttrName: 'alpha' }] },
          { opType: 'Mul', input: ['a', 'k'], output: ['b'], metadataProps: [{ key: 'in', value: 'function' }] },
        ],
        docString: 'function doc',
        opsetImport: [{ domain: '', version: L(21) }],
        valueInfo: [{ name: 'k', type: tensorType(FLOAT, []) }],
        metadataProps: [{ key: 'fn', value: 'meta' }],
      },
    ],
    trainingInfo: [
      {
        initialization: { name: 'init', node: [{ opType: 'RandomNormal', output: ['w_raw_init'], attribute: [{ name: 'shape', type: AttrType.INTS, ints: [L(2), L(3)] }] }], output: [{ name: 'w_raw_init' }] },
        algorithm: { name: 'algo', node: [{ opType: 'Sub', input: ['w_raw', 'g'], output: ['w_raw_new'] }], output: [{ name: 'w_raw_new' }] },
        initializationBinding: [{ key: 'w_raw', value: 'w_raw_init' }],
        updateBinding: [{ key: 'w_raw', value: 'w_raw_new' }],
      },
    ],
    graph: {
      name: 'main',
      docString: 'graph doc',
      metadataProps: [{ key: 'graph', value: 'meta' }],
      input: [
        { name: 'x', type: { denotation: 'TENSOR', tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N', denotation: 'DATA_BATCH' }, { dimValue: L(3) }] } } }, docString: 'x doc', metadataProps: [{ key: 'vi', value: 'x' }] },
        { name: 'maybe', type: { optionalType: { elemType: tensorType(FLOAT, [3]) } } },
        { name: 'seq', type: { sequenceType: { elemType: tensorType(INT64, ['K']) } } },
        { name: 'sp', type: { sparseTensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: L(8) }] } } } },
        { name: 'opaque', type: { opaqueType: { domain: 'com.example', name: 'Blob' } } },
        { name: 'unknown_dims', type: { tensorType: { elemType: FLOAT, shape: { dim: [{}, { denotation: 'CHANNEL' }] } } } },
      ],
      output: [
        { name: 'y', type: tensorType(FLOAT, ['N', 3]) },
        { name: 'z', type: tensorType(FLOAT, ['N', 3]) },
      ],
      valueInfo: [{ name: 'h', type: tensorType(FLOAT, ['N', 3]), docString: 'hidden' }],
      initializer: allInitializers(),
      sparseInitializer: [
        {
          values: { name: 'sparse_w', dims: [L(2)], dataType: FLOAT, floatData: [1, 2] },
          indices: { name: 'sparse_w_idx', dims: [L(2), L(1)], dataType: INT64, int64Data: [L(1), L(5)] },
          dims: [L(8)],
        },
      ],
      quantizationAnnotation: [{ tensorName: 'h', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 'w_scalar' }] }],
      node: [
        {
          name: 'scale',
          opType: 'Scale',
          domain: 'com.example',
          overload: 'v2',
          input: ['x'],
          output: ['h'],
          attribute: [{ name: 'alpha', type: AttrType.FLOAT, f: 0.5 }],
          docString: 'node doc',
          metadataProps: [{ key: 'node', value: 'meta' }],
          deviceConfigurations,
        },
        { name: 'everything', opType: 'Custom', domain: 'com.example', input: ['h', '', 'w_raw'], output: ['y', ''], attribute: allAttributes() },
        { name: 'sin', opType: 'Sin', domain: 'ai.onnx', input: ['h'], output: ['z'] },
      ],
    },
  };
}

/** The ONNX 1.10 subset (what `onnx-proto` knows), with as many fields set as it has. */
function model110(): ModelProto {
  const full = fullModel();
  const g = full.graph!;
  const keep = <T extends object>(o: T, drop: string[]): T => Object.fromEntries(Object.entries(o).filter(([k]) => !drop.includes(k))) as T;
  const node110 = (n: NodeProto): NodeProto => keep(n, ['overload', 'metadataProps', 'deviceConfigurations']);
  return {
    ...keep(full, ['configuration', 'functions']),
    functions: [{ name: 'Scale', domain: 'com.example', input: ['a'], output: ['b'], attribute: ['alpha'], node: [{ opType: 'Mul', input: ['a', 'a'], output: ['b'] }], docString: 'fn', opsetImport: [{ domain: '', version: L(13) }] }],
    graph: {
      ...keep(g, ['metadataProps']),
      input: g.input!.filter((v) => v.name !== 'opaque').map((v) => keep(v, ['metadataProps'])),
      initializer: g.initializer!.map((t) => keep(t, ['metadataProps'])),
      node: g.node!.map(node110),
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('round trip is lossless', () => {
  it('encode → decode → encode keeps every field of the current schema', () => {
    const fixture = fullModel();
    const bytes1 = encodeModel(fixture);
    const decoded1 = decodeModel(bytes1, 'full.onnx');
    // Nothing in the hand-written object was dropped on the way in ...
    expect(view(decoded1)).toEqual(canonical(fixture));
    // ... and a second pass changes nothing, not even a byte.
    const bytes2 = encodeModel(decoded1);
    expect(view(decodeModel(bytes2, 'again.onnx'))).toEqual(view(decoded1));
    expect(Buffer.from(bytes2).equals(Buffer.from(bytes1))).toBe(true);
  });

  it('the fixture sets every field of every message in the schema', () => {
    const seen = new Set<string>();
    const walk = (msg: any): void => {
      const type = msg?.$type as protobuf.Type | undefined;
      if (!type) return;
      for (const field of type.fieldsArray) {
        if (!Object.prototype.hasOwnProperty.call(msg, field.name)) continue;
        const v = msg[field.name];
        if (Array.isArray(v) ? v.length === 0 : v === null || v === undefined) continue;
        seen.add(`${type.name}.${field.name}`);
        for (const x of Array.isArray(v) ? v : [v]) walk(x);
      }
    };
    walk(decodeModel(encodeModel(fullModel()), 'full.onnx'));
    const all: string[] = [];
    const collect = (ns: protobuf.NamespaceBase): void => {
      for (const nested of ns.nestedArray) {
        if (nested instanceof protobuf.Type) all.push(...nested.fieldsArray.map((f) => `${nested.name}.${f.name}`));
        if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) collect(nested);
      }
    };
    collect(ModelProtoType.root);
    expect(all.length).toBeGreaterThan(130);
    expect(all.filter((f) => !seen.has(f))).toEqual([]);
  });

  it('keeps the post-1.10 fields, explicitly', () => {
    const m = view(decodeModel(encodeModel(fullModel()), 'full.onnx')) as any;
    expect(m.irVersion).toBe('10');
    expect(m.opsetImport[0]).toEqual({ domain: '', version: '21' });
    expect(m.modelVersion).toBe(I64_MAX);
    expect(m.metadataProps).toEqual([{ key: 'author', value: 'tests' }, { key: 'empty', value: '' }]);
    expect(m.configuration[0]).toEqual({ name: 'mesh', numDevices: 2, device: ['cuda:0', 'cuda:1'] });
    expect(m.functions[0].overload).toBe('v2');
    expect(m.functions[0].attributeProto[0]).toEqual({ name: 'alpha', type: AttrType.FLOAT, f: 2 });
    expect(m.functions[0].valueInfo[0].name).toBe('k');
    expect(m.functions[0].node[0].attribute[0].refAttrName).toBe('alpha');
    expect(m.graph.metadataProps).toEqual([{ key: 'graph', value: 'meta' }]);
    const scale = m.graph.node[0];
    expect(scale.overload).toBe('v2');
    expect(scale.metadataProps).toEqual([{ key: 'node', value: 'meta' }]);
    expect(scale.deviceConfigurations[0].shardingSpec[0].shardedDim[0].simpleSharding).toEqual([
      { dimValue: '4', numShards: '2' },
      { dimParam: 'N', numShards: '2' },
    ]);
    expect(scale.deviceConfigurations[0].shardingSpec[0].indexToDeviceGroupMap).toEqual([{ key: '0', value: ['0', '1'] }]);
    expect(m.graph.initializer[0].metadataProps).toEqual([{ key: 'origin', value: 'test' }]);
    const attrs = Object.fromEntries(m.graph.node[1].attribute.map((a: any) => [a.name, a]));
    expect(attrs.i_max.i).toBe(I64_MAX);
    expect(attrs.i_min.i).toBe(I64_MIN);
    expect(attrs.zero.i).toBe('0'); // proto2 presence: an explicit 0 stays set
    expect(attrs.ints.ints).toEqual([I64_MAX, I64_MIN, '0', '-1']);
    expect(m.graph.input[1].type.optionalType).toBeDefined();
    expect(m.graph.input[2].type.sequenceType).toBeDefined();
    expect(m.graph.input[3].type.sparseTensorType).toBeDefined();
    expect(m.graph.input[4].type.opaqueType).toEqual({ domain: 'com.example', name: 'Blob' });
    expect(m.graph.sparseInitializer[0].dims).toEqual(['8']);
    expect(m.trainingInfo[0].updateBinding).toEqual([{ key: 'w_raw', value: 'w_raw_new' }]);
    expect(m.graph.initializer.find((t: any) => t.name === 'w_uint64').uint64Data).toEqual(['18446744073709551615', '1']);
  });

  it('through the IR (modelFromProto → modelToProto) nothing changes', () => {
    const bytes1 = encodeModel(fullModel());
    const decoded1 = decodeModel(bytes1, 'full.onnx');
    const ir = modelFromProto(decoded1, { source: 'full.onnx' });
    // The IR read what it models ...
    expect(ir.irVersion).toBe(10);
    expect([...ir.opsets]).toEqual([['', 21], ['com.example', 1]]);
    expect(ir.graph.inputs[0]!.shape).toEqual(['N', 3]);
    expect(ir.graph.inputs[5]!.shape).toEqual(['?', '?']);
    expect(ir.graph.initializers.get('w_int64')!.tensor.data).toEqual(BigInt64Array.from([2n ** 63n - 1n, -(2n ** 63n), -1n]));
    expect(ir.graph.initializers.get('w_uint64')!.tensor.data).toEqual(BigUint64Array.from([2n ** 64n - 1n, 1n]));
    expect(ir.graph.initializers.get('w_string')!.tensor.data).toEqual(['ab', '']);
    expect(ir.graph.initializers.get('w_empty')!.tensor.dims).toEqual([0, 4]);
    expect(ir.graph.nodes[2]!.domain).toBe('');
    // ... and gives back everything else untouched.
    const bytes3 = encodeModel(modelToProto(ir));
    const expected = view(decoded1) as any;
    delete expected.graph.node[2].domain; // documented: domain 'ai.onnx' is written as ''
    expect(view(decodeModel(bytes3, 'ir.onnx'))).toEqual(expected);
  });

  it('through the IR, after saving and loading a file', () => {
    const file = writeModel(path.join(dir, 'full', 'model.onnx'), fullModel());
    const ir = loadModel(file);
    const out = path.join(dir, 'full', 'saved.onnx');
    saveModel(out, ir);
    const a = view(readModelFile(file)) as any;
    delete a.graph.node[2].domain;
    expect(view(readModelFile(out))).toEqual(a);
  });

  it('IR round trip normalizations (documented above) and nothing more', () => {
    const model: ModelProto = {
      opsetImport: [],
      graph: {
        input: [{ name: 'x', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: '' }, { dimValue: L(2) }] } } } }],
        output: [{ name: 'y' }],
        valueInfo: [{ name: 'y', docString: 'first' }, { name: 'y', docString: 'second' }],
        node: [{ opType: 'Relu', domain: 'ai.onnx', input: ['x'], output: ['y'] }],
      },
    };
    const before = view(decodeModel(encodeModel(model), 'n.onnx')) as any;
    const after = view(decodeModel(encodeModel(modelToProto(modelFromProto(decodeModel(encodeModel(model), 'n.onnx'), { source: 'n.onnx' }))), 'n2.onnx')) as any;
    expect(after.irVersion).toBe('0');
    expect(after.opsetImport).toEqual([{ domain: '', version: '1' }]);
    expect(after.graph.name).toBe('graph');
    expect(after.graph.node[0].name).toBe('Relu_0');
    expect(after.graph.node[0].domain).toBeUndefined();
    expect(after.graph.valueInfo).toEqual([{ name: 'y', docString: 'second' }]);
    expect(after.graph.input[0].type.tensorType.shape.dim[0]).toEqual({});
    // Apart from those, the same.
    for (const m of [before, after]) {
      delete m.irVersion;
      delete m.opsetImport;
      delete m.graph.name;
      delete m.graph.node[0].name;
      delete m.graph.node[0].domain;
      delete m.graph.valueInfo;
      m.graph.input[0].type.tensorType.shape.dim[0] = {};
    }
    expect(after).toEqual(before);
  });

  it('opset domain "ai.onnx" is read as the default domain', () => {
    const m = reluModel(W());
    m.opsetImport = [{ domain: 'ai.onnx', version: L(17) }];
    const ir = modelFromProto(decodeModel(encodeModel(m), 'ai.onnx'), { source: 'm' });
    expect([...ir.opsets]).toEqual([['', 17]]);
  });
});

describe('agreement with onnx-proto (ONNX 1.10, static protobufjs code)', () => {
  const theirView = (msg: unknown): unknown => onnx.ModelProto.toObject(msg, TO_OBJECT);

  it('bytes written by onnx-proto decode with ours to the same values', () => {
    const fixture = model110();
    // Static encode takes the plain object as is. (onnx-proto's fromObject would drop the empty
    // bytes entry of the STRINGS attribute: protobufjs 6 skips zero-length Uint8Arrays there.)
    const theirs: Uint8Array = onnx.ModelProto.encode(fixture).finish();
    expect(theirView(onnx.ModelProto.decode(theirs))).toEqual(canonical(fixture));
    expect(view(decodeModel(theirs, 'theirs.onnx'))).toEqual(canonical(fixture));
  });

  it('bytes written by us decode with onnx-proto to the same values', () => {
    const fixture = model110();
    const ours = encodeModel(fixture);
    expect(theirView(onnx.ModelProto.decode(ours))).toEqual(canonical(fixture));
  });

  it('onnx-proto reads our full model, skipping only fields newer than 1.10', () => {
    const ours = encodeModel(fullModel());
    const theirs = theirView(onnx.ModelProto.decode(ours)) as any;
    const expected = canonical(model110()) as any;
    // model110() also swaps the function for a 1.10 one and drops the opaque input: undo that here.
    expected.functions = [{ name: 'Scale', domain: 'com.example', input: ['a'], output: ['b'], attribute: ['unused'], node: [{ opType: 'Constant', output: ['k'], attribute: [{ name: 'value_float', type: 1, refAttrName: 'alpha' }] }, { opType: 'Mul', input: ['a', 'k'], output: ['b'] }], docString: 'function doc', opsetImport: [{ domain: '', version: '21' }] }];
    expected.graph.input.splice(4, 0, { name: 'opaque', type: {} });
    expect(theirs).toEqual(expected);
  });

  it('packed and unpacked repeated scalars both decode (onnx-proto packs dims, ours does not)', () => {
    const t = { name: 't', dims: [L(2), L(3)], dataType: INT64, int64Data: [L(1), L(2), L(3), L(4), L(5), L(6)] };
    const theirs: Uint8Array = onnx.TensorProto.encode(t).finish();
    const ours = TensorProtoType.encode(TensorProtoType.fromObject(t)).finish();
    expect(Buffer.from(theirs).equals(Buffer.from(ours))).toBe(false);
    expect(TensorProtoType.toObject(TensorProtoType.decode(theirs), TO_OBJECT)).toEqual(canonical(t));
    expect(onnx.TensorProto.toObject(onnx.TensorProto.decode(ours), TO_OBJECT)).toEqual(canonical(t));
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad model files give one clear SngdError naming the file', () => {
  const file = (name: string): string => path.join(dir, 'bad', name);
  const valid = (): Uint8Array => encodeModel(reluModel(W()));
  const raw = (name: string, data: Uint8Array | string): string => {
    fs.mkdirSync(path.join(dir, 'bad'), { recursive: true });
    fs.writeFileSync(file(name), data);
    return file(name);
  };

  it('missing file', () => {
    expectSngd(() => loadModel(file('missing.onnx')), file('missing.onnx'), 'not found');
  });

  it('a folder; a device that never ends', () => {
    fs.mkdirSync(file('folder.onnx'), { recursive: true });
    expectSngd(() => loadModel(file('folder.onnx')), file('folder.onnx'), 'not a regular file');
    if (fs.existsSync('/dev/zero')) expectSngd(() => loadModel('/dev/zero'), '/dev/zero', 'not a regular file');
  });

  it('empty file', () => {
    expectSngd(() => loadModel(raw('empty.onnx', '')), file('empty.onnx'), 'empty');
  });

  it('a text file', () => {
    expectSngd(() => loadModel(raw('text.onnx', 'This is not a model.\nJust some text, with a few lines.\n')), file('text.onnx'), /not a valid ONNX protobuf|not an ONNX model/);
  });

  it('a PNG image', () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex');
    expectSngd(() => loadModel(raw('image.onnx', png)), file('image.onnx'), /not a valid ONNX protobuf|not an ONNX model/);
  });

  it('a truncated model, at every length', () => {
    const b = valid();
    for (let n = 1; n < b.length; n++) {
      const f = raw('truncated.onnx', b.subarray(0, n));
      let model;
      try {
        model = loadModel(f);
      } catch (err) {
        if (!(err instanceof SngdError)) throw new Error(`length ${n}: ${String(err)}`);
        expect(err.message).toContain(f);
        continue;
      }
      // Cutting between two complete fields can leave a smaller valid message; it must then be a
      // consistent model, which loadModel checked.
      expect(model.graph).toBeDefined();
    }
    expectSngd(() => loadModel(raw('half.onnx', b.subarray(0, b.length >> 1))), file('half.onnx'));
  });

  it('messages nested past protobuf’s depth limit', () => {
    // Written by hand (our encoder refuses such depth too): ModelProto.graph(7).input(11)
    // .type(2), then TypeProto.sequence_type(4).elem_type(1) 200 times, from the inside out.
    const field = (id: number, body: Uint8Array): Buffer => {
      const len: number[] = [];
      for (let n = body.length; ; n >>>= 7) {
        if (n < 0x80) {
          len.push(n);
          break;
        }
        len.push((n & 0x7f) | 0x80);
      }
      return Buffer.concat([Buffer.from([(id << 3) | 2, ...len]), body]);
    };
    let t: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 200; i++) t = field(4, field(1, t));
    const b = field(7, field(11, Buffer.concat([field(1, Buffer.from('x')), field(2, t)])));
    expectSngd(() => loadModel(raw('deep.onnx', b)), file('deep.onnx'), 'nested too deeply');
  });

  it('a node reading an undefined value', () => {
    const m = reluModel(W());
    m.graph!.node![1]!.input = ['nowhere'];
    expectSngd(() => loadModel(writeModel(file('undefined.onnx'), m)), file('undefined.onnx'), "node 'relu' (Relu) reads 'nowhere'");
  });

  it('a node with subgraphs reading an undefined value itself', () => {
    const m = reluModel(W());
    m.graph!.node!.push({ name: 'cond', opType: 'If', input: ['no_cond'], output: ['z'], attribute: [{ name: 'then_branch', type: AttrType.GRAPH, g: subgraph('t') }, { name: 'else_branch', type: AttrType.GRAPH, g: subgraph('e') }] });
    expectSngd(() => loadModel(writeModel(file('if.onnx'), m)), file('if.onnx'), "node 'cond' (If) reads 'no_cond'");
  });

  it('duplicated outputs', () => {
    const m = reluModel(W());
    m.graph!.node!.push({ name: 'again', opType: 'Relu', input: ['s'], output: ['y'] });
    expectSngd(() => loadModel(writeModel(file('dup.onnx'), m)), file('dup.onnx'), "value 'y'", 'defined twice');
  });

  it('a graph input listed twice, an initializer defined twice', () => {
    const m = reluModel(W());
    m.graph!.input!.push({ name: 'x' });
    expectSngd(() => loadModel(writeModel(file('dupin.onnx'), m)), file('dupin.onnx'), "graph input 'x' is listed twice");
    const m2 = reluModel(W());
    m2.graph!.initializer!.push(W());
    expectSngd(() => loadModel(writeModel(file('dupinit.onnx'), m2)), file('dupinit.onnx'), "initializer 'w' is defined twice");
  });

  it('a graph output nothing produces', () => {
    const m = reluModel(W());
    m.graph!.output!.push({ name: 'ghost' });
    expectSngd(() => loadModel(writeModel(file('ghost.onnx'), m)), file('ghost.onnx'), "graph output 'ghost'");
  });

  it('initializer raw_data length disagrees with dims', () => {
    const w = W();
    w.rawData = w.rawData!.subarray(0, 20);
    expectSngd(() => loadModel(writeModel(file('rawlen.onnx'), reluModel(w))), file('rawlen.onnx'), "tensor 'w'", 'need 24 bytes but raw_data holds 20');
  });

  it('typed data count disagrees with dims', () => {
    expectSngd(() => loadModel(writeModel(file('floatlen.onnx'), reluModel({ name: 'w', dims: [L(2), L(3)], dataType: FLOAT, floatData: [1, 2] }))), file('floatlen.onnx'), "tensor 'w'", 'float_data holds 2');
    expectSngd(() => loadModel(writeModel(file('strlen.onnx'), reluModel({ name: 'w', dims: [L(3)], dataType: 8, stringData: [bytes('a')] }))), file('strlen.onnx'), '3 strings but 1');
  });

  it('negative dims', () => {
    const w = { ...W(), dims: [L(-2), L(-3)] };
    expectSngd(() => loadModel(writeModel(file('negdims.onnx'), reluModel(w))), file('negdims.onnx'), "tensor 'w'", 'invalid dimension -2');
  });

  it('astronomically large dims fail before anything is allocated', () => {
    const before = process.memoryUsage().arrayBuffers;
    const cases: [Long[], string][] = [
      [[L(I64_MAX), L(I64_MAX)], 'invalid dimension'],
      [[L(1e6), L(1e6), L(1e6)], 'declare'],
      [[L(2 ** 20), L(2 ** 20)], 'more than the'],
      [[L(2 ** 29), L(2)], 'need 4294967296 bytes but raw_data holds 24'],
    ];
    for (const [i, [dims, part]] of cases.entries()) {
      const f = writeModel(file(`huge${i}.onnx`), reluModel({ ...W(), dims }));
      const t0 = performance.now();
      expectSngd(() => loadModel(f), f, "tensor 'w'", part);
      expect(performance.now() - t0).toBeLessThan(1000);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
  });

  it('unsupported data type, unknown data_location', () => {
    expectSngd(() => loadModel(writeModel(file('dtype.onnx'), reluModel({ ...W(), dataType: 99 }))), file('dtype.onnx'), 'unsupported data_type 99');
    expectSngd(() => loadModel(writeModel(file('loc.onnx'), reluModel({ ...W(), dataLocation: 7 }))), file('loc.onnx'), 'unknown data_location 7');
  });

  it('malformed attributes', () => {
    const withAttr = (a: AttributeProto): ModelProto => {
      const m = reluModel(W());
      m.graph!.node![1]!.attribute = [a];
      return m;
    };
    expectSngd(() => loadModel(writeModel(file('a1.onnx'), withAttr({ name: 'alpha', type: AttrType.INT, f: 1.5 }))), file('a1.onnx'), "attribute 'alpha' is declared INT but holds a FLOAT value");
    expectSngd(() => loadModel(writeModel(file('a2.onnx'), withAttr({ name: 'alpha', type: 42, i: L(1) }))), file('a2.onnx'), 'unknown type 42');
    expectSngd(() => loadModel(writeModel(file('a3.onnx'), withAttr({ name: 'alpha', type: AttrType.INT, i: L(1), f: 2 }))), file('a3.onnx'), 'sets 2 value fields');
    expectSngd(() => loadModel(writeModel(file('a4.onnx'), withAttr({ type: AttrType.INT, i: L(1) }))), file('a4.onnx'), 'an attribute has no name');
    const twice = reluModel(W());
    twice.graph!.node![1]!.attribute = [{ name: 'k', type: AttrType.INT, i: L(1) }, { name: 'k', type: AttrType.INT, i: L(2) }];
    expectSngd(() => loadModel(writeModel(file('a5.onnx'), twice)), file('a5.onnx'), "attribute 'k' is given twice");
    // Inside a subgraph too.
    const inner = subgraph('body');
    inner.node![0]!.attribute = [{ name: 'bad', type: AttrType.FLOATS, ints: [L(1)] }];
    const m = reluModel(W());
    m.graph!.node![1]!.attribute = [{ name: 'body', type: AttrType.GRAPH, g: inner }];
    expectSngd(() => loadModel(writeModel(file('a6.onnx'), m)), file('a6.onnx'), "subgraph 'body'", "attribute 'bad' is declared FLOATS but holds a INTS value");
  });

  it('subgraphs nested past the limit', () => {
    const nest = (levels: number): ModelProto => {
      let g: GraphProto = subgraph('leaf');
      for (let i = 1; i < levels; i++) g = { name: `l${i}`, node: [{ opType: 'If', input: ['x'], output: ['o'], attribute: [{ name: 'then_branch', type: AttrType.GRAPH, g }] }] };
      const m = reluModel(W());
      m.graph!.node![1]!.attribute = [{ name: 'body', type: AttrType.GRAPH, g }];
      return m;
    };
    expect(loadModel(writeModel(file('nest16.onnx'), nest(16))).graph.nodes).toHaveLength(2);
    expectSngd(() => loadModel(writeModel(file('nest17.onnx'), nest(17))), file('nest17.onnx'), 'subgraphs nest more than 16 levels deep');
  });

  it('a node without op_type; an opset without version', () => {
    const m = reluModel(W());
    delete m.graph!.node![1]!.opType;
    expectSngd(() => loadModel(writeModel(file('noop.onnx'), m)), file('noop.onnx'), "node #1 ('relu') has no op_type");
    const m2 = reluModel(W());
    m2.opsetImport = [{ domain: 'com.x' }];
    expectSngd(() => loadModel(writeModel(file('noversion.onnx'), m2)), file('noversion.onnx'), "opset_import for domain 'com.x' has invalid version 0");
  });

  it('names with control characters stay on one line', () => {
    const m = reluModel(W());
    m.graph!.node![1]!.name = 'evil\nname\u0007';
    m.graph!.node![1]!.input = [`in\r\n${'x'.repeat(500)}`];
    const msg = expectSngd(() => loadModel(writeModel(file('ctl.onnx'), m)), file('ctl.onnx'), "node 'evil\\u000aname\\u0007'", '(504 chars)');
    expect(msg.length).toBeLessThan(400);
  });
});

describe('external data', () => {
  const ext = (location: string, extra: Record<string, string> = {}): TensorProto => ({
    name: 'w',
    dims: [L(2), L(3)],
    dataType: FLOAT,
    dataLocation: 1,
    externalData: [{ key: 'location', value: location }, ...Object.entries(extra).map(([key, value]) => ({ key, value }))],
  });
  const folder = (name: string): string => {
    const d = path.join(dir, 'ext', name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  const values = Float32Array.from([1, -2, 3.5, 4, 5, 6]);

  it('a valid external-data model loads with the right values (offsets, two tensors, one file)', () => {
    const d = folder('valid');
    const bias = Float32Array.from([0.5, 0.25, -1]);
    const blob = Buffer.concat([Buffer.alloc(16, 0xee), Buffer.from(values.buffer), Buffer.from(bias.buffer)]);
    fs.mkdirSync(path.join(d, 'weights'));
    fs.writeFileSync(path.join(d, 'weights', 'data.bin'), blob);
    const m = reluModel(ext('weights/data.bin', { offset: '16', length: '24' }));
    m.graph!.initializer!.push({ name: 'b', dims: [L(3)], dataType: FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: './weights/data.bin' }, { key: 'offset', value: '40' }] });
    const ir = loadModel(writeModel(path.join(d, 'model.onnx'), m));
    expect(ir.graph.initializers.get('w')!.tensor).toEqual({ dtype: 'float32', dims: [2, 3], data: values });
    expect(ir.graph.initializers.get('b')!.tensor.data).toEqual(bias);
    // Loading through a symlinked folder works too (the folder itself is resolved first).
    const alias = path.join(dir, 'ext', 'alias');
    fs.symlinkSync(d, alias);
    expect(loadModel(path.join(alias, 'model.onnx')).graph.initializers.get('w')!.tensor.data).toEqual(values);
    // The external reference survives a save (the TensorProto is kept as it was).
    saveModel(path.join(d, 'resaved.onnx'), ir);
    expect(loadModel(path.join(d, 'resaved.onnx')).graph.initializers.get('b')!.tensor.data).toEqual(bias);
  });

  it("a '../' location", () => {
    const d = folder('dotdot');
    fs.writeFileSync(path.join(dir, 'ext', 'secret.bin'), Buffer.alloc(24));
    const f = writeModel(path.join(d, 'model.onnx'), reluModel(ext('../secret.bin')));
    expectSngd(() => loadModel(f), f, "tensor 'w'", "'../secret.bin' points outside the model's folder");
    const f2 = writeModel(path.join(d, 'model2.onnx'), reluModel(ext('sub/../../secret.bin')));
    expectSngd(() => loadModel(f2), f2, 'points outside');
  });

  it('an absolute location', () => {
    const d = folder('absolute');
    const target = path.join(d, 'w.bin');
    fs.writeFileSync(target, Buffer.from(values.buffer));
    const f = writeModel(path.join(d, 'model.onnx'), reluModel(ext(target)));
    expectSngd(() => loadModel(f), f, 'must be a relative path');
    const f2 = writeModel(path.join(d, 'model2.onnx'), reluModel(ext('C:\\weights\\w.bin')));
    expectSngd(() => loadModel(f2), f2, 'must be a relative path');
  });

  it('a symlink pointing outside the folder', () => {
    const d = folder('symlink');
    const outside = path.join(dir, 'ext', 'outside.bin');
    fs.writeFileSync(outside, Buffer.from(values.buffer));
    fs.symlinkSync(outside, path.join(d, 'w.bin'));
    const f = writeModel(path.join(d, 'model.onnx'), reluModel(ext('w.bin')));
    expectSngd(() => loadModel(f), f, "'w.bin' links outside the model's folder");
    // A symlinked folder inside that leads out is caught the same way.
    fs.symlinkSync(path.join(dir, 'ext'), path.join(d, 'up'));
    const f2 = writeModel(path.join(d, 'model2.onnx'), reluModel(ext('up/outside.bin')));
    expectSngd(() => loadModel(f2), f2, 'links outside');
  });

  it('a missing external file; a location that is a folder; the folder itself', () => {
    const d = folder('missing');
    const f = writeModel(path.join(d, 'model.onnx'), reluModel(ext('nope.bin')));
    expectSngd(() => loadModel(f), f, "'nope.bin' not found");
    fs.mkdirSync(path.join(d, 'sub'));
    const f2 = writeModel(path.join(d, 'model2.onnx'), reluModel(ext('sub')));
    expectSngd(() => loadModel(f2), f2, 'is not a file');
    const f3 = writeModel(path.join(d, 'model3.onnx'), reluModel(ext('.')));
    expectSngd(() => loadModel(f3), f3, "tensor 'w'");
    const f4 = writeModel(path.join(d, 'model4.onnx'), reluModel(ext('')));
    expectSngd(() => loadModel(f4), f4, "without a 'location'");
  });

  it('offset + length past the end of the file', () => {
    const d = folder('short');
    fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(30));
    const f = writeModel(path.join(d, 'model.onnx'), reluModel(ext('w.bin', { offset: '8', length: '24' })));
    expectSngd(() => loadModel(f), f, 'needs bytes 8..32', 'holds only 30 bytes');
    const f2 = writeModel(path.join(d, 'model2.onnx'), reluModel(ext('w.bin', { length: '12' })));
    expectSngd(() => loadModel(f2), f2, 'length 12 does not match the 24 bytes');
  });

  it('malformed offset and length', () => {
    const d = folder('numbers');
    fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64));
    for (const [i, offset] of ['-8', '0x10', '1e3', ' 8', '99999999999999999999', ''].entries()) {
      const f = writeModel(path.join(d, `m${i}.onnx`), reluModel(ext('w.bin', { offset })));
      expectSngd(() => loadModel(f), f, 'invalid external-data offset');
    }
  });

  it('external data in a model not loaded from a file', () => {
    expectSngd(() => modelFromProto(reluModel(ext('w.bin')), { source: 'memory' }), 'memory', 'not loaded from a file');
  });
});

describe('saving is atomic', () => {
  const model = () => {
    const b = new GraphBuilder('save');
    const x = b.input('x', 'float32', ['N', 3]);
    const w = b.init('w', float32Tensor([3, 2], [1, 2, 3, 4, 5, 6]));
    b.output(b.op('MatMul', [x, w], {}, { output: 'y' }), 'float32', ['N', 2]);
    return b.build();
  };
  const tmpLeft = (d: string): string[] => fs.readdirSync(d).filter((f) => f.endsWith('.tmp'));

  it('writes into a (new) folder and leaves no temp file', () => {
    const d = path.join(dir, 'save', 'new', 'deeper');
    saveModel(path.join(d, 'm.onnx'), model());
    expect(fs.readdirSync(d)).toEqual(['m.onnx']);
    expect(loadModel(path.join(d, 'm.onnx')).graph.initializers.get('w')!.tensor.data).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]));
  });

  it('a target that is a folder fails cleanly', () => {
    const d = path.join(dir, 'save', 'dirtarget');
    fs.mkdirSync(path.join(d, 'm.onnx', 'inner'), { recursive: true });
    expectSngd(() => saveModel(path.join(d, 'm.onnx'), model()), path.join(d, 'm.onnx'), 'could not write');
    expect(tmpLeft(d)).toEqual([]);
    expect(fs.statSync(path.join(d, 'm.onnx', 'inner')).isDirectory()).toBe(true);
  });

  it('a folder path through a file fails cleanly', () => {
    const d = path.join(dir, 'save', 'through');
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'file'), 'x');
    expectSngd(() => saveModel(path.join(d, 'file', 'm.onnx'), model()), path.join(d, 'file', 'm.onnx'), 'could not write');
  });

  const failures: [string, () => void][] = [
    ['the write fails midway', () => vi.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    })],
    ['fsync fails', () => vi.spyOn(fs, 'fsyncSync').mockImplementation(() => {
      throw new Error('EIO: i/o error');
    })],
    ['the rename fails', () => vi.spyOn(fs, 'renameSync').mockImplementation(() => {
      throw new Error('EXDEV: cross-device link');
    })],
  ];
  it.each(failures)('the old file stays intact when %s', (_what, breakIt) => {
    const d = path.join(dir, 'save', `intact-${_what.replace(/\W+/g, '_')}`);
    const file = path.join(d, 'm.onnx');
    saveModel(file, model());
    const old = fs.readFileSync(file);
    const changed = model();
    changed.graph.name = 'changed';
    breakIt();
    expectSngd(() => saveModel(file, changed), file, 'could not write');
    vi.restoreAllMocks();
    expect(fs.readFileSync(file).equals(old)).toBe(true);
    expect(tmpLeft(d)).toEqual([]);
    expect(loadModel(file).graph.name).toBe('save');
  });

  it('the old file stays intact when the model cannot be encoded', () => {
    const d = path.join(dir, 'save', 'encode');
    const file = path.join(d, 'm.onnx');
    saveModel(file, model());
    const old = fs.readFileSync(file);
    const broken = model();
    broken.graph.nodes[0]!.attrs = [{ name: 'bad', t: 5 as unknown as TensorProto }];
    expectSngd(() => saveModel(file, broken), file, 'could not encode');
    expect(fs.readFileSync(file).equals(old)).toBe(true);
    expect(tmpLeft(d)).toEqual([]);
  });

  it('writeFileAtomic never reuses a file at the temp name', () => {
    const d = path.join(dir, 'save', 'plain');
    fs.mkdirSync(d, { recursive: true });
    writeFileAtomic(path.join(d, 'a.txt'), 'hello');
    writeFileAtomic(path.join(d, 'a.txt'), 'world');
    expect(fs.readFileSync(path.join(d, 'a.txt'), 'utf8')).toBe('world');
    expect(fs.readdirSync(d)).toEqual(['a.txt']);
  });
});

describe('corpus helper', () => {
  it.skipIf(Boolean(process.env.SNGD_CORPUS))('locates ../shared/corpus relative to the repository', () => {
    const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
    expect(corpusDir()).toBe(path.resolve(repoRoot, '../shared/corpus'));
    expect(path.isAbsolute(corpusDir())).toBe(true);
    if (!corpusAvailable()) {
      expect(corpusModels()).toEqual([]);
      console.log(CORPUS_SKIP_MESSAGE);
    } else {
      const models = corpusModels();
      expect(models).toEqual([...models].sort());
      for (const m of models) expect(m.endsWith('.onnx')).toBe(true);
    }
  });

  it('lists *.onnx files recursively, sorted, following file symlinks only', () => {
    const root = path.join(dir, 'fake-corpus');
    for (const f of ['b/model.onnx', 'a/deep/er/x.onnx', 'a/readme.txt', 'c.ONNX', 'a/test_data_set_0/input_0.pb']) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), '');
    }
    fs.symlinkSync(path.join(root, 'b', 'model.onnx'), path.join(root, 'link.onnx'));
    fs.symlinkSync(root, path.join(root, 'a', 'loop')); // a folder symlink: not followed, no cycle
    expect(corpusModels(root)).toEqual(['a/deep/er/x.onnx', 'b/model.onnx', 'c.ONNX', 'link.onnx'].map((f) => path.join(root, f)));
    expect(corpusModels(path.join(dir, 'no-such-folder'))).toEqual([]);
  });

  /** A two-input, two-output model in its own folder. */
  const signatureModel = (d: string): string => {
    const b = new GraphBuilder('sig');
    const a = b.input('a', 'float32', [2]);
    const c = b.input('b', 'int64', [1]);
    b.init('w', float32Tensor([2], [1, 1]));
    b.output(b.op('Relu', [a], {}, { output: 'sum' }), 'float32', [2]);
    b.output(b.op('Identity', [c], {}, { output: 'copy' }), 'int64', [1]);
    const file = path.join(d, 'model.onnx');
    saveModel(file, b.build());
    return file;
  };
  const pb = (file: string, name: string, t: Tensor): void => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, TensorProtoType.encode(TensorProtoType.fromObject(tensorToProto(name, t) as Record<string, unknown>)).finish());
  };
  const A = float32Tensor([2], [0.5, -1]);
  const B = int64Tensor([1], [42]);
  const SUM = float32Tensor([2], [0.5, 0]);

  it('returns undefined when a model has no reference data', () => {
    const d = path.join(dir, 'ref', 'none');
    fs.mkdirSync(d, { recursive: true });
    expect(referenceData(signatureModel(d))).toBeUndefined();
  });

  it('reads test_data_set_0/*.pb, by TensorProto name or by position', () => {
    const d = path.join(dir, 'ref', 'pb');
    fs.mkdirSync(d, { recursive: true });
    const model = signatureModel(d);
    pb(path.join(d, 'test_data_set_0', 'input_0.pb'), 'b', B); // named: goes to 'b' whatever its index
    pb(path.join(d, 'test_data_set_0', 'input_1.pb'), '', A); // unnamed: position 1 → 'b'... overridden below
    pb(path.join(d, 'test_data_set_0', 'input_0.pb'), '', A); // unnamed, position 0 → 'a'
    pb(path.join(d, 'test_data_set_0', 'input_1.pb'), 'b', B);
    pb(path.join(d, 'test_data_set_0', 'output_0.pb'), 'sum', SUM);
    const ref = referenceData(model)!;
    expect([...ref.inputs.keys()].sort()).toEqual(['a', 'b']);
    expect(ref.inputs.get('a')).toEqual(A);
    expect(ref.inputs.get('b')).toEqual(B);
    expect(ref.outputs.get('sum')).toEqual(SUM);
    expect(ref.sources).toEqual([path.join(d, 'test_data_set_0')]);
  });

  it('reads io.npz by model names and by input_k/output_k; .pb wins where both exist', () => {
    const d = path.join(dir, 'ref', 'npz');
    fs.mkdirSync(d, { recursive: true });
    const model = signatureModel(d);
    fs.writeFileSync(path.join(d, 'io.npz'), encodeNpz({ a: A, input_1: B, output_0: SUM, copy: B }));
    let ref = referenceData(model)!;
    expect(ref.inputs.get('a')).toEqual(A);
    expect(ref.inputs.get('b')).toEqual(B);
    expect(ref.outputs.get('sum')).toEqual(SUM);
    expect(ref.outputs.get('copy')).toEqual(B);
    const other = float32Tensor([2], [9, 9]);
    pb(path.join(d, 'test_data_set_0', 'input_0.pb'), 'a', other);
    ref = referenceData(model)!;
    expect(ref.inputs.get('a')).toEqual(other);
    expect(ref.inputs.get('b')).toEqual(B);
    expect(ref.sources).toEqual([path.join(d, 'io.npz'), path.join(d, 'test_data_set_0')]);
  });

  it('refuses io.npz keys it cannot place, and unreadable .pb files', () => {
    const d = path.join(dir, 'ref', 'bad');
    fs.mkdirSync(d, { recursive: true });
    const model = signatureModel(d);
    fs.writeFileSync(path.join(d, 'io.npz'), encodeNpz({ mystery: A }));
    expectSngd(() => referenceData(model), path.join(d, 'io.npz'), "array 'mystery'", 'inputs: a, b');
    fs.writeFileSync(path.join(d, 'io.npz'), encodeNpz({ input_5: A }));
    expectSngd(() => referenceData(model), 'the model has only 2 inputs');
    fs.rmSync(path.join(d, 'io.npz'));
    fs.mkdirSync(path.join(d, 'test_data_set_0'));
    fs.writeFileSync(path.join(d, 'test_data_set_0', 'input_0.pb'), Buffer.from([0x0a, 0xff]));
    expectSngd(() => referenceData(model), path.join(d, 'test_data_set_0', 'input_0.pb'), 'not a serialized TensorProto');
    pb(path.join(d, 'test_data_set_0', 'input_0.pb'), '', A);
    pb(path.join(d, 'test_data_set_0', 'output_7.pb'), '', A);
    expectSngd(() => referenceData(model), 'output_7.pb', 'no output #7');
  });

  it('every corpus model loads or fails with an SngdError; reference data reads', (ctx) => {
    if (!corpusAvailable()) {
      ctx.skip(CORPUS_SKIP_MESSAGE);
      return;
    }
    for (const m of corpusModels()) {
      try {
        loadModel(m);
        referenceData(m);
      } catch (err) {
        if (!(err instanceof SngdError)) throw new Error(`${m}: ${String(err)}`);
      }
    }
  });
});
