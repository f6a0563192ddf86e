/**
 * Per-stream state with idle expiry in event time: calls end, and their pipelines must not live forever. The
 * number of streams is bounded too (each costs hundreds of KB): past the cap, the least recently fed stream is
 * evicted and handed back to the caller, which finishes and counts it, when it has been quiet for `quietNs` of
 * event time; otherwise the new stream is refused (the caller counts its rows) and the streams already followed
 * keep going. (Evicting active streams made a node carrying more streams than the cap thrash: each new stream
 * ended a live one, whose next row began it again and ended another, a scan of every stream each time: 55 calls
 * per core and no match at 3,000 streams over a cap of 1,000.)
 *
 * The cap is shared fairly between taps (max-min): each tap with streams is owed an equal share of it, and room a
 * tap does not use is lent to the others (the table fills up whatever the taps; a tap's streams, once ended and
 * swept, leave the others its share). A new stream of a tap below its share is never refused: a quiet stream makes
 * room as above, or else the least recently fed stream of the largest tap does, active or not. A tap at or over
 * its share takes the room of a quiet stream of its own or of a tap over its share, never of a tap within its
 * share. (Before, the first stage to fill the table kept it: at 1,000 live calls over a cap of 1,000 the relay's
 * streams took every place before the ASR's first row, 800 ms later, and the ASR stage was not followed at all, a
 * whole hop invisible.) Active streams are evicted only for a tap below its share, and their tap is left at or
 * over its share, so they cannot come back by evicting in turn: no thrash, at most a share of evictions per tap
 * that appears. (Quiet room taken from a tap within its share made a chain: a reader that falls behind drops every
 * stream's rows at once, every stream is quiet after the gap, the relay took the ASR's quiet room, the ASR, now
 * below its share, an active relay stream: 21,684 evictions in 120 s of 1,000 calls over a cap of 834 with a 2.5 s
 * gap every 7 s, 834 without.) Within a tap too, a gap in every stream made streams change hands: each stream's
 * first row after it comes in its turn, and one not followed whose row came first took the place of a followed
 * one whose turn had not come yet. So when the reader says it shed rows ({@link StreamTable.shed}), quiet counts
 * from when rows came back, for the streams still active when the gap began (one quiet before it stays quiet:
 * else sheds less than `quietNs` apart, as under sustained overload, kept ended calls in place until swept).
 *
 * A stream is named by its tap and its key within the tap (two stages may see the same connection): the table
 * looks streams up by the pair and hands back the caller's own typed state, so no key is ever built or parsed.
 * @module
 */

/**
 * The start of a gap whose first row shed is not known ({@link StreamTable.shed}): every stream gets the gap's
 * credit, as if active when it began.
 */
export const GAP_START_UNKNOWN = -(1n << 62n);

/** A tap's streams. */
interface Group<T, Tap> {
  readonly tap: Tap;
  readonly streams: Map<string, Slot<T, Tap>>;
  /** At the cap, the tap's new streams are refused without a scan until this event time... */
  refuseUntilNs: bigint;
  /** ...for rows from this event time on (a refusal that counted from a gap's end holds for rows after it)... */
  refuseFromNs: bigint;
  /** ...while the table's streams are those of this {@link StreamTable} version. */
  refuseVersion: number;
}

/** One stream's state plus when it was last fed (event time). */
interface Slot<T, Tap> {
  readonly group: Group<T, Tap>;
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
  /** The stream removed to make room for a new one (finish and count it). */
  evicted?: T;
}

/**
 * The stream states of a set of taps that forgets streams idle for longer than `idleNs` of event time and holds
 * at most `maxStreams` over all taps, shared fairly between them (least recently fed first out). Iteration is in
 * creation order (streams are searched and finished in the order they appeared, whatever the cap); finding the
 * stream to evict costs a scan, paid only at the cap.
 */
export class StreamTable<T, Tap = unknown> {
  /** Taps with streams (a tap's group goes with its last stream). */
  readonly #byTap = new Map<Tap, Group<T, Tap>>();
  /** Every live stream, in creation order. */
  readonly #slots = new Set<Slot<T, Tap>>();
  readonly #idleNs: bigint;
  readonly #max: number;
  readonly #quietNs: bigint;
  /** Changes with every stream added or removed: a refusal found by a scan holds for the streams scanned only. */
  #version = 0;
  #seq = 0;
  readonly #found: { value: T; created: false } = { value: undefined as T, created: false };
  /** The tap {@link touch} looked up last and its group (undefined: none then), until a group comes or goes. */
  #lastTap: Tap | undefined;
  #lastGroup: Group<T, Tap> | undefined;
  /** Rows were shed in every stream ({@link shed}) and none has come since. */
  #shedPending = false;
  /** Where the gap of the pending shed began (the earliest of the sheds since the last touch). */
  #pendingGapFromNs = 0n;
  /** Where the last gap began ({@link shed}): streams quiet before it get no credit for it. */
  #gapFromNs = GAP_START_UNKNOWN;
  /**
   * When rows came back after a gap in every stream ({@link shed}: a reader that fell behind shed its rows); a
   * stream counts as quiet only from then on (see {@link #victim}).
   */
  #resumedNs = -(1n << 62n);

  /**
   * `idleNs`: event time without a message after which a stream is dropped; `maxStreams`: the cap; `quietNs`: how
   * long the least recently fed stream must have gone without a message to make room at the cap for a tap at or
   * over its share (0: always).
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
   * the next touch. Undefined when the table is full, `tap` holds at least its share and no stream it may take
   * the place of has been quiet for `quietNs`: the stream is not followed (its rows are the caller's to count).
   */
  touch(tap: Tap, stream: string, nowNs: bigint, make: () => T): Touched<T> | undefined {
    if (this.#shedPending) {
      this.#shedPending = false;
      this.#resumedNs = nowNs;
      this.#gapFromNs = this.#pendingGapFromNs;
      // A refusal found before counted with the last gap's credit, which this gap may take from its streams.
      this.#version++;
    }
    // Rows come in batches of one tap: its group is the last one's.
    let group = tap === this.#lastTap ? this.#lastGroup : this.#byTap.get(tap);
    this.#lastTap = tap;
    this.#lastGroup = group;
    const s = group?.streams.get(stream);
    if (s) {
      if (nowNs > s.lastNs) s.lastNs = nowNs;
      s.seq = ++this.#seq;
      const found = this.#found;
      found.value = s.value;
      return found;
    }
    let evicted: T | undefined;
    if (this.#slots.size >= this.#max) {
      const victim = this.#victim(group, nowNs);
      if (victim === undefined) return undefined;
      this.#remove(victim);
      evicted = victim.value;
      group = this.#byTap.get(tap);
    }
    if (!group) {
      this.#byTap.set(
        tap,
        group = {
          tap,
          streams: new Map(),
          refuseUntilNs: 0n,
          refuseFromNs: 0n,
          refuseVersion: -1,
        },
      );
      this.#lastGroup = group;
    }
    const slot: Slot<T, Tap> = { group, stream, value: make(), lastNs: nowNs, seq: ++this.#seq };
    group.streams.set(stream, slot);
    this.#slots.add(slot);
    this.#version++;
    return evicted !== undefined
      ? { value: slot.value, created: true, evicted }
      : { value: slot.value, created: true };
  }

  /**
   * At the cap, the stream a new stream of `group` (undefined: a tap without streams) replaces, or undefined:
   * refused. Candidates are the tap's own streams and those of taps over their share: the least recently fed goes
   * if it is quiet; else, for a tap below its share, the least recently fed stream of the largest tap.
   */
  #victim(group: Group<T, Tap> | undefined, nowNs: bigint): Slot<T, Tap> | undefined {
    const own = group?.streams.size ?? 0;
    const share = Math.floor(this.#max / (this.#byTap.size + (own === 0 ? 1 : 0)));
    const below = own < share;
    if (
      !below && group?.refuseVersion === this.#version && nowNs < group.refuseUntilNs &&
      nowNs >= group.refuseFromNs
    ) return undefined;
    let largest: Group<T, Tap> | undefined;
    if (below) {
      for (const g of this.#byTap.values()) {
        if (!largest || g.streams.size > largest.streams.size) largest = g;
      }
    }
    let oldest: Slot<T, Tap> | undefined;
    let oldestOfLargest: Slot<T, Tap> | undefined;
    for (const o of this.#slots) {
      const g = o.group;
      if ((g === group || g.streams.size > share) && (oldest === undefined || o.seq < oldest.seq)) oldest = o;
      if (g === largest && (oldestOfLargest === undefined || o.seq < oldestOfLargest.seq)) {
        oldestOfLargest = o;
      }
    }
    // Quiet counts from the last row, or from when rows came back after rows were shed ({@link shed}): after
    // that each stream's first row comes in its turn, and a stream not followed whose row came first took the
    // place of a followed one that had not had its turn yet, which did the same to another at its next row (at
    // 1,000 calls under overload, 11 evictions a second, each a stream's lookback lost and a pipeline made
    // anew). (A first row far ahead of this one, a clock off, is no such end of a gap for the rows behind it.)
    // Only a stream still active when the gap began can have lost rows to it; one quiet before stays quiet. A
    // resumption `quietNs` or more ahead of this row is a clock off, not the end of a gap for it.
    let since = oldest?.lastNs, fromGap = false;
    const resumed = this.#resumedNs;
    if (
      since !== undefined && resumed > since && resumed < nowNs + this.#quietNs &&
      since + this.#quietNs > this.#gapFromNs
    ) {
      since = resumed;
      fromGap = true;
    }
    if (oldest !== undefined && since !== undefined) {
      // A stream fed within `quietNs` of this row either way is active (taps interleave a little out of order);
      // one whose time is further ahead is not credible (a clock off) and may go, as may one long quiet.
      const age = nowNs - since;
      if (!(age < this.#quietNs && age > -this.#quietNs)) return oldest;
    }
    // The largest tap is over its share (the table is full and this tap below it): it gives an active stream up.
    if (below) return oldestOfLargest;
    if (group !== undefined && since !== undefined) {
      // Every candidate was fed since; none can be quiet enough before the oldest's time is up, unless the streams
      // change (a tap over its share then may have older ones).
      group.refuseUntilNs = since + this.#quietNs;
      group.refuseFromNs = fromGap ? nowNs : -(1n << 62n);
      group.refuseVersion = this.#version;
    }
    return undefined;
  }

  /**
   * Rows of every stream were shed since the last touch (a reader behind its source drops every row for a while),
   * from `fromNs` (event time of the earliest row shed) on: the next row's time is when rows came back, and until
   * `quietNs` after it no stream that was still active at `fromNs` is quiet for having had no row in the gap.
   * (Not inferred from a gap in event time: a table of a few sparse streams has those too.)
   */
  shed(fromNs: bigint): void {
    this.#pendingGapFromNs = this.#shedPending && this.#pendingGapFromNs < fromNs
      ? this.#pendingGapFromNs
      : fromNs;
    this.#shedPending = true;
  }

  /** The state of `stream` of `tap` without touching it. */
  get(tap: Tap, stream: string): T | undefined {
    return this.#byTap.get(tap)?.streams.get(stream)?.value;
  }

  /** Removes `stream` of `tap`; returns its state. */
  delete(tap: Tap, stream: string): T | undefined {
    const s = this.#byTap.get(tap)?.streams.get(stream);
    if (!s) return undefined;
    this.#remove(s);
    return s.value;
  }

  /** Removes streams idle at `nowNs` and returns them (the caller finishes them). */
  sweep(nowNs: bigint): T[] {
    const out: T[] = [];
    for (const s of this.#slots) {
      const age = nowNs - s.lastNs;
      if (age > this.#idleNs) {
        out.push(s.value);
        this.#remove(s);
      } else if (age < -this.#idleNs) {
        // A row from further ahead than the idle time (a clock off) set its time: counted from now instead, else
        // the stream outlived its call for good once its rows stopped (without a cap, one such stream per call).
        s.lastNs = nowNs;
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
    this.#version++;
    const streams = s.group.streams;
    streams.delete(s.stream);
    if (streams.size === 0) {
      this.#byTap.delete(s.group.tap);
      this.#lastTap = undefined;
      this.#lastGroup = undefined;
    }
  }
}
