/**
 * xxHash32 (seed 0) of bytes: four lanes take 16 bytes a step with no dependency between them, so the CPU runs
 * them side by side. {@link hash32} hashes a payload whole; the steps are exported for a caller that reads the
 * bytes anyway (pixie/delivered_rows.ts hashes every cell of a row and gives the payload cell's hash32 along, so
 * the tap intake's row dedupe does not read the payload a second time).
 * @module
 */

const P1 = 0x9e3779b1, P2 = 0x85ebca77, P3 = 0xc2b2ae3d, P4 = 0x27d4eb2f, P5 = 0x165667b1;

/** The lanes' starting values. */
export const XXH_V1 = (P1 + P2) | 0, XXH_V2 = P2 | 0, XXH_V3 = 0, XXH_V4 = -P1 | 0;

/** One lane's step over the 4-byte little-endian chunk `k`. */
export function xxhRound(v: number, k: number): number {
  v = (v + Math.imul(k, P2)) | 0;
  return Math.imul((v << 13) | (v >>> 19), P1);
}

/** The four lanes' state after every 16-byte stripe, as one value (inputs of at least 16 bytes). */
export function xxhConverge(v1: number, v2: number, v3: number, v4: number): number {
  return (((v1 << 1) | (v1 >>> 31)) + ((v2 << 7) | (v2 >>> 25)) + ((v3 << 12) | (v3 >>> 20)) +
    ((v4 << 18) | (v4 >>> 14))) | 0;
}

/** The stripes' value of an input shorter than 16 bytes. */
export const XXH_SHORT = P5;

/** Takes in one 4-byte little-endian chunk `k` past the stripes. */
export function xxhTailWord(h: number, k: number): number {
  h = (h + Math.imul(k, P3)) | 0;
  return Math.imul((h << 17) | (h >>> 15), P4);
}

/** Takes in one byte past the stripes' and the tail words'. */
export function xxhTailByte(h: number, byte: number): number {
  h = (h + Math.imul(byte, P5)) | 0;
  return Math.imul((h << 11) | (h >>> 21), P1);
}

/** The final mix. Unsigned. */
export function xxhAvalanche(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The hash of `b`, whose stripes made `h` ({@link xxhConverge}; for fewer than 16 bytes, {@link XXH_SHORT}):
 * the bytes from `p` (past the stripes) taken in, then the final mix. Unsigned.
 */
function xxhFinish(h: number, b: Uint8Array, p: number): number {
  const n = b.length;
  h = (h + n) | 0;
  for (; p + 4 <= n; p += 4) {
    h = xxhTailWord(h, b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24));
  }
  for (; p < n; p++) h = xxhTailByte(h, b[p]!);
  return xxhAvalanche(h);
}

/** 32-bit words of the buffer {@link hash32} read last (a capture's slab: most payloads are views of one). */
let words: Uint32Array | undefined;

/**
 * A 32-bit hash of the bytes: xxHash32, ~1.5x faster on a payload than MurmurHash3's one
 * chain, whose every step waited for the last (hashing was most of a row's dedupe). The chunks are the payload's
 * own 4-byte steps in little-endian order, read as whole words of its buffer (two words shifted together when the
 * payload does not start on a word), the same values as four byte loads each. Unsigned.
 */
export function hash32(b: Uint8Array): number {
  const n = b.length;
  if (n < 16) return xxhFinish(XXH_SHORT, b, 0);
  let v1 = XXH_V1, v2 = XXH_V2, v3 = XXH_V3, v4 = XXH_V4;
  const stripes = n >>> 4;
  let s = 0;
  if (LITTLE_ENDIAN) {
    const buf = b.buffer;
    let w = words;
    if (w === undefined || w.buffer !== buf || w.length !== buf.byteLength >>> 2) {
      w = words = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    }
    const off = b.byteOffset, sh = (off & 3) * 8;
    let wi = off >>> 2;
    if (sh === 0) {
      for (; s < stripes; s++, wi += 4) {
        v1 = xxhRound(v1, w[wi]!);
        v2 = xxhRound(v2, w[wi + 1]!);
        v3 = xxhRound(v3, w[wi + 2]!);
        v4 = xxhRound(v4, w[wi + 3]!);
      }
    } else {
      // A stripe's 16 bytes span five words; the last may be the buffer's partial last word (read bytewise below).
      const r = 32 - sh, full = w.length;
      for (; s < stripes && wi + 5 <= full; s++, wi += 4) {
        const a = w[wi]!, c = w[wi + 1]!, d = w[wi + 2]!, e = w[wi + 3]!, f = w[wi + 4]!;
        v1 = xxhRound(v1, (a >>> sh) | (c << r));
        v2 = xxhRound(v2, (c >>> sh) | (d << r));
        v3 = xxhRound(v3, (d >>> sh) | (e << r));
        v4 = xxhRound(v4, (e >>> sh) | (f << r));
      }
    }
  }
  for (let i = s * 16; s < stripes; s++, i += 16) {
    v1 = xxhRound(v1, word(b, i));
    v2 = xxhRound(v2, word(b, i + 4));
    v3 = xxhRound(v3, word(b, i + 8));
    v4 = xxhRound(v4, word(b, i + 12));
  }
  return xxhFinish(xxhConverge(v1, v2, v3, v4), b, stripes * 16);
}

/** The little-endian 4-byte chunk at `i`. */
function word(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** Words read from bytes in little-endian order (every platform Deno runs on; the byte path otherwise). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
