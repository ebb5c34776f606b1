/**
 * .npy / .npz reading and writing: round trips, hand-made byte fixtures, archives written by
 * numpy itself, and corrupt input (which must give an SngdError naming the file).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../src/data/npy.js';
import { crc32, decodeNpz, encodeNpz, readNpz, writeNpz } from '../src/data/npz.js';
import { SngdError } from '../src/errors.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { expectSngd } from './helpers/errors.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sngd-npy-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A .npy file built by hand: magic, version, header length, padded header, data. */
function handNpy(header: string, data: Uint8Array, opts: { major?: number; minor?: number; pad?: boolean; encoding?: BufferEncoding } = {}): Uint8Array {
  const major = opts.major ?? 1;
  const prefix = major === 1 ? 10 : 12;
  let text = header;
  if (opts.pad ?? true) {
    const total = Math.ceil((prefix + Buffer.byteLength(header, opts.encoding ?? 'latin1') + 1) / 64) * 64;
    text = header + ' '.repeat(total - prefix - Buffer.byteLength(header, opts.encoding ?? 'latin1') - 1) + '\n';
  }
  const h = Buffer.from(text, opts.encoding ?? 'latin1');
  const pre = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]).copy(pre, 0);
  pre[6] = major;
  pre[7] = opts.minor ?? 0;
  if (major === 1) pre.writeUInt16LE(h.length, 8);
  else pre.writeUInt32LE(h.length, 8);
  return new Uint8Array(Buffer.concat([pre, h, Buffer.from(data)]));
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const SAMPLES: Tensor[] = [
  { dtype: 'float32', dims: [2, 3], data: Float32Array.from([0, -1.5, 3.25, Infinity, -0, 1e-30]) },
  { dtype: 'float64', dims: [], data: Float64Array.from([Math.PI]) },
  { dtype: 'float16', dims: [2], data: Uint16Array.from([0x3c00, 0xfbff]) },
  { dtype: 'int8', dims: [3], data: Int8Array.from([-128, 0, 127]) },
  { dtype: 'int16', dims: [1, 2], data: Int16Array.from([-32768, 32767]) },
  { dtype: 'int32', dims: [2, 1, 1], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
  { dtype: 'int64', dims: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) },
  { dtype: 'uint8', dims: [0, 4], data: new Uint8Array(0) },
  { dtype: 'uint16', dims: [2], data: Uint16Array.from([0, 65535]) },
  { dtype: 'uint32', dims: [1], data: Uint32Array.from([2 ** 32 - 1]) },
  { dtype: 'uint64', dims: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
  { dtype: 'bool', dims: [3], data: Uint8Array.from([1, 0, 1]) },
];

describe('npy round trip', () => {
  it.each(SAMPLES.map((t) => [t.dtype, t] as const))('%s', (_dtype, t) => {
    const bytes = encodeNpy(t);
    const back = decodeNpy(bytes, 'mem.npy');
    expect(back.dtype).toBe(t.dtype);
    expect(back.dims).toEqual(t.dims);
    expect(back.data.constructor).toBe(t.data.constructor);
    expect(bytesOf(back.data as ArrayBufferView)).toEqual(bytesOf(t.data as ArrayBufferView));
  });

  it('writes headers the way numpy does (v1.0, 64-byte aligned, newline-terminated)', () => {
    const bytes = encodeNpy(SAMPLES[0]!);
    const headerLength = bytes[8]! | (bytes[9]! << 8);
    expect([bytes[6], bytes[7]]).toEqual([1, 0]);
    expect((10 + headerLength) % 64).toBe(0);
    const header = Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1');
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(Buffer.from(encodeNpy({ dtype: 'uint8', dims: [5], data: new Uint8Array(5) })).toString('latin1')).toContain("'shape': (5,)");
    expect(Buffer.from(encodeNpy(SAMPLES[1]!)).toString('latin1')).toContain("'shape': ()");
  });

  it('writes v1.0 for up to 64 dims, refuses more, and reads v2.0 headers past 64 KiB', () => {
    const t: Tensor = { dtype: 'uint8', dims: Array<number>(64).fill(1), data: new Uint8Array(1) };
    expect(decodeNpy(encodeNpy(t), 'd64.npy').dims).toHaveLength(64);
    expectSngd(() => encodeNpy({ ...t, dims: Array<number>(65).fill(1) }, 'd65'), 'd65', 'at most 64');
    const header = `{'descr': '|u1', 'fortran_order': False, 'shape': (1,), ${' '.repeat(70_000)}}`;
    const v2 = handNpy(header, Uint8Array.from([9]), { major: 2 });
    expect(decodeNpy(v2, 'v2.npy')).toEqual({ dtype: 'uint8', dims: [1], data: Uint8Array.from([9]) });
  });

  it('writes and reads files (atomically, no temp file left)', () => {
    const file = path.join(dir, 'round.npy');
    writeNpy(file, SAMPLES[6]!);
    expect(readNpy(file)).toEqual(SAMPLES[6]);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('refuses tensors with no .npy equivalent', () => {
    expectSngd(() => encodeNpy({ dtype: 'string', dims: [1], data: ['a'] }, 'names'), 'names', 'string');
    expectSngd(() => encodeNpy({ dtype: 'bfloat16', dims: [1], data: new Uint16Array(1) }, 'b'), 'bfloat16');
    expectSngd(() => encodeNpy({ dtype: 'float32', dims: [3], data: new Float32Array(2) }, 'short'), 'short', '3 elements');
  });
});

describe('npy hand-made fixtures', () => {
  it('reads a v1.0 file written byte by byte', () => {
    const data = bytesOf(Int32Array.from([1, -2, 3, 4]));
    const t = decodeNpy(handNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", data), 'hand.npy');
    expect(t).toEqual({ dtype: 'int32', dims: [2, 2], data: Int32Array.from([1, -2, 3, 4]) });
  });

  it('accepts the spellings other writers use', () => {
    const one = Uint8Array.from([5]);
    // Unpadded header, double quotes, Python 2 longs, no trailing comma, other key order.
    const variants = [
      '{"shape": (1L,), "fortran_order": False, "descr": "|u1"}',
      "{'descr':'<u1','fortran_order':False,'shape':(1,)}",
      "{'descr': '=u1', 'fortran_order': False, 'shape': [1], }",
    ];
    for (const h of variants) expect(decodeNpy(handNpy(h, one, { pad: false }), 'v.npy')).toEqual({ dtype: 'uint8', dims: [1], data: one });
  });

  it('reads v2.0 and v3.0 (UTF-8 header) files', () => {
    const data = bytesOf(Float64Array.from([1.5, -2]));
    const v2 = handNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, { major: 2 });
    expect(decodeNpy(v2, 'v2.npy').data).toEqual(Float64Array.from([1.5, -2]));
    const v3 = handNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, { major: 3, encoding: 'utf8' });
    expect(decodeNpy(v3, 'v3.npy').dims).toEqual([2]);
  });

  it('reads data that starts at an odd offset of the underlying buffer', () => {
    const file = handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bytesOf(Float32Array.from([7, 8])));
    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    expect(decodeNpy(shifted.subarray(3), 's.npy').data).toEqual(Float32Array.from([7, 8]));
  });
});

describe('npy corrupt input', () => {
  const good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const data = new Uint8Array(24);
  const cases: [string, () => Uint8Array, (string | RegExp)[]][] = [
    ['not npy', () => Buffer.from('hello world, this is text'), ['not a .npy file']],
    ['empty', () => new Uint8Array(0), ['not a .npy file']],
    ['version 4.0', () => handNpy(good, data, { major: 4 }), ['version 4.0']],
    ['version 1.1', () => handNpy(good, data, { minor: 1 }), ['version 1.1']],
    ['header past end', () => handNpy(good, data).subarray(0, 40), ['header claims']],
    ['truncated data', () => handNpy(good, data.subarray(0, 20)), ['needs 24 data bytes', 'only 20']],
    ['trailing data', () => handNpy(good, new Uint8Array(30)), ['6 unexpected bytes']],
    ['fortran order', () => handNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data), ['fortran_order True']],
    ['big endian', () => handNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data), ['big-endian']],
    ['complex', () => handNpy("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data), ["unsupported dtype '<c8'"]],
    ['structured', () => handNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", data), ['structured']],
    ['object', () => handNpy("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", data), ['unsupported dtype']],
    ['missing key', () => handNpy("{'descr': '<f4', 'shape': (2, 3), }", data), ['lacks fortran_order']],
    ['extra key', () => handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", data), ["unexpected key 'x'"]],
    ['duplicate key', () => handNpy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", data), ['twice']],
    ['negative dim', () => handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", data), ['invalid dimension -2']],
    ['astronomical shape', () => handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data), ['impossible element count']],
    ['huge but finite shape', () => handNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }", data), ['needs 8000000000000 data bytes', 'only 24']],
    ['shape not ints', () => handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',), }", data), ['tuple of integers']],
    ['fortran not bool', () => handNpy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", data), ['True or False']],
    ['python code', () => handNpy("__import__('os').system('true')", data), ['unreadable .npy header']],
    ['unterminated', () => handNpy("{'descr': '<f4", data, { pad: false }), ['unreadable .npy header']],
    ['not a dict', () => handNpy('(1, 2)', data), ['not a dict']],
    ['deep nesting', () => handNpy(`{'descr': ${'('.repeat(50)}`, data), ['unreadable .npy header']],
  ];
  it.each(cases)('%s', (_name, make, parts) => {
    const file = path.join(dir, `bad-${_name.replace(/\W+/g, '_')}.npy`);
    fs.writeFileSync(file, make());
    expectSngd(() => readNpy(file), file, ...parts);
  });

  it('a missing file names the file', () => {
    const file = path.join(dir, 'nope.npy');
    expectSngd(() => readNpy(file), file, 'not found');
  });
});

/**
 * Archives written by numpy 2.4.6: np.savez(x=arange(6,'<f4').reshape(2,3)/4, y=int64 [1,-2,3],
 * flag=[True, False]) and np.savez_compressed(x=..., y=...). savez writes a zip64 extra field into
 * every local header; the reader must accept that.
 */
const NUMPY_SAVEZ =
  'UEsDBC0AAAAAAAAAIQAKnACk//////////8FABQAeC5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAzKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAgD4AAAA/AABAPwAAgD8AAKA/UEsDBC0AAAAAAAAAIQB0qPMw//////////8FABQAeS5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAQAAAAAAAAD+/////////wMAAAAAAAAAUEsDBC0AAAAAAAAAIQDuGbtd//////////8IABQAZmxhZy5ucHkBABAAggAAAAAAAACCAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJ3xiMScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAQBQSwECLQMtAAAAAAAAACEACpwApJgAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAeC5ucHlQSwECLQMtAAAAAAAAACEAdKjzMJgAAACYAAAABQAAAAAAAAAAAAAAgAHPAAAAeS5ucHlQSwECLQMtAAAAAAAAACEA7hm7XYIAAACCAAAACAAAAAAAAAAAAAAAgAGeAQAAZmxhZy5ucHlQSwUGAAAAAAMAAwCcAAAAWgIAAAAA';
const NUMPY_SAVEZ_COMPRESSED =
  'UEsDBC0AAAAIAAAAIQAKnACk//////////8FABQAeC5ucHkBABAAmAAAAAAAAABWAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgYwaLADEvYMDA5A3ADEC+wBUEsDBC0AAAAIAAAAIQB0qPMw//////////8FABQAeS5ucHkBABAAmAAAAAAAAABOAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GsY6mjoKtQoUAC5GBgj49x8CmKF8AFBLAQItAy0AAAAIAAAAIQAKnACkVgAAAJgAAAAFAAAAAAAAAAAAAACAAQAAAAB4Lm5weVBLAQItAy0AAAAIAAAAIQB0qPMwTgAAAJgAAAAFAAAAAAAAAAAAAACAAY0AAAB5Lm5weVBLBQYAAAAAAgACAGYAAAASAQAAAAA=';

const X = Float32Array.from([0, 0.25, 0.5, 0.75, 1, 1.25]);
const Y = BigInt64Array.from([1n, -2n, 3n]);

describe('npz', () => {
  it('reads np.savez output (stored entries, zip64 local extras)', () => {
    const m = decodeNpz(Buffer.from(NUMPY_SAVEZ, 'base64'), 'savez.npz');
    expect([...m.keys()]).toEqual(['x', 'y', 'flag']);
    expect(m.get('x')).toEqual({ dtype: 'float32', dims: [2, 3], data: X });
    expect(m.get('y')).toEqual({ dtype: 'int64', dims: [3], data: Y });
    expect(m.get('flag')).toEqual({ dtype: 'bool', dims: [2], data: Uint8Array.from([1, 0]) });
  });

  it('reads np.savez_compressed output (deflate)', () => {
    const m = decodeNpz(Buffer.from(NUMPY_SAVEZ_COMPRESSED, 'base64'), 'savez_compressed.npz');
    expect(m.get('x')?.data).toEqual(X);
    expect(m.get('y')?.data).toEqual(Y);
  });

  it.each([false, true])('round trips (compress=%s), including non-ASCII names', (compress) => {
    const tensors = new Map<string, Tensor>(SAMPLES.map((t, i) => [`${t.dtype}_${i}${i === 3 ? '_ünï' : ''}`, t]));
    const file = path.join(dir, `rt-${compress}.npz`);
    writeNpz(file, tensors, { compress });
    const back = readNpz(file);
    expect([...back.keys()]).toEqual([...tensors.keys()]);
    for (const [k, t] of tensors) {
      expect(back.get(k)!.dims).toEqual(t.dims);
      expect(bytesOf(back.get(k)!.data as ArrayBufferView)).toEqual(bytesOf(t.data as ArrayBufferView));
    }
  });

  it('skips entries that are not .npy files', () => {
    const zip = Buffer.from(encodeNpz({ a: SAMPLES[0]! }));
    // Rename 'a.npy' to 'a.txt' in both headers (same length), CRC unaffected.
    const renamed = Buffer.from(zip.toString('latin1').replaceAll('a.npy', 'a.txt'), 'latin1');
    expect(decodeNpz(renamed, 'r.npz').size).toBe(0);
  });

  it('computes the standard CRC-32', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('hello'))).toBe(zlib.crc32 ? zlib.crc32('hello') : 0x3610a686);
  });
});

describe('npz corrupt input', () => {
  const stored = (): Buffer => Buffer.from(encodeNpz({ a: SAMPLES[0]!, b: SAMPLES[6]! }));
  const compressed = (): Buffer => Buffer.from(encodeNpz({ a: SAMPLES[0]!, b: SAMPLES[6]! }, { compress: true }));
  const eocdOf = (z: Buffer): number => z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const centralOf = (z: Buffer, i = 0): number => {
    let p = -1;
    for (let k = 0; k <= i; k++) p = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), p + 1);
    return p;
  };
  const edit = (make: () => Buffer, f: (z: Buffer) => void) => (): Buffer => {
    const z = make();
    f(z);
    return z;
  };
  const cases: [string, () => Uint8Array, (string | RegExp)[]][] = [
    ['text', () => Buffer.from('this is not a zip archive, just some text'), ['not a zip archive']],
    ['tiny', () => Buffer.from('PK'), ['too short']],
    ['npy instead of npz', () => encodeNpy(SAMPLES[0]!), ['not a zip archive']],
    ['truncated (no end record)', () => stored().subarray(0, 200), ['without an end-of-central-directory record']],
    ['truncated entry data', () => {
      // Keep the end record but drop bytes from the middle of the first entry's data.
      const z = stored();
      return Buffer.concat([z.subarray(0, 60), z.subarray(100)]);
    }, [/corrupt|truncated|malformed|runs past|no local header/]],
    ['directory offset past end', edit(stored, (z) => z.writeUInt32LE(0x7fff0000, eocdOf(z) + 16)), ['central directory', 'runs past']],
    ['entry count too high', edit(stored, (z) => {
      z.writeUInt16LE(3, eocdOf(z) + 8);
      z.writeUInt16LE(3, eocdOf(z) + 10);
    }), ['central-directory entry #2 is malformed']],
    ['zip64 end record', edit(stored, (z) => z.writeUInt32LE(0xffffffff, eocdOf(z) + 16)), ['zip64']],
    ['zip64 entry size', edit(stored, (z) => z.writeUInt32LE(0xffffffff, centralOf(z) + 20)), ["entry 'a.npy'", 'zip64']],
    ['multi-disk', edit(stored, (z) => z.writeUInt16LE(1, eocdOf(z) + 4)), ['multi-part']],
    ['encrypted', edit(stored, (z) => z.writeUInt16LE(1, centralOf(z, 1) + 8)), ["entry 'b.npy'", 'encrypted']],
    ['bzip2', edit(stored, (z) => z.writeUInt16LE(12, centralOf(z) + 10)), ['compression method 12']],
    ['local header offset wrong', edit(stored, (z) => z.writeUInt32LE(7, centralOf(z) + 42)), ['no local header at offset 7']],
    ['local name differs', edit(stored, (z) => z.write('c', 30, 'latin1')), ["local header names 'c.npy'"]],
    ['CRC mismatch', edit(stored, (z) => {
      z[165] = z[165]! ^ 0xff; // inside the first array's data
    }), ["entry 'a.npy'", 'CRC-32 mismatch']],
    ['stored size mismatch', edit(stored, (z) => z.writeUInt32LE(z.readUInt32LE(centralOf(z) + 24) - 1, centralOf(z) + 24)), ['stored entry with size']],
    ['corrupt deflate', edit(compressed, (z) => z.fill(0xff, 40, 60)), ["entry 'a.npy'", /corrupt deflate data|CRC-32|inflates/]],
    ['inflates past declared size', edit(compressed, (z) => z.writeUInt32LE(10, centralOf(z) + 24)), ['inflates to more than its declared 10 bytes']],
    ['overlapping entries', edit(stored, (z) => z.writeUInt32LE(0, centralOf(z, 1) + 42)), ['overlap']],
    ['bad array inside', () => {
      const z = Buffer.from(encodeNpz({ a: SAMPLES[0]! }));
      const p = z.indexOf("'<f4'");
      z.write("'>f4'", p, 'latin1');
      // fix the CRC so that the npy check is the one that fires
      const start = 30 + 'a.npy'.length;
      const size = z.readUInt32LE(18);
      const crc = crc32(z.subarray(start, start + size));
      z.writeUInt32LE(crc, 14);
      z.writeUInt32LE(crc, centralOf(z) + 16);
      return z;
    }, ["entry 'a.npy'", 'big-endian']],
  ];
  it.each(cases)('%s', (name, make, parts) => {
    const file = path.join(dir, `bad-${name.replace(/\W+/g, '_')}.npz`);
    fs.writeFileSync(file, make());
    expectSngd(() => readNpz(file), file, ...parts);
  });

  it('never throws anything but SngdError on mutated archives', () => {
    const bases = [stored(), compressed(), Buffer.from(NUMPY_SAVEZ, 'base64'), Buffer.from(NUMPY_SAVEZ_COMPRESSED, 'base64')];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let ok = 0;
    for (let i = 0; i < 400; i++) {
      const z = Buffer.from(bases[i % bases.length]!);
      for (let k = 1 + rand(4); k > 0; k--) z[rand(z.length)] ^= 1 << rand(8);
      const cut = i % 5 === 0 ? z.subarray(0, rand(z.length)) : z;
      try {
        decodeNpz(cut, `m${i}.npz`);
        ok++;
      } catch (err) {
        if (!(err instanceof SngdError)) throw new Error(`case ${i}: ${String(err)}`);
        expect(err.message).toContain(`m${i}.npz`);
      }
    }
    expect(ok).toBeLessThan(400);
  });
});
