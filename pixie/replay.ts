/**
 * Replays captured rows in event-time order across several captures (one per node): as fast as possible for
 * `analyze`, or paced in real time (optionally accelerated) for `demo` and `run --capture`; or, for one node, in
 * the order the capture holds them (`order: "arrival"`, as a live sensor received them).
 *
 * Pacing trusts no single row: a row without a usable time (`time_` 0 or negative) is not delivered (reported),
 * and a lone row far from its neighbours (a clock gone wrong for one row) is delivered without being waited for,
 * so it neither stalls the replay nor, as the first row, leaves the rest unpaced.
 * @module
 */
import type { Row } from "./row.ts";
import type { LaneAhead } from "./capture_lanes.ts";
import { truncate } from "../util/truncate.ts";
import { HeldRows } from "./held_rows.ts";
import { type ArenaChunk, DeferredRow } from "./line_arena.ts";

/** Rows of one node. */
export interface NodeRows {
  node: string;
  rows: readonly Row[];
}

/** Pacing and progress options. */
export interface ReplayOptions {
  /** Undefined: as fast as possible (event time only). Otherwise real time divided by `speed`. */
  speed?: number;
  /** Waits `ms` of wall time (injectable for tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  signal?: AbortSignal;
  /** Called every `progressEvery` rows with (done, total). */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
  /** `time` (default): all captures merged by event time. `arrival`: each capture's own order, merged by time. */
  order?: "time" | "arrival";
  /** A row whose time differs from both neighbours' by more than this is not paced (ms of event time). */
  spikeMs?: number;
  /** A row not delivered (`no_time`: paced replays only) or not paced (`time_spike`). */
  onSkipped?: (row: Row, reason: "no_time" | "time_spike") => void;
}

/** Default of {@link ReplayOptions.spikeMs}: ten minutes of event time. */
export const DEFAULT_SPIKE_MS = 600_000;
/** Longest single timer (setTimeout's limit is 2^31 - 1 ms; longer waits are cut in pieces). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Merges rows of several nodes into one event-time order (stable: equal times keep capture order; within a
 * query, the captured order is kept).
 */
export function mergeByTime(
  inputs: readonly NodeRows[],
  spikeNs = DEFAULT_MERGE_SPIKE_NS,
): { node: string; row: Row }[] {
  const all: { node: string; row: Row; seq: number; key: bigint }[] = [];
  let seq = 0;
  for (const input of inputs) {
    // Each query's rows keep the order the sensor received them in: a row captured earlier than the one
    // before it (a reordered RTP packet put back in place, a late Pixie batch) is not moved ahead of it. The sort
    // key is the running maximum of `time` per query (a lone row from the future left out, see RunningMax);
    // latencies still use each row's own `time`.
    const newest = new RunningMax(spikeNs);
    for (const row of input.rows) {
      all.push({ node: input.node, row, seq: seq++, key: newest.key(row.query, row.time) });
    }
  }
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.seq - b.seq));
  return all;
}

/** One node's rows as a stream of batches (a capture being read), for {@link mergeStreams}. */
export interface NodeRowStream {
  node: string;
  batches: AsyncIterable<readonly Row[]>;
  /**
   * Called with a batch once every row of it has been handed on and the merge's consumer has asked for the step
   * after (capture.ts's CaptureReader.release: the batch's cell memory is reused). Give it only when the consumer
   * is done with a step's rows, and with everything it made from them, before it asks for the next step.
   */
  release?: (batch: readonly Row[]) => void;
  /**
   * Each query's rows in the rest of the input (from the first row not yet handed to the merge) and its first
   * row's time (capture_lanes.ts); undefined when that cannot be known (a pipe). Asked once, when the merge
   * holds {@link MergeOptions.scanAfter} rows: with it from every input, a row goes on as soon as every query
   * of every input has gone past it, instead of waiting out the window.
   */
  lanesAhead?: () => Promise<ReadonlyMap<string, LaneAhead> | undefined>;
  /**
   * Reads a row its batches handed on unread (a line_arena.ts DeferredRow: its query and time only), as the
   * merge hands it on; undefined: the line was malformed after all (the input counts it), and it is skipped.
   * With it, `sealRows` is given each step's array of the rows it read, which `release` gets when the step is
   * done with, as a batch.
   */
  materialize?: (chunk: ArenaChunk, at: number, len: number, line: number) => Row | undefined;
  sealRows?: (rows: readonly Row[]) => void;
}

/** Options of {@link mergeStreams}. */
export interface MergeOptions {
  /**
   * How far (event time, ns) a node's input may step back and still be put in order: a row is handed on once
   * every other input has read past its time by more than this. Default 1 s (Pixie hands rows over in batches
   * per query; a capture written by `record` is in time order within about that). Rows further back are handed
   * on as they come, counted in {@link MergeStats.late}.
   */
  windowNs?: bigint;
  /** Most rows held for ordering; beyond it the oldest is handed on anyway (bounded memory). Default 65,536. */
  maxBuffered?: number;
  /** A lone row this far ahead of its query sorts at its own time (see RunningMax). Default 10 s. */
  spikeNs?: bigint;
  /**
   * Rows held before the merge asks its inputs what lies ahead ({@link NodeRowStream.lanesAhead}). Default
   * 16,384: a capture of a hundred streams holds fewer in its window and is not scanned (a scan reads the rest of
   * each file once more, ~0.6 CPU s per GB); 1,000 streams hold ~70,000 rows of ~320 bytes each.
   */
  scanAfter?: number;
}

/** What a streaming merge did. */
export interface MergeStats {
  rows: number;
  /** Rows handed on after a row with a later sort key (beyond the window, or past the buffer bound). */
  late: number;
  /** Times the buffer bound forced a row out before the window allowed it. */
  forced: number;
  /** Most rows held at once. */
  peakBuffered: number;
  /** Rows handed on before the window allowed, every query of every input being past them. */
  early?: number;
  /** Inputs whose rest was scanned (see {@link NodeRowStream.lanesAhead}). */
  scanned?: number;
  /** Why handing rows on early stopped: a row of a query the scan did not count. */
  lanesBroken?: string;
}

/**
 * How far ahead of its query's running maximum a row must be, and how far the query's next row behind it, for
 * it to be taken for a row from the future ({@link RunningMax}): twice the overlap a live sensor's re-run
 * allows for rows that reach Pixie's tables late, and well below the matcher's lookback.
 */
export const DEFAULT_MERGE_SPIKE_NS = 10_000_000_000n;

/**
 * The running maximum of each query's times in one input (the sort key of its rows, see {@link mergeByTime}).
 * A capture holds few queries and its reader gives each row of a query the same string, so they are looked for
 * in a short list first, where a string compares by identity before text: a Map lookup per row hashed the query.
 *
 * A row more than `spikeNs` ahead of its query's maximum starts a run that joins the maximum only once
 * {@link SPIKE_LOOKAHEAD} rows of the query have followed on from it; a row of the query back within `spikeNs` of
 * the maximum before the run ends it: it was a burst of rows from the future (a clock gone wrong for a row or a
 * batch). A query's first row joins once the next one is not more than `spikeNs` behind it. The rows of a run sort as they always did (the running maximum, the run's rows
 * included), and the rows after a burst at their own times. Before, one such row raised the maximum for good:
 * every later row of its query sorted at its time, after every other input's rows, so an `analyze` fed a
 * source's rows after all its stages' (one capture row a day ahead lost 160 of 210 relay matches of 8 repeated
 * e2e calls). An input's frontier takes a query's maximum only once confirmed ({@link confirmed}).
 */
class RunningMax {
  readonly #spikeNs: bigint;
  readonly #queries: string[] = [];
  /** Each query's confirmed maximum: the newest time of its rows outside a run (undefined: none yet). */
  readonly #keys: (bigint | undefined)[] = [];
  /** Each query's running maximum, a run's rows included (the sort key). */
  readonly #running: bigint[] = [];
  /** Each query's run: the time of its first row (undefined: none), and its rows so far. */
  readonly #runFrom: (bigint | undefined)[] = [];
  readonly #runRows: number[] = [];
  /**
   * Each query's confirmed maximum plus `spikeNs`, as it was when last worked out: a row up to it is not ahead,
   * and one beyond it is compared with the maximum now (a bigint made per row cost the merge an allocation a row).
   */
  readonly #limit: bigint[] = [];
  /** Index of each query in the list, looked up instead once there are more than {@link LIST_QUERIES}. */
  readonly #index = new Map<string, number>();
  /**
   * The confirmed maximum of the query of the row {@link key} was last given (undefined: none yet): what that row
   * may raise its input's frontier to (a run raises nothing until confirmed).
   */
  confirmed: bigint | undefined;

  constructor(spikeNs: bigint) {
    this.#spikeNs = spikeNs;
  }

  /**
   * The least sort key a row of `query` still to come can have (undefined: no row of it was given yet): its
   * confirmed maximum, or while it has none, its running one (its first rows' times, taken as they always were).
   */
  newest(query: string): bigint | undefined {
    const i = this.#find(query);
    return i === this.#queries.length ? undefined : this.#keys[i] ?? this.#running[i];
  }
  /** The index of `query` in the list, or the list's length when it is not there. */
  #find(query: string): number {
    const qs = this.#queries, n = qs.length;
    if (n > LIST_QUERIES) return this.#index.get(query) ?? n;
    let i = 0;
    while (i < n && qs[i] !== query) i++;
    return i;
  }
  /**
   * The sort key of a row of `query` at `time`: the newest time of its query so far, this one included (see the
   * class doc for rows far ahead of it).
   */
  key(query: string, time: bigint): bigint {
    const qs = this.#queries, n = qs.length;
    let i = this.#find(query);
    if (i === n) {
      qs.push(query);
      this.#keys.push(undefined);
      this.#running.push(time);
      this.#runFrom.push(undefined);
      this.#runRows.push(0);
      this.#limit.push(time);
      this.#index.set(query, n);
      i = n;
    }
    let max = this.#keys[i];
    const from = this.#runFrom[i];
    if (from !== undefined) {
      // In a run: a row back near the maximum before it ends it (a burst), else it follows on.
      const back = max === undefined ? time < from - this.#spikeNs : time <= this.#limit[i]!;
      if (!back) {
        let running = this.#running[i]!;
        if (time > running) this.#running[i] = running = time;
        // A query's first row needs one row to follow on from it; a run ahead of a maximum, a burst's worth.
        if (++this.#runRows[i]! >= SPIKE_LOOKAHEAD || max === undefined) {
          this.#keys[i] = max = running;
          this.#limit[i] = max + this.#spikeNs;
          this.#runFrom[i] = undefined;
        }
        this.confirmed = max;
        return running;
      }
      this.#runFrom[i] = undefined;
      if (max !== undefined) this.#running[i] = max;
    }
    // Ahead of the maximum by more than spikeNs (past the limit last worked out, and past it worked out again), or
    // a first row: a run starts.
    if (max === undefined || (time > this.#limit[i]! && time > (this.#limit[i] = max + this.#spikeNs))) {
      this.#runFrom[i] = time;
      this.#runRows[i] = 1;
      const running = max === undefined || time > max ? time : max;
      this.#running[i] = running;
      this.confirmed = max;
      return running;
    }
    if (time > max) max = time;
    this.#keys[i] = max;
    this.#running[i] = max;
    this.confirmed = max;
    return max;
  }
}
const LIST_QUERIES = 16;

/** A batch read by the merge and how many of its rows it still holds (see {@link NodeRowStream.release}). */
interface HeldBatch {
  readonly batch: readonly Row[];
  readonly release: (batch: readonly Row[]) => void;
  left: number;
}

/**
 * {@link mergeByTime} over streams, lazily: each node's rows are read only as far as the merge needs (a window
 * ahead of the row handed on), so memory does not depend on the captures' size. The order is the same as
 * mergeByTime's (event time, each query keeping its captured order through the running maximum of its times,
 * ties in input order) whenever each input steps back by less than `windowNs`; `stats` counts what was not.
 * The rows it holds are in typed columns (held_rows.ts), and an input's rows handed over unread
 * ({@link NodeRowStream.materialize}) are read only as they go on: no object per held row outlives V8's young
 * generation.
 */
export async function* mergeStreams(
  inputs: readonly NodeRowStream[],
  opts: MergeOptions = {},
  stats: MergeStats = { rows: 0, late: 0, forced: 0, peakBuffered: 0 },
): AsyncGenerator<{ node: string; row: Row }[]> {
  const windowNs = opts.windowNs ?? 1_000_000_000n;
  const maxBuffered = opts.maxBuffered ?? 65_536;
  const scanAfter = opts.scanAfter ?? 16_384;
  const held = new HeldRows<HeldBatch>();
  const state: InputState[] = inputs.map((input, i) => ({
    node: input.node,
    index: i,
    it: input.batches[Symbol.asyncIterator](),
    release: input.release,
    ended: false,
    frontier: undefined,
    newest: new RunningMax(opts.spikeNs ?? DEFAULT_MERGE_SPIKE_NS),
    seq: 0,
    lanes: undefined,
    materialize: input.materialize,
    stepRows: [],
  }));
  /** Handing rows on early: not asked yet (`wait`), on, or off (an input cannot tell, or its scan was short). */
  let lanes: "wait" | "on" | "off" = inputs.every((i) => i.lanesAhead !== undefined) ? "wait" : "off";
  const lanesOff = (reason: string) => {
    lanes = "off";
    stats.lanesBroken ??= reason;
    for (const s of state) s.lanes = undefined;
  };
  /** Batches whose last held row went in the step yielded last: released when the next step is asked for. */
  const handedOn: HeldBatch[] = [];
  const read = async (s: InputState): Promise<void> => {
    const next = await s.it.next();
    if (next.done) {
      s.ended = true;
      return;
    }
    const from = s.release === undefined ? undefined : { batch: next.value, release: s.release, left: 0 };
    for (const row of next.value) {
      if (s.lanes !== undefined && !s.lanes.take(row.query)) {
        lanesOff(
          `input ${s.index} (${s.node}) has a row of ${JSON.stringify(row.query)} its scan did not count`,
        );
      }
      const key = s.newest.key(row.query, row.time);
      const reached = s.newest.confirmed;
      if (reached !== undefined && (s.frontier === undefined || reached > s.frontier)) s.frontier = reached;
      // A row handed on unread is held as where its line is: its batch (the row objects) need not wait for it.
      if (s.materialize !== undefined && row instanceof DeferredRow) {
        held.pushLine(key, s.index, s.seq++, row);
      } else {
        held.push(key, s.index, s.seq++, row, from);
        if (from !== undefined) from.left++;
      }
    }
    // A batch none of whose rows are held is done with already (all were handed on unread, as lines).
    if (from !== undefined && from.left === 0) from.release(from.batch);
    if (held.size > stats.peakBuffered) stats.peakBuffered = held.size;
  };
  try {
    for (;;) {
      if (handedOn.length > 0) {
        for (const b of handedOn) b.release(b.batch);
        truncate(handedOn, 0);
      }
      if (lanes === "wait" && held.size >= scanAfter) {
        lanes = "on";
        for (const s of state) {
          if (s.ended) continue;
          const ahead = await inputs[s.index]!.lanesAhead!();
          if (ahead === undefined) {
            lanesOff(`input ${s.index} (${s.node}) cannot be scanned`);
            break;
          }
          s.lanes = new InputLanes(ahead);
          stats.scanned = (stats.scanned ?? 0) + 1;
        }
      }
      const top = held.peek();
      const topKey = top < 0 ? undefined : held.keyOf(top);
      // Every row still to come sorts after `early`: rows before it go now, without reading on.
      const early = lanes === "on" ? earlyLimit(state) : undefined;
      const goesEarly = topKey !== undefined && early !== undefined && (early === ALL || topKey < early);
      let lagging: InputState | undefined;
      if (!goesEarly) {
        // The input furthest behind decides whether the smallest held row may go: read it until it is past.
        for (const s of state) {
          if (s.ended) continue;
          if (topKey !== undefined && s.frontier !== undefined && s.frontier > topKey + windowNs) continue;
          if (lagging === undefined || (s.frontier ?? -1n) < (lagging.frontier ?? -1n)) lagging = s;
        }
        if (lagging !== undefined && held.size < maxBuffered) {
          await read(lagging);
          continue;
        }
        if (topKey === undefined) break;
        if (lagging !== undefined) stats.forced++;
      }
      // Hand on everything that may go now, in one batch.
      const out: { node: string; row: Row }[] = [];
      // Forced: the least row and those with its key. No input is read in this loop, so what may go is decided
      // once: keys below every input's frontier by more than the window (without a bigint sum per row), or below
      // `early`.
      const byWindow = lagging !== undefined ? undefined : goLimit(state, windowNs);
      const below = lagging !== undefined ? topKey! + 1n : goesEarly ? higher(byWindow, early) : byWindow;
      for (;;) {
        const h = held.peek();
        if (h < 0 || out.length >= 512) break;
        if (below === undefined || (below !== ALL && !held.keyBelow(h, below))) break;
        const input = held.inputOf(h);
        if (goesEarly && byWindow !== ALL && (byWindow === undefined || !held.keyBelow(h, byWindow))) {
          stats.early = (stats.early ?? 0) + 1;
        }
        if (held.beforeLast(h)) stats.late++;
        else held.markLast(h);
        const from = held.tagOf(h);
        if (from !== undefined && --from.left === 0) handedOn.push(from);
        const s = state[input]!;
        const chunk = held.chunkOf(h);
        let row: Row | undefined;
        if (chunk !== undefined) {
          row = s.materialize!(chunk, held.atOf(h), held.lenOf(h), held.lineOf(h));
          if (row !== undefined) s.stepRows.push(row);
        } else row = held.rowOf(h);
        held.take(h);
        if (row !== undefined) out.push({ node: s.node, row });
      }
      for (const s of state) {
        if (s.stepRows.length === 0) continue;
        const rows = s.stepRows;
        s.stepRows = [];
        const input = inputs[s.index]!;
        input.sealRows?.(rows);
        if (input.release !== undefined) handedOn.push({ batch: rows, release: input.release, left: 0 });
      }
      stats.rows += out.length;
      yield out;
    }
  } finally {
    for (const s of state) if (!s.ended) await s.it.return?.();
  }
}

/** One input of {@link mergeStreams} as it is being read. */
interface InputState {
  readonly node: string;
  readonly index: number;
  readonly it: AsyncIterator<readonly Row[]>;
  readonly release: ((batch: readonly Row[]) => void) | undefined;
  ended: boolean;
  /** Largest key read so far (undefined before the first row). */
  frontier: bigint | undefined;
  readonly newest: RunningMax;
  seq: number;
  /** What is left of it, once scanned (see {@link NodeRowStream.lanesAhead}). */
  lanes: InputLanes | undefined;
  readonly materialize: NodeRowStream["materialize"];
  /** The rows materialized in the step being made (see {@link NodeRowStream.materialize}). */
  stepRows: Row[];
}

/** What an input has left to read, per query, from its scan: rows and the least key the next can have. */
class InputLanes {
  readonly #left = new Map<string, LaneAhead>();
  constructor(ahead: ReadonlyMap<string, LaneAhead>) {
    for (const [q, l] of ahead) if (l.rows > 0) this.#left.set(q, { first: l.first, rows: l.rows });
  }
  /** Counts a row read off; false when the scan did not count it (a query it missed, or one row too many). */
  take(query: string): boolean {
    const l = this.#left.get(query);
    if (l === undefined) return false;
    if (--l.rows === 0) this.#left.delete(query);
    return true;
  }
  /**
   * The least key a row still to come can have (undefined: none is to come): a query's next row sorts at its
   * newest time so far or later, and one not read yet at its first row's time or later.
   */
  bound(newest: RunningMax): bigint | undefined {
    let min: bigint | undefined;
    for (const [q, l] of this.#left) {
      const k = newest.newest(q) ?? l.first;
      if (min === undefined || k < min) min = k;
    }
    return min;
  }
}

/** The least key any row still to come can have, over every unfinished input (ALL: none is to come). */
function earlyLimit(state: readonly InputState[]): bigint | typeof ALL | undefined {
  let min: bigint | undefined;
  for (const s of state) {
    if (s.ended) continue;
    if (s.lanes === undefined) return undefined;
    const b = s.lanes.bound(s.newest);
    if (b !== undefined && (min === undefined || b < min)) min = b;
  }
  return min === undefined ? ALL : min;
}

/** The higher of two limits (undefined: nothing may go; ALL: everything may). */
function higher(
  a: bigint | typeof ALL | undefined,
  b: bigint | typeof ALL | undefined,
): bigint | typeof ALL | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a === ALL || b === ALL) return ALL;
  return a > b ? a : b;
}

const ALL: unique symbol = Symbol("all");

/**
 * The keys that may be handed on: those below every unfinished input's frontier less the window (ALL when every
 * input has ended; undefined when one has read nothing yet, so nothing may go).
 */
function goLimit(
  state: readonly { ended: boolean; frontier: bigint | undefined }[],
  windowNs: bigint,
): bigint | typeof ALL | undefined {
  let min: bigint | undefined;
  for (const s of state) {
    if (s.ended) continue;
    if (s.frontier === undefined) return undefined;
    if (min === undefined || s.frontier < min) min = s.frontier;
  }
  return min === undefined ? ALL : min - windowNs;
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * Rows after a row that pacing looks at to tell a burst of wrong times from a break: a run of up to this many rows
 * far from the row before them, followed by one near it again, is a burst.
 */
export const SPIKE_LOOKAHEAD = 16;

/**
 * Whether a row at `t` is a spike for pacing: `prev` is the last row that was not, `at(k)` the time of the k-th row
 * after it (undefined past the end). A row more than `spikeNs` from `prev` is one when a row within
 * {@link SPIKE_LOOKAHEAD} after it is near `prev` again (the clock came back: a lone wrong time, or a burst of
 * them, as a batch of rows with a clock gone wrong is), and so is a run far from `prev` that the capture ends
 * within (a burst sorted last by the merge); a real break moves every later row and is kept. The first row is one
 * when the two after it agree with each other and not with it.
 */
function isSpike(
  t: bigint,
  prev: bigint | undefined,
  at: (k: number) => bigint | undefined,
  spikeNs: bigint,
): boolean {
  const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) <= spikeNs;
  const next = at(0);
  if (prev === undefined) {
    const next2 = at(1);
    return next !== undefined && next2 !== undefined && !near(t, next) && near(next, next2);
  }
  if (near(t, prev)) return false;
  if (next === undefined) return true;
  for (let k = 0; k < SPIKE_LOOKAHEAD; k++) {
    const x = at(k);
    // The capture ends within the lookahead: a burst the merge sorted last (its rows keep their wrong times, so
    // they go after every other row), not a break worth waiting for.
    if (x === undefined) return true;
    if (near(x, prev)) return true;
  }
  return false;
}

/**
 * Which rows pacing ignores: rows whose time differs by more than `spikeNs` from the rows before and after them
 * while those agree (a lone wrong time, or a burst of up to {@link SPIKE_LOOKAHEAD}, or such a run at the end; a
 * real break in a capture moves every row after it and is kept).
 */
export function timeSpikes(rows: readonly { row: Row }[], spikeNs: bigint): boolean[] {
  const out = new Array<boolean>(rows.length).fill(false);
  let prev: bigint | undefined;
  for (let i = 0; i < rows.length; i++) {
    const t = rows[i]!.row.time;
    const spike = isSpike(t, prev, (k) => rows[i + 1 + k]?.row.time, spikeNs);
    out[i] = spike;
    if (!spike) prev = t;
  }
  return out;
}

/** Delivers every row in event-time order; returns the number delivered (fewer if aborted). */
export async function replay(
  inputs: readonly NodeRows[],
  deliver: (node: string, row: Row) => Promise<void>,
  opts: ReplayOptions = {},
): Promise<number> {
  const valid = inputs.map((i) => ({
    node: i.node,
    // Unpaced (analyze), such rows go to the node like any other: its event clock is robust to them.
    rows: i.rows.filter((r) => {
      if (r.time > 0n || opts.speed === undefined) return true;
      opts.onSkipped?.(r, "no_time");
      return false;
    }),
  }));
  const merged = opts.order === "arrival" && valid.length === 1
    ? valid[0]!.rows.map((row) => ({ node: valid[0]!.node, row }))
    : mergeByTime(valid);
  const total = merged.length;
  async function* one() {
    yield merged;
  }
  return await replayStream(one(), async (node, rows) => {
    for (const row of rows) await deliver(node, row);
  }, { ...opts, onProgress: opts.onProgress ? (done) => opts.onProgress!(done, total) : undefined });
}

/** Options of {@link replayStream}: those of {@link replay} but progress, which counts rows only. */
export interface ReplayStreamOptions extends Omit<ReplayOptions, "onProgress" | "order"> {
  onProgress?: (done: number) => void;
}

/**
 * Delivers rows already in replay order (a {@link mergeStreams} output, or one capture in arrival order), paced
 * like {@link replay}, as they come: unpaced, each batch's rows go to `deliver` node by node (a node's rows in
 * their order, nodes in the order they first appear in the batch; see capture_run.ts for why that keeps the
 * result); paced, one row at a time. Spikes are found with {@link SPIKE_LOOKAHEAD} rows of lookahead. Rows without a usable time must have been filtered
 * before (paced replays). Returns the number of rows delivered (fewer if aborted).
 */
export async function replayStream(
  batches: AsyncIterable<readonly { node: string; row: Row }[]>,
  deliver: (node: string, rows: Row[]) => Promise<void>,
  opts: ReplayStreamOptions = {},
): Promise<number> {
  const every = opts.progressEvery ?? 1000;
  let done = 0;
  let nextProgress = every;
  const progress = (n: number) => {
    done += n;
    if (opts.onProgress && done >= nextProgress) {
      opts.onProgress(done);
      nextProgress = (Math.floor(done / every) + 1) * every;
    }
  };
  if (opts.speed === undefined) {
    for await (const batch of batches) {
      if (opts.signal?.aborted) break;
      const byNode = new Map<string, Row[]>();
      for (const x of batch) {
        let rs = byNode.get(x.node);
        if (!rs) byNode.set(x.node, rs = []);
        rs.push(x.row);
      }
      for (const [node, run] of byNode) {
        if (opts.signal?.aborted) break;
        await deliver(node, run);
        progress(run.length);
      }
    }
    opts.onProgress?.(done);
    return done;
  }
  const speed = opts.speed;
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? (() => performance.now());
  const spikeNs = BigInt(Math.round(opts.spikeMs ?? DEFAULT_SPIKE_MS)) * 1_000_000n;
  // The pacing clock: the first row that is not a spike, then the newest paced time (arrival order may step back).
  let first: bigint | undefined;
  let paced: bigint | undefined;
  /** Time of the last row that was not a spike (timeSpikes' `prev`). */
  let prev: bigint | undefined;
  const startWall = now();
  const ahead: { node: string; row: Row }[] = [];
  const it = batches[Symbol.asyncIterator]();
  let ended = false;
  const fill = async (n: number) => {
    while (!ended && ahead.length < n) {
      const r = await it.next();
      if (r.done) ended = true;
      else for (const x of r.value) ahead.push(x);
    }
  };
  try {
    for (;;) {
      await fill(SPIKE_LOOKAHEAD + 1);
      const cur = ahead.shift();
      if (cur === undefined || opts.signal?.aborted) break;
      const t = cur.row.time;
      // Before, only a lone row was a spike: two rows in a row from a year ahead (a batch of them) were paced, and
      // the replay slept for that year.
      const spike = isSpike(t, prev, (k) => ahead[k]?.row.time, spikeNs);
      if (!spike) prev = t;
      if (spike) opts.onSkipped?.(cur.row, "time_spike");
      else {
        first ??= t;
        if (paced === undefined || t > paced) paced = t;
        const dueMs = Number(paced - first) / 1e6 / speed;
        for (let wait = startWall + dueMs - now(); wait > 1 && !opts.signal?.aborted; wait -= MAX_TIMER_MS) {
          await sleep(Math.min(wait, MAX_TIMER_MS), opts.signal);
        }
        if (opts.signal?.aborted) break;
      }
      await deliver(cur.node, [cur.row]);
      progress(1);
    }
  } finally {
    if (!ended) await it.return?.();
  }
  opts.onProgress?.(done);
  return done;
}

/** A batch held until each of its rows handed on is done with (see {@link RowLeases}). */
interface RowLease {
  readonly batch: readonly Row[];
  readonly release: (batch: readonly Row[]) => void;
  left: number;
}

/**
 * Batches a paced replay hands back to their readers ({@link NodeRowStream.release}) once the node is done with
 * every row of them, in whatever order its actors take them (SensorNode's `onRowsDone`). A row never reported
 * (dropped, or the replay stopped first) keeps its batch from being released: its memory is then left to the
 * collector, as is the lease, which only the rows' weak entries hold.
 */
export class RowLeases {
  readonly #of = new WeakMap<Row, RowLease>();

  /** Holds `batch` until {@link done} was told of each of `rows` (its rows handed on); none: released at once. */
  hold(batch: readonly Row[], rows: readonly Row[], release: (batch: readonly Row[]) => void): void {
    if (rows.length === 0) return release(batch);
    const lease: RowLease = { batch, release, left: rows.length };
    for (const r of rows) this.#of.set(r, lease);
  }

  /** Rows nothing reads any more: a batch all of whose rows are is released (a row told twice counts once). */
  done(rows: readonly Row[]): void {
    for (const r of rows) {
      const lease = this.#of.get(r);
      if (lease === undefined) continue;
      this.#of.delete(r);
      if (--lease.left === 0) lease.release(lease.batch);
    }
  }
}
