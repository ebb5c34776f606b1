/**
 * Training checkpoints: one self-checking file per save, written atomically, so training never
 * loses a checkpoint it wrote.
 *
 * File layout (`checkpoint-<step, 9 digits>.sngdckpt`, all integers little-endian):
 *
 *   "SNGDCKPT"  u32 version  u32 headerBytes  header JSON (utf-8)  zero pad to 8
 *   tensor data, each tensor at an 8-byte-aligned offset from the start of the data section
 *   SHA-256 of every byte before it (32 bytes)
 *
 * The header is `{ meta, dataBytes, tensors: [{ name, dtype, dims, offset, length }] }`, with
 * `offset` and `length` in bytes relative to the data section. `dataBytes` pins the file size, so
 * a truncated copy is told apart from a corrupt one before the checksum is even computed.
 *
 * A save writes a temp file beside the target, fsyncs it, renames it into place and fsyncs the
 * folder; only then are older checkpoints beyond `keep` deleted. A reader checks the header and
 * every tensor's bounds against the file size before allocating anything, then the checksum.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SngdError, errorText } from '../src/errors.js';
import { writeFileAtomic } from '../src/onnx/codec.js';

export type CheckpointTensor = Float32Array | Float64Array | BigInt64Array;

export interface Checkpoint {
  /** JSON-serialisable: step (required, a non-negative integer), epoch, options, RNG state… */
  meta: Record<string, unknown>;
  tensors: Record<string, CheckpointTensor>;
}

export interface SaveOptions {
  /** How many checkpoints to keep, the new one included. Defaults to 2. */
  keep?: number;
}

export const CHECKPOINT_VERSION = 1;
const MAGIC = Buffer.from('SNGDCKPT', 'ascii');
const PREFIX_BYTES = 16; // magic, version, header length
const DIGEST_BYTES = 32; // SHA-256
// A header is a few KiB (meta plus one row per tensor); anything huge is corruption, not data.
const MAX_HEADER_BYTES = 64 * 2 ** 20;
const FILE_PATTERN = /^checkpoint-(\d{9,})\.sngdckpt$/;
const TEMP_PATTERN = /^\.checkpoint-\d{9,}\.sngdckpt\.(\d+)\.[0-9a-f]+\.tmp$/;

const DTYPES = {
  float32: { bytes: 4, make: (b: ArrayBuffer, o: number, n: number) => new Float32Array(b, o, n) },
  float64: { bytes: 8, make: (b: ArrayBuffer, o: number, n: number) => new Float64Array(b, o, n) },
  int64: { bytes: 8, make: (b: ArrayBuffer, o: number, n: number) => new BigInt64Array(b, o, n) },
} as const;
type DTypeName = keyof typeof DTYPES;

interface TensorEntry {
  name: string;
  dtype: DTypeName;
  dims: number[];
  offset: number;
  length: number;
}

interface Header {
  meta: Record<string, unknown>;
  dataBytes: number;
  tensors: TensorEntry[];
}

/** `dir/checkpoint-000000042.sngdckpt` for step 42. */
export function checkpointPath(dir: string, step: number): string {
  return path.join(dir, `checkpoint-${String(step).padStart(9, '0')}.sngdckpt`);
}

/** The checkpoint files in `dir` (not validated), oldest step first; [] when `dir` does not exist. */
export function listCheckpoints(dir: string): { file: string; step: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SngdError(`${dir}: could not list checkpoints (${errorText(err)})`);
  }
  const found: { file: string; step: number }[] = [];
  for (const name of names) {
    const m = FILE_PATTERN.exec(name);
    if (m) found.push({ file: path.join(dir, name), step: Number(m[1]) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/**
 * Writes `ckpt` as `dir/checkpoint-<step>.sngdckpt` and returns that path. Once it is safely in
 * place, deletes older checkpoints so that `keep` remain; it never deletes the file just written
 * nor any checkpoint of a later step (those belong to a run this one may have resumed past).
 */
export function saveCheckpoint(dir: string, ckpt: Checkpoint, opts: SaveOptions = {}): string {
  const keep = opts.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) throw new SngdError(`checkpoint keep must be an integer ≥ 1, got ${keep}`);
  const step = ckpt.meta.step;
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    throw new SngdError(`checkpoint meta.step must be a non-negative integer, got ${JSON.stringify(step)}`);
  }
  const file = checkpointPath(dir, step);
  const pieces = encodeCheckpoint(ckpt, file);
  writePiecesAtomic(file, pieces);
  pruneCheckpoints(dir, step, keep);
  return file;
}

/** Reads and fully validates a checkpoint; any problem is an SngdError naming the file. */
export function loadCheckpoint(file: string): Checkpoint {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SngdError(code === 'ENOENT' ? `${file}: checkpoint file not found` : `${file}: could not open the checkpoint (${errorText(err)})`);
  }
  try {
    return readCheckpoint(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}

export interface LatestCheckpoint {
  /** The newest checkpoint that validates, with its contents; undefined when there is none. */
  file?: string;
  checkpoint?: Checkpoint;
  /** Newer checkpoints that failed validation, newest first, with the reason. */
  skipped: { file: string; reason: string }[];
}

/**
 * Finds the newest checkpoint in `dir` that validates, falling back past corrupt ones (say, one
 * truncated by a crash during a copy). Returns the loaded checkpoint too, so resuming reads the
 * file once.
 */
export function findLatestCheckpoint(dir: string): LatestCheckpoint {
  const skipped: { file: string; reason: string }[] = [];
  for (const { file } of listCheckpoints(dir).reverse()) {
    try {
      return { file, checkpoint: loadCheckpoint(file), skipped };
    } catch (err) {
      if (!(err instanceof SngdError)) throw err;
      skipped.push({ file, reason: err.message });
    }
  }
  return { skipped };
}

/**
 * The path of the newest valid checkpoint in `dir`, or undefined (also when `dir` does not exist).
 * Each corrupt newer checkpoint passed over is reported through `onWarning` (stderr by default).
 */
export function latestCheckpoint(dir: string, onWarning: (message: string) => void = warnToStderr): string | undefined {
  const found = findLatestCheckpoint(dir);
  for (const s of found.skipped) {
    onWarning(`${s.reason}; ${found.file ? `falling back to ${path.basename(found.file)}` : 'no older checkpoint to fall back to'}`);
  }
  return found.file;
}

function warnToStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

// ---------------------------------------------------------------- encoding

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function dtypeOf(t: unknown): DTypeName | undefined {
  if (t instanceof Float32Array) return 'float32';
  if (t instanceof Float64Array) return 'float64';
  if (t instanceof BigInt64Array) return 'int64';
  return undefined;
}

function assertLittleEndian(file: string): void {
  // The format is little-endian and tensors are copied as raw bytes.
  if (os.endianness() !== 'LE') throw new SngdError(`${file}: checkpoints need a little-endian machine`);
}

/** The file's bytes as a list of pieces (header, tensor views, padding, digest): tensors are not copied. */
function encodeCheckpoint(ckpt: Checkpoint, file: string): Uint8Array[] {
  assertLittleEndian(file);
  const entries: TensorEntry[] = [];
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(ckpt.tensors)) {
    const dtype = dtypeOf(t);
    if (!dtype) throw new SngdError(`${file}: tensor '${name}' must be a Float32Array, Float64Array or BigInt64Array`);
    entries.push({ name, dtype, dims: [t.length], offset, length: t.byteLength });
    data.push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    const padded = align8(offset + t.byteLength);
    if (padded > offset + t.byteLength) data.push(new Uint8Array(padded - offset - t.byteLength));
    offset = padded;
  }
  let json: string | undefined;
  try {
    json = JSON.stringify({ meta: ckpt.meta, dataBytes: offset, tensors: entries } satisfies Header);
  } catch (err) {
    throw new SngdError(`${file}: checkpoint meta is not JSON-serialisable (${errorText(err)}); store bigints as strings`);
  }
  const header = Buffer.from(json, 'utf8');
  if (header.length > MAX_HEADER_BYTES) throw new SngdError(`${file}: checkpoint meta is too large (${header.length} bytes of JSON); keep large state in tensors`);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(CHECKPOINT_VERSION, 8);
  prefix.writeUInt32LE(header.length, 12);
  const headerPad = new Uint8Array(align8(PREFIX_BYTES + header.length) - PREFIX_BYTES - header.length);
  const pieces = [prefix, header, headerPad, ...data];
  const hash = createHash('sha256');
  for (const p of pieces) hash.update(p);
  pieces.push(hash.digest());
  return pieces;
}

/** Atomic write of the pieces (codec's writeFileAtomic), with a checkpoint-specific message. */
function writePiecesAtomic(file: string, pieces: Uint8Array[]): void {
  try {
    writeFileAtomic(file, pieces);
  } catch (err) {
    throw new SngdError(`${file}: could not write the checkpoint (${errorText(err)}); earlier checkpoints are untouched`);
  }
}

/** Deletes checkpoints older than `step` beyond keep−1, and temp files left by dead processes. */
function pruneCheckpoints(dir: string, step: number, keep: number): void {
  const older = listCheckpoints(dir).filter((c) => c.step < step);
  for (const { file } of older.slice(0, Math.max(0, older.length - (keep - 1)))) removeQuietly(file);
  for (const name of fs.readdirSync(dir)) {
    const m = TEMP_PATTERN.exec(name);
    if (m && !processAlive(Number(m[1]))) removeQuietly(path.join(dir, name));
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // A checkpoint we fail to delete costs disk space, not correctness; the next save retries.
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true; // a save of ours in progress (another thread) or just failed
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------- decoding

function readExactly(fd: number, into: Uint8Array, position: number, file: string): void {
  for (let done = 0; done < into.length; ) {
    // Chunks of ≤ 1 GiB: a single read is capped near 2 GiB.
    const n = fs.readSync(fd, into, done, Math.min(into.length - done, 2 ** 30), position + done);
    if (n === 0) throw new SngdError(`${file}: the checkpoint ends early; it is truncated`);
    done += n;
  }
}

function readCheckpoint(fd: number, file: string): Checkpoint {
  assertLittleEndian(file);
  const size = fs.fstatSync(fd).size;
  const bad = (what: string) => new SngdError(`${file}: ${what}`);
  if (size < PREFIX_BYTES + DIGEST_BYTES) {
    throw bad(`only ${size} bytes: not a checkpoint, or one truncated (e.g. by a crash during a copy); resume from an earlier one`);
  }
  const prefix = Buffer.alloc(PREFIX_BYTES);
  readExactly(fd, prefix, 0, file);
  if (!prefix.subarray(0, 8).equals(MAGIC)) throw bad('not an sngd checkpoint (bad magic bytes)');
  const version = prefix.readUInt32LE(8);
  if (version !== CHECKPOINT_VERSION) throw bad(`checkpoint format version ${version}; this sngd reads version ${CHECKPOINT_VERSION}: use a matching sngd`);
  const headerBytes = prefix.readUInt32LE(12);
  if (headerBytes > MAX_HEADER_BYTES || PREFIX_BYTES + headerBytes + DIGEST_BYTES > size) {
    throw bad(`header length ${headerBytes} runs past the end of the ${size}-byte file; the checkpoint is corrupt or truncated`);
  }
  const headerBuf = Buffer.alloc(headerBytes);
  readExactly(fd, headerBuf, PREFIX_BYTES, file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerBuf.toString('utf8'));
  } catch {
    throw bad('the checkpoint header is not valid JSON; the file is corrupt');
  }
  const dataStart = align8(PREFIX_BYTES + headerBytes);
  const header = validateHeader(parsed, bad);
  const expected = dataStart + header.dataBytes + DIGEST_BYTES;
  if (size !== expected) {
    throw bad(size < expected
      ? `the file is ${size} bytes but its header describes ${expected}; it is truncated (e.g. by a crash during a copy)`
      : `the file is ${size} bytes but its header describes ${expected}; it has trailing bytes and is corrupt`);
  }

  // Bounds are known good: now allocate. One ArrayBuffer for all tensors; offsets are 8-aligned in
  // it, so every tensor is a zero-copy typed-array view.
  const hash = createHash('sha256');
  hash.update(prefix).update(headerBuf);
  const between = new Uint8Array(dataStart - PREFIX_BYTES - headerBytes);
  readExactly(fd, between, PREFIX_BYTES + headerBytes, file);
  hash.update(between);
  const data = new ArrayBuffer(header.dataBytes);
  const bytes = new Uint8Array(data);
  readExactly(fd, bytes, dataStart, file);
  hash.update(bytes);
  const digest = Buffer.alloc(DIGEST_BYTES);
  readExactly(fd, digest, size - DIGEST_BYTES, file);
  if (!hash.digest().equals(digest)) throw bad('checksum mismatch: the checkpoint is corrupt; resume from an earlier one');

  const tensors: Record<string, CheckpointTensor> = {};
  for (const t of header.tensors) tensors[t.name] = DTYPES[t.dtype].make(data, t.offset, t.length / DTYPES[t.dtype].bytes);
  return { meta: header.meta, tensors };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Checks the table against itself and the dtypes; the caller checks `dataBytes` against the file size. */
function validateHeader(h: unknown, bad: (what: string) => SngdError): Header {
  if (!isPlainObject(h) || !isPlainObject(h.meta) || !Array.isArray(h.tensors) || !isCount(h.dataBytes)) {
    throw bad('the checkpoint header lacks meta, tensors or dataBytes; the file is corrupt');
  }
  const seen = new Set<string>();
  const spans: [number, number, string][] = [];
  for (const [i, t] of h.tensors.entries()) {
    if (!isPlainObject(t) || typeof t.name !== 'string') throw bad(`tensor #${i} in the header has no name; the file is corrupt`);
    const where = `tensor '${t.name}'`;
    if (seen.has(t.name)) throw bad(`${where} appears twice in the header; the file is corrupt`);
    seen.add(t.name);
    if (typeof t.dtype !== 'string' || !Object.hasOwn(DTYPES, t.dtype)) throw bad(`${where} has unknown dtype ${JSON.stringify(t.dtype)}`);
    const dtype = t.dtype as DTypeName;
    if (!Array.isArray(t.dims) || !t.dims.every(isCount)) throw bad(`${where} has invalid dims ${JSON.stringify(t.dims)}`);
    if (!isCount(t.offset) || !isCount(t.length)) throw bad(`${where} has an invalid offset or length`);
    const elements = (t.dims as number[]).reduce((a, b) => a * b, 1);
    if (t.length !== elements * DTYPES[dtype].bytes) throw bad(`${where}: ${t.length} bytes do not hold dims [${t.dims.join(', ')}] of ${dtype}`);
    if (t.offset % 8 !== 0) throw bad(`${where}: offset ${t.offset} is not 8-byte aligned`);
    if (t.offset + t.length > h.dataBytes) throw bad(`${where}: bytes ${t.offset}..${t.offset + t.length} lie outside the ${h.dataBytes}-byte data section`);
    spans.push([t.offset, t.offset + t.length, t.name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) throw bad(`tensors '${spans[i - 1]![2]}' and '${spans[i]![2]}' overlap; the file is corrupt`);
  }
  return h as unknown as Header;
}
