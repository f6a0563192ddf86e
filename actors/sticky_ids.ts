/**
 * The context ids that stick to a source stream (a call's ids may come once, e.g. in a Twilio `start` event), kept
 * where a restarted Detector finds them. A Detector's tap intake, its streams and their pipelines are built afresh
 * at every restart (their state may be what crashed it), but a call in progress does not send its ids again: held
 * by the intake, they were lost with it, and every later signature of the call went out without them.
 *
 * So the owner keeps one store across its incarnations and hands it to each new intake. An entry ends with its
 * stream (the intake ends the stream: idle, evicted), so the store holds no more than the streams followed; an
 * entry left by an earlier intake whose stream never comes back ends `idleNs` of event time after the first sweep
 * of the intake that found it, as the stream itself would have ended by then.
 * @module
 */

/** One stream's ids in force, as the intake keeps them. */
export interface StickyEntry {
  readonly query: string;
  readonly stream: string;
  /** The ids in force on the stream (latest values over earlier ones). */
  ids: Record<string, string>;
}

/** The ids of the source streams of one owner (a Detector), by tap query and stream key. */
export class StickyIds {
  readonly #byQuery = new Map<string, Map<string, StickyEntry>>();
  /** Entries of an earlier intake not yet claimed by a stream of the current one, to the event time they end at. */
  readonly #orphans = new Map<StickyEntry, bigint | undefined>();

  /** Entries held (streams with ids, followed or orphaned). */
  get size(): number {
    let n = 0;
    for (const m of this.#byQuery.values()) n += m.size;
    return n;
  }

  /**
   * A new intake takes over: every entry held belongs to a stream of an earlier one, which the new intake claims
   * when the stream's rows come back ({@link claim}). An entry already orphaned keeps its end.
   */
  adopt(): void {
    for (const m of this.#byQuery.values()) {
      for (const e of m.values()) if (!this.#orphans.has(e)) this.#orphans.set(e, undefined);
    }
  }

  /** The entry of a stream that opens (none when the stream has no ids yet); it is the stream's from now on. */
  claim(query: string, stream: string): StickyEntry | undefined {
    const e = this.#byQuery.get(query)?.get(stream);
    if (e !== undefined) this.#orphans.delete(e);
    return e;
  }

  /** The first ids of a stream: its entry. */
  put(query: string, stream: string, ids: Record<string, string>): StickyEntry {
    let m = this.#byQuery.get(query);
    if (!m) this.#byQuery.set(query, m = new Map());
    const e: StickyEntry = { query, stream, ids };
    const old = m.get(stream);
    if (old !== undefined) this.#orphans.delete(old);
    m.set(stream, e);
    return e;
  }

  /**
   * Ids of a stream not followed yet (a text message of metadata before its first audio): an entry the stream
   * claims when it opens, over any it holds already; one that no stream claims ends like an earlier intake's.
   */
  note(query: string, stream: string, ids: Record<string, string>): void {
    const old = this.#byQuery.get(query)?.get(stream);
    if (old !== undefined) {
      old.ids = { ...old.ids, ...ids };
      return;
    }
    this.#orphans.set(this.put(query, stream, ids), undefined);
  }

  /** The stream ended: its ids go with it. */
  end(e: StickyEntry): void {
    this.#orphans.delete(e);
    const m = this.#byQuery.get(e.query);
    if (m?.get(e.stream) !== e) return;
    m.delete(e.stream);
    if (m.size === 0) this.#byQuery.delete(e.query);
  }

  /**
   * At an intake's sweep (event time `nowNs`): entries no stream claimed end `idleNs` after the first sweep that
   * saw them (sooner if the clock stepped back, so an end can only come closer).
   */
  sweep(nowNs: bigint, idleNs: bigint): void {
    for (const [e, endNs] of this.#orphans) {
      if (endNs !== undefined && nowNs >= endNs) this.end(e);
      else if (endNs === undefined || nowNs + idleNs < endNs) this.#orphans.set(e, nowNs + idleNs);
    }
  }
}
