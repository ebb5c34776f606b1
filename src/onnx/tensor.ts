/**
 * TensorProto ↔ Tensor (a dtype, dims and a typed array).
 *
 * Model files are untrusted: every declared size is checked against the bytes actually present
 * before anything is allocated, and external-data locations must resolve inside the model's
 * folder (no `..`, no absolute paths, no symlink escapes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { SngdError } from '../errors.js';
import { int64ToNumber, shownDims, shownName, type TensorProto } from './proto.js';

/** TensorProto.DataType values the project reads and writes. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;
export type DType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'float16' | 'bfloat16' | 'string';

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | string[];

/** An in-memory tensor. float16/bfloat16 are kept as raw Uint16 bit patterns. */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

interface DTypeInfo { code: number; bytes: number; make: (buf: ArrayBuffer, n: number) => TensorData }
const DTYPES: Record<DType, DTypeInfo> = {
  float32: { code: 1, bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  uint8: { code: 2, bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  int8: { code: 3, bytes: 1, make: (b, n) => new Int8Array(b, 0, n) },
  uint16: { code: 4, bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  int16: { code: 5, bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  int32: { code: 6, bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  int64: { code: 7, bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  string: { code: 8, bytes: 0, make: () => [] },
  bool: { code: 9, bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  float16: { code: 10, bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  float64: { code: 11, bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  uint32: { code: 12, bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
  uint64: { code: 13, bytes: 8, make: (b, n) => new BigUint64Array(b, 0, n) },
  bfloat16: { code: 16, bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
};
const BY_CODE = new Map<number, DType>(Object.entries(DTYPES).map(([k, v]) => [v.code, k as DType]));

export function dtypeFromCode(code: number): DType | undefined {
  return BY_CODE.get(code);
}
export function dtypeCode(dtype: DType): number {
  return DTYPES[dtype].code;
}
export function dtypeBytes(dtype: DType): number {
  return DTYPES[dtype].bytes;
}

/** Largest element count we agree to allocate for one tensor (4 GiB of float32). */
const MAX_ELEMENTS = 2 ** 30;

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Where to look for external data and how to name the tensor in errors. */
export interface TensorContext { source: string; modelDir?: string }

/** Decodes a TensorProto. Throws SngdError naming the tensor and the file on any inconsistency. */
export function tensorFromProto(proto: TensorProto, ctx: TensorContext): Tensor {
  const where = `${ctx.source}: tensor '${proto.name ? shownName(proto.name) : '(unnamed)'}'`;
  const dtype = dtypeFromCode(proto.dataType ?? 0);
  if (!dtype) throw new SngdError(`${where}: unsupported data_type ${proto.dataType ?? 0}`);
  const dims = (proto.dims ?? []).map(int64ToNumber);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new SngdError(`${where}: invalid dimension ${d} in dims ${shownDims(dims)}`);
  }
  const n = elementCount(dims);
  if (!Number.isSafeInteger(n) || n > MAX_ELEMENTS) throw new SngdError(`${where}: dims ${shownDims(dims)} declare ${n} elements, more than the ${MAX_ELEMENTS} this tool accepts`);

  if (dtype === 'string') {
    const strings = (proto.stringData ?? []).map((b) => Buffer.from(b).toString('utf8'));
    if (strings.length !== n) throw new SngdError(`${where}: dims declare ${n} strings but ${strings.length} are present`);
    return { dtype, dims, data: strings };
  }

  const info = DTYPES[dtype];
  const byteLength = n * info.bytes;
  const location = proto.dataLocation ?? 0;
  if (location !== 0 && location !== 1) throw new SngdError(`${where}: unknown data_location ${location} (0 = DEFAULT, 1 = EXTERNAL)`);
  if (location === 1 || (proto.externalData?.length ?? 0) > 0) {
    const bytes = readExternalData(proto, ctx, where, byteLength);
    return { dtype, dims, data: info.make(bytes.buffer as ArrayBuffer, n) };
  }
  if (proto.rawData && proto.rawData.length > 0) {
    if (proto.rawData.length !== byteLength) {
      throw new SngdError(`${where}: dims ${shownDims(dims)} of ${dtype} need ${byteLength} bytes but raw_data holds ${proto.rawData.length}`);
    }
    return { dtype, dims, data: copyBytes(proto.rawData, dtype, n) };
  }
  return { dtype, dims, data: fromTypedFields(proto, dtype, n, where) };
}

function copyBytes(bytes: Uint8Array, dtype: DType, n: number): TensorData {
  const info = DTYPES[dtype];
  // Copy into a fresh, aligned buffer: protobuf slices may start at any byte offset.
  const buf = new ArrayBuffer(n * info.bytes);
  new Uint8Array(buf).set(bytes.subarray(0, n * info.bytes));
  return info.make(buf, n);
}

function fromTypedFields(proto: TensorProto, dtype: DType, n: number, where: string): TensorData {
  const check = (len: number, field: string): void => {
    if (len !== n) throw new SngdError(`${where}: dims declare ${n} elements but ${field} holds ${len}`);
  };
  switch (dtype) {
    case 'float32': {
      const v = proto.floatData ?? [];
      check(v.length, 'float_data');
      return Float32Array.from(v);
    }
    case 'float64': {
      const v = proto.doubleData ?? [];
      check(v.length, 'double_data');
      return Float64Array.from(v);
    }
    case 'int64': {
      const v = proto.int64Data ?? [];
      check(v.length, 'int64_data');
      return BigInt64Array.from(v, (x) => BigInt(typeof x === 'number' ? x : x.toString()));
    }
    case 'uint32':
    case 'uint64': {
      const v = proto.uint64Data ?? [];
      check(v.length, 'uint64_data');
      if (dtype === 'uint32') return Uint32Array.from(v, (x) => int64ToNumber(x));
      return BigUint64Array.from(v, (x) => BigInt.asUintN(64, BigInt(typeof x === 'number' ? x : x.toString())));
    }
    default: {
      // int32_data carries int32, int16, int8, uint16, uint8, bool and the 16-bit float bit patterns.
      const v = proto.int32Data ?? [];
      check(v.length, 'int32_data');
      const info = DTYPES[dtype];
      const out = info.make(new ArrayBuffer(n * info.bytes), n) as Int32Array;
      for (let i = 0; i < n; i++) out[i] = v[i]!;
      return out;
    }
  }
}

function externalField(proto: TensorProto, key: string): string | undefined {
  return proto.externalData?.find((e) => e.key === key)?.value;
}

function readExternalData(proto: TensorProto, ctx: TensorContext, where: string, byteLength: number): Uint8Array {
  const location = externalField(proto, 'location');
  if (!location) throw new SngdError(`${where}: external data without a 'location'`);
  const shown = shownName(location);
  if (!ctx.modelDir) throw new SngdError(`${where}: external data '${shown}' but the model was not loaded from a file`);
  const file = resolveInside(ctx.modelDir, location, where);
  const offset = externalInteger(proto, 'offset', 0, where);
  const length = externalInteger(proto, 'length', byteLength, where);
  if (length !== byteLength) throw new SngdError(`${where}: external-data length ${length} does not match the ${byteLength} bytes its dims and type need`);
  const size = fs.statSync(file).size;
  if (offset + length > size) {
    throw new SngdError(`${where}: external data needs bytes ${offset}..${offset + length} of '${shown}', which holds only ${size} bytes`);
  }
  // A fresh, aligned buffer that becomes the tensor's storage (no second copy).
  let out: Uint8Array;
  try {
    out = new Uint8Array(new ArrayBuffer(length));
  } catch {
    throw new SngdError(`${where}: ${length} bytes of external data is more than this process can hold`);
  }
  let read = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      // readSync may return fewer bytes than asked (large reads, a file that shrank): loop.
      while (read < length) {
        const got = fs.readSync(fd, out, read, Math.min(length - read, 2 ** 30), offset + read);
        if (got === 0) break;
        read += got;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new SngdError(`${where}: could not read external-data file '${shown}' (${(err as Error).message})`);
  }
  if (read !== length) throw new SngdError(`${where}: external-data file '${shown}' ended after ${offset + read} bytes; ${offset + length} needed`);
  return out;
}

/** An external-data `offset`/`length` entry: a non-negative decimal integer (absent → `fallback`). */
function externalInteger(proto: TensorProto, key: 'offset' | 'length', fallback: number, where: string): number {
  const text = externalField(proto, key);
  if (text === undefined) return fallback;
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw new SngdError(`${where}: invalid external-data ${key} '${shownName(text)}' (expected a non-negative integer)`);
  return value;
}

/** Resolves an external-data location, refusing anything that leaves the model's folder. */
export function resolveInside(modelDir: string, location: string, where: string): string {
  const shown = shownName(location);
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || location.includes('\0')) {
    throw new SngdError(`${where}: external-data location '${shown}' must be a relative path inside the model's folder`);
  }
  let root: string;
  try {
    root = fs.realpathSync(modelDir);
  } catch {
    throw new SngdError(`${where}: the model's folder '${modelDir}' cannot be read`);
  }
  const candidate = path.resolve(root, location);
  if (!isInside(root, candidate)) {
    throw new SngdError(`${where}: external-data location '${shown}' points outside the model's folder`);
  }
  let real: string;
  try {
    real = fs.realpathSync(candidate);
  } catch {
    throw new SngdError(`${where}: external-data file '${shown}' not found beside the model`);
  }
  if (!isInside(root, real)) throw new SngdError(`${where}: external-data location '${shown}' links outside the model's folder`);
  if (!fs.statSync(real).isFile()) throw new SngdError(`${where}: external-data location '${shown}' is not a file`);
  return real;
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Encodes a tensor as a TensorProto with raw_data (strings use string_data). */
export function tensorToProto(name: string, t: Tensor): TensorProto {
  const proto: TensorProto = { name, dims: [...t.dims], dataType: dtypeCode(t.dtype) };
  if (t.dtype === 'string') {
    proto.stringData = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
  } else {
    const view = t.data as Exclude<TensorData, string[]>;
    proto.rawData = new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  }
  return proto;
}

/** Reads tensor values as JS numbers (int64 via Number); for shape arithmetic and small tensors. */
export function tensorToNumbers(t: Tensor): number[] {
  if (t.dtype === 'string') throw new SngdError('a string tensor has no numeric values');
  const out: number[] = new Array(t.data.length);
  const data = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

export function float32Tensor(dims: number[], data?: ArrayLike<number>): Tensor {
  const n = elementCount(dims);
  const arr = new Float32Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`float32Tensor: ${data.length} values for dims [${dims}]`);
    arr.set(data);
  }
  return { dtype: 'float32', dims, data: arr };
}

export function int64Tensor(dims: number[], values: ArrayLike<number>): Tensor {
  return { dtype: 'int64', dims, data: BigInt64Array.from(Array.from(values), (v) => BigInt(v)) };
}
