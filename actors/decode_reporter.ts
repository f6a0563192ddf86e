/**
 * Turns the audio pipelines' cumulative decode counters into deltas for the Exporter, so an actor reports only
 * what changed, once per second of event time rather than per message.
 * @module
 */
import type { DecodeDelta } from "./messages.ts";

/** Counters a pipeline reports (a subset of the engine's stats). */
export interface DecodeCounters {
  markers: Record<string, number>;
  errors: Record<string, number>;
}

/** The tap a reporter counts for. */
export interface ReportedTap {
  measurement: string;
  /** `source` or the stage name. */
  name: string;
  /** The tap's query name, `<measurement>/<name>`. */
  query: string;
}

/**
 * Adds to `pending` each counter of `now` that grew since `prev` (all of it when there is no `prev`); true if any
 * counter differs from `prev`. Reads the counters with for-in (plain records: their own keys, in order), not
 * Object.entries, which made an array per counter at every sweep of every stream.
 */
function addIncreases(
  now: Record<string, number>,
  prev: Record<string, number> | undefined,
  pending: Record<string, number>,
): boolean {
  let moved = false;
  for (const reason in now) {
    const n = now[reason]!;
    const d = n - (prev?.[reason] ?? 0);
    if (d !== 0) moved = true;
    if (d > 0) pending[reason] = (pending[reason] ?? 0) + d;
  }
  return moved;
}

/** Accumulates decode counters of one tap's streams and hands out what is new. */
export class DecodeReporter {
  readonly #tap: ReportedTap;
  /** Last counters seen, by stream key. */
  readonly #last = new Map<string, DecodeCounters>();
  #pending: DecodeDelta;

  /** A reporter for the streams of `tap`. */
  constructor(tap: ReportedTap) {
    this.#tap = tap;
    this.#pending = this.#empty();
  }

  #empty(): DecodeDelta {
    const { measurement, name, query } = this.#tap;
    return { measurement, tap: name, query, markers: {}, errors: {} };
  }

  /** A failure seen outside a pipeline (e.g. the payload column is missing). */
  count(reason: string, n = 1): void {
    this.#pending.errors[reason] = (this.#pending.errors[reason] ?? 0) + n;
  }

  /**
   * Records the cumulative counters of `stream`. Its copy is replaced only when a counter moved: at every tick
   * every stream is observed, and a copy per stream per second, kept a second, was promoted to V8's old space
   * (~5 MB of garbage a `run --capture` of 1,000 streams).
   */
  observe(stream: string, now: DecodeCounters): void {
    const prev = this.#last.get(stream);
    // Both kinds read even once one moved (each adds its own increases); no arrays of entries made per stream.
    const markersMoved = addIncreases(now.markers, prev?.markers, this.#pending.markers);
    const errorsMoved = addIncreases(now.errors, prev?.errors, this.#pending.errors);
    const moved = prev === undefined || markersMoved || errorsMoved;
    if (moved) this.#last.set(stream, { markers: { ...now.markers }, errors: { ...now.errors } });
  }

  /** Records a stream's final counters and forgets it. */
  forget(stream: string, final: DecodeCounters): void {
    this.observe(stream, final);
    this.#last.delete(stream);
  }

  /** What changed since the last call (nothing when nothing did). */
  deltas(): DecodeDelta[] {
    const p = this.#pending;
    if (Object.keys(p.markers).length === 0 && Object.keys(p.errors).length === 0) return [];
    this.#pending = this.#empty();
    return [p];
  }
}
