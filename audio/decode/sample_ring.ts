/**
 * A ring of 8 kHz analysis samples addressed by their absolute index in the stream, kept in up to three tiers so
 * that a target stream holds its 30 s lookback in well under a byte a sample:
 *
 * - hot: the newest {@link SampleRing.hotCapacity} samples (default: all of them) as Int16, where the streaming
 *   fingerprinter reads;
 * - 8-bit: the next {@link SampleRing.warmCapacity} samples (default: all the older ones) in blocks of
 *   {@link COLD_BLOCK} as 8-bit G.711 codes. A stream decoded from μ-law or A-law at its own level, the usual
 *   telephony tap, comes back bit for bit; other audio (PCM16, resampled, gained) at G.711's precision (~38 dB
 *   SNR);
 * - 4-bit (only with `warmSamples`): older blocks, coded from their 8-bit values by adpcm4.ts (a second-order
 *   predictor and IMA's adaptive 4-bit step, a 5-byte header per block so each block decodes on its own; ~22 dB
 *   SNR on speech). 133 bytes per 256 samples instead of 257.
 *
 * The streaming fingerprinter reads the hot tier's Int16 samples right after each write. Every other reader
 * (verification, alignment: `has(from, n)`, then `data[i & mask]`) sees a sample as the 8-bit tier holds or will
 * hold it while it is in the hot or 8-bit tier, wherever it is now: a block's code (its law and shift,
 * {@link blockMode}) is chosen from the block before it, so it is known as soon as the block starts. Whether a
 * signature is verified by the forward search (its instant still hot) or by the backward search (a late
 * signature, its instant already 8-bit) depends on how far one actor ran ahead of another; the samples it is
 * verified and aligned on, and so its `ber`, do not.
 *
 * Where the 4-bit tier starts is the ring's own clock: a block goes to it when the 8-bit tier has
 * `warmCapacity` samples after it, i.e. once the ring's end is `hotCapacity + warmCapacity` samples (to within
 * a block) past it. A reader sees a sample's 8-bit value while the end is less than `hotCapacity +
 * warmCapacity - COLD_BLOCK` past it, its 4-bit value once it is more than `hotCapacity + warmCapacity` past
 * it. The 4-bit value depends only on the block's 8-bit values (not on the chunking of writes, nor on when or
 * how often the block was read), so a read far enough on either side of that boundary sees the same values
 * whatever the actor scheduling; the pipeline (TARGET_WARM_SAMPLES) puts it seconds beyond the oldest sample
 * a match verified up to ~6 s late reads, so only signatures later than that verify on 4-bit audio.
 *
 * `has` decodes the range (and any range read since, as far as they fit) into a scratch ring shared by all
 * rings, and `data`/`mask` address that scratch until the next write. The tiers are allocated as the stream
 * grows (a short stream never holds a full lookback). A ring without a cold tier (`hotSamples` ≥ its capacity:
 * the source side) reads its Int16 samples as they are. With a 4-bit tier the capacity is `minSamples` rounded
 * up to a block rather than to a power of two (the 8- and 4-bit tiers index blocks modulo their size).
 * @module
 */

import { decodeBlock, encodeBlock, encodeBlockPair, HEADER_BYTES } from "./adpcm4.ts";
import { HEADER_VALUES, writeHeader, writeHeaderFromSums } from "./adpcm4_format.ts";
import { adpcm4Octet, LANES } from "./adpcm4_simd.ts";
import { g711Block } from "./g711_simd.ts";
import { ALAW_TO_LINEAR, MULAW_TO_LINEAR } from "./codecs.ts";

/**
 * Int16 value of an analysis sample of 1.0. A quarter of Int16 full scale leaves 12 dB of headroom: float32
 * streams may carry a +12 dB gain above full scale, and clipping it here would distort the spectrum; the cost is
 * quantisation noise ~84 dB below full scale, far under any real noise floor.
 */
export const RING_SCALE = 8192;

/** Samples per cold block: one header byte (law and shift) per block. */
export const COLD_BLOCK = 256;
/**
 * The block of absolute sample `i`: a division, where `i >> 8` wraps from sample 2^31 on (a stream ~75 h long at
 * 8 kHz: its cold samples then read as zeros through `at`, and `has` never returned).
 */
const blockOf = (i: number): number => Math.floor(i / COLD_BLOCK);

/** Outcome of {@link SampleRing.write} when the chunk did not simply continue the stream. */
export type RingWriteNote = "ok" | "gap_filled" | "reset" | "overlap_dropped";

/** Options of a {@link SampleRing}. */
export interface SampleRingOptions {
  /**
   * Newest samples kept as Int16 (rounded up to a power of two, at least 4,096); older ones go to the 8-bit cold
   * tier. Default: the whole capacity (no cold tier).
   */
  hotSamples?: number;
  /**
   * Samples after the Int16 tier kept as 8-bit codes (rounded up to whole {@link COLD_BLOCK}s, at least two);
   * older ones go to the 4-bit tier. Default: all of them (no 4-bit tier). With a 4-bit tier the capacity is
   * `minSamples` rounded up to a block, not to a power of two.
   */
  warmSamples?: number;
}

/** Ring value (RING_SCALE = 1.0, i.e. G.711 linear / 4) of each code of one law. */
export function ringValues(linear: Int16Array): Int16Array {
  return Int16Array.from(linear, (v) => v / 4);
}

/** For every ring value v in [-32768, 32767], the code whose ring value is nearest (index v + 32768). */
function nearestCodes(values: Int16Array): Uint8Array {
  const codes = Array.from(values.keys()).sort((a, b) => values[a]! - values[b]! || a - b);
  const out = new Uint8Array(65536);
  let j = 0;
  for (let v = -32768; v <= 32767; v++) {
    while (j + 1 < codes.length && Math.abs(values[codes[j + 1]!]! - v) <= Math.abs(values[codes[j]!]! - v)) {
      j++;
    }
    out[v + 32768] = codes[j]!;
  }
  return out;
}

/**
 * Codes of a law's own values by half their value (index `((v >> 1) + NEAR_HALF) & NEAR_MASK`): the law's values
 * are at least 2 apart, so each has a slot of its own, and all lie within ±8,160. 8 KiB where the nearest-code
 * table is 64 KiB: a G.711 tap's block looks its values up in the CPU's nearest cache. A value that is not the
 * law's gets some code whose value differs from it (then looked up again in the nearest-code table).
 */
const NEAR_HALF = 4096, NEAR_MASK = 8191;

const LAWS: { dec: Int16Array; enc: Uint8Array; own: Uint8Array }[] = [MULAW_TO_LINEAR, ALAW_TO_LINEAR].map(
  (t) => {
    const dec = ringValues(t), enc = nearestCodes(dec), own = new Uint8Array(NEAR_MASK + 1);
    for (const v of dec) own[((v >> 1) + NEAR_HALF) & NEAR_MASK] = enc[v + 32768]!;
    return { dec, enc, own };
  },
);
const MU = LAWS[0]!;
const A = LAWS[1]!;

/** A block's verdict: every held sample of it is a μ-law code at its own level, or an A-law one, or neither. */
const HELD_MU = 8, HELD_A = 16;
/** Block headers: bit 2 A-law, bits 0-1 the shift; bits 3-4 the block's own verdict (for the block after it). */
const HEAD_A = 4, HEAD_SHIFT = 3;
/**
 * Code of a block whose predecessor was neither μ-law nor A-law (or is not held): μ-law at shift 2, whose range
 * (±32,124) holds all of {@link RING_SCALE}'s 12 dB headroom. A shift chosen from the block's own peak would keep
 * more precision in quiet blocks, but could not be known until the block is complete, and a reader of the
 * newest samples would then see other values than a reader of the same samples later.
 */
const LOSSY_HEAD = 2;

/**
 * The header (law and shift) a block is coded with, from the verdict of the block before it: μ-law or A-law at
 * its own level when that block was exactly one of them, else {@link LOSSY_HEAD}. A G.711 tap keeps its codes
 * from its second block on; a stream that turns G.711 (or stops being it) changes code a block later.
 */
export function blockMode(previousVerdict: number | undefined): number {
  if (previousVerdict === undefined) return LOSSY_HEAD;
  if (previousVerdict & HELD_MU) return 0;
  if (previousVerdict & HELD_A) return HEAD_A;
  return LOSSY_HEAD;
}

/**
 * The scratch ring cold reads are decoded into: one for the process (the engine is synchronous per message, and a
 * reader reads right after its `has`). `owner`/`version` say whose samples, as of which write, it holds.
 */
const scratchData = new Int16Array(1 << 16);
const scratch = {
  data: scratchData,
  /** `data` two values a word, for whole 8-bit blocks decoded four codes a read. */
  data32: new Int32Array(scratchData.buffer),
  mask: (1 << 16) - 1,
  owner: undefined as SampleRing | undefined,
  version: -1,
  from: 0,
  to: 0,
};

/**
 * Counters over the process, for the bench and tests: cold-tier reads (`samples` decoded from either tier, `old`
 * of them from the 4-bit one), reallocations of the tiers, blocks coded to 4 bits by the kernel's lanes.
 */
export const coldReadStats = { materialized: 0, samples: 0, old: 0, grown: 0, octetBlocks: 0 };

/**
 * Bytes of a cold tier's first array (8-bit codes, 4-bit nibbles; at most what the capacity needs): at the run
 * task's MALLOC_MMAP_THRESHOLD_ (32 KiB) every array of a tier is a mapping of its own, given back to the system
 * when the tier grows or the stream ends. Doubling from 4 KiB and 2 KiB left each stream's first three or four
 * arrays as holes in the C heap (~6 MB of peak RSS at 1,000 streams); a stream shorter than ~1.5 s holds up to
 * 28 KiB more. The replaced arrays are left to the collector: detaching them (`buffer.transfer(0)`) would free
 * them at once, but the first detached ArrayBuffer of the process makes V8 check every typed-array access for
 * detachment from then on (~10% more CPU for `run --capture`).
 */
export const FIRST_TIER_BYTES = 32768;
/**
 * A cold tier up to this size (the default 30 s lookback's: 80 KB of 8-bit codes, 78 KB of nibbles) is allocated
 * whole when first needed rather than doubled from {@link FIRST_TIER_BYTES}: mapped on its own at the run task's
 * MALLOC_MMAP_THRESHOLD_, its pages are resident only once samples reach them, so it costs no more than the
 * doubled arrays, and it leaves none behind. The replaced arrays are old by then and go only at a full
 * collection: at 1,000 streams started together `run --capture` held ~20-60 MB of them at its peak.
 */
export const WHOLE_TIER_BYTES = 1 << 20;

/** A 4-bit block's decoded values, for `at` (one block cached). */
const oldBlock = { data: new Int16Array(COLD_BLOCK), owner: undefined as SampleRing | undefined, key: -1 };
/** A block's 8-bit values on their way to the 4-bit tier, and the next block's when both are coded at once. */
const ageing = new Int16Array(COLD_BLOCK);
const ageingNext = new Int16Array(COLD_BLOCK);
const ageing32 = new Int32Array(ageing.buffer);
const ageingNext32 = new Int32Array(ageingNext.buffer);
/** A block's first values in a row, for its 4-bit header when they were written a lane of the kernel's. */
const leadValues = new Int16Array(HEADER_VALUES);

/** Two-tier ring of analysis samples with absolute addressing (see the module doc). */
export class SampleRing {
  /**
   * Samples held at most: the oldest are forgotten beyond it. A power of two, or with a 4-bit tier `minSamples`
   * rounded up to a block.
   */
  readonly capacity: number;
  /** Newest samples kept as Int16 once the stream is that long (a power of two). */
  readonly hotCapacity: number;
  /**
   * Samples before the hot tier's end kept as 8-bit codes (whole blocks); older ones are 4-bit. Equal to the
   * capacity when there is no 4-bit tier.
   */
  readonly warmCapacity: number;
  #hot: Int16Array;
  /** `#hot` two samples a word (little-endian: the lower-indexed one in the low half), for the cold coders. */
  #hot32: Int32Array;
  #hotMask: number;
  /** Cold blocks by absolute block number modulo `#blocks`; `#codes` holds COLD_BLOCK codes per block. */
  #codes = new Uint8Array(0);
  /** `#codes` four a word (the lowest-indexed in the low byte). */
  #codes32 = new Uint32Array(0);
  #heads = new Uint8Array(0);
  #blocks = 0;
  readonly #maxBlocks: number;
  /**
   * 4-bit blocks by absolute block number modulo `#oldBlocks`: COLD_BLOCK / 2 bytes of codes and HEADER_BYTES
   * of header each (adpcm4.ts).
   */
  #nibbles = new Uint8Array(0);
  #oldHeads = new Uint8Array(0);
  #oldBlocks = 0;
  readonly #maxOld: number;
  /**
   * Blocks {@link #aheadFrom} to {@link #aheadTo} (exclusive) were coded to 4 bits ahead of their turn, together
   * with the block before them (adpcm4_simd.ts: sixteen blocks' coding chains in the lanes of a WebAssembly
   * kernel; or adpcm4.ts's encodeBlockPair, two side by side in JS), straight into their slots
   * of the 4-bit tier (no reader reads a block there before its turn, and the blocks the slots held are no
   * longer held: so the tier holds its turn's blocks without growing, and a block stays where it was put). Valid
   * while the ring has not restarted since ({@link #aheadResets}) and the block is wholly held when its turn
   * comes: it was coded from all its 8-bit values, which do not change while it is in the 8-bit tier. Coded into
   * a buffer of its own instead, it was copied at its turn: more arrays a block touches, cache misses with a
   * thousand streams.
   */
  #aheadFrom = -1;
  #aheadTo = -1;
  #aheadResets = -1;
  /** Samples before this absolute index are encoded in the cold tier (a multiple of COLD_BLOCK). */
  #coldEnd = 0;
  /** Cold samples before this absolute index are in the 4-bit tier, from it on 8-bit (a multiple of COLD_BLOCK). */
  #warmStart = 0;
  #start = 0;
  #end = 0;
  #empty = true;
  /** Bumped by every write: a scratch decoded before it is stale. */
  #version = 0;
  /** `data`/`mask` address the scratch (decoded cold range) rather than the hot tier. */
  #viewScratch = false;
  /** Restarts so far: a cached verdict of an earlier run of the ring is stale. */
  #resets = 0;
  /** The last verdict computed from the hot tier (a read decodes block after block, each needing the one before). */
  #lastVerdictBlock = -1;
  #lastVerdictVersion = -1;
  #lastVerdict = 0;
  /**
   * The verdict of the block evicted last, which the next one's code comes from: kept here, not read back from
   * `#heads` (with a thousand streams, a cache miss a block).
   */
  #evictedBlock = -1;
  #evictedVersion = -1;
  #evictedVerdict = 0;

  /** A ring holding at least `minSamples` samples. */
  constructor(minSamples: number, opts: SampleRingOptions = {}) {
    let cap = 1024;
    while (cap < minSamples) cap *= 2;
    let hot = 4096;
    while (hot < Math.min(cap, opts.hotSamples ?? cap)) hot *= 2;
    this.hotCapacity = Math.min(hot, cap);
    // Blocks the cold tiers hold at most: those a capacity's worth of samples after the Int16 tier can touch,
    // and one more (`#start` passes the oldest block at the end of a write's run, after the run evicted).
    const coldBlocks = (c: number) => Math.ceil((c - this.hotCapacity) / COLD_BLOCK) + 2;
    const warm = Math.max(2, Math.ceil((opts.warmSamples ?? Infinity) / COLD_BLOCK));
    if (this.hotCapacity < cap && warm < coldBlocks(Math.ceil(minSamples / COLD_BLOCK) * COLD_BLOCK)) {
      cap = Math.ceil(minSamples / COLD_BLOCK) * COLD_BLOCK;
      this.#maxBlocks = warm;
      // More: the blocks coded ahead (#aheadFrom) go to their slots while the tier is full.
      this.#maxOld = coldBlocks(cap) - warm + LANES - 1;
      this.warmCapacity = warm * COLD_BLOCK;
    } else {
      this.#maxBlocks = this.hotCapacity >= cap ? 0 : coldBlocks(cap);
      this.#maxOld = 0;
      this.warmCapacity = cap;
    }
    this.capacity = cap;
    const first = Math.min(this.hotCapacity, 4096);
    this.#hot = new Int16Array(first);
    this.#hot32 = new Int32Array(this.#hot.buffer);
    this.#hotMask = first - 1;
  }

  /** Absolute index of the oldest sample still held. */
  get start(): number {
    return this.#start;
  }

  /** Absolute index just past the newest sample. */
  get end(): number {
    return this.#end;
  }

  /**
   * Samples before this absolute index read their 4-bit values, which never change again; a sample at or after
   * it reads a value that changes once more when its block ages to the 4-bit tier. A reader that keeps what it
   * computed from samples (levels, frames) to reuse it later must drop what read samples in `[then, now)` of
   * this index. Without a 4-bit tier, nothing ever ages and this stays where the ring last started.
   */
  get finalBefore(): number {
    return this.#warmStart;
  }

  /** True until the first write. */
  get empty(): boolean {
    return this.#empty;
  }

  /**
   * The Int16 samples readers index with {@link SampleRing.mask}: the hot tier, or after a `has` that reached the
   * cold tier, the scratch it was decoded into (until the next write).
   */
  get data(): Int16Array {
    return this.#scratchValid() ? scratch.data : this.#hot;
  }

  /** `index & mask` is the slot of absolute sample `index` in {@link SampleRing.data}. */
  get mask(): number {
    return this.#scratchValid() ? scratch.mask : this.#hotMask;
  }

  /** Bytes allocated for samples (both tiers), for capacity planning. */
  get bytes(): number {
    return this.#hot.byteLength + this.#codes.byteLength + this.#heads.byteLength + this.#nibbles.byteLength +
      this.#oldHeads.byteLength;
  }

  /**
   * Bytes for samples once the ring holds its whole capacity (both tiers at their largest, the block coded
   * ahead): what a long stream costs, whatever it holds now (the tiers are allocated as the stream grows).
   */
  get fullBytes(): number {
    const old = this.#maxOld * (COLD_BLOCK / 2 + HEADER_BYTES);
    return this.hotCapacity * 2 + this.#maxBlocks * (COLD_BLOCK + 1) + old;
  }

  /**
   * Appends `samples` whose first sample has absolute index `start`. A forward gap of up to `maxGapFill`
   * samples is filled with zeros (the stream's grid goes on); a longer one resets the ring at `start`
   * (returns "reset", the caller restarts its frame grid there). Samples before `end` are dropped.
   */
  write(start: number, samples: Float32Array | Int16Array, maxGapFill: number): RingWriteNote {
    this.#version++;
    this.#viewScratch = false;
    let note: RingWriteNote = "ok";
    let from = 0;
    if (this.#empty) {
      this.#restartAt(start);
      this.#empty = false;
    } else if (start > this.#end) {
      if (start - this.#end > maxGapFill) {
        this.#restartAt(start);
        note = "reset";
      } else {
        this.#put(undefined, 0, start - this.#end);
        note = "gap_filled";
      }
    } else if (start < this.#end) {
      from = this.#end - start;
      note = "overlap_dropped";
      if (from >= samples.length) return note;
    }
    this.#put(samples, from, samples.length - from);
    return note;
  }

  /**
   * True if samples `[from, from + n)` are all held. Readers call it before reading them through `data`: a range
   * reaching the cold tier is decoded then.
   */
  has(from: number, n: number): boolean {
    if (!(from >= this.#start && from + n <= this.#end)) return false;
    const to = from + Math.max(0, n);
    if (this.#scratchValid()) {
      if (from >= scratch.from && to <= scratch.to) return true;
      const lo = Math.min(from, scratch.from), hi = Math.max(to, scratch.to);
      // Ranges read one after another stay readable together as long as they fit.
      if (hi - lo <= scratch.data.length) {
        if (from < scratch.from) this.#decodeInto(from, scratch.from);
        if (to > scratch.to) this.#decodeInto(scratch.to, to);
        scratch.from = lo;
        scratch.to = hi;
        return true;
      }
    }
    if (this.#maxBlocks === 0) {
      this.#viewScratch = false;
      return true;
    }
    if (scratch.data.length < to - from) {
      let size = scratch.data.length;
      while (size < to - from) size *= 2;
      scratch.data = new Int16Array(size);
      scratch.data32 = new Int32Array(scratch.data.buffer);
      scratch.mask = size - 1;
    }
    scratch.owner = this;
    scratch.version = this.#version;
    scratch.from = from;
    scratch.to = from;
    this.#decodeInto(from, to);
    scratch.to = to;
    this.#viewScratch = true;
    return true;
  }

  /** Sample `index` as a float in [-1, 1) (0 when not held). */
  at(index: number): number {
    if (index < this.#start || index >= this.#end) return 0;
    return this.#read(index) / RING_SCALE;
  }

  #scratchValid(): boolean {
    return this.#viewScratch && scratch.owner === this && scratch.version === this.#version;
  }

  /** Ring value of held sample `i`. */
  #read(i: number): number {
    if (i >= this.#end - this.#hot.length) return this.#hot[i & this.#hotMask]!;
    const b = blockOf(i);
    if (i < this.#warmStart) {
      const key = b * 64 + (this.#resets & 63);
      if (oldBlock.owner !== this || oldBlock.key !== key) {
        this.#decodeOld(b, 0, COLD_BLOCK, oldBlock.data, 0, COLD_BLOCK - 1);
        oldBlock.owner = this;
        oldBlock.key = key;
      }
      return oldBlock.data[i & (COLD_BLOCK - 1)]!;
    }
    const slot = b % this.#blocks;
    const head = this.#heads[slot]!;
    const law = head & HEAD_A ? A : MU;
    return law.dec[this.#codes[slot * COLD_BLOCK + (i & (COLD_BLOCK - 1))]!]! << (head & HEAD_SHIFT);
  }

  /**
   * Decodes held samples [from, to) into the scratch at their slots: cold ones from their codes, hot ones
   * through the code their block has or will have (the same values either way).
   */
  #decodeInto(from: number, to: number): void {
    const out = scratch.data, m = scratch.mask;
    const hotFrom = Math.max(from, this.#end - this.#hot.length);
    const oldTo = Math.min(to, hotFrom, this.#warmStart);
    for (let i = from; i < oldTo;) {
      const b = blockOf(i), base = b * COLD_BLOCK;
      const stop = Math.min(oldTo, base + COLD_BLOCK);
      this.#decodeOld(b, i - base, stop - base, out, base, m);
      i = stop;
    }
    coldReadStats.old += Math.max(0, oldTo - from);
    // 8-bit: block by block, each block's law and shift looked up once.
    const codes = this.#codes, codes32 = this.#codes32, out32 = scratch.data32;
    for (let i = Math.max(from, oldTo), e = Math.min(to, hotFrom); i < e;) {
      const b = blockOf(i), slot = b % this.#blocks;
      const stop = Math.min(e, (b + 1) * COLD_BLOCK);
      const head = this.#heads[slot]!;
      const dec = (head & HEAD_A ? A : MU).dec, shift = head & HEAD_SHIFT;
      if (stop - i === COLD_BLOCK) {
        // A whole block (most of a read): four codes a load and two values a store, a quarter of the loads and
        // half the stores (each bounds-checked). Its slots in the scratch are consecutive (whole blocks of a
        // power-of-two ring).
        const c = (slot * COLD_BLOCK) >> 2, o = (i & m) >> 1;
        for (let k = 0; k < COLD_BLOCK >> 2; k++) {
          const w = codes32[c + k]!;
          out32[o + 2 * k] = ((dec[w & 255]! << shift) & 0xffff) | (dec[(w >>> 8) & 255]! << (shift + 16));
          out32[o + 2 * k + 1] = ((dec[(w >>> 16) & 255]! << shift) & 0xffff) |
            (dec[w >>> 24]! << (shift + 16));
        }
        i = stop;
        continue;
      }
      const at = slot * COLD_BLOCK - b * COLD_BLOCK;
      for (; i < stop; i++) out[i & m] = dec[codes[at + i]!]! << shift;
    }
    const hot = this.#hot, hm = this.#hotMask;
    for (let i = hotFrom; i < to;) {
      const b = blockOf(i);
      const stop = Math.min(to, (b + 1) * COLD_BLOCK);
      const head = this.#modeOf(b);
      const law = head & HEAD_A ? A : MU, shift = head & HEAD_SHIFT;
      const dec = law.dec, enc = law.enc, half = shift > 0 ? 1 << (shift - 1) : 0;
      for (; i < stop; i++) out[i & m] = dec[enc[((hot[i & hm]! + half) >> shift) + 32768]!]! << shift;
    }
    coldReadStats.materialized++;
    coldReadStats.samples += Math.max(0, hotFrom - from);
  }

  /** Values `lo..hi` of 4-bit block `b` into `out[(base0 + k) & mask]`. */
  #decodeOld(b: number, lo: number, hi: number, out: Int16Array, base0: number, mask: number): void {
    const slot = b % this.#oldBlocks;
    decodeBlock(
      this.#nibbles,
      slot * (COLD_BLOCK >> 1),
      this.#oldHeads,
      slot * HEADER_BYTES,
      lo,
      hi,
      out,
      base0,
      mask,
    );
  }

  /** The header block `b` (held) is coded with: see {@link blockMode}. */
  #modeOf(b: number): number {
    return blockMode(this.#verdictOf(b - 1));
  }

  /** Verdict of block `b` over its held samples (undefined when none is held); `b` is complete or cold. */
  #verdictOf(b: number): number | undefined {
    const first = b * COLD_BLOCK, from = Math.max(first, this.#start);
    if (from >= first + COLD_BLOCK || first + COLD_BLOCK > this.#end) return undefined;
    if (first < this.#coldEnd) {
      if (this.#evictedBlock === b && this.#evictedVersion === this.#resets) return this.#evictedVerdict;
      return this.#heads[b % this.#blocks]! & (HELD_MU | HELD_A);
    }
    if (this.#lastVerdictBlock === b && this.#lastVerdictVersion === this.#resets) return this.#lastVerdict;
    const hot = this.#hot, hm = this.#hotMask;
    let mu = HELD_MU, a = HELD_A;
    for (let i = from; i < first + COLD_BLOCK && (mu | a) !== 0; i++) {
      const v = hot[i & hm]!;
      if (mu && MU.dec[MU.enc[v + 32768]!]! !== v) mu = 0;
      if (a && A.dec[A.enc[v + 32768]!]! !== v) a = 0;
    }
    this.#lastVerdictBlock = b;
    this.#lastVerdictVersion = this.#resets;
    this.#lastVerdict = mu | a;
    return mu | a;
  }

  #restartAt(start: number): void {
    this.#resets++;
    this.#start = start;
    this.#end = start;
    this.#coldEnd = Math.floor(start / COLD_BLOCK) * COLD_BLOCK;
    this.#warmStart = this.#coldEnd;
  }

  /**
   * Appends `count` samples (`src[offset..]`: floats, or ring values as they are; or zeros), evicting the oldest
   * hot samples to the cold tier.
   */
  #put(src: Float32Array | Int16Array | undefined, offset: number, count: number): void {
    // In runs short enough that every block evicted before a run was written by an earlier one.
    const run = this.hotCapacity >> 1;
    for (let done = 0; done < count;) {
      const n = Math.min(run, count - done);
      const to = this.#end + n;
      if (to - this.#start > this.#hot.length && this.#hot.length < this.hotCapacity) this.#growHot(to);
      if (this.#maxBlocks > 0) {
        // Only blocks written whole: with the Int16 tier still growing a run can reach past the room of a block the
        // stream (or a restart) began inside, before its samples are written (they are held in that tier until
        // then: it holds [start, to) once grown, and a run is at most half a full one).
        while (this.#coldEnd < to - this.#hot.length && this.#coldEnd + COLD_BLOCK <= this.#end) {
          this.#evictBlock();
        }
      }
      const data = this.#hot, mask = this.#hotMask;
      let at = this.#end;
      if (src instanceof Int16Array) {
        // Ring values, copied as they are: a whole chunk (the usual message; a chunk with samples dropped or
        // written in runs is shorter than its array) that does not wrap with `set`, a memmove; else a loop
        // (`set` would need a view made).
        if (n === src.length && (at & mask) + n <= data.length) {
          data.set(src, at & mask);
        } else for (let i = offset + done, e = offset + done + n; i < e; i++, at++) data[at & mask] = src[i]!;
      } else if (src) {
        for (let i = offset + done, e = offset + done + n; i < e; i++, at++) {
          // Math.round (half up) clamped to Int16, ~2x cheaper: in range, floor(x + 0.5) as the int32
          // truncation of a positive sum. x + 32768.5 is exact for |x| ≥ 2^-14 (a float32 times 2^13 has no
          // bits below 2^-37 there); below, it rounds to within 2^-14 of 32768.5, whose floor is x's: 0.
          const x = src[i]! * RING_SCALE;
          // NaN from a broken decoder must not poison the spectrum: 0.
          data[at & mask] = x >= -32768.5 && x < 32767.5
            ? ((x + 32768.5) | 0) - 32768
            : x < 0
            ? -32768
            : x > 0
            ? 32767
            : 0;
        }
      } else {
        for (; at < to; at++) data[at & mask] = 0;
      }
      this.#end = to;
      if (to - this.#start > this.capacity) this.#start = to - this.capacity;
      done += n;
    }
  }

  /** Doubles the hot tier (up to its capacity) until it holds [start, to). */
  #growHot(to: number): void {
    let size = this.#hot.length;
    while (size < this.hotCapacity && size < to - this.#start) size *= 2;
    const grown = new Int16Array(size);
    const m = size - 1, old = this.#hot, om = this.#hotMask;
    // In runs that wrap in neither ring (three at most): memmoves, where a sample at a time cost ~0.7% of the
    // live sensor's busy time (a source ring doubles three times as its stream starts).
    for (let i = this.#start; i < this.#end;) {
      const from = i & om, to = i & m;
      const n = Math.min(this.#end - i, old.length - from, size - to);
      grown.set(old.subarray(from, from + n), to);
      i += n;
    }
    this.#hot = grown;
    this.#hot32 = new Int32Array(grown.buffer);
    this.#hotMask = m;
  }

  /** Encodes the block starting at `#coldEnd` (still in the hot tier) into the cold tier. */
  #evictBlock(): void {
    const b = blockOf(this.#coldEnd);
    // From the block before it, which may be the 8-bit block about to go to the 4-bit tier.
    const head = this.#modeOf(b);
    if (this.#maxOld > 0) {
      while (this.#coldEnd - this.#warmStart >= this.warmCapacity) this.#ageBlock();
    }
    const live = b + 1 - Math.max(blockOf(this.#start), blockOf(this.#warmStart));
    // At full size the oldest block's slot is reused: `#start` passes it at the end of this write (it lags by
    // up to a write's run here), so growing for it would copy the whole tier on every block.
    if (live > this.#blocks && this.#blocks < this.#maxBlocks) this.#growCold(live);
    const slot = b % this.#blocks;
    const base = this.#coldEnd, at = slot * COLD_BLOCK;
    // Held samples only: a block the ring restarted in holds older samples of nothing.
    const held = Math.max(0, this.#start - base);
    let verdict: number;
    if (head === 0 || head === HEAD_A) {
      // A G.711 tap at its own level (the usual block): its law's codes, nearest (a value the law holds comes
      // back exactly), and whether every held sample is such a value, in one pass: G.711's encoder computed
      // branch-free in WebAssembly SIMD (g711_simd.ts), eight samples a vector; where that does not run, table
      // lookups (the same encoder computed in JS, ~12 operations a sample, cost twice the CPU of the tables).
      // The other law's check stops at the first sample it misses; the verdict puts μ-law first.
      const diff = this.#encodeChecked(head ? A : MU, base, at, held);
      const mu = head === 0 ? diff === 0 : this.#exactIn(MU, base, held);
      verdict = mu ? HELD_MU : (head === 0 ? this.#exactIn(A, base, held) : diff === 0) ? HELD_A : 0;
    } else {
      // Lossy audio (PCM16, resampled): its codes at its shift; both checks stop at the first miss.
      this.#encode(head & HEAD_A ? A : MU, base, at, head & HEAD_SHIFT);
      verdict = this.#exactIn(MU, base, held) ? HELD_MU : this.#exactIn(A, base, held) ? HELD_A : 0;
    }
    this.#heads[slot] = head | verdict;
    this.#evictedBlock = b;
    this.#evictedVersion = this.#resets;
    this.#evictedVerdict = verdict;
    this.#coldEnd += COLD_BLOCK;
  }

  /**
   * Codes of `law` at its own level (nearest) for the hot block at `base`; zero if samples `from`.. are all
   * codes of it (each value given back by its code), else not.
   */
  #encodeChecked(law: (typeof LAWS)[number], base: number, at: number, from: number): number {
    const hot = this.#hot, hm = this.#hotMask, codes = this.#codes, enc = law.enc, dec = law.dec;
    // Samples before `from` (not held) are coded but not checked, in a loop of their own: the checked loop
    // has no compare a sample (~3% of the ring's writes). (A block coded at its law's own level follows a held
    // block, so it is wholly held: `from` is 0 here but for a caller elsewhere.)
    let diff = 0;
    if (from === 0) {
      const hot32 = this.#hot32, codes32 = this.#codes32, h = (base & hm) >> 1, o = at >> 2;
      const simd = g711Block();
      if (simd) {
        // Coded and checked in WebAssembly (g711_simd.ts), copies in and out included ~3.5x faster than the
        // loop below: 125 ns a block where it took ~450 (1.7% of analyze's profile).
        simd.values.set(hot.subarray(h << 1, (h << 1) + COLD_BLOCK));
        if (simd.encode(law === A ? 1 : 0) === 0) {
          codes.set(simd.codes, at);
          return 0;
        }
        diff = 1;
      } else {
        // Four samples a turn, read two a word and their codes written four a word: a quarter of the loads and
        // stores (each bounds-checked), ~30% less time (measured in a loop). The block does not wrap in the
        // ring (both are whole blocks).
        // Looked up by the law's own values first (law.own): a block that is not all of them is coded again
        // with the nearest codes.
        const own = law.own;
        for (let i = 0; i < COLD_BLOCK >> 2; i++) {
          const w0 = hot32[h + 2 * i]!, w1 = hot32[h + 2 * i + 1]!;
          const v0 = (w0 << 16) >> 16, v1 = w0 >> 16, v2 = (w1 << 16) >> 16, v3 = w1 >> 16;
          const c0 = own[((v0 >> 1) + NEAR_HALF) & NEAR_MASK]!,
            c1 = own[((v1 >> 1) + NEAR_HALF) & NEAR_MASK]!;
          const c2 = own[((v2 >> 1) + NEAR_HALF) & NEAR_MASK]!,
            c3 = own[((v3 >> 1) + NEAR_HALF) & NEAR_MASK]!;
          codes32[o + i] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
          diff |= (dec[c0]! ^ v0) | (dec[c1]! ^ v1) | (dec[c2]! ^ v2) | (dec[c3]! ^ v3);
        }
        if (diff === 0) return 0;
      }
      for (let i = 0; i < COLD_BLOCK >> 2; i++) {
        const w0 = hot32[h + 2 * i]!, w1 = hot32[h + 2 * i + 1]!;
        const v0 = (w0 << 16) >> 16, v1 = w0 >> 16, v2 = (w1 << 16) >> 16, v3 = w1 >> 16;
        const c0 = enc[v0 + 32768]!, c1 = enc[v1 + 32768]!, c2 = enc[v2 + 32768]!, c3 = enc[v3 + 32768]!;
        codes32[o + i] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
      }
      return diff;
    }
    for (let i = 0; i < from; i++) codes[at + i] = enc[hot[(base + i) & hm]! + 32768]!;
    for (let i = from; i < COLD_BLOCK; i++) {
      const v = hot[(base + i) & hm]!;
      const c = enc[v + 32768]!;
      codes[at + i] = c;
      diff |= dec[c]! ^ v;
    }
    return diff;
  }

  /** Codes of `law` at `shift` (rounded to the nearest code) for the hot block at `base`. */
  #encode(law: { enc: Uint8Array }, base: number, at: number, shift: number): void {
    const hot32 = this.#hot32, codes32 = this.#codes32, enc = law.enc;
    const h = (base & this.#hotMask) >> 1, o = at >> 2;
    const half = shift > 0 ? 1 << (shift - 1) : 0;
    // Word by word, as #encodeChecked.
    for (let i = 0; i < COLD_BLOCK >> 2; i++) {
      const w0 = hot32[h + 2 * i]!, w1 = hot32[h + 2 * i + 1]!;
      const c0 = enc[((((w0 << 16) >> 16) + half) >> shift) + 32768]!,
        c1 = enc[(((w0 >> 16) + half) >> shift) + 32768]!;
      const c2 = enc[((((w1 << 16) >> 16) + half) >> shift) + 32768]!,
        c3 = enc[(((w1 >> 16) + half) >> shift) + 32768]!;
      codes32[o + i] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    }
  }

  /** True if samples `from`.. of the hot block at `base` are codes of `law` at its own level (stops at a miss). */
  #exactIn(law: { dec: Int16Array; enc: Uint8Array }, base: number, from: number): boolean {
    const hot = this.#hot, hm = this.#hotMask, enc = law.enc, dec = law.dec;
    for (let i = from; i < COLD_BLOCK; i++) {
      const v = hot[(base + i) & hm]!;
      if (dec[enc[v + 32768]!]! !== v) return false;
    }
    return true;
  }

  /**
   * Moves the oldest 8-bit block (at `#warmStart`) to the 4-bit tier, coded from its 8-bit values: what a reader
   * saw of it before, the 4-bit coder's input, is the same whenever it is aged. When the next block is 8-bit
   * already, both are coded at once, the next one into its slot ahead of its turn ({@link #aheadFrom}); when
   * the next fifteen are, all sixteen at once in the WebAssembly kernel.
   */
  #ageBlock(): void {
    const b = blockOf(this.#warmStart);
    const first = Math.floor(this.#start / COLD_BLOCK);
    if (b >= first) {
      const live = b + 1 - first;
      if (live > this.#oldBlocks && this.#oldBlocks < this.#maxOld) this.#growOld(live);
      // Samples before a restart are not held: the first held one stands in for them (no jump to code).
      const held = Math.max(0, this.#start - b * COLD_BLOCK);
      const slot = b % this.#oldBlocks, at = slot * (COLD_BLOCK >> 1), h = slot * HEADER_BYTES;
      const next = (b + 1) % this.#oldBlocks;
      const octet = adpcm4Octet();
      if (b >= this.#aheadFrom && b < this.#aheadTo && this.#aheadResets === this.#resets && held === 0) {
        // Coded already, in its slot.
      } else if (
        octet && held === 0 && (b + LANES) * COLD_BLOCK <= this.#coldEnd &&
        b + LANES - 1 - this.#oldBlocks < first
      ) {
        // As below, for the next fifteen blocks: their values decoded and their headers' sums made in the kernel
        // too (the codes copied in, a memmove a block; the kernel decodes a lane's law, 0 μ-law and 1 A-law, by
        // G.711's formula, which gives MU.dec's and A.dec's values), the headers from the sums here.
        const codes = this.#codes, blockHeads = this.#heads, lanes = octet.lanes;
        // Sixteen blocks in consecutive slots (all but ~1 turn in 20 with the 10 s tier's 313 slots) go in one
        // copy: a view and a memmove for the sixteen, not one a block (bench/ring_speed.ts -3 to -5%).
        const slot0 = b % this.#blocks, inRow = slot0 + LANES <= this.#blocks;
        if (inRow) octet.allLaneCodes.set(codes.subarray(slot0 * COLD_BLOCK, (slot0 + LANES) * COLD_BLOCK));
        for (let l = 0; l < LANES; l++) {
          const slot8 = (b + l) % this.#blocks, head = blockHeads[slot8]!;
          if (!inRow) octet.laneCodes[l]!.set(codes.subarray(slot8 * COLD_BLOCK, (slot8 + 1) * COLD_BLOCK));
          lanes[l] = head & HEAD_A ? 1 : 0;
          lanes[LANES + l] = head & HEAD_SHIFT;
        }
        octet.decode();
        const heads = this.#oldHeads, params = octet.params, values = octet.values, sums = octet.sums;
        for (let l = 0; l < LANES; l++) {
          const hl = ((b + l) % this.#oldBlocks) * HEADER_BYTES;
          for (let k = 0; k < HEADER_VALUES; k++) leadValues[k] = values[LANES * k + l]!;
          writeHeaderFromSums(
            sums[l]!,
            sums[LANES + l]!,
            sums[2 * LANES + l]!,
            leadValues,
            0,
            COLD_BLOCK,
            heads,
            hl,
          );
          params[l] = (heads[hl + 3]! << 24) >> 24;
          params[LANES + l] = (heads[hl + 4]! << 24) >> 24;
          params[2 * LANES + l] = heads[hl + 2]!;
        }
        octet.run();
        coldReadStats.octetBlocks += LANES;
        const old0 = b % this.#oldBlocks;
        if (old0 + LANES <= this.#oldBlocks) this.#nibbles.set(octet.allCodes, old0 * (COLD_BLOCK >> 1));
        else {
          for (let l = 0; l < LANES; l++) {
            this.#nibbles.set(octet.codes[l]!, ((b + l) % this.#oldBlocks) * (COLD_BLOCK >> 1));
          }
        }
        this.#aheadFrom = b + 1;
        this.#aheadTo = b + LANES;
        this.#aheadResets = this.#resets;
      } else if ((b + 2) * COLD_BLOCK <= this.#coldEnd && b + 1 - this.#oldBlocks < first) {
        // The next block is wholly held (this one is, from `held` on) and final in the 8-bit tier, and the block
        // its slot held is no longer held (always so with the tier's extra slot; checked all the same, as a held
        // block overwritten would read wrong without a sign).
        if (held === 0) this.#headedValues(b, ageing, this.#oldHeads, h);
        else {
          this.#eightBitValues(b, held, ageing);
          writeHeader(ageing, 0, COLD_BLOCK, this.#oldHeads, h);
        }
        this.#headedValues(b + 1, ageingNext, this.#oldHeads, next * HEADER_BYTES);
        encodeBlockPair(
          COLD_BLOCK,
          ageing,
          0,
          this.#nibbles,
          at,
          this.#oldHeads,
          h,
          ageingNext,
          0,
          this.#nibbles,
          next * (COLD_BLOCK >> 1),
          this.#oldHeads,
          next * HEADER_BYTES,
          true,
        );
        this.#aheadFrom = b + 1;
        this.#aheadTo = b + 2;
        this.#aheadResets = this.#resets;
      } else {
        this.#eightBitValues(b, held, ageing);
        encodeBlock(ageing, 0, COLD_BLOCK, this.#nibbles, at, this.#oldHeads, h);
      }
    }
    this.#warmStart += COLD_BLOCK;
  }

  /**
   * The values of wholly held 8-bit block `b` into `out`, and its 4-bit header from them (writeHeader's sums
   * made as the values are: one pass over them instead of two).
   */
  #headedValues(b: number, out: Int16Array, heads: Uint8Array, h: number): void {
    const from = (b % this.#blocks) * COLD_BLOCK, head = this.#heads[b % this.#blocks]!;
    const dec = (head & HEAD_A ? A : MU).dec, shift = head & HEAD_SHIFT, codes32 = this.#codes32;
    const out32 = out === ageing ? ageing32 : ageingNext32, o = from >> 2;
    // As writeHeader: values scaled down by 16, sums kept int32 (the first two values' terms as with zeros
    // before them). A law's value at shift ≤ 2 fits an Int16. Four codes read a word, two values written a
    // word: a quarter of the loads and half the stores (each bounds-checked).
    let s0 = 0, s1 = 0, s2 = 0, v1 = 0, v2 = 0;
    for (let i = 0; i < COLD_BLOCK >> 2; i++) {
      const w = codes32[o + i]!;
      const x0 = dec[w & 255]! << shift, x1 = dec[(w >>> 8) & 255]! << shift;
      const x2 = dec[(w >>> 16) & 255]! << shift, x3 = dec[w >>> 24]! << shift;
      out32[2 * i] = (x0 & 0xffff) | (x1 << 16);
      out32[2 * i + 1] = (x2 & 0xffff) | (x3 << 16);
      const y0 = x0 >> 4, y1 = x1 >> 4, y2 = x2 >> 4, y3 = x3 >> 4;
      s0 = (s0 + y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3) | 0;
      s1 = (s1 + y0 * v1 + y1 * y0 + y2 * y1 + y3 * y2) | 0;
      s2 = (s2 + y0 * v2 + y1 * v1 + y2 * y0 + y3 * y1) | 0;
      v2 = y2;
      v1 = y3;
    }
    writeHeaderFromSums(s0, s1, s2, out, 0, COLD_BLOCK, heads, h);
  }

  /** The values of 8-bit block `b` into `out`, its first `held` (not held) standing in as its first held one. */
  #eightBitValues(b: number, held: number, out: Int16Array): void {
    const from = (b % this.#blocks) * COLD_BLOCK, head = this.#heads[b % this.#blocks]!;
    const dec = (head & HEAD_A ? A : MU).dec, shift = head & HEAD_SHIFT, codes = this.#codes;
    for (let k = held; k < COLD_BLOCK; k++) out[k] = dec[codes[from + k]!]! << shift;
    out.fill(out[held]!, 0, held);
  }

  /** Grows the 4-bit tier (whole, or doubling up to what the capacity needs) to hold `live` blocks. */
  #growOld(live: number): void {
    coldReadStats.grown++;
    const half = COLD_BLOCK >> 1;
    let blocks = Math.max(FIRST_TIER_BYTES / half, this.#oldBlocks);
    while (blocks < live) blocks *= 2;
    blocks = this.#maxOld * half <= WHOLE_TIER_BYTES ? this.#maxOld : Math.min(blocks, this.#maxOld);
    const nibbles = new Uint8Array(blocks * half), heads = new Uint8Array(blocks * HEADER_BYTES);
    const first = blockOf(this.#start), last = blockOf(this.#warmStart);
    for (let b = Math.max(first, last - this.#oldBlocks); b < last; b++) {
      const from = b % this.#oldBlocks, to = b % blocks;
      nibbles.set(this.#nibbles.subarray(from * half, (from + 1) * half), to * half);
      heads.set(this.#oldHeads.subarray(from * HEADER_BYTES, (from + 1) * HEADER_BYTES), to * HEADER_BYTES);
    }
    this.#nibbles = nibbles;
    this.#oldHeads = heads;
    this.#oldBlocks = blocks;
  }

  /** Grows the cold tier (whole, or doubling up to what the capacity needs) to hold `live` blocks. */
  #growCold(live: number): void {
    coldReadStats.grown++;
    let blocks = Math.max(FIRST_TIER_BYTES / COLD_BLOCK, this.#blocks);
    while (blocks < live) blocks *= 2;
    blocks = this.#maxBlocks * COLD_BLOCK <= WHOLE_TIER_BYTES
      ? this.#maxBlocks
      : Math.min(blocks, this.#maxBlocks);
    const codes = new Uint8Array(blocks * COLD_BLOCK);
    const heads = new Uint8Array(blocks);
    const first = Math.max(blockOf(this.#start), blockOf(this.#warmStart));
    const last = blockOf(this.#coldEnd);
    for (let b = Math.max(first, last - this.#blocks); b < last; b++) {
      const from = b % this.#blocks, to = b % blocks;
      codes.set(this.#codes.subarray(from * COLD_BLOCK, (from + 1) * COLD_BLOCK), to * COLD_BLOCK);
      heads[to] = this.#heads[from]!;
    }
    this.#codes = codes;
    this.#codes32 = new Uint32Array(codes.buffer);
    this.#heads = heads;
    this.#blocks = blocks;
  }
}

let zeroPiece = new Float32Array(0);
function zeros(n: number): Float32Array {
  if (zeroPiece.length < n) zeroPiece = new Float32Array(n);
  return zeroPiece.subarray(0, n);
}

/**
 * Writes decoded samples to `ring` in pieces its Int16 tier holds, calling `after` after each (`reset`: the ring
 * restarted at the piece): a streaming reader called there (the fingerprinter) reads every sample before it
 * leaves that tier. A gap the ring fills with zeros goes in such pieces too. Gaps longer than half the capacity
 * reset the ring.
 */
export function feedRing(
  ring: SampleRing,
  start: number,
  samples: Float32Array | Int16Array,
  after: (reset: boolean) => void,
): void {
  const piece = Math.min(ring.capacity, ring.hotCapacity) >> 2;
  const maxGapFill = ring.capacity >> 1;
  if (ring.hotCapacity < ring.capacity && !ring.empty && start > ring.end && start - ring.end <= maxGapFill) {
    while (start - ring.end > piece) {
      ring.write(ring.end, zeros(piece), maxGapFill);
      after(false);
    }
  }
  for (let at = 0; at < samples.length; at += piece) {
    // A message's samples usually fit in one piece: no view made for it.
    const chunk = at === 0 && samples.length <= piece
      ? samples
      : samples.subarray(at, Math.min(samples.length, at + piece));
    const note = ring.write(start + at, chunk, maxGapFill);
    after(note === "reset");
  }
}
