/**
 * ModelProto bytes ↔ plain objects, and model files on disk.
 *
 * Reading is defensive: a model file is untrusted input. Every failure becomes one SngdError
 * line naming the file and what is wrong. Writing is atomic: a temp file in the target folder,
 * then a rename, so a crash never leaves a partial model behind.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SngdError, errorText } from '../errors.js';
import { ModelProtoType } from './schema.js';
import type { ModelProto } from './proto.js';

/** Decodes serialized ModelProto bytes; `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  if (bytes.length === 0) throw new SngdError(`${source}: the file is empty; expected an ONNX model (ModelProto)`);
  let msg: ModelProto;
  try {
    msg = ModelProtoType.decode(bytes) as unknown as ModelProto;
  } catch (err) {
    throw new SngdError(`${source}: not a valid ONNX protobuf (${describeDecodeError(err)}); the file may be truncated or not an ONNX model`);
  }
  if (!msg.graph) throw new SngdError(`${source}: decodes as protobuf but has no graph; it is not an ONNX model`);
  return msg;
}

function describeDecodeError(err: unknown): string {
  const text = errorText(err);
  if (/index out of range/.test(text)) return 'data ends in the middle of a field';
  if (/invalid wire type/.test(text)) return 'invalid wire type';
  if (/max depth exceeded|call stack/i.test(text)) return 'messages nested too deeply';
  // protobufjs messages are short and plain; keep one line, and bounded.
  return (text.split('\n')[0] ?? text).slice(0, 200);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProtoType.encode(ModelProtoType.fromObject(model as Record<string, unknown>)).finish();
}

/** Reads and decodes a model file, with a clear error for a missing or unreadable file. */
export function readModelFile(file: string): ModelProto {
  return decodeModel(readFileChecked(file, 'model'), file);
}

export function readFileChecked(file: string, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new SngdError(`${file}: ${what} file not found`);
  }
  if (!stat.isFile()) throw new SngdError(`${file}: not a regular file`);
  // protobuf messages are limited to 2 GiB; larger weights must live in external data.
  if (stat.size >= 2 ** 31) throw new SngdError(`${file}: ${stat.size} bytes exceeds protobuf's 2 GiB limit; store weights as external data`);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new SngdError(`${file}: could not read the ${what} file (${errorText(err)})`);
  }
}

/**
 * Writes a file atomically: a temp file beside the target, fsync, rename, then fsync the folder so
 * the new name itself survives a power cut. `data` may come in pieces (a large checkpoint is
 * written without a concatenated copy). A crash leaves either the old file or the new one.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string | Uint8Array[]): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const pieces = Array.isArray(data) ? data : [typeof data === 'string' ? Buffer.from(data, 'utf8') : data];
  try {
    fs.mkdirSync(dir, { recursive: true });
    // 'wx': never follow or reuse something already at the temp name.
    const fd = fs.openSync(tmp, 'wx');
    try {
      for (const p of pieces) {
        // writeSync may write less than asked (always so past 2 GiB): loop until the piece is out.
        for (let done = 0; done < p.length; ) done += fs.writeSync(fd, p, done, p.length - done);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing to clean up (e.g. the folder path runs through a file): report the first error.
    }
    throw new SngdError(`${file}: could not write (${errorText(err)})`);
  }
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or fsync a folder; the rename is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function writeModelFile(file: string, model: ModelProto): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeModel(model);
  } catch (err) {
    throw new SngdError(`${file}: could not encode the model (${errorText(err).split('\n')[0]}); nothing was written`);
  }
  writeFileAtomic(file, bytes);
}
