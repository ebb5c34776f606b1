/**
 * The shared model corpus (../shared/corpus beside the repository) and the reference data that
 * may come with each model. The corpus is optional: tests call `corpusAvailable()` and skip with
 * CORPUS_SKIP_MESSAGE when it is absent.
 *
 * Reference data, per model file `dir/model.onnx`, from either or both of:
 *  - `dir/test_data_set_0/input_<k>.pb`, `output_<k>.pb`: one serialized TensorProto each (the
 *    ONNX backend-test layout). A tensor is matched by its TensorProto name when that names a
 *    model input/output; an unnamed (or unknown-named) tensor is matched by position k.
 *  - `dir/io.npz`: arrays named after the model's inputs/outputs, or `input_<k>` / `output_<k>`
 *    (0-based positions). A key that is a model input/output name wins over the positional reading
 *    (a model whose input is literally called `input_0` gets it by name). Any other key is an
 *    error: silently ignoring it could make a check pass without comparing anything.
 * Positions count the graph inputs that are not initializers, and the graph outputs, in order.
 * When both sources hold a value, the .pb one is used (it is the ONNX standard layout).
 * Only test_data_set_0 is read; SequenceProto/OptionalProto .pb files are not supported (they
 * fail as unreadable TensorProtos).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeNpz } from '../../src/data/npz.js';
import { SngdError, errorText } from '../../src/errors.js';
import { readFileChecked, readModelFile } from '../../src/onnx/codec.js';
import type { TensorProto } from '../../src/onnx/proto.js';
import { TensorProtoType } from '../../src/onnx/schema.js';
import { tensorFromProto, type Tensor } from '../../src/onnx/tensor.js';

export const CORPUS_SKIP_MESSAGE = 'shared/corpus not found: corpus checks skipped';

/** The repository root: this file lives in <root>/test/helpers/. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of the shared corpus folder (whether or not it exists); SNGD_CORPUS overrides it (local checks). */
export function corpusDir(): string {
  return process.env.SNGD_CORPUS ? path.resolve(process.env.SNGD_CORPUS) : path.resolve(REPO_ROOT, '../shared/corpus');
}

export function corpusAvailable(): boolean {
  try {
    return fs.statSync(corpusDir()).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Every *.onnx file below the corpus folder (or `root`), recursively, as sorted absolute paths;
 * [] when the folder is absent.
 */
export function corpusModels(root = corpusDir()): string[] {
  if (!isDirectory(root)) return [];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      // Follow symlinked files, not symlinked folders (no cycles).
      if (entry.isDirectory()) walk(p);
      else if (entry.name.toLowerCase().endsWith('.onnx') && (entry.isFile() || (entry.isSymbolicLink() && isFile(p)))) out.push(p);
    }
  };
  walk(path.resolve(root));
  return out.sort();
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export interface ReferenceData {
  /** Feeds, by model input name. */
  inputs: Map<string, Tensor>;
  /** Expected results, by model output name. */
  outputs: Map<string, Tensor>;
  /** The files the data came from. */
  sources: string[];
}

/** The model's data inputs (graph inputs that are not initializers) and outputs, in order. */
export function modelSignature(modelPath: string): { inputs: string[]; outputs: string[] } {
  const graph = readModelFile(modelPath).graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  return {
    inputs: (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !inits.has(n)),
    outputs: (graph.output ?? []).map((v) => v.name ?? ''),
  };
}

/** Reference inputs/outputs bundled with a model, or undefined when there are none. */
export function referenceData(modelPath: string): ReferenceData | undefined {
  const dir = path.dirname(path.resolve(modelPath));
  const pbDir = path.join(dir, 'test_data_set_0');
  const npz = path.join(dir, 'io.npz');
  const pbFiles = isDirectory(pbDir) ? fs.readdirSync(pbDir).filter((f) => /^(input|output)_\d+\.pb$/.test(f)) : [];
  const hasNpz = isFile(npz);
  if (pbFiles.length === 0 && !hasNpz) return undefined;

  const sig = modelSignature(modelPath);
  const result: ReferenceData = { inputs: new Map(), outputs: new Map(), sources: [] };
  if (hasNpz) {
    result.sources.push(npz);
    const arrays = decodeNpz(readFileChecked(npz, '.npz'), npz);
    for (const [key, tensor] of arrays) {
      const [role, name] = assign(key, sig, `${npz}: array '${key}'`);
      result[role].set(name, tensor);
    }
  }
  if (pbFiles.length > 0) {
    result.sources.push(pbDir);
    for (const f of pbFiles.sort(byIndex)) {
      const file = path.join(pbDir, f);
      const proto = readTensorProtoFile(file);
      const tensor = tensorFromProto(proto, { source: file, modelDir: pbDir });
      const [role, k] = [f.startsWith('input') ? 'inputs' : 'outputs', Number(/\d+/.exec(f)![0])] as const;
      const names = role === 'inputs' ? sig.inputs : sig.outputs;
      const name = proto.name && names.includes(proto.name) ? proto.name : names[k];
      if (name === undefined) throw new SngdError(`${file}: the model has only ${names.length} ${role}; no ${role.slice(0, -1)} #${k}`);
      result[role].set(name, tensor); // overrides an io.npz value of the same name
    }
  }
  return result;
}

/** Decodes one serialized TensorProto file (such as test_data_set_0/input_0.pb). */
export function readTensorProtoFile(file: string): TensorProto {
  const bytes = readFileChecked(file, 'tensor');
  try {
    return TensorProtoType.decode(bytes) as unknown as TensorProto;
  } catch (err) {
    throw new SngdError(`${file}: not a serialized TensorProto (${errorText(err).split('\n')[0]})`);
  }
}

/** Which model value an io.npz key names: by name first, then input_<k>/output_<k>. */
function assign(key: string, sig: { inputs: string[]; outputs: string[] }, where: string): ['inputs' | 'outputs', string] {
  if (sig.inputs.includes(key)) return ['inputs', key];
  if (sig.outputs.includes(key)) return ['outputs', key];
  const m = /^(input|output)_(\d+)$/.exec(key);
  if (m) {
    const role = m[1] === 'input' ? 'inputs' : 'outputs';
    const names = sig[role];
    const name = names[Number(m[2])];
    if (name === undefined) throw new SngdError(`${where}: the model has only ${names.length} ${role}`);
    return [role, name];
  }
  throw new SngdError(`${where}: names neither a model input/output nor input_<k>/output_<k> (inputs: ${sig.inputs.join(', ')}; outputs: ${sig.outputs.join(', ')})`);
}

function byIndex(a: string, b: string): number {
  return Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]) || a.localeCompare(b);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
