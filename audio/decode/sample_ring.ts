/**
 * A ring of 8 kHz analysis samples addressed by their absolute index in the stream, stored as Int16 so that a
 * target stream can keep its lookback window cheaply (2 bytes a sample: 30 s = 480 KB).
 *
 * Both the streaming fingerprinter and the fine aligner read frames from here, so the samples a sub-fingerprint
 * was computed from can be read again bit for bit at any shift.
 * @module
 */

/**
 * Int16 value of an analysis sample of 1.0. A quarter of Int16 full scale leaves 12 dB of headroom: float32
 * streams may carry a +12 dB gain above full scale, and clipping it here would distort the spectrum; the cost is
 * quantisation noise ~84 dB below full scale, far under any real noise floor.
 */
export const RING_SCALE = 8192;

/** Outcome of {@link SampleRing.write} when the chunk did not simply continue the stream. */
export type RingWriteNote = "ok" | "gap_filled" | "reset" | "overlap_dropped";

/** Int16 ring of analysis samples with absolute addressing. */
export class SampleRing {
  /** Capacity in samples (a power of two). */
  readonly capacity: number;
  readonly #mask: number;
  readonly #data: Int16Array;
  #start = 0;
  #end = 0;
  #empty = true;

  /** A ring holding at least `minSamples` samples. */
  constructor(minSamples: number) {
    let cap = 1024;
    while (cap < minSamples) cap *= 2;
    this.capacity = cap;
    this.#mask = cap - 1;
    this.#data = new Int16Array(cap);
  }

  /** Absolute index of the oldest sample still held. */
  get start(): number {
    return this.#start;
  }

  /** Absolute index just past the newest sample. */
  get end(): number {
    return this.#end;
  }

  /** True until the first write. */
  get empty(): boolean {
    return this.#empty;
  }

  /** The backing store, for readers that index it with {@link SampleRing.mask} themselves (hot loops). */
  get data(): Int16Array {
    return this.#data;
  }

  /** `index & mask` is the slot of absolute sample `index`. */
  get mask(): number {
    return this.#mask;
  }

  /**
   * Appends `samples` whose first sample has absolute index `start`. A forward gap of up to `maxGapFill`
   * samples is filled with zeros (the stream's grid goes on); a longer one resets the ring at `start`
   * (returns "reset", the caller restarts its frame grid there). Samples before `end` are dropped.
   */
  write(start: number, samples: Float32Array, maxGapFill: number): RingWriteNote {
    let note: RingWriteNote = "ok";
    let from = 0;
    if (this.#empty) {
      this.#start = start;
      this.#end = start;
      this.#empty = false;
    } else if (start > this.#end) {
      if (start - this.#end > maxGapFill) {
        this.#start = start;
        this.#end = start;
        note = "reset";
      } else {
        const data = this.#data;
        const mask = this.#mask;
        for (let i = this.#end; i < start; i++) data[i & mask] = 0;
        this.#end = start;
        note = "gap_filled";
      }
    } else if (start < this.#end) {
      from = this.#end - start;
      note = "overlap_dropped";
      if (from >= samples.length) return note;
    }
    const data = this.#data;
    const mask = this.#mask;
    let at = this.#end;
    for (let i = from; i < samples.length; i++, at++) {
      let v = Math.round(samples[i]! * RING_SCALE);
      // NaN from a broken decoder must not poison the spectrum.
      if (!(v >= -32768)) v = v !== v ? 0 : -32768;
      else if (v > 32767) v = 32767;
      data[at & mask] = v;
    }
    this.#end = at;
    if (this.#end - this.#start > this.capacity) this.#start = this.#end - this.capacity;
    return note;
  }

  /** True if samples `[from, from + n)` are all held. */
  has(from: number, n: number): boolean {
    return from >= this.#start && from + n <= this.#end;
  }

  /** Sample `index` as a float in [-1, 1) (0 when not held). */
  at(index: number): number {
    if (index < this.#start || index >= this.#end) return 0;
    return this.#data[index & this.#mask]! / RING_SCALE;
  }
}
