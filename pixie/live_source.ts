/**
 * The live row source: the node's composed PxL streaming from Pixie, resumed and re-run by PixieQueryStream.
 * @module
 */
import type { PixieClient } from "./client.ts";
import { PixieQueryStream, type PixieStreamMetrics } from "./stream.ts";
import type { ComposedQueryInput } from "./pxl.ts";
import type { Row } from "./row.ts";

/** Options of {@link PixieRowSource}. */
export interface PixieRowSourceOptions {
  client: PixieClient;
  clusterId: string;
  queries: readonly ComposedQueryInput[];
  encryption: boolean;
  metrics?: PixieStreamMetrics;
}

/** Streams rows from Pixie until aborted; a fatal error (compile error, bad key) rejects. */
export class PixieRowSource {
  readonly #opts: PixieRowSourceOptions;

  constructor(opts: PixieRowSourceOptions) {
    this.#opts = opts;
  }

  /** Runs the stream, handing each row to `emit` (which may apply back-pressure or drop). */
  async run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void> {
    const o = this.#opts;
    const stream = new PixieQueryStream({
      client: o.client,
      clusterId: o.clusterId,
      queries: o.queries,
      encryption: o.encryption,
      metrics: o.metrics,
      signal,
    });
    try {
      for await (const rows of stream) {
        for (const row of rows) await emit(row);
        if (signal.aborted) break;
      }
    } finally {
      stream.close();
    }
  }
}
