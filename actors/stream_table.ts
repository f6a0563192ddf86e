/**
 * Per-stream state with idle expiry in event time: calls end, and their pipelines must not live forever. The
 * number of streams is bounded too (each costs hundreds of KB): past the cap, the least recently fed stream is
 * evicted and handed back to the caller, which finishes and counts it.
 * @module
 */

/** One stream's state plus when it was last fed (event time). */
interface Entry<T> {
  value: T;
  lastNs: bigint;
  /** When it was last fed, in touches (the LRU order; event times can be wrong, this cannot). */
  seq: number;
}

/** What {@link StreamTable.touch} found or made. */
export interface Touched<T> {
  value: T;
  created: boolean;
  /** The least recently fed stream, removed to make room for a new one (finish and count it). */
  evicted?: [string, T];
}

/**
 * A map of stream states that forgets streams idle for longer than `idleNs` of event time and holds at most
 * `maxStreams` (least recently fed first out). Iteration is in creation order (streams are searched and finished
 * in the order they appeared, whatever the cap); finding the least recently fed costs a scan, paid only at the cap.
 */
export class StreamTable<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #idleNs: bigint;
  readonly #max: number;
  #seq = 0;

  /** `idleNs`: event time without a message after which a stream is dropped; `maxStreams`: the cap. */
  constructor(idleNs: bigint, maxStreams = Infinity) {
    if (!(maxStreams >= 1)) throw new RangeError(`maxStreams must be >= 1, got ${maxStreams}`);
    this.#idleNs = idleNs;
    this.#max = maxStreams;
  }

  /** The state of `key`, created by `make` on first use; marks the stream as fed at `nowNs`. */
  touch(key: string, nowNs: bigint, make: () => T): Touched<T> {
    const e = this.#entries.get(key);
    if (e) {
      if (nowNs > e.lastNs) e.lastNs = nowNs;
      e.seq = ++this.#seq;
      return { value: e.value, created: false };
    }
    let evicted: [string, T] | undefined;
    if (this.#entries.size >= this.#max) {
      let oldest: [string, Entry<T>] | undefined;
      for (const kv of this.#entries) if (oldest === undefined || kv[1].seq < oldest[1].seq) oldest = kv;
      if (oldest !== undefined) {
        this.#entries.delete(oldest[0]);
        evicted = [oldest[0], oldest[1].value];
      }
    }
    const value = make();
    this.#entries.set(key, { value, lastNs: nowNs, seq: ++this.#seq });
    return evicted ? { value, created: true, evicted } : { value, created: true };
  }

  /** The state of `key` without touching it. */
  get(key: string): T | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Removes `key`; returns its state. */
  delete(key: string): T | undefined {
    const e = this.#entries.get(key);
    this.#entries.delete(key);
    return e?.value;
  }

  /** Removes streams idle at `nowNs` and returns them (the caller finishes them). */
  sweep(nowNs: bigint): [string, T][] {
    const out: [string, T][] = [];
    for (const [k, e] of this.#entries) {
      if (nowNs - e.lastNs > this.#idleNs) {
        out.push([k, e.value]);
        this.#entries.delete(k);
      }
    }
    return out;
  }

  /** Every live stream. */
  entries(): IterableIterator<[string, T]> {
    const it = this.#entries.entries();
    return (function* () {
      for (const [k, e] of it) yield [k, e.value] as [string, T];
    })();
  }

  /** Number of live streams. */
  get size(): number {
    return this.#entries.size;
  }
}
