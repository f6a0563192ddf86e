/**
 * Per-stream state with idle expiry in event time: calls end, and their pipelines must not live forever.
 * @module
 */

/** One stream's state plus when it was last fed (event time). */
interface Entry<T> {
  value: T;
  lastNs: bigint;
}

/** A map of stream states that forgets streams idle for longer than `idleNs` of event time. */
export class StreamTable<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #idleNs: bigint;

  /** `idleNs`: event time without a message after which a stream is dropped. */
  constructor(idleNs: bigint) {
    this.#idleNs = idleNs;
  }

  /** The state of `key`, created by `make` on first use; marks the stream as fed at `nowNs`. */
  touch(key: string, nowNs: bigint, make: () => T): { value: T; created: boolean } {
    const e = this.#entries.get(key);
    if (e) {
      if (nowNs > e.lastNs) e.lastNs = nowNs;
      return { value: e.value, created: false };
    }
    const value = make();
    this.#entries.set(key, { value, lastNs: nowNs });
    return { value, created: true };
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

  get size(): number {
    return this.#entries.size;
  }
}
