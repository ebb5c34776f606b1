/**
 * Fuzzing the model reader: 1,000 seeded mutations (bit flips, truncation, overwritten and
 * duplicated byte ranges) of a few valid models, plus mutations of every shared-corpus model when
 * the corpus is present. `loadModel` must return a model or throw SngdError, never anything else,
 * never hang; a model that loads must also save. Reproduce a case with its seed: the mutation is a
 * pure function of (base model, seed).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, float } from '../models/builder.js';
import { SngdError } from '../src/errors.js';
import type { Model } from '../src/ir/graph.js';
import { Rng } from '../src/numerics/random.js';
import { encodeModel } from '../src/onnx/codec.js';
import { modelToProto } from '../src/onnx/export.js';
import { loadModel } from '../src/onnx/import.js';
import { AttrType, type GraphProto, type ModelProto } from '../src/onnx/proto.js';
import { float32Tensor, int64Tensor } from '../src/onnx/tensor.js';
import { CORPUS_SKIP_MESSAGE, corpusAvailable, corpusModels } from './helpers/corpus.js';

/** SNGD_FUZZ_CASES / SNGD_FUZZ_SEED run a longer or different campaign locally. */
const CASES = Number(process.env.SNGD_FUZZ_CASES ?? 1000);
const FIRST_SEED = Number(process.env.SNGD_FUZZ_SEED ?? 1);
/** Per-case bound (generous: a case takes about a millisecond). */
const MAX_CASE_MS = 2000;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-fuzz-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Base models

function mlp(): Model {
  const r = new Rng(7);
  const b = new GraphBuilder('mlp');
  const x = b.input('x', 'float32', ['N', 4]);
  const w1 = b.init('w1', float32Tensor([8, 4], r.floats(32)));
  const b1 = b.init('b1', float32Tensor([8], r.floats(8)));
  const h = b.op('Relu', [b.op('Gemm', [x, w1, b1], { transB: 1, alpha: float(0.5), beta: float(1) })]);
  const w2 = b.init('w2', float32Tensor([8, 3], r.floats(24)));
  const logits = b.op('MatMul', [h, w2]);
  const shape = b.init('shape', int64Tensor([2], [-1, 3]));
  const y = b.op('Reshape', [logits, shape], {}, { output: 'y' });
  b.output(b.op('Softmax', [y], { axis: -1 }, { output: 'p' }), 'float32', ['N', 3]);
  return b.build();
}

function conv(): Model {
  const r = new Rng(11);
  const b = new GraphBuilder('conv', 13);
  const x = b.input('image', 'float32', ['N', 2, 8, 8]);
  const w = b.init('k', float32Tensor([4, 2, 3, 3], r.floats(72)));
  const c = b.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], auto_pad: 'NOTSET' });
  const bn = b.op('BatchNormalization', [c, b.init('s', float32Tensor([4], r.floats(4))), b.init('o', float32Tensor([4], r.floats(4))), b.init('m', float32Tensor([4], r.floats(4))), b.init('v', float32Tensor([4], [1, 1, 1, 1]))], { epsilon: float(1e-5), momentum: float(0.9) });
  const p = b.op('MaxPool', [b.op('Relu', [bn])], { kernel_shape: [2, 2], strides: [2, 2] });
  const f = b.op('Flatten', [p], { axis: 1 });
  const cast = b.op('Cast', [f], { to: 1 });
  const zeros = b.op('ConstantOfShape', [b.op('Shape', [cast])], { value: float32Tensor([1], [0]) });
  b.output(b.op('Add', [cast, zeros], {}, { output: 'features' }), 'float32', ['N', 64]);
  return b.build();
}

/** Newer fields and other storage forms, added to a built model at the proto level. */
function rich(): ModelProto {
  const b = new GraphBuilder('rich', 21);
  const x = b.input('x', 'float32', ['N', 3]);
  const cond = b.input('cond', 'bool', []);
  const y = b.op('Add', [x, b.init('bias', float32Tensor([3], [1, 2, 3]))], {}, { name: 'add', output: 'y' });
  b.output(y, 'float32', ['N', 3]);
  const proto = modelToProto(b.build());
  const g = proto.graph!;
  const branch = (name: string, op: string): GraphProto => ({
    name,
    node: [{ opType: op, input: ['y'], output: [`${name}_out`], attribute: [{ name: 'alpha', type: AttrType.FLOAT, f: 0.1 }] }],
    output: [{ name: `${name}_out`, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } }],
  });
  g.node!.push({
    name: 'branch',
    opType: 'If',
    input: [cond],
    output: ['z'],
    attribute: [
      { name: 'then_branch', type: AttrType.GRAPH, g: branch('then', 'LeakyRelu') },
      { name: 'else_branch', type: AttrType.GRAPH, g: branch('else', 'Elu') },
    ],
    docString: 'if node',
    overload: 'fast',
    metadataProps: [{ key: 'k', value: 'v' }],
  });
  g.output!.push({ name: 'z', type: { tensorType: { elemType: 1 } } });
  g.initializer!.push(
    { name: 'f', dims: [3], dataType: 1, floatData: [0.5, -1, 2] },
    { name: 'i', dims: [2], dataType: 7, int64Data: [9007199254740991, -5] },
    { name: 's', dims: [2], dataType: 8, stringData: [Buffer.from('ab'), Buffer.from('ü')] },
    { name: 'b', dims: [3], dataType: 9, int32Data: [1, 0, 1] },
    { name: 'd', dims: [1], dataType: 11, doubleData: [Math.E] },
  );
  g.valueInfo = [{ name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }];
  g.metadataProps = [{ key: 'graph', value: 'meta' }];
  g.sparseInitializer = [{ values: { name: 'sp', dims: [1], dataType: 1, floatData: [1] }, indices: { name: 'sp_i', dims: [1], dataType: 7, int64Data: [2] }, dims: [4] }];
  proto.functions = [{ name: 'F', domain: 'local', input: ['a'], output: ['b'], node: [{ opType: 'Neg', input: ['a'], output: ['b'] }], opsetImport: [{ domain: '', version: 21 }] }];
  proto.opsetImport!.push({ domain: 'local', version: 1 });
  proto.metadataProps = [{ key: 'model', value: 'meta' }];
  proto.docString = 'fuzz base';
  return proto;
}

/** A model whose weights live in 'weights.bin' beside it (written into the fuzz folder). */
function external(): ModelProto {
  const b = new GraphBuilder('ext');
  const x = b.input('x', 'float32', ['N', 4]);
  b.output(b.op('Add', [b.op('MatMul', [x, 'w']), 'c'], {}, { output: 'y' }), 'float32', ['N', 2]);
  const proto = modelToProto(b.build());
  const ext = (name: string, dims: number[], offset: number, length: number) => ({
    name,
    dims,
    dataType: 1,
    dataLocation: 1,
    externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  });
  proto.graph!.initializer = [ext('w', [4, 2], 0, 32), ext('c', [2], 32, 8)];
  return proto;
}

function writeWeights(folder: string): void {
  const r = new Rng(3);
  fs.writeFileSync(path.join(folder, 'weights.bin'), Buffer.from(r.floats(10).buffer));
}

// ---------------------------------------------------------------------------------------------
// Mutations

type Kind = 'flip' | 'truncate' | 'overwrite' | 'duplicate';
const KINDS: Kind[] = ['flip', 'truncate', 'overwrite', 'duplicate'];

/** A mutated copy of `base`: a pure function of (base, seed). */
function mutate(base: Uint8Array, seed: number): { bytes: Uint8Array; kind: Kind } {
  const rng = new Rng(seed);
  const kind = KINDS[rng.int(KINDS.length)]!;
  const out = Buffer.from(base);
  switch (kind) {
    case 'flip': {
      for (let k = 1 + rng.int(8); k > 0; k--) {
        const p = rng.int(out.length);
        out[p] = out[p]! ^ (1 << rng.int(8));
      }
      return { bytes: out, kind };
    }
    case 'truncate':
      return { bytes: out.subarray(0, rng.int(out.length)), kind };
    case 'overwrite': {
      const p = rng.int(out.length);
      const end = Math.min(out.length, p + 1 + rng.int(32));
      for (let i = p; i < end; i++) out[i] = rng.int(256);
      return { bytes: out, kind };
    }
    case 'duplicate': {
      const p = rng.int(out.length);
      const piece = out.subarray(p, Math.min(out.length, p + 1 + rng.int(64)));
      const at = rng.int(out.length + 1);
      return { bytes: Buffer.concat([out.subarray(0, at), piece, out.subarray(at)]), kind };
    }
  }
}

interface Stats {
  cases: number;
  valid: number;
  errors: number;
  byKind: Record<Kind, { valid: number; errors: number }>;
  messages: Map<string, number>;
  maxMs: number;
  slowest: string;
  offending?: string;
}

function newStats(): Stats {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, { valid: 0, errors: 0 }])) as Stats['byKind'];
  return { cases: 0, valid: 0, errors: 0, byKind, messages: new Map(), maxMs: 0, slowest: '' };
}

/** Runs one mutated file through loadModel (and a save of what loads); records the outcome. */
function runCase(stats: Stats, label: string, file: string, bytes: Uint8Array, kind: Kind): void {
  fs.writeFileSync(file, bytes);
  const t0 = performance.now();
  let loaded = false;
  try {
    const model = loadModel(file);
    // A model that loads must also save (encode) without error.
    encodeModel(modelToProto(model));
    loaded = true;
  } catch (err) {
    if (!(err instanceof SngdError)) {
      stats.offending ??= `${label} (${kind}): ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}`;
    } else {
      if (!err.message.includes(file)) stats.offending ??= `${label} (${kind}): message does not name the file: ${err.message}`;
      if (/[\r\n]/.test(err.message)) stats.offending ??= `${label} (${kind}): message spans lines: ${JSON.stringify(err.message)}`;
      // Group messages by shape: strip the file, quoted names and numbers.
      const shape = err.message.replace(file, '<file>').replace(/'[^']*'/g, "'…'").replace(/\d+/g, 'N').slice(0, 100);
      stats.messages.set(shape, (stats.messages.get(shape) ?? 0) + 1);
    }
  }
  const ms = performance.now() - t0;
  if (ms > stats.maxMs) {
    stats.maxMs = ms;
    stats.slowest = `${label} (${kind})`;
  }
  stats.cases++;
  if (loaded) {
    stats.valid++;
    stats.byKind[kind].valid++;
  } else {
    stats.errors++;
    stats.byKind[kind].errors++;
  }
  fs.rmSync(file, { force: true });
}

function report(title: string, stats: Stats, totalMs: number): void {
  const top = [...stats.messages].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log(
    [
      `${title}: ${stats.cases} cases in ${(totalMs / 1000).toFixed(1)} s: ${stats.valid} loaded as models, ${stats.errors} SngdErrors`,
      `  by mutation: ${KINDS.map((k) => `${k} ${stats.byKind[k].valid}/${stats.byKind[k].errors}`).join(', ')} (valid/errors)`,
      `  slowest case: ${stats.maxMs.toFixed(1)} ms (${stats.slowest})`,
      '  most frequent errors:',
      ...top.map(([m, n]) => `    ${String(n).padStart(4)}  ${m}`),
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------------

describe('fuzzing loadModel', () => {
  it(`${CASES} mutated models load or fail with an SngdError`, { timeout: Math.max(120_000, CASES * 50) }, () => {
    writeWeights(dir);
    const bases: [string, Uint8Array][] = [
      ['mlp', encodeModel(modelToProto(mlp()))],
      ['conv', encodeModel(modelToProto(conv()))],
      ['rich', encodeModel(rich())],
      ['external', encodeModel(external())],
    ];
    // Every base model is valid to begin with.
    for (const [name, bytes] of bases) {
      const f = path.join(dir, `${name}.onnx`);
      fs.writeFileSync(f, bytes);
      expect(() => loadModel(f), name).not.toThrow();
    }
    const stats = newStats();
    const t0 = performance.now();
    for (let i = 0; i < CASES; i++) {
      const seed = FIRST_SEED + i;
      const [name, base] = bases[i % bases.length]!;
      const { bytes, kind } = mutate(base, seed);
      runCase(stats, `seed ${seed} of '${name}'`, path.join(dir, `case-${seed}.onnx`), bytes, kind);
      if (stats.offending) break;
    }
    const total = performance.now() - t0;
    report('fuzz', stats, total);
    expect(stats.offending, stats.offending).toBeUndefined();
    expect(stats.cases).toBe(CASES);
    expect(stats.maxMs).toBeLessThan(MAX_CASE_MS);
    if (CASES <= 1000) expect(total).toBeLessThan(60_000);
    // The mutations do reach past the protobuf decoder: both outcomes occur.
    expect(stats.valid).toBeGreaterThan(0);
    expect(stats.errors).toBeGreaterThan(CASES / 2);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('case-'))).toEqual([]);
  });

  it('shared corpus models, mutated', { timeout: 120_000 }, (ctx) => {
    if (!corpusAvailable()) {
      ctx.skip(CORPUS_SKIP_MESSAGE);
      return;
    }
    const PER_MODEL = 10;
    const BUDGET_MS = 45_000;
    const MAX_BYTES = 64 * 2 ** 20;
    const stats = newStats();
    const t0 = performance.now();
    let skipped = 0;
    for (const [m, file] of corpusModels().entries()) {
      const size = fs.statSync(file).size;
      if (size > MAX_BYTES || performance.now() - t0 > BUDGET_MS) {
        skipped++;
        continue;
      }
      const base = fs.readFileSync(file);
      // Mutated copies live in the temp folder: external data beside the original is not found
      // there, which is one more error path (an SngdError like any other).
      for (let k = 0; k < PER_MODEL; k++) {
        const seed = 100_000 + m * PER_MODEL + k;
        const { bytes, kind } = mutate(base, seed);
        runCase(stats, `seed ${seed} of ${file}`, path.join(dir, `corpus-${seed}.onnx`), bytes, kind);
        if (stats.offending) break;
      }
      if (stats.offending) break;
    }
    report(`corpus (${skipped} models over ${MAX_BYTES >> 20} MiB or past the time budget skipped)`, stats, performance.now() - t0);
    expect(stats.offending, stats.offending).toBeUndefined();
    expect(stats.maxMs).toBeLessThan(10_000);
  });
});
