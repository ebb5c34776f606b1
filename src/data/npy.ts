/**
 * NumPy .npy files ↔ Tensor (format versions 1.0, 2.0 and 3.0; C order only).
 *
 * Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (uint16 LE in
 * v1, uint32 LE in v2/v3), the header (a Python dict literal, latin-1 in v1/v2, UTF-8 in v3),
 * then the raw little-endian data. Files are untrusted: the header is parsed by a small literal
 * parser (no eval), and the element count it declares is checked against the bytes that follow
 * before anything is allocated.
 *
 * dtypes: <f2 <f4 <f8, |i1 <i2 <i4 <i8, |u1 <u2 <u4 <u8, |b1 (one-byte types may also be
 * written with '<' or '='). Big-endian data, structured dtypes and fortran_order True are refused.
 */
import os from 'node:os';
import { SngdError, errorText } from '../errors.js';
import { readFileChecked, writeFileAtomic } from '../onnx/codec.js';
import { shownName } from '../onnx/proto.js';
import type { DType, Tensor, TensorData } from '../onnx/tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy itself refuses headers past 10,000 bytes by default; this leaves room for odd writers. */
const MAX_HEADER = 1 << 20;
/** numpy 2 allows 64 dimensions. */
const MAX_NDIM = 64;

interface NpyType { dtype: DType; bytes: number; make: (buf: ArrayBuffer, n: number) => TensorData }
const TYPES: Record<string, NpyType> = {
  f2: { dtype: 'float16', bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  f4: { dtype: 'float32', bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  f8: { dtype: 'float64', bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  i1: { dtype: 'int8', bytes: 1, make: (b, n) => new Int8Array(b, 0, n) },
  i2: { dtype: 'int16', bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  i4: { dtype: 'int32', bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  i8: { dtype: 'int64', bytes: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  u1: { dtype: 'uint8', bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  u2: { dtype: 'uint16', bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  u4: { dtype: 'uint32', bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
  u8: { dtype: 'uint64', bytes: 8, make: (b, n) => new BigUint64Array(b, 0, n) },
  b1: { dtype: 'bool', bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
};
const DESCR: Partial<Record<DType, string>> = {
  float16: '<f2', float32: '<f4', float64: '<f8', int8: '|i1', int16: '<i2', int32: '<i4', int64: '<i8',
  uint8: '|u1', uint16: '<u2', uint32: '<u4', uint64: '<u8', bool: '|b1',
};

function assertLittleEndianHost(): void {
  if (os.endianness() !== 'LE') throw new SngdError('.npy support needs a little-endian machine');
}

/** Decodes .npy bytes; `source` names the file (or archive entry) in errors. */
export function decodeNpy(bytes: Uint8Array, source: string): Tensor {
  assertLittleEndianHost();
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new SngdError(`${source}: not a .npy file (it does not start with \\x93NUMPY)`);
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) throw new SngdError(`${source}: unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are read)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) throw new SngdError(`${source}: the file ends inside the .npy preamble`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER) throw new SngdError(`${source}: header length ${headerLength} is implausibly large`);
  if (prefix + headerLength > bytes.length) {
    throw new SngdError(`${source}: the header claims ${headerLength} bytes but the file ends after ${bytes.length - prefix}`);
  }
  const headerBytes = bytes.subarray(prefix, prefix + headerLength);
  const text = major === 3 ? new TextDecoder('utf-8', { fatal: false }).decode(headerBytes) : Buffer.from(headerBytes).toString('latin1');
  const header = parseHeader(text, source);

  const n = elementCountChecked(header.shape, source);
  const dataStart = prefix + headerLength;
  const present = bytes.length - dataStart;
  const need = n * header.type.bytes;
  if (present < need) {
    throw new SngdError(`${source}: shape ${shapeText(header.shape)} of ${header.descr} needs ${need} data bytes but only ${present} follow the header (truncated file?)`);
  }
  if (present > need) throw new SngdError(`${source}: ${present - need} unexpected bytes after the ${need} data bytes that shape ${shapeText(header.shape)} of ${header.descr} needs`);
  let buf: ArrayBuffer;
  try {
    buf = new ArrayBuffer(need);
  } catch {
    throw new SngdError(`${source}: ${need} bytes of data is more than this process can hold`);
  }
  // Copy into an aligned buffer: the data may start at any offset of the file's buffer.
  new Uint8Array(buf).set(bytes.subarray(dataStart, dataStart + need));
  return { dtype: header.type.dtype, dims: header.shape, data: header.type.make(buf, n) };
}

export function readNpy(file: string): Tensor {
  return decodeNpy(readFileChecked(file, '.npy'), file);
}

/** Encodes a tensor as .npy bytes (format 1.0: at most 64 dims always fit its 64 KiB header). */
export function encodeNpy(t: Tensor, name = 'tensor'): Uint8Array {
  assertLittleEndianHost();
  const descr = DESCR[t.dtype];
  if (!descr) throw new SngdError(`${name}: a ${t.dtype} tensor has no .npy equivalent`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.dims.length > MAX_NDIM) throw new SngdError(`${name}: ${t.dims.length} dims; .npy readers take at most ${MAX_NDIM}`);
  if (t.data.length !== n) throw new SngdError(`${name}: dims ${shapeText(t.dims)} declare ${n} elements but the data holds ${t.data.length}`);
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText(t.dims)}, }`;
  // numpy pads so that the data starts on a 64-byte boundary; the header ends with '\n'.
  const prefix = 10;
  const total = padTo64(prefix + dict.length + 1);
  const headerLength = total - prefix;
  const header = dict + ' '.repeat(headerLength - dict.length - 1) + '\n';
  const view = t.data as Exclude<TensorData, string[]>;
  const out = new Uint8Array(total + view.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerLength, true);
  out.set(Buffer.from(header, 'latin1'), prefix);
  out.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), total);
  return out;
}

export function writeNpy(file: string, t: Tensor): void {
  writeFileAtomic(file, encodeNpy(t, file));
}

function padTo64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

function shapeText(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

function elementCountChecked(shape: number[], source: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new SngdError(`${source}: invalid dimension ${d} in shape ${shapeText(shape)}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new SngdError(`${source}: shape ${shapeText(shape)} declares an impossible element count`);
  return n;
}

interface Header { descr: string; type: NpyType; shape: number[] }

function parseHeader(text: string, source: string): Header {
  let dict: Map<string, PyValue>;
  try {
    dict = new LiteralParser(text).parseHeaderDict();
  } catch (err) {
    throw new SngdError(`${source}: unreadable .npy header (${errorText(err)})`);
  }
  for (const key of dict.keys()) {
    if (key !== 'descr' && key !== 'fortran_order' && key !== 'shape') throw new SngdError(`${source}: unexpected key '${shownName(key)}' in the .npy header`);
  }
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw new SngdError(`${source}: the .npy header lacks ${['descr', 'fortran_order', 'shape'].filter((k) => !dict.has(k)).join(', ')}`);
  }
  if (typeof descr !== 'string') throw new SngdError(`${source}: structured dtypes are not supported (descr is not a simple type string)`);
  if (typeof fortran !== 'boolean') throw new SngdError(`${source}: fortran_order must be True or False`);
  if (fortran) throw new SngdError(`${source}: fortran_order True (column-major data) is not supported; save a C-ordered array (np.ascontiguousarray)`);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) throw new SngdError(`${source}: shape must be a tuple of integers`);
  if (shape.length > MAX_NDIM) throw new SngdError(`${source}: shape has ${shape.length} dimensions, more than ${MAX_NDIM}`);
  return { descr, type: typeOf(descr, source), shape: shape as number[] };
}

function typeOf(descr: string, source: string): NpyType {
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  const type = m ? TYPES[`${m[2]}${m[3]}`] : undefined;
  if (!m || !type) throw new SngdError(`${source}: unsupported dtype '${shownName(descr)}' (supported: ${Object.keys(TYPES).join(', ')}, little-endian)`);
  const order = m[1]!;
  if (order === '>' && type.bytes > 1) throw new SngdError(`${source}: big-endian data ('${descr}') is not supported; save it with arr.astype('<${m[2]}${m[3]}')`);
  if (order === '|' && type.bytes > 1) throw new SngdError(`${source}: dtype '${descr}' has no byte order`);
  return type;
}

type PyValue = string | number | boolean | PyValue[] | Map<string, PyValue>;

/** Parses the Python literal subset numpy writes: a dict of strings, bools and int tuples. */
class LiteralParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  parseHeaderDict(): Map<string, PyValue> {
    this.space();
    const v = this.value(0);
    this.space();
    if (this.pos !== this.s.length) throw new Error(`unexpected '${shownName(this.s.slice(this.pos, this.pos + 10))}' after the dict`);
    if (!(v instanceof Map)) throw new Error('the header is not a dict');
    return v;
  }

  private value(depth: number): PyValue {
    if (depth > 8) throw new Error('nested too deeply');
    this.space();
    const c = this.s[this.pos];
    if (c === '{') return this.dict(depth);
    if (c === '(' || c === '[') return this.sequence(c === '(' ? ')' : ']', depth);
    if (c === "'" || c === '"') return this.string();
    for (const [word, value] of [['True', true], ['False', false]] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    const m = /^-?\d+L?/.exec(this.s.slice(this.pos, this.pos + 40));
    if (m) {
      this.pos += m[0].length;
      const digits = m[0].replace('L', '');
      if (digits.replace('-', '').length > 16) throw new Error(`integer ${digits} is too large`);
      return Number(digits);
    }
    throw new Error(c === undefined ? 'the header ends early' : `unexpected '${shownName(c)}' at ${this.pos}`);
  }

  private dict(depth: number): Map<string, PyValue> {
    this.pos++; // {
    const out = new Map<string, PyValue>();
    for (;;) {
      this.space();
      if (this.s[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const key = this.value(depth + 1);
      if (typeof key !== 'string') throw new Error('a dict key is not a string');
      this.space();
      if (this.s[this.pos] !== ':') throw new Error(`expected ':' after '${shownName(key)}'`);
      this.pos++;
      if (out.has(key)) throw new Error(`key '${shownName(key)}' appears twice`);
      out.set(key, this.value(depth + 1));
      if (!this.separator('}')) throw new Error("expected ',' or '}' in the dict");
    }
  }

  private sequence(close: string, depth: number): PyValue[] {
    this.pos++; // ( or [
    const out: PyValue[] = [];
    for (;;) {
      this.space();
      if (this.s[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value(depth + 1));
      if (out.length > MAX_NDIM + 1) throw new Error('sequence too long');
      if (!this.separator(close)) throw new Error(`expected ',' or '${close}'`);
    }
  }

  /** After an item: a comma (consumed), or the closing bracket (left for the caller). */
  private separator(close: string): boolean {
    this.space();
    if (this.s[this.pos] === ',') {
      this.pos++;
      return true;
    }
    return this.s[this.pos] === close;
  }

  private string(): string {
    const quote = this.s[this.pos]!;
    const end = this.s.indexOf(quote, this.pos + 1);
    if (end < 0) throw new Error('unterminated string');
    const text = this.s.slice(this.pos + 1, end);
    if (text.includes('\\')) throw new Error('escapes in strings are not supported');
    this.pos = end + 1;
    return text;
  }

  private space(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
  }
}
