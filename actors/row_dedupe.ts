/**
 * Duplicate rows of one stream: the same capture time and the same payload seen twice (Pixie delivering a batch
 * again, two captures that overlap). Fed twice, a stream's audio would play every message two times over and
 * match nothing; so the second copy is dropped and counted by the caller.
 * @module
 */

/** Rows older than this (event time) behind the stream's newest are no longer remembered. */
export const DEDUPE_WINDOW_NS = 5_000_000_000n;

/** FNV-1a over the bytes; with the time and the length it names a row. */
function hash32(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** Most rows remembered per stream, whatever their times (a bad clock must not make the memory grow). */
export const DEDUPE_MAX_ROWS = 512;

/** The recent rows of one stream. */
export class RecentRows {
  // Insertion order is (nearly) time order, so pruning stops at the first entry still inside the window.
  readonly #seen = new Map<string, bigint>();
  #newest: bigint | undefined;

  /** True if a row with this time and payload was already seen on the stream (then it must be skipped). */
  seen(timeNs: bigint, payload: Uint8Array | undefined): boolean {
    const id = `${timeNs}:${payload?.length ?? -1}:${payload ? hash32(payload) : 0}`;
    if (this.#seen.has(id)) return true;
    this.#seen.set(id, timeNs);
    if (this.#seen.size > DEDUPE_MAX_ROWS) {
      const first = this.#seen.keys().next().value;
      if (first !== undefined) this.#seen.delete(first);
    }
    // Only a plausible step forward prunes: one row from the future must not make the stream forget the rest.
    const n = this.#newest;
    if (n === undefined || (timeNs > n && timeNs - n <= DEDUPE_WINDOW_NS)) {
      this.#newest = timeNs;
      const oldest = timeNs - DEDUPE_WINDOW_NS;
      for (const [k, t] of this.#seen) {
        if (t >= oldest) break;
        this.#seen.delete(k);
      }
    }
    return false;
  }

  /** Rows remembered (bounded by the window). */
  get size(): number {
    return this.#seen.size;
  }
}
