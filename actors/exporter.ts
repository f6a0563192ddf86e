/**
 * Exporter: one per node. Turns signatures and matches into Prometheus metrics, publishes match records on the
 * bus, and hands records to local sinks (`analyze --out`, the demo's live printout, OTLP traces).
 *
 * Hops (with `paths`): a match's hop is known here when the previous stage's match of the same signature was
 * seen first, on this node, by another node sharing the tracker (one process: analyze, demo), or from the
 * bus (`matchFeed`: other nodes' match records from JetStream). Then the record and the published match carry
 * `hop` and `audio_hop_latency_seconds` is observed. When the previous stage's match arrives later, the hop is
 * still observed then, but the record already left without it: analyze, replay and the UI recompute hops from
 * all records, so their figures are complete either way.
 * @module
 */
import type { ActorContext, ActorFactory } from "./runtime.ts";
import type { ExporterMsg } from "./messages.ts";
import type { Bus } from "../bus/bus.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import {
  hopCopy,
  type MatchRecord,
  matchRecord,
  type SignatureRecord,
  signatureRecord,
} from "../report/records.ts";
import { HopTracker, type StagePaths } from "../report/hops.ts";
import { traceIdOf } from "../report/trace_ids.ts";
import { logger } from "../util/log.ts";

const log = logger("exporter");

/** Where records go besides the bus. */
export interface RecordSink {
  signature?(rec: SignatureRecord): void | Promise<void>;
  match?(rec: MatchRecord): void | Promise<void>;
}

/** Match records of other nodes, as they are stored (e.g. JetStream `fsmpx.match.<measurement>.>`). */
export interface MatchFeed {
  subscribe(
    measurements: readonly string[],
    handler: (rec: MatchRecord) => void,
  ): Promise<{ unsubscribe(): Promise<void> }>;
}

/** What the Exporter talks to. */
export interface ExporterDeps {
  metrics: FsmMetrics;
  bus: Bus;
  sinks: readonly RecordSink[];
  /** Stage paths (`match_rules[].after`, see report/hops.ts `stagePaths`): with them, matches get hops. */
  paths?: StagePaths;
  /** A tracker shared by the nodes of one process; default: this exporter's own. */
  hops?: HopTracker;
  /** Other nodes' match records, so hops from a stage on another node are known live. */
  matchFeed?: MatchFeed;
  /** Put the trace id (report/trace_ids.ts) in the latency exemplars: set when traces are exported. */
  traceIds?: boolean;
}

/** Longest wait between attempts to subscribe to the other nodes' matches, ms. */
const FEED_RETRY_MAX_MS = 30_000;
/** How long the Exporter's start waits for its first attempt to subscribe, ms. */
const FEED_START_WAIT_MS = 5_000;

/** Builds the Exporter's behaviour. */
export function exporter(deps: ExporterDeps): ActorFactory<ExporterMsg> {
  const { metrics, bus, sinks } = deps;
  // Outside the factory: a restarted exporter keeps what it knew.
  const tracker = deps.paths ? (deps.hops ?? new HopTracker(deps.paths)) : undefined;
  /** This exporter as the owner of the matches it observes in the tracker (see {@link HopTracker.observe}). */
  const self = {};
  const traceId = (m: { measurement: string; signatureId: string; ids: Record<string, string> }) =>
    deps.traceIds ? traceIdOf(m.measurement, m.signatureId, m.ids["interval_id"]) : undefined;
  const countResolved = (resolved: ReturnType<HopTracker["observe"]>["resolved"]) => {
    for (const r of resolved) {
      // A hop resolved later is counted by the node that holds the match.
      if (r.owner !== self) continue;
      const m = { measurement: r.match.measurement, signatureId: r.match.signature_id, ids: r.match.ids };
      metrics.hop({ ...m, stage: r.match.stage }, r.hop, traceId(m));
    }
  };
  // A sink is an output among others: its failure must neither take the record from the bus and the other
  // sinks nor crash the exporter (a sink failing on every record would escalate and stop the sensor).
  let sinkFailures = 0;
  const toSinks = async (deliver: (s: RecordSink) => void | Promise<void>) => {
    for (const s of sinks) {
      try {
        await deliver(s);
      } catch (e) {
        sinkFailures++;
        if (sinkFailures === 1 || sinkFailures % 1000 === 0) {
          log.error("record sink failed", { failures: sinkFailures, error: (e as Error).message });
        }
      }
    }
  };
  let feed: { unsubscribe(): Promise<void> } | undefined;
  /**
   * Subscribes to the other nodes' matches, retried with backoff until it holds or this incarnation ends: only
   * hops from other nodes depend on it, so a failure must not crash the exporter (a JetStream hiccup of ~3 s at
   * start failed six starts in a row and the sensor exited). Resolves after the first attempt; the rest go on
   * in the background.
   */
  const subscribe = (ctx: ActorContext<ExporterMsg>, feedOf: MatchFeed, t: HopTracker): Promise<void> => {
    let firstDone = () => {};
    const first = new Promise<void>((r) => firstDone = r);
    void (async () => {
      for (let attempt = 0; !ctx.signal.aborted && feed === undefined; attempt++) {
        try {
          const f = await feedOf.subscribe(Object.keys(deps.paths ?? {}), (rec) => {
            countResolved(t.observe(rec).resolved);
          });
          // One subscription at most (an earlier incarnation's may have come through meanwhile).
          if (ctx.stopping.aborted || feed !== undefined) await f.unsubscribe();
          else feed = f;
          return;
        } catch (e) {
          if (attempt === 0 || attempt % 10 === 0) {
            ctx.log.warn("match feed: subscribing failed, retrying (hops from other nodes wait)", {
              attempt: attempt + 1,
              error: (e as Error).message,
            });
          }
          firstDone();
          try {
            await ctx.clock.sleep(Math.min(FEED_RETRY_MAX_MS, 500 * 2 ** Math.min(attempt, 10)), ctx.signal);
          } catch {
            return;
          }
        }
      }
    })().finally(firstDone);
    return first;
  };
  return (ctx) => ({
    async onStart() {
      if (!tracker || !deps.matchFeed || feed) return;
      // Matches from the start should see the other nodes' records: wait for the first attempt (the rest go on
      // in the background), but not for long (a subscription that hangs must not hold the exporter's mailbox).
      await Promise.race([
        subscribe(ctx, deps.matchFeed, tracker),
        ctx.clock.sleep(FEED_START_WAIT_MS, ctx.signal).catch(() => {}),
      ]);
    },
    async onStop(reason) {
      if (reason === "shutdown" && feed) {
        const f = feed;
        feed = undefined;
        await f.unsubscribe();
      }
    },
    async receive(msg) {
      switch (msg.kind) {
        case "signature": {
          metrics.signatureDetected(msg.sig.measurement);
          const rec = signatureRecord(msg.sig, msg.bytes);
          await toSinks((s) => s.signature?.(rec));
          return;
        }
        case "match": {
          const tid = traceId(msg.match);
          metrics.match(msg.match, tid);
          // The record is built once: the tracker, the bus and every sink get the same one.
          let rec = matchRecord(msg.match);
          if (tracker) {
            const { hop, resolved } = tracker.observe(rec, self);
            if (hop) {
              // A copy with the hop: the record the tracker observed stays as it was.
              rec = { ...rec, hop: hopCopy(hop) };
              metrics.hop(msg.match, hop, tid);
            }
            countResolved(resolved);
          }
          await bus.publishMatch(rec);
          await toSinks((s) => s.match?.(rec));
          return;
        }
        case "active":
          return metrics.activeSignatures(msg.measurement, msg.count);
        case "rows":
          return metrics.rowsRead(msg.query, msg.n);
        case "decode": {
          const d = msg.delta;
          for (const [reason, n] of Object.entries(d.errors)) {
            metrics.decodeErrors(d.measurement, d.tap, reason, n);
          }
          const cut = Object.values(d.markers).reduce((a, b) => a + b, 0);
          if (cut > 0) metrics.truncated(d.query, cut);
          return;
        }
        case "finish":
          msg.reply(true);
      }
    },
  });
}

/**
 * A {@link MatchFeed} over a bus that delivers match objects in process (the in-process bus): every node of
 * one process sees the others' matches, as JetStream consumers do across processes.
 */
export function inProcessMatchFeed(
  bus: {
    subscribeMatches(handler: (rec: MatchRecord) => void | Promise<void>): { unsubscribe(): Promise<void> };
  },
): MatchFeed {
  return {
    subscribe(measurements, handler) {
      const wanted = new Set(measurements);
      return Promise.resolve(bus.subscribeMatches((rec) => {
        if (wanted.size === 0 || wanted.has(rec.measurement)) handler(rec);
      }));
    },
  };
}
