/**
 * IDX files (the MNIST format): a big-endian header — magic 0x0000TTRR (type, rank), then rank
 * uint32 dimensions — followed by the data. Only unsigned bytes (type 0x08) are used by MNIST and
 * accepted here; sizes are checked against the bytes present.
 */
import { SngdError } from '../../src/errors.js';
import { readFileChecked } from '../../src/onnx/codec.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function readIdx(file: string): IdxArray {
  const buf = readFileChecked(file, 'IDX');
  if (buf.length < 4) throw new SngdError(`${file}: too short for an IDX header`);
  const magic = buf.readUInt32BE(0);
  const type = (magic >> 8) & 0xff;
  const rank = magic & 0xff;
  if (magic >>> 16 !== 0 || rank === 0) throw new SngdError(`${file}: not an IDX file (magic 0x${magic.toString(16)})`);
  if (type !== 0x08) throw new SngdError(`${file}: IDX element type 0x${type.toString(16)} is not supported (only unsigned bytes)`);
  const header = 4 + 4 * rank;
  if (buf.length < header) throw new SngdError(`${file}: truncated IDX header`);
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length - header !== n) throw new SngdError(`${file}: dims [${dims.join(', ')}] need ${n} bytes of data but the file holds ${buf.length - header}`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + header, n) };
}
