/**
 * xxHash32's pieces (seed 0): the intake's payload hash (actors/row_dedupe.ts) and the Pixie reader's stripes of
 * a long cell (pixie/delivered_rows.ts). Four lanes take 16 bytes a step with no dependency between them, so the
 * CPU runs them side by side.
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

/**
 * The hash of `b`, whose stripes made `h` ({@link xxhConverge}; for fewer than 16 bytes, {@link XXH_SHORT}):
 * the bytes from `p` (past the stripes) taken in, then the final mix. Unsigned.
 */
export function xxhFinish(h: number, b: Uint8Array, p: number): number {
  const n = b.length;
  h = (h + n) | 0;
  for (; p + 4 <= n; p += 4) {
    const k = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
    h = (h + Math.imul(k, P3)) | 0;
    h = Math.imul((h << 17) | (h >>> 15), P4);
  }
  for (; p < n; p++) {
    h = (h + Math.imul(b[p]!, P5)) | 0;
    h = Math.imul((h << 11) | (h >>> 21), P1);
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The stripes' value of an input shorter than 16 bytes. */
export const XXH_SHORT = P5;
