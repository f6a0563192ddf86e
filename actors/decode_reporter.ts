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

/** Accumulates decode counters of many streams and hands out what is new. */
export class DecodeReporter {
  readonly #measurement: string;
  readonly #stream: string;
  readonly #query: string;
  readonly #last = new Map<string, DecodeCounters>();
  #pending: DecodeDelta;

  constructor(measurement: string, stream: string, query: string) {
    this.#measurement = measurement;
    this.#stream = stream;
    this.#query = query;
    this.#pending = this.#empty();
  }

  #empty(): DecodeDelta {
    return {
      measurement: this.#measurement,
      stream: this.#stream,
      query: this.#query,
      markers: {},
      errors: {},
    };
  }

  /** A failure seen outside a pipeline (e.g. the payload column is missing). */
  count(reason: string, n = 1): void {
    this.#pending.errors[reason] = (this.#pending.errors[reason] ?? 0) + n;
  }

  /** Records the cumulative counters of stream `key`. */
  observe(key: string, now: DecodeCounters): void {
    const prev = this.#last.get(key);
    for (const kind of ["markers", "errors"] as const) {
      for (const [reason, n] of Object.entries(now[kind])) {
        const d = n - (prev?.[kind][reason] ?? 0);
        if (d > 0) this.#pending[kind][reason] = (this.#pending[kind][reason] ?? 0) + d;
      }
    }
    this.#last.set(key, { markers: { ...now.markers }, errors: { ...now.errors } });
  }

  /** Records a stream's final counters and forgets it. */
  forget(key: string, final: DecodeCounters): void {
    this.observe(key, final);
    this.#last.delete(key);
  }

  /** What changed since the last call (nothing when nothing did). */
  deltas(): DecodeDelta[] {
    const p = this.#pending;
    if (Object.keys(p.markers).length === 0 && Object.keys(p.errors).length === 0) return [];
    this.#pending = this.#empty();
    return [p];
  }
}
