/**
 * Replays captured rows in event-time order across several captures (one per node): as fast as possible for
 * `analyze`, or paced in real time (optionally accelerated) for `demo` and `run --capture`.
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
}

/** Merges rows of several nodes into one event-time order (stable: equal times keep capture order). */
export function mergeByTime(inputs: readonly NodeRows[]): { node: string; row: Row }[] {
  const all: { node: string; row: Row; seq: number }[] = [];
  let seq = 0;
  for (const input of inputs) for (const row of input.rows) all.push({ node: input.node, row, seq: seq++ });
  all.sort((a, b) => (a.row.time < b.row.time ? -1 : a.row.time > b.row.time ? 1 : a.seq - b.seq));
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

/** Delivers every row in event-time order; returns the number delivered (fewer if aborted). */
export async function replay(
  inputs: readonly NodeRows[],
  deliver: (node: string, row: Row) => Promise<void>,
  opts: ReplayOptions = {},
): Promise<number> {
  const merged = mergeByTime(inputs);
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? (() => performance.now());
  const every = opts.progressEvery ?? 1000;
  const first = merged[0]?.row.time;
  const startWall = now();
  let done = 0;
  for (const { node, row } of merged) {
    if (opts.signal?.aborted) break;
    if (opts.speed !== undefined && first !== undefined) {
      const dueMs = Number(row.time - first) / 1e6 / opts.speed;
      const wait = startWall + dueMs - now();
      if (wait > 1) await sleep(wait, opts.signal);
      if (opts.signal?.aborted) break;
    }
    await deliver(node, row);
    done++;
    if (opts.onProgress && done % every === 0) opts.onProgress(done, merged.length);
  }
  opts.onProgress?.(done, merged.length);
  return done;
}
