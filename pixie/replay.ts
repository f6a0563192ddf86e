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
export function mergeByTime(inputs: readonly NodeRows[]): { node: string; row: Row }[] {
  const all: { node: string; row: Row; seq: number; key: bigint }[] = [];
  let seq = 0;
  for (const input of inputs) {
    // Each query's rows keep the order the sensor received them in: a row captured earlier than the one
    // before it (a reordered RTP packet put back in place, a late Pixie batch) is not moved ahead of it. The sort
    // key is the running maximum of `time` per query; latencies still use each row's own `time`.
    const newest = new Map<string, bigint>();
    for (const row of input.rows) {
      const prev = newest.get(row.query);
      const key = prev !== undefined && prev > row.time ? prev : row.time;
      newest.set(row.query, key);
      all.push({ node: input.node, row, seq: seq++, key });
    }
  }
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.seq - b.seq));
  return all;
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
 * Which rows pacing ignores: rows whose time differs by more than `spikeNs` from the rows before and after it
 * while those two agree (a lone wrong time; a real break in a capture moves every row after it and is kept).
 */
export function timeSpikes(rows: readonly { row: Row }[], spikeNs: bigint): boolean[] {
  const out = new Array<boolean>(rows.length).fill(false);
  const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) <= spikeNs;
  let prev: bigint | undefined;
  for (let i = 0; i < rows.length; i++) {
    const t = rows[i]!.row.time;
    const next = rows[i + 1]?.row.time;
    let spike: boolean;
    if (prev === undefined) {
      // The first row: a spike if the two after it agree with each other and not with it.
      const next2 = rows[i + 2]?.row.time;
      spike = next !== undefined && next2 !== undefined && !near(t, next) && near(next, next2);
    } else if (next === undefined) spike = !near(t, prev); // the last row
    else spike = !near(t, prev) && !near(t, next) && near(prev, next);
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
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? (() => performance.now());
  const every = opts.progressEvery ?? 1000;
  const spikes = opts.speed === undefined
    ? []
    : timeSpikes(merged, BigInt(Math.round(opts.spikeMs ?? DEFAULT_SPIKE_MS)) * 1_000_000n);
  // The pacing clock: the first row that is not a spike, then the newest paced time (arrival order may step back).
  let first: bigint | undefined;
  let paced: bigint | undefined;
  const startWall = now();
  let done = 0;
  for (let i = 0; i < merged.length; i++) {
    const { node, row } = merged[i]!;
    if (opts.signal?.aborted) break;
    if (opts.speed !== undefined) {
      if (spikes[i]) opts.onSkipped?.(row, "time_spike");
      else {
        first ??= row.time;
        if (paced === undefined || row.time > paced) paced = row.time;
        const dueMs = Number(paced - first) / 1e6 / opts.speed;
        for (let wait = startWall + dueMs - now(); wait > 1 && !opts.signal?.aborted; wait -= MAX_TIMER_MS) {
          await sleep(Math.min(wait, MAX_TIMER_MS), opts.signal);
        }
        if (opts.signal?.aborted) break;
      }
    }
    await deliver(node, row);
    done++;
    if (opts.onProgress && done % every === 0) opts.onProgress(done, merged.length);
  }
  opts.onProgress?.(done, merged.length);
  return done;
}
