/**
 * PixieReader: the node's eyes. Routes each row of its queries to the measurement's Detector (`<m>/source`) or to
 * the Matcher (`<m>/<stage>`), advances the node's event clock for the registry, and counts rows per query.
 * Rows come from a live Pixie query (a {@link RowSource} run under this actor's supervision) or from a capture
 * replay feeding the actor's mailbox.
 *
 * The event clock ignores rows too far ahead of the others (see event_clock.ts), so one wrong `time_` cannot
 * expire every signature. Row counts are labelled by configured query names; rows of other queries are counted
 * and skipped, their names kept as labels for the first few only, so input cannot create series without end.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import {
  type DetectorMsg,
  type ExporterMsg,
  type MatcherMsg,
  NO_COUNTERS,
  type NodeCounters,
  OTHER_QUERY,
  type ReaderMsg,
  type RegistryMsg,
} from "./messages.ts";
import { parseQueryName, type Row, SOURCE_STREAM } from "../pixie/row.ts";
import { EventClock } from "./event_clock.ts";

/** Names of queries no measurement names that keep their own label (the end-of-run diagnosis quotes them). */
export const UNKNOWN_QUERY_LABELS = 8;

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
  /** The configured query names (`<measurement>/source`, `<measurement>/<stage>`). */
  queries: ReadonlySet<string>;
  /** engine.clock_window_seconds, ns. */
  clockWindowNs: bigint;
  /** Wall clock, ns (live nodes: rows further ahead of it than the window do not move the event clock). */
  wallNs?: () => bigint;
  counters?: NodeCounters;
}

/** Builds the reader's behaviour. */
export function pixieReader(deps: ReaderDeps): ActorFactory<ReaderMsg> {
  const tickNs = deps.tickNs ?? 1_000_000_000n;
  const counters = deps.counters ?? NO_COUNTERS;
  // Outside the factory: a restarted reader keeps the labels it gave (a bounded set either way).
  const unknown = new Set<string>();
  return (ctx) => {
    const clock = new EventClock({ windowNs: deps.clockWindowNs, wallNs: deps.wallNs });
    let lastTick = 0n;
    let outliers = 0;
    const rows = new Map<string, number>();

    const flushCounts = async () => {
      for (const [query, n] of rows) await deps.exporter.tell({ kind: "rows", query, n });
      rows.clear();
      if (clock.outliers > outliers) {
        counters.clockOutliers(clock.outliers - outliers);
        outliers = clock.outliers;
      }
    };
    /** The label of a query: its name if configured or among the first few unknown ones, else `(other)`. */
    const labelOf = (query: string): string => {
      if (deps.queries.has(query) || unknown.has(query)) return query;
      if (unknown.size < UNKNOWN_QUERY_LABELS) {
        unknown.add(query);
        ctx.log.warn("rows of a query no measurement names; counted and skipped", { query });
        return query;
      }
      return OTHER_QUERY;
    };
    const route = async (row: Row) => {
      const known = deps.queries.has(row.query);
      const label = known ? row.query : labelOf(row.query);
      rows.set(label, (rows.get(label) ?? 0) + 1);
      if (clock.observe(row.time) === "advanced" && clock.nowNs - lastTick >= tickNs) {
        lastTick = clock.nowNs;
        await deps.registry.tell({ kind: "tick", nowNs: lastTick });
        await flushCounts();
      }
      if (!known) {
        counters.rowsSkipped(label, "unknown_query");
        return;
      }
      const q = parseQueryName(row.query);
      const det = q && q.stream === SOURCE_STREAM ? deps.detectors.get(q.measurement) : undefined;
      if (det) await det.tell({ kind: "row", row });
      else await deps.matcher.tell({ kind: "row", row });
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
