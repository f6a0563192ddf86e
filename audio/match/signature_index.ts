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

import { isMasked, SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";
import type { Signature } from "../types.ts";
import { type BerKernel, berKernel, SLOTS_AT } from "./ber_kernel.ts";

/** Default most active signatures; beyond it the oldest is evicted. */
export const DEFAULT_MAX_ACTIVE = 50_000;
/**
 * A bucket stops taking entries at this size and lookups skip buckets this full: a half-value that common is weak
 * evidence and costs the most to scan (with 10,000 signatures of one speaker, skipping them cut hits per frame
 * from 47 to 12; counted as `bucketFull`). Entries come back as signatures expire.
 */
export const MAX_BUCKET = 256;
/** Slots reserved at first for target streams' rings of recent frames ({@link SignatureIndex.reserveRing}). */
export const RESERVED_RING_SLOTS = 2048;
/** Most slots the kernel's memory is made with room for at first (~75 MB of address space); past them it grows. */
export const MAX_RESERVED_SLOTS = 65536;

const BUCKETS = 65536;
// lookupProbes reads a bucket's values two to a 32-bit word, the first in the low half.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error("signature_index: a big-endian host");
/** Most probes one {@link SignatureIndex.lookupProbes} call takes. */
export const MAX_PROBES = 64;

/** Frames a pre-check looks at (spread over what is there). */
export const PRECHECK_FRAMES = 32;
/** A pre-check waits until this many frames of the block are there (onsets are weak evidence in noise). */
export const PRECHECK_AFTER = 64;

/**
 * Word offset in a slot of {@link SignatureIndex.frames} of the header of its pre-check sample: the frames the
 * pre-check's three stages look at when it runs as scheduled, with the first `limit` frames of the block there
 * (limit = min(PRECHECK_AFTER, block length)): limit, then the stages' frame counts n1 (every 4th of the
 * sample), n2 (every 2nd), n3 (all), at bits 8, 16, 20 and 25.
 */
export const FRAME_SAMPLE_HEAD_AT = 3;
/** Word offset in a slot of its rank bytes (see {@link FRAME_WORDS}). */
export const FRAME_RANKS_AT = 89;
/** Word offset in a slot of its unmasked positions, one byte each (see {@link FRAME_WORDS}). */
export const FRAME_POSITIONS_AT = FRAME_RANKS_AT + ((SIGNATURE_MAX_FRAMES + 4) >> 2);
/** Word offset in a slot of its unmasked sub-fingerprints (see {@link FRAME_WORDS}). */
export const FRAME_VALUES_AT = FRAME_POSITIONS_AT + (SIGNATURE_MAX_FRAMES >> 2);

/**
 * The stages' frames as slots of their own at these offsets from a slot (see {@link FRAME_WORDS}; negative: their
 * positions are at words 1, 9 and 25 of the slot, their values 32 words on): each reads its n frames in
 * order, the same frames in the same order as the stage over the whole slot, so the scores are the same, but
 * from a few adjacent cache lines (the header and the first stage's positions share one, its values another)
 * instead of the rank, the positions and values spread over the first half of the block.
 */
export const FRAME_SAMPLE_AT: readonly number[] = [1, 9, 25].map((p) => p - FRAME_POSITIONS_AT);
/**
 * Word offset in a slot of a signature's bits of the entries its tables did not take (a full bucket): unmasked
 * frame x's high-half entry at bit 2·(x mod 16) of word x / 16 from here, its low-half one at the next bit, in
 * words 13-20, which the pre-check sample leaves free (its second stage's positions end at word 12, its third's
 * start at 25). Removing the signature skips those entries: each was the scan of a full bucket (MAX_BUCKET
 * refs) certain to find nothing, half of what an index of 10,000 signatures scanned to evict one.
 */
const FRAME_UNTAKEN_AT = 13;
// The sample's second stage takes PRECHECK_FRAMES / 2 position bytes from word 9, its third starts at word 25.
if (
  FRAME_UNTAKEN_AT < FRAME_POSITIONS_AT + FRAME_SAMPLE_AT[1]! + (PRECHECK_FRAMES >> 3) ||
  FRAME_UNTAKEN_AT + (SIGNATURE_MAX_FRAMES >> 4) > FRAME_POSITIONS_AT + FRAME_SAMPLE_AT[2]!
) {
  throw new Error("signature_index: the untaken entries' bits overlap the pre-check sample");
}

/**
 * Words per slot in {@link SignatureIndex.frames}: the number of unmasked frames n; the pre-check sample (its
 * header at {@link FRAME_SAMPLE_HEAD_AT}, its stages' positions and values as slots of their own from
 * {@link FRAME_SAMPLE_AT}, within the first 89 words); at {@link FRAME_RANKS_AT} SIGNATURE_MAX_FRAMES + 1 rank
 * bytes (rank j is the number of unmasked positions below j, see {@link framesBelow}); at
 * {@link FRAME_POSITIONS_AT} the n unmasked positions, one byte each; at {@link FRAME_VALUES_AT} their n
 * sub-fingerprints; bytes four per word from the low end, rounded up to whole 64-byte lines. The positions are
 * bytes and apart from the values so that a pre-check's sample of a block (a rank, then every few positions
 * and values of the first half) touches as few cache lines as can be.
 */
export const FRAME_WORDS = (FRAME_VALUES_AT + SIGNATURE_MAX_FRAMES + 15) & ~15;

/** The x-th unmasked position of the slot of `frames` at `at` (see {@link FRAME_WORDS}). */
export function framePosition(frames: Uint32Array, at: number, x: number): number {
  return (frames[at + FRAME_POSITIONS_AT + (x >> 2)]! >>> ((x & 3) << 3)) & 255;
}

/**
 * Writes the slot layout of {@link FRAME_WORDS} for a signature's fingerprint `fp` whose unmasked positions are
 * `used` (ascending) into `frames` at `at`.
 */
export function writeFrameSlot(
  frames: Uint32Array,
  at: number,
  fp: Uint32Array,
  used: ArrayLike<number>,
): void {
  frames.fill(0, at, at + FRAME_WORDS);
  frames[at] = used.length;
  for (let x = 0; x < used.length; x++) {
    frames[at + FRAME_POSITIONS_AT + (x >> 2)]! |= used[x]! << ((x & 3) << 3);
    frames[at + FRAME_VALUES_AT + x] = fp[used[x]!]!;
  }
  for (let j = 0, x = 0; j <= SIGNATURE_MAX_FRAMES; j++) {
    while (x < used.length && used[x]! < j) x++;
    frames[at + FRAME_RANKS_AT + (j >> 2)]! |= x << ((j & 3) << 3);
  }
  // The pre-check's sample, as precheck.ts takes it over the whole slot with `limit` frames there.
  const limit = Math.min(PRECHECK_AFTER, fp.length);
  const avail = framesBelow(frames, at, limit);
  const step = Math.max(1, avail / PRECHECK_FRAMES);
  let head = limit << 8;
  for (let k = 0; k < 3; k++) {
    const into = at + FRAME_SAMPLE_AT[k]!;
    let n = 0;
    // The stages' loop (score.ts sampledBer): x stays below 2^31, so `x | 0` is Math.floor(x).
    for (let x = 0; x < avail; x += step * (4 >> k)) {
      const y = x | 0;
      frames[into + FRAME_POSITIONS_AT + (n >> 2)]! |= used[y]! << ((n & 3) << 3);
      frames[into + FRAME_VALUES_AT + n] = fp[used[y]!]!;
      n++;
    }
    head |= n << [16, 20, 25][k]!;
  }
  frames[at + FRAME_SAMPLE_HEAD_AT] = head;
}

const slotCache = new WeakMap<Signature, Uint32Array>();

/**
 * `sig`'s unmasked frames laid out on their own as one slot of {@link SignatureIndex.frames} (FRAME_WORDS words
 * from 0; cached per signature object): for checks of a signature that is not, or not yet, in an index.
 */
export function frameSlotOf(sig: Signature): Uint32Array {
  let f = slotCache.get(sig);
  if (!f) {
    const used: number[] = [];
    for (let j = 0; j < sig.fingerprint.length; j++) if (!isMasked(sig.mask, j)) used.push(j);
    f = new Uint32Array(FRAME_WORDS);
    writeFrameSlot(f, 0, sig.fingerprint, used);
    slotCache.set(sig, f);
  }
  return f;
}

/**
 * How many unmasked positions of the slot of `frames` at `at` (see {@link FRAME_WORDS}) are below `limit`: one
 * load where a binary search over the positions would wait on several dependent cache misses.
 */
export function framesBelow(frames: Uint32Array, at: number, limit: number): number {
  if (limit <= 0) return 0;
  if (limit > SIGNATURE_MAX_FRAMES) return frames[at]!;
  return (frames[at + FRAME_RANKS_AT + (limit >> 2)]! >>> ((limit & 3) << 3)) & 255;
}

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

/** Popcount of a 16-bit value. */
function popcount16(x: number): number {
  x -= (x >>> 1) & 0x5555;
  x = (x & 0x3333) + ((x >>> 2) & 0x3333);
  x = (x + (x >>> 4)) & 0x0f0f;
  return (x + (x >>> 8)) & 0x1f;
}

/**
 * One half-keyed table. All buckets live in one pool: bucket `key` holds `cap` values from its start followed by
 * their `cap` refs, so that a lookup's scan reads only the values (a ref is read on a hit), and a lookup touches
 * the key's line of `meta` and the values, not a typed-array object per bucket (lookups wait mostly on memory:
 * two objects fewer per probe are two cache misses fewer, and 100-odd bytes less per bucket). A value is the
 * entry's other 16 bits (its key is the bucket's): a scan reads half the lines the full 32 bits took, and the
 * distance to a query is the key's to the query's half plus the other half's. A bucket that outgrows its room
 * moves to the end of the pool; a full pool is compacted, and grown when that would free less than a quarter of
 * it, so moves cost amortised O(1) and the pool stays within 1.5 times what the buckets hold.
 */
class HalfTable {
  /**
   * Per key two words: entries | room << 16 (values, 16 bits each, in room / 2 words; room refs follow; both at
   * most MAX_BUCKET), and start. 512 KB per table, eight keys per cache line: every probe reads its key's line,
   * and half the footprint of four words per key leaves more of it in the core's cache.
   */
  readonly meta = new Uint32Array(2 * BUCKETS);
  pool = new Uint32Array(1 << 16);
  /** The pool's 16-bit view (bucket values at twice its start). */
  pool16 = new Uint16Array(this.pool.buffer);
  /** Which half of a value the key is (0: the high 16 bits, the values hold the low ones; 1: the reverse). */
  readonly half: 0 | 1;
  #top = 0;
  /** Words of the pool no bucket uses any more. */
  #garbage = 0;

  /** A table keyed by the high (`half` 0) or low 16 bits. */
  constructor(half: 0 | 1) {
    this.half = half;
  }

  add(key: number, value: number, ref: number): boolean {
    const meta = this.meta, k = 2 * key;
    const n = meta[k]! & 0xffff;
    if (n >= MAX_BUCKET) return false;
    let cap = meta[k]! >>> 16;
    if (n === cap) {
      const room = Math.max(4, cap * 2);
      const at = this.#alloc(room + (room >> 1));
      if (n > 0) {
        // Word by word (the values are n / 2 words: n, a full room, is even): a bucket holds at most MAX_BUCKET,
        // and copyWithin, a call into C++, cost more than the copy; a new bucket (most growths) copies nothing.
        const pool = this.pool, from = meta[k + 1]!;
        for (let i = 0; i < n >> 1; i++) pool[at + i] = pool[from + i]!;
        const refs = at + (room >> 1), was = from + (cap >> 1);
        for (let i = 0; i < n; i++) pool[refs + i] = pool[was + i]!;
        this.#garbage += cap + (cap >> 1);
      }
      meta[k + 1] = at;
      cap = room;
    }
    const at = meta[k + 1]!;
    this.pool16[2 * at + n] = this.half === 0 ? value & 0xffff : value >>> 16;
    this.pool[at + (cap >> 1) + n] = ref;
    meta[k] = (n + 1) | (cap << 16);
    return true;
  }

  /** Removes the entry `ref` (in a table at most once); true if it was there. */
  remove(key: number, ref: number): boolean {
    const meta = this.meta, k = 2 * key;
    const n = meta[k]! & 0xffff, cap = meta[k]! >>> 16, at = meta[k + 1]!, pool = this.pool;
    const refs = at + (cap >> 1), values = this.pool16;
    for (let i = 0; i < n; i++) {
      if (pool[refs + i] === ref) {
        values[2 * at + i] = values[2 * at + n - 1]!;
        pool[refs + i] = pool[refs + n - 1]!;
        meta[k] = (n - 1) | (cap << 16);
        if (n - 1 === 0) {
          this.#garbage += cap + (cap >> 1);
          meta[k] = 0;
          meta[k + 1] = 0;
        }
        return true;
      }
    }
    return false;
  }

  /** Start of `words` free words at the end of the pool (compacting or growing it first if needed). */
  #alloc(words: number): number {
    if (this.#top + words > this.pool.length) {
      // Compacted in place while that frees a quarter of the pool, else grown to 1.5 times what is needed.
      const need = this.#top - this.#garbage + words;
      this.#compact(need * 4 > this.pool.length * 3 ? Math.ceil(need * 1.5) : this.pool.length);
    }
    const at = this.#top;
    this.#top += words;
    return at;
  }

  /** Moves every bucket (in key order) to the front of a new pool of `size` words. */
  #compact(size: number): void {
    const old = this.pool, pool = new Uint32Array(size), meta = this.meta;
    let top = 0;
    for (let k = 0; k < 2 * BUCKETS; k += 2) {
      const cap = meta[k]! >>> 16;
      if (cap === 0) continue;
      // Word by word: a subarray and a set a bucket were an object and a call into C++ for a few dozen words.
      const from = meta[k + 1]!, words = cap + (cap >> 1);
      for (let i = 0; i < words; i++) pool[top + i] = old[from + i]!;
      meta[k + 1] = top;
      top += cap + (cap >> 1);
    }
    this.pool = pool;
    this.pool16 = new Uint16Array(pool.buffer);
    this.#top = top;
    this.#garbage = 0;
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
  readonly #hi = new HalfTable(0);
  readonly #lo = new HalfTable(1);
  readonly #sigs: (Signature | undefined)[] = [];
  #frames: Uint32Array = new Uint32Array(0);
  /** The kernel whose memory holds {@link frames} (null: none, plain arrays; undefined: not tried yet). */
  #kernel: BerKernel | null | undefined;
  /** Per slot the block length of its signature (frames), as the slots of {@link frames}. */
  #blockLength = new Uint8Array(0);
  readonly #gen: number[] = [];
  readonly #free: number[] = [];
  readonly #byId = new Map<string, number>();
  /** Slots in insertion order (lazy deletion) for eviction. */
  #order: number[] = [];
  #orderGen: number[] = [];
  #orderHead = 0;
  /** Scratch of {@link lookupProbes}: per probe its bucket's start, entries, room and first value. */
  readonly #probeAt = new Uint32Array(MAX_PROBES);
  readonly #probeN = new Uint32Array(MAX_PROBES);
  readonly #probeCap = new Uint32Array(MAX_PROBES);
  readonly #probeFirst = new Uint32Array(MAX_PROBES);
  /** Scratch of {@link add}: the new signature's bits at {@link FRAME_UNTAKEN_AT}. */
  readonly #untaken = new Uint32Array(SIGNATURE_MAX_FRAMES >> 4);
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

  /** Positions of the unmasked frames of the signature in `slot` (empty when free); a new array. */
  usedFrames(slot: number): Int16Array {
    if (this.#sigs[slot] === undefined) return new Int16Array(0);
    const at = slot * FRAME_WORDS;
    return Int16Array.from({ length: this.#frames[at]! }, (_, x) => framePosition(this.#frames, at, x));
  }

  /**
   * Every slot's unmasked frames, FRAME_WORDS words from slot·FRAME_WORDS (see {@link FRAME_WORDS}): what the
   * matcher's pre-check samples, in one array, so that a check of a random signature touches a few adjacent
   * cache lines rather than the signature object, its fingerprint and its position list. Replaced when slots
   * are added beyond its size: read it again after adding.
   */
  get frames(): Uint32Array {
    return this.#frames;
  }

  /**
   * Block length (frames) of the signature in `slot` (of the last one when free): what the forward search needs
   * of a signature when it queues a candidate, without touching the signature object.
   */
  blockLength(slot: number): number {
    return this.#blockLength[slot] ?? 0;
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
    const fp = sig.fingerprint, untaken = this.#untaken.fill(0);
    const used: number[] = [];
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sig.mask, j)) continue;
      const x = used.length, bit = (x & 15) << 1;
      used.push(j);
      const v = fp[j]!;
      const ref = slot * 256 + j;
      if (this.#hi.add(v >>> 16, v, ref)) this.#stats.entries++;
      else {
        this.#stats.bucketFull++;
        untaken[x >> 4]! |= 1 << bit;
      }
      if (this.#lo.add(v & 0xffff, v, ref)) this.#stats.entries++;
      else {
        this.#stats.bucketFull++;
        untaken[x >> 4]! |= 2 << bit;
      }
    }
    this.#room(slot);
    writeFrameSlot(this.#frames, slot * FRAME_WORDS, fp, used);
    this.#frames.set(untaken, slot * FRAME_WORDS + FRAME_UNTAKEN_AT);
    this.#blockLength[slot] = fp.length;
    this.#stats.added++;
  }

  /** Makes room in {@link frames} for `slot`. */
  #room(slot: number): void {
    if ((slot + 1) * FRAME_WORDS <= this.#frames.length) return;
    // Grows by a quarter (slots are reused, so it stops growing at the most slots ever used).
    const words = Math.max(slot + 1, Math.ceil(this.#frames.length / FRAME_WORDS * 1.25)) * FRAME_WORDS;
    if (this.#kernel === undefined && this.#frames.length === 0) {
      // Room at once for the most slots this index takes (its most active signatures and a ring per target
      // stream): pages no slot has used are never touched, so they cost address space, not memory. Growing a
      // WebAssembly memory detaches its buffer, and V8 lets optimised code skip a "detached?" check on every
      // typed-array access only while no buffer in the process was ever detached (the ArrayBufferDetaching
      // protector): the first detach deoptimised every function compiled so far (172 at once in an analyze of
      // the bench corpus, 12% more compiles in all), and all code compiled after it checks.
      const reserved = Math.min(this.maxActive + RESERVED_RING_SLOTS, MAX_RESERVED_SLOTS);
      this.#kernel = berKernel(4 * Math.max(words, reserved * FRAME_WORDS)) ?? null;
    }
    if (this.#kernel) {
      // In the kernel's memory, grown only past the reserved slots: growing keeps the slots where they are (and
      // detaches every earlier view).
      const memory = this.#kernel.memory;
      const pages = Math.ceil((SLOTS_AT + 4 * words) / 65536) - memory.buffer.byteLength / 65536;
      if (pages > 0) memory.grow(pages);
      this.#frames = new Uint32Array(memory.buffer, SLOTS_AT, words);
    } else {
      const grown = new Uint32Array(words);
      grown.set(this.#frames);
      this.#frames = grown;
    }
    const lengths = new Uint8Array(words / FRAME_WORDS);
    lengths.set(this.#blockLength);
    this.#blockLength = lengths;
  }

  /**
   * The kernel over {@link frames}' memory (ber_kernel.ts), undefined without WebAssembly (or before the first
   * slot is written).
   */
  get kernel(): BerKernel | undefined {
    return this.#kernel ?? undefined;
  }

  /**
   * A slot of {@link frames} of its own for a matcher's ring of recent target frames (ber_kernel.ts
   * RING_FRAMES), which no signature takes until {@link releaseRing}; -1 without a kernel.
   */
  reserveRing(): number {
    if (this.#kernel === null) return -1;
    const slot = this.#free.pop() ?? this.#sigs.length;
    this.#sigs[slot] = undefined;
    this.#room(slot);
    if (!this.#kernel) {
      this.#free.push(slot);
      return -1;
    }
    return slot;
  }

  /** Gives back a slot of {@link reserveRing}. */
  releaseRing(slot: number): void {
    this.#free.push(slot);
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
    const fp = sig.fingerprint, frames = this.#frames, untaken = slot * FRAME_WORDS + FRAME_UNTAKEN_AT;
    for (let j = 0, x = 0; j < fp.length; j++) {
      if (isMasked(sig.mask, j)) continue;
      const v = fp[j]!;
      const ref = slot * 256 + j, bits = frames[untaken + (x >> 4)]! >>> ((x & 15) << 1);
      x++;
      // An entry its table did not take is in no bucket (removing it would scan a full one for nothing).
      if ((bits & 1) === 0 && this.#hi.remove(v >>> 16, ref)) this.#stats.entries--;
      if ((bits & 2) === 0 && this.#lo.remove(v & 0xffff, ref)) this.#stats.entries--;
    }
    this.#byId.delete(sig.id);
    this.#sigs[slot] = undefined;
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
    const meta = table.meta, k = 2 * key;
    const n = meta[k]! & 0xffff;
    if (n === 0 || n >= MAX_BUCKET) return;
    // The key's distance to the query's half, and the query's other half for the values.
    const base = popcount16(key ^ (half === 0 ? query >>> 16 : query & 0xffff));
    if (base > maxDist) return;
    const q = half === 0 ? query & 0xffff : query >>> 16;
    const v = table.pool16, pool = table.pool;
    const at = meta[k + 1]!, refs = at + ((meta[k]! >>> 16) >> 1);
    for (let i = 0; i < n; i++) {
      const d = base + popcount16(v[2 * at + i]! ^ q);
      if (d <= maxDist) {
        const ref = pool[refs + i]!;
        out.push(ref >>> 8, ref & 255, d);
      }
    }
  }

  /**
   * {@link lookupHalf} for `count` probes at once, in order: probe p is (half `probes[2p]`, key
   * `probes[2p + 1]`). The same hits in the same order as one lookupHalf per probe; faster, because every
   * probe's bucket header and first values are loaded before any bucket is scanned (lookups wait on memory, and
   * independent loads overlap).
   */
  lookupProbes(probes: Int32Array, count: number, query: number, maxDist: number, out: HitBuffer): void {
    const hiMeta = this.#hi.meta, loMeta = this.#lo.meta;
    const hiPool32 = this.#hi.pool, loPool32 = this.#lo.pool;
    const at = this.#probeAt, n = this.#probeN, cap = this.#probeCap;
    if (count > at.length) throw new RangeError(`lookupProbes: at most ${at.length} probes`);
    for (let p = 0; p < count; p++) {
      const k = 2 * probes[2 * p + 1]!;
      const meta = probes[2 * p] === 0 ? hiMeta : loMeta;
      const nc = meta[k]!;
      n[p] = nc & 0xffff;
      cap[p] = nc >>> 16;
      at[p] = meta[k + 1]!;
    }
    // The first two values of every bucket, loaded together (a miss each) rather than as each scan starts.
    const first = this.#probeFirst;
    for (let p = 0; p < count; p++) first[p] = (probes[2 * p] === 0 ? hiPool32 : loPool32)[at[p]!]!;
    const qHi = query >>> 16, qLo = query & 0xffff;
    for (let p = 0; p < count; p++) {
      const np = n[p]!;
      if (np === 0 || np >= MAX_BUCKET) continue;
      const hi = probes[2 * p] === 0;
      // The key's distance to the query's half (the values are the other half).
      const base = popcount16(probes[2 * p + 1]! ^ (hi ? qHi : qLo));
      if (base > maxDist) continue;
      const w = hi ? hiPool32 : loPool32, q = hi ? qLo : qHi, qq = q | (q << 16), most = maxDist - base;
      const a = at[p]!, refs = a + (cap[p]! >> 1);
      // Two values a word (a bucket's values start on a word, and its room is even): both distances in one
      // SWAR popcount, each half's count in its low byte.
      for (let i = 0; i < np; i += 2) {
        let x = (i === 0 ? first[p]! : w[a + (i >> 1)]!) ^ qq;
        x -= (x >>> 1) & 0x55555555;
        x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
        x = (x + (x >>> 4)) & 0x0f0f0f0f;
        x += x >>> 8;
        const d0 = x & 0x1f, d1 = (x >>> 16) & 0x1f;
        if (d0 <= most) {
          const ref = w[refs + i]!;
          out.push(ref >>> 8, ref & 255, base + d0);
        }
        if (d1 <= most && i + 1 < np) {
          const ref = w[refs + i + 1]!;
          out.push(ref >>> 8, ref & 255, base + d1);
        }
      }
    }
  }
}
