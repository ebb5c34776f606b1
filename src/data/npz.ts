/**
 * NumPy .npz archives (a zip of .npy files, as np.savez / np.savez_compressed write them) →
 * Map<name, Tensor>, and a small writer for tests and tools.
 *
 * Reading trusts nothing: the end-of-central-directory record, every central-directory entry and
 * every local header are bounds-checked before use; entries may not overlap; stored and deflate
 * (method 8) entries are read, inflation is capped at the declared size, and CRC-32 is checked.
 * Refused with a clear message: encrypted entries, other compression methods, multi-disk archives,
 * and archives that need zip64 (an entry or offset at 4 GiB, or 65,535 entries). numpy always
 * writes a zip64 extra field into each *local* header (savez forces it); that is fine: sizes are
 * taken from the central directory, as numpy's own reader (Python's zipfile) does.
 *
 * Entries whose name ends in `.npy` become tensors named without the suffix; other entries
 * (directories, non-array files) are skipped. Names are UTF-8 when the zip's UTF-8 flag is set,
 * otherwise read as latin-1 (ASCII names, which numpy writes, read the same either way).
 */
import zlib from 'node:zlib';
import { SngdError, errorText } from '../errors.js';
import { readFileChecked, writeFileAtomic } from '../onnx/codec.js';
import { shownName } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';
import { decodeNpy, encodeNpy } from './npy.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const FLAG_UTF8 = 0x0800;

interface Entry { name: string; method: number; flags: number; crc: number; compressedSize: number; size: number; localOffset: number }

/** Decodes .npz bytes; `source` names the file in errors. */
export function decodeNpz(bytes: Uint8Array, source: string): Map<string, Tensor> {
  const entries = readCentralDirectory(bytes, source);
  // Locate every entry and refuse overlaps before inflating anything: overlapping entries are
  // how a small archive claims to hold far more data than it does.
  const located = entries.map((e) => ({ e, where: `${source}: entry '${shownName(e.name)}'`, ...locateData(bytes, e, source) }));
  const byStart = [...located].sort((a, b) => a.e.localOffset - b.e.localOffset);
  for (let i = 1; i < byStart.length; i++) {
    if (byStart[i]!.e.localOffset < byStart[i - 1]!.end) {
      throw new SngdError(`${source}: entries '${shownName(byStart[i - 1]!.e.name)}' and '${shownName(byStart[i]!.e.name)}' overlap; the archive is corrupt`);
    }
  }
  const out = new Map<string, Tensor>();
  for (const { e, where, start, end } of located) {
    if (!e.name.endsWith('.npy')) continue;
    const key = e.name.slice(0, -'.npy'.length);
    if (out.has(key)) throw new SngdError(`${where}: the archive holds '${shownName(key)}' twice`);
    out.set(key, decodeNpy(extract(bytes.subarray(start, end), e, where), where));
  }
  return out;
}

export function readNpz(file: string): Map<string, Tensor> {
  return decodeNpz(readFileChecked(file, '.npz'), file);
}

function readCentralDirectory(bytes: Uint8Array, source: string): Entry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (p: number): number => dv.getUint16(p, true);
  const u32 = (p: number): number => dv.getUint32(p, true);
  if (bytes.length < 22) throw new SngdError(`${source}: too short to be a zip archive (.npz)`);
  // The end record sits in the last 22 + 65,535 bytes (its comment may be up to 64 KiB).
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 0xffff); p--) {
    if (u32(p) === SIG_EOCD && p + 22 + u16(p + 20) <= bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    const isZip = bytes.length >= 4 && u32(0) === SIG_LOCAL;
    throw new SngdError(`${source}: ${isZip ? 'zip archive without an end-of-central-directory record (truncated?)' : 'not a zip archive (.npz)'}`);
  }
  if (eocd >= 20 && u32(eocd - 20) === SIG_ZIP64_LOCATOR) throw new SngdError(`${source}: zip64 archives are not supported`);
  const disk = u16(eocd + 4);
  const cdDisk = u16(eocd + 6);
  const onDisk = u16(eocd + 8);
  const count = u16(eocd + 10);
  const cdSize = u32(eocd + 12);
  const cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw new SngdError(`${source}: zip64 archives are not supported`);
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count) throw new SngdError(`${source}: multi-part (spanned) zip archives are not supported`);
  if (cdOffset + cdSize > eocd) {
    throw new SngdError(`${source}: the central directory (bytes ${cdOffset}..${cdOffset + cdSize}) runs past its end record at ${eocd}; the archive is truncated or corrupt`);
  }
  const entries: Entry[] = [];
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== SIG_CENTRAL) throw new SngdError(`${source}: central-directory entry #${i} is malformed`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const nameLength = u16(p + 28);
    const extraLength = u16(p + 30);
    const commentLength = u16(p + 32);
    const next = p + 46 + nameLength + extraLength + commentLength;
    if (next > cdEnd) throw new SngdError(`${source}: central-directory entry #${i} runs past the directory`);
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLength);
    const name = Buffer.from(nameBytes).toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1');
    const e: Entry = { name, method, flags, crc: u32(p + 16), compressedSize: u32(p + 20), size: u32(p + 24), localOffset: u32(p + 42) };
    const where = `${source}: entry '${shownName(name)}'`;
    if (e.compressedSize === 0xffffffff || e.size === 0xffffffff || e.localOffset === 0xffffffff) throw new SngdError(`${where}: needs zip64, which is not supported`);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) || method === 99) throw new SngdError(`${where}: encrypted entries are not supported`);
    if (method !== 0 && method !== 8) throw new SngdError(`${where}: compression method ${method} is not supported (only stored and deflate)`);
    entries.push(e);
    p = next;
  }
  return entries;
}

function locateData(bytes: Uint8Array, e: Entry, source: string): { start: number; end: number } {
  const where = `${source}: entry '${shownName(e.name)}'`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const p = e.localOffset;
  if (p + 30 > bytes.length || dv.getUint32(p, true) !== SIG_LOCAL) throw new SngdError(`${where}: no local header at offset ${p}; the archive is corrupt`);
  const nameLength = dv.getUint16(p + 26, true);
  const extraLength = dv.getUint16(p + 28, true);
  const start = p + 30 + nameLength + extraLength;
  const end = start + e.compressedSize;
  if (end > bytes.length) throw new SngdError(`${where}: its ${e.compressedSize} bytes of data run past the end of the file (truncated?)`);
  const localName = Buffer.from(bytes.subarray(p + 30, p + 30 + nameLength)).toString(e.flags & FLAG_UTF8 ? 'utf8' : 'latin1');
  if (localName !== e.name) throw new SngdError(`${where}: its local header names '${shownName(localName)}'; the archive is corrupt`);
  return { start, end };
}

function extract(raw: Uint8Array, e: Entry, where: string): Uint8Array {
  let data: Uint8Array;
  if (e.method === 0) {
    if (e.compressedSize !== e.size) throw new SngdError(`${where}: stored entry with size ${e.size} but ${e.compressedSize} bytes of data`);
    data = raw;
  } else {
    try {
      // Cap the output at the declared size: a deflate stream can expand ~1000-fold.
      data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new SngdError(`${where}: inflates to more than its declared ${e.size} bytes; the archive is corrupt`);
      throw new SngdError(`${where}: corrupt deflate data (${errorText(err)})`);
    }
    if (data.length !== e.size) throw new SngdError(`${where}: inflates to ${data.length} bytes, not the declared ${e.size}`);
  }
  const crc = crc32(data);
  if (crc !== e.crc) throw new SngdError(`${where}: CRC-32 mismatch (stored ${hex(e.crc)}, computed ${hex(crc)}); the archive is corrupt`);
  return data;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 (IEEE, as zip uses). */
export function crc32(bytes: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Encodes tensors as an .npz archive (entry `name.npy` per tensor). `compress` uses deflate, as
 * np.savez_compressed does; otherwise entries are stored, as np.savez does. No zip64.
 */
export function encodeNpz(tensors: Map<string, Tensor> | Record<string, Tensor>, opts: { compress?: boolean } = {}): Uint8Array {
  const items = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [key, t] of items) {
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const data = encodeNpy(t, key);
    const body = opts.compress ? zlib.deflateRawSync(data) : data;
    const method = opts.compress ? 8 : 0;
    const flags = /^[\x20-\x7e]*$/.test(key) ? 0 : FLAG_UTF8;
    const crc = crc32(data);
    if (offset + 30 + name.length + body.length >= 0xffffffff) throw new SngdError(`${key}: the archive would need zip64, which this writer does not produce`);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10); // time 00:00
    local.writeUInt16LE(0x21, 12); // date 1980-01-01: reproducible bytes
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(SIG_CENTRAL, 0);
    central.writeUInt16LE(20, 4); // version made by
    central.writeUInt16LE(20, 6); // version needed
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(items.length, 8);
  eocd.writeUInt16LE(items.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  if (items.length >= 0xffff) throw new SngdError('an .npz archive of 65,535 or more arrays needs zip64, which this writer does not produce');
  return new Uint8Array(Buffer.concat([...locals, cd, eocd]));
}

export function writeNpz(file: string, tensors: Map<string, Tensor> | Record<string, Tensor>, opts: { compress?: boolean } = {}): void {
  writeFileAtomic(file, encodeNpz(tensors, opts));
}
