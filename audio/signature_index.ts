/**
 * The active signatures of one node and measurement, indexed by sub-fingerprint for the forward search.
 *
 * Multi-index hashing on the two 16-bit halves of each sub-fingerprint: a target frame finds a signature frame
 * when either half matches exactly (optionally after toggling the target's weakest bits in that half) and the
 * whole 32 bits are within a small Hamming distance. Measured on real speech at 10 dB SNR, a frame at the true
 * offset has one half exact far more often than all 32 bits exact even after 8–16 probes (97% vs 38–48% of
 * signatures have at least one such frame), which is what makes noisy matches findable at all.
 *
 * Masked (silent) signature frames are not indexed. Entries are (full value, slot·256 + position) in per-bucket
 * typed arrays; removal swaps the last entry in. Slots carry a generation so stale candidates can be detected.
 * @module
 */

import { isMasked, SIGNATURE_MAX_FRAMES } from "./signature.ts";
import type { Signature } from "./types.ts";

/** Default most active signatures; beyond it the oldest is evicted. */
export const DEFAULT_MAX_ACTIVE = 50_000;
/**
 * A bucket stops taking entries at this size and lookups skip buckets this full: a half-value that common is weak
 * evidence and costs the most to scan (with 10,000 signatures of one speaker, skipping them cut hits per frame
 * from 47 to 12; counted as `bucketFull`). Entries come back as signatures expire.
 */
export const MAX_BUCKET = 256;

const BUCKETS = 65536;
const EMPTY = new Int16Array(0);

/** Popcount of a 32-bit value. */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Reusable output of {@link SignatureIndex.lookup}: hits as parallel arrays, `count` valid. */
export class HitBuffer {
  slot: Int32Array;
  pos: Int32Array;
  dist: Int32Array;
  count = 0;

  /** A buffer for `capacity` hits (grows when needed). */
  constructor(capacity = 256) {
    this.slot = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
    this.dist = new Int32Array(capacity);
  }

  /** Appends one hit. */
  push(slot: number, pos: number, dist: number): void {
    if (this.count === this.slot.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.slot = grow(this.slot);
      this.pos = grow(this.pos);
      this.dist = grow(this.dist);
    }
    this.slot[this.count] = slot;
    this.pos[this.count] = pos;
    this.dist[this.count] = dist;
    this.count++;
  }
}

/**
 * One half-keyed table: per bucket a growable array of `cap` full values followed by their `cap` refs, so that a
 * lookup's scan reads only the values (a ref is read on a hit).
 */
class HalfTable {
  readonly buckets: (Uint32Array | undefined)[] = new Array(BUCKETS);
  readonly counts = new Uint32Array(BUCKETS);

  add(key: number, value: number, ref: number): boolean {
    const n = this.counts[key]!;
    if (n >= MAX_BUCKET) return false;
    let b = this.buckets[key];
    if (!b || b.length < 2 * (n + 1)) {
      const cap = Math.max(4, b ? b.length : 0);
      const nb = new Uint32Array(2 * cap);
      if (b) {
        const old = b.length >> 1;
        nb.set(b.subarray(0, old));
        nb.set(b.subarray(old), cap);
      }
      this.buckets[key] = b = nb;
    }
    const cap = b.length >> 1;
    b[n] = value;
    b[cap + n] = ref;
    this.counts[key] = n + 1;
    return true;
  }

  remove(key: number, ref: number): void {
    const b = this.buckets[key];
    const n = this.counts[key]!;
    if (!b) return;
    const cap = b.length >> 1;
    for (let i = 0; i < n; i++) {
      if (b[cap + i] === ref) {
        b[i] = b[n - 1]!;
        b[cap + i] = b[cap + n - 1]!;
        this.counts[key] = n - 1;
        if (n - 1 === 0) this.buckets[key] = undefined;
        return;
      }
    }
  }
}

/** Counters of an index. */
export interface IndexStats {
  active: number;
  added: number;
  removed: number;
  evicted: number;
  duplicates: number;
  entries: number;
  bucketFull: number;
}

/** Active signatures, indexed for lookups by target sub-fingerprints. */
export class SignatureIndex {
  /** Most active signatures; adding one more evicts the oldest. */
  readonly maxActive: number;
  readonly #hi = new HalfTable();
  readonly #lo = new HalfTable();
  readonly #sigs: (Signature | undefined)[] = [];
  readonly #used: (Int16Array | undefined)[] = [];
  readonly #gen: number[] = [];
  readonly #free: number[] = [];
  readonly #byId = new Map<string, number>();
  /** Slots in insertion order (lazy deletion) for eviction. */
  #order: number[] = [];
  #orderGen: number[] = [];
  #orderHead = 0;
  #stats: IndexStats = {
    active: 0,
    added: 0,
    removed: 0,
    evicted: 0,
    duplicates: 0,
    entries: 0,
    bucketFull: 0,
  };

  /** `maxActive` defaults to {@link DEFAULT_MAX_ACTIVE}. */
  constructor(opts: { maxActive?: number } = {}) {
    const m = opts.maxActive ?? DEFAULT_MAX_ACTIVE;
    if (!Number.isInteger(m) || m < 1 || m > 1 << 23) {
      throw new RangeError(`maxActive must be in 1..${1 << 23}`);
    }
    this.maxActive = m;
  }

  /** Number of active signatures. */
  get size(): number {
    return this.#byId.size;
  }

  /** True if a signature with this id is active. */
  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Slot of an active signature, or -1. */
  slotOf(id: string): number {
    return this.#byId.get(id) ?? -1;
  }

  /** The signature in `slot` (undefined when free). */
  signatureAt(slot: number): Signature | undefined {
    return this.#sigs[slot];
  }

  /** Positions of the unmasked frames of the signature in `slot` (empty when free). */
  usedFrames(slot: number): Int16Array {
    return this.#used[slot] ?? EMPTY;
  }

  /** Generation of `slot`: changes whenever the slot is reused. */
  generation(slot: number): number {
    return this.#gen[slot] ?? 0;
  }

  /** Counters. */
  stats(): IndexStats {
    return { ...this.#stats, active: this.size };
  }

  /** Adds `sig` (no-op if its id is active); evicts the oldest signature when full. */
  add(sig: Signature): void {
    if (this.#byId.has(sig.id)) {
      this.#stats.duplicates++;
      return;
    }
    if (sig.fingerprint.length < 1 || sig.fingerprint.length > SIGNATURE_MAX_FRAMES) {
      throw new RangeError(`SignatureIndex: block of ${sig.fingerprint.length} frames`);
    }
    while (this.#byId.size >= this.maxActive) this.#evictOldest();
    const slot = this.#free.pop() ?? this.#sigs.length;
    this.#sigs[slot] = sig;
    this.#gen[slot] = (this.#gen[slot] ?? 0) + 1;
    this.#byId.set(sig.id, slot);
    this.#order.push(slot);
    this.#orderGen.push(this.#gen[slot]!);
    const fp = sig.fingerprint;
    const used: number[] = [];
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sig.mask, j)) continue;
      used.push(j);
      const v = fp[j]!;
      const ref = slot * 256 + j;
      if (this.#hi.add(v >>> 16, v, ref)) this.#stats.entries++;
      else this.#stats.bucketFull++;
      if (this.#lo.add(v & 0xffff, v, ref)) this.#stats.entries++;
      else this.#stats.bucketFull++;
    }
    this.#used[slot] = Int16Array.from(used);
    this.#stats.added++;
  }

  /** Removes the signature with this id (no-op if unknown). */
  remove(id: string): void {
    const slot = this.#byId.get(id);
    if (slot === undefined) return;
    this.#drop(slot);
    this.#stats.removed++;
  }

  #drop(slot: number): void {
    const sig = this.#sigs[slot]!;
    const fp = sig.fingerprint;
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sig.mask, j)) continue;
      const v = fp[j]!;
      const ref = slot * 256 + j;
      const before = this.#hi.counts[v >>> 16]! + this.#lo.counts[v & 0xffff]!;
      this.#hi.remove(v >>> 16, ref);
      this.#lo.remove(v & 0xffff, ref);
      this.#stats.entries -= before - (this.#hi.counts[v >>> 16]! + this.#lo.counts[v & 0xffff]!);
    }
    this.#byId.delete(sig.id);
    this.#sigs[slot] = undefined;
    this.#used[slot] = undefined;
    this.#gen[slot] = (this.#gen[slot] ?? 0) + 1;
    this.#free.push(slot);
  }

  #evictOldest(): void {
    while (this.#orderHead < this.#order.length) {
      const slot = this.#order[this.#orderHead]!;
      const gen = this.#orderGen[this.#orderHead]!;
      this.#orderHead++;
      if (this.#sigs[slot] !== undefined && this.#gen[slot] === gen) {
        this.#drop(slot);
        this.#stats.evicted++;
        break;
      }
    }
    if (this.#orderHead > 1024 && this.#orderHead * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead);
      this.#orderGen = this.#orderGen.slice(this.#orderHead);
      this.#orderHead = 0;
    }
  }

  /**
   * Appends to `out` every indexed frame whose high (`half` 0) or low (`half` 1) 16 bits equal `key` and whose
   * Hamming distance to `query` is at most `maxDist`. Callers look up both halves of a target value, and
   * variants with weak bits toggled; a frame can then be reported more than once (callers dedupe per frame).
   */
  lookupHalf(half: 0 | 1, key: number, query: number, maxDist: number, out: HitBuffer): void {
    const table = half === 0 ? this.#hi : this.#lo;
    const n = table.counts[key]!;
    if (n === 0 || n >= MAX_BUCKET) return;
    const v = table.buckets[key]!;
    const cap = v.length >> 1;
    for (let i = 0; i < n; i++) {
      // Popcount inline: this loop scans every entry of the bucket.
      let x = v[i]! ^ query;
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      x = (x + (x >>> 4)) & 0x0f0f0f0f;
      const d = Math.imul(x, 0x01010101) >>> 24;
      if (d <= maxDist) {
        const ref = v[cap + i]!;
        out.push(ref >>> 8, ref & 255, d);
      }
    }
  }
}
