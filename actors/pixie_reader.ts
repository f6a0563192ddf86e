/**
 * PixieReader: the node's eyes. Routes each row of its queries to the measurement's Detector (`<m>/source`) or to
 * the Matcher (`<m>/<stage>`), advances the node's event clock for the registry, and counts rows per query.
 * Rows come from a live Pixie query (a {@link RowSource} run under this actor's supervision) or from a capture
 * replay feeding the actor's mailbox.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg, ReaderMsg, RegistryMsg } from "./messages.ts";
import { parseQueryName, type Row, SOURCE_STREAM } from "../pixie/row.ts";

/** A producer of rows run inside the reader (e.g. the live Pixie stream); it ends when `signal` aborts. */
export interface RowSource {
  run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void>;
}

/** What the reader talks to. */
export interface ReaderDeps {
  detectors: ReadonlyMap<string, ActorRef<DetectorMsg>>;
  matcher: ActorRef<MatcherMsg>;
  registry: ActorRef<RegistryMsg>;
  exporter: ActorRef<ExporterMsg>;
  /** Live source, if any. */
  source?: RowSource;
  /** Event time between two registry ticks and row-count reports. */
  tickNs?: bigint;
}

/** Builds the reader's behaviour. */
export function pixieReader(deps: ReaderDeps): ActorFactory<ReaderMsg> {
  const tickNs = deps.tickNs ?? 1_000_000_000n;
  return (ctx) => {
    let watermark = 0n;
    let lastTick = 0n;
    const rows = new Map<string, number>();
    const unknown = new Set<string>();

    const flushCounts = async () => {
      for (const [query, n] of rows) await deps.exporter.tell({ kind: "rows", query, n });
      rows.clear();
    };
    const route = async (row: Row) => {
      rows.set(row.query, (rows.get(row.query) ?? 0) + 1);
      if (row.time > watermark) {
        watermark = row.time;
        if (watermark - lastTick >= tickNs) {
          lastTick = watermark;
          await deps.registry.tell({ kind: "tick", nowNs: watermark });
          await flushCounts();
        }
      }
      const q = parseQueryName(row.query);
      const det = q && q.stream === SOURCE_STREAM ? deps.detectors.get(q.measurement) : undefined;
      if (det) {
        await det.tell({ kind: "row", row });
      } else if (q && deps.detectors.has(q.measurement)) {
        await deps.matcher.tell({ kind: "row", row });
      } else if (!unknown.has(row.query)) {
        unknown.add(row.query);
        ctx.log.warn("rows of a query no measurement names; counted and skipped", { query: row.query });
      }
    };

    return {
      onStart() {
        if (!deps.source) return;
        // The source runs beside the mailbox; its rows go through the mailbox like replayed ones, so a failure
        // crashes this actor through the ordinary path and the supervisor restarts the source.
        // Stop producing as soon as shutdown begins, so the reader's own mailbox can drain.
        const stop = AbortSignal.any([ctx.signal, ctx.stopping]);
        deps.source.run((row) => ctx.self.tell({ kind: "row", row }).then(() => {}), stop).catch(
          (e) => {
            if (!stop.aborted) {
              void ctx.self.tell({ kind: "source-failed", error: (e as Error)?.message ?? String(e) });
            }
          },
        );
      },
      async receive(msg) {
        if (msg.kind === "row") return await route(msg.row);
        if (msg.kind === "source-failed") throw new Error(`row source failed: ${msg.error}`);
        await flushCounts();
        msg.reply(true);
      },
    };
  };
}
