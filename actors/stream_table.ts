/**
 * Per-stream state with idle expiry in event time: calls end, and their pipelines must not live forever. The
 * number of streams is bounded too (each costs hundreds of KB): past the cap, the least recently fed stream is
 * evicted and handed back to the caller, which finishes and counts it, when it has been quiet for `quietNs` of
 * event time; otherwise the new stream is refused (the caller counts its rows) and the streams already followed
 * keep going. (Evicting active streams made a node carrying more streams than the cap thrash: each new stream
 * ended a live one, whose next row began it again and ended another, a scan of every stream each time: 55 calls
 * per core and no match at 3,000 streams over a cap of 1,000.)
 *
 * A stream is named by its tap and its key within the tap (two stages may see the same connection): the table
 * looks streams up by the pair and hands back the caller's own typed state, so no key is ever built or parsed.
 * @module
 */

/** One stream's state plus when it was last fed (event time). */
interface Slot<T, Tap> {
  readonly tap: Tap;
  readonly stream: string;
  readonly value: T;
  lastNs: bigint;
  /** When it was last fed, in touches (the LRU order; event times can be wrong, this cannot). */
  seq: number;
}

/** What {@link StreamTable.touch} found or made. */
export interface Touched<T> {
  value: T;
  created: boolean;
  /** The least recently fed stream, removed to make room for a new one (finish and count it). */
  evicted?: T;
}

/**
 * The stream states of a set of taps that forgets streams idle for longer than `idleNs` of event time and holds
 * at most `maxStreams` over all taps (least recently fed first out). Iteration is in creation order (streams are
 * searched and finished in the order they appeared, whatever the cap); finding the least recently fed costs a
 * scan, paid only at the cap.
 */
export class StreamTable<T, Tap = unknown> {
  readonly #byTap = new Map<Tap, Map<string, Slot<T, Tap>>>();
  /** Every live stream, in creation order. */
  readonly #slots = new Set<Slot<T, Tap>>();
  readonly #idleNs: bigint;
  readonly #max: number;
  readonly #quietNs: bigint;
  /** At the cap, new streams are refused without a scan until this event time (none can be quiet enough yet). */
  #refuseUntilNs = -(1n << 62n);
  #seq = 0;
  readonly #found: { value: T; created: false } = { value: undefined as T, created: false };

  /**
   * `idleNs`: event time without a message after which a stream is dropped; `maxStreams`: the cap; `quietNs`: how
   * long the least recently fed stream must have gone without a message to make room at the cap (0: always).
   */
  constructor(idleNs: bigint, maxStreams = Infinity, quietNs = 0n) {
    if (!(maxStreams >= 1)) throw new RangeError(`maxStreams must be >= 1, got ${maxStreams}`);
    this.#idleNs = idleNs;
    this.#max = maxStreams;
    this.#quietNs = quietNs;
  }

  /**
   * The state of `stream` of `tap`, created by `make` on first use; marks the stream as fed at `nowNs`. The result
   * of a stream found is one object reused by every such call (a row each: no allocation per row): read it before
   * the next touch. Undefined when the table is full and no stream has been quiet for `quietNs`: the stream is not
   * followed (its rows are the caller's to count).
   */
  touch(tap: Tap, stream: string, nowNs: bigint, make: () => T): Touched<T> | undefined {
    let streams = this.#byTap.get(tap);
    const s = streams?.get(stream);
    if (s) {
      if (nowNs > s.lastNs) s.lastNs = nowNs;
      s.seq = ++this.#seq;
      const found = this.#found;
      found.value = s.value;
      return found;
    }
    let evicted: T | undefined;
    if (this.#slots.size >= this.#max) {
      if (nowNs < this.#refuseUntilNs) return undefined;
      let oldest: Slot<T, Tap> | undefined;
      for (const o of this.#slots) if (oldest === undefined || o.seq < oldest.seq) oldest = o;
      if (oldest !== undefined) {
        // A stream fed within `quietNs` of this row either way is active (taps interleave a little out of order);
        // one whose time is further ahead is not credible (a clock off) and may go, as may one long quiet.
        const age = nowNs - oldest.lastNs;
        if (age < this.#quietNs && age > -this.#quietNs) {
          // Every stream was fed since; none can be quiet enough before the oldest's time is up.
          this.#refuseUntilNs = oldest.lastNs + this.#quietNs;
          return undefined;
        }
        this.#remove(oldest);
        evicted = oldest.value;
      }
    }
    const slot: Slot<T, Tap> = { tap, stream, value: make(), lastNs: nowNs, seq: ++this.#seq };
    if (!streams) this.#byTap.set(tap, streams = new Map());
    streams.set(stream, slot);
    this.#slots.add(slot);
    return evicted !== undefined
      ? { value: slot.value, created: true, evicted }
      : { value: slot.value, created: true };
  }

  /** The state of `stream` of `tap` without touching it. */
  get(tap: Tap, stream: string): T | undefined {
    return this.#byTap.get(tap)?.get(stream)?.value;
  }

  /** Removes `stream` of `tap`; returns its state. */
  delete(tap: Tap, stream: string): T | undefined {
    const s = this.#byTap.get(tap)?.get(stream);
    if (!s) return undefined;
    this.#remove(s);
    return s.value;
  }

  /** Removes streams idle at `nowNs` and returns them (the caller finishes them). */
  sweep(nowNs: bigint): T[] {
    const out: T[] = [];
    for (const s of this.#slots) {
      if (nowNs - s.lastNs > this.#idleNs) {
        out.push(s.value);
        this.#remove(s);
      }
    }
    return out;
  }

  /** Every live stream's state, in creation order. */
  *values(): IterableIterator<T> {
    for (const s of this.#slots) yield s.value;
  }

  /** Number of live streams. */
  get size(): number {
    return this.#slots.size;
  }

  #remove(s: Slot<T, Tap>): void {
    this.#slots.delete(s);
    const streams = this.#byTap.get(s.tap);
    streams?.delete(s.stream);
    if (streams?.size === 0) this.#byTap.delete(s.tap);
  }
}
