/**
 * fsm-px's Prometheus metrics (names are a contract, see README "Metrics"). One instance per node.
 *
 * The registry is a plain Prometheus one, rendered as text 0.0.4 by prom-client; OpenMetrics (with the latency
 * exemplars) is rendered by {@link renderOpenMetrics} from the same values, because prom-client renames counters
 * in place when a registry is switched to OpenMetrics and one registry cannot safely serve both.
 * @module
 */
import { queryName, SOURCE_TAP } from "../util/query_name.ts";
import * as client from "./prom.ts";
import type { Match } from "../audio/types.ts";
import { renderOpenMetrics } from "./openmetrics.ts";
import type { HopRecord } from "../report/records.ts";
import type { RowSkipReason } from "../actors/messages.ts";
import { exemplarLabels } from "../report/trace_ids.ts";
import { REPEAT_OUTCOMES, type RepeatOutcome } from "../audio/match/repeats.ts";

// prom-client's typings omit the constructor's content-type argument.
const RegistryWithType = client.Registry as unknown as new (
  contentType: client.RegistryContentType,
) => client.Registry;

/** Buckets of `audio_latency_seconds`: 5 ms to 30 s. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30];

/** Options of the metrics set. */
export interface MetricsOptions {
  /** Attach {interval_id, signature_id} exemplars to latency observations. */
  exemplars?: boolean;
  /** Most `audio_latency_last_seconds` series kept at once (least recently updated evicted first). */
  lastSeries?: number;
  /** A per-interval series disappears this long after its last update. */
  lastTtlMs?: number;
  /** Wall clock in ms (injectable for tests); only used to expire per-interval series. */
  now?: () => number;
  /**
   * Most `audio_latency_seconds` label sets kept (pod names change with every rollout): past it, the least
   * recently observed set is removed. Default 2000.
   */
  latencySeries?: number;
  /** An `audio_latency_seconds` label set not observed for this long is removed. Default 1 h. */
  latencySeriesTtlMs?: number;
  /** Reports resident memory; default `Deno.memoryUsage().rss`. */
  rss?: () => number;
  version?: string;
}

interface LastEntry {
  labels: { measurement: string; stage: string; interval_id: string };
  value: number;
  updatedAt: number;
}

/** The node's metrics, with one method per thing that happens. */
export class FsmMetrics {
  /**
   * The registry `/metrics` renders. prom-client only lets a histogram keep exemplars if its registry is an
   * OpenMetrics one when the histogram is created; the registry is switched to plain text right after, so
   * `metrics()` serves 0.0.4 (OpenMetrics is rendered from the same values by {@link renderOpenMetrics}).
   */
  readonly registry: client.Registry = new RegistryWithType(client.Registry.OPENMETRICS_CONTENT_TYPE);
  readonly #exemplars: boolean;
  readonly #lastSeries: number;
  readonly #lastTtlMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, LastEntry>();
  readonly #latencySeries: number;
  readonly #latencySeriesTtlMs: number;
  /** Label sets of `audio_latency_seconds` by key, least recently observed first. */
  readonly #latencyKeys = new Map<
    string,
    { labels: { measurement: string; stage: string; source_pod: string; target_pod: string }; at: number }
  >();
  readonly #depthSources: (() => readonly { name: string; depth: number }[])[] = [];

  readonly #latency: client.Histogram<"measurement" | "stage" | "source_pod" | "target_pod">;
  readonly #hop: client.Histogram<"measurement" | "stage" | "from_stage">;
  readonly #detected: client.Counter<"measurement">;
  readonly #matched: client.Counter<"measurement" | "stage">;
  readonly #active: client.Gauge<"measurement">;
  readonly #rowsRead: client.Counter<"query">;
  readonly #decodeErrors: client.Counter<"measurement" | "stream" | "reason">;
  readonly #truncated: client.Counter<"query">;
  readonly #packets: client.Counter;
  readonly #packetBytes: client.Counter;
  readonly #packetDrops: client.Gauge<"where">;
  readonly #packetSkips: client.Counter<"reason">;
  readonly #mailboxDepth: client.Gauge<"actor">;
  readonly #dropped: client.Counter<"actor" | "reason">;
  readonly #restarts: client.Counter<"actor">;
  readonly #poison: client.Counter<"actor">;
  readonly #queryRestarts: client.Counter<"query" | "kind">;
  /** Per query: the stream lag last reported and when (ms); the gauge adds the time since, on scrape. */
  readonly #lagAt = new Map<string, { seconds: number; atMs: number }>();
  /** When the Pixie query stream last answered (ms since the epoch; 0: never). */
  #pixieResponseMs = 0;
  #pixieResponseGauge: client.Gauge | undefined;
  #otlpSpans: client.Counter<"outcome"> | undefined;
  readonly #pixieHealthy: client.Gauge;
  readonly #outboxDepth: client.Gauge;
  readonly #outboxOverflow: client.Counter;
  readonly #published: client.Counter<"kind">;
  readonly #publishFailed: client.Counter<"kind" | "reason">;
  readonly #clockOffset: client.Gauge<"peer">;
  readonly #sigExpired: client.Counter<"measurement" | "reason">;
  readonly #streamsEvicted: client.Counter<"measurement" | "stream">;
  readonly #lookbackShort: client.Counter<"measurement">;
  readonly #repeated: client.Counter<"measurement" | "stage" | "outcome">;
  readonly #rowsSkipped: client.Counter<"query" | "reason">;
  readonly #clockOutliers: client.Counter;
  readonly #receiveFailed: client.Counter<"kind" | "reason">;
  readonly #pixieSkipped: client.Counter<"kind">;

  constructor(opts: MetricsOptions = {}) {
    this.#exemplars = opts.exemplars ?? true;
    this.#lastSeries = opts.lastSeries ?? 1000;
    this.#lastTtlMs = opts.lastTtlMs ?? 300_000;
    this.#now = opts.now ?? Date.now;
    this.#latencySeries = opts.latencySeries ?? 2000;
    this.#latencySeriesTtlMs = opts.latencySeriesTtlMs ?? 3_600_000;
    const registers = [this.registry];
    const rss = opts.rss ?? (() => Deno.memoryUsage().rss);

    this.#latency = new client.Histogram({
      name: "audio_latency_seconds",
      help: "Latency of an audio instant from the source tap to a stage (capture time difference).",
      labelNames: ["measurement", "stage", "source_pod", "target_pod"],
      buckets: LATENCY_BUCKETS,
      enableExemplars: this.#exemplars,
      registers,
    });
    this.#hop = new client.Histogram({
      name: "audio_hop_latency_seconds",
      help:
        "Latency a stage adds: its capture time minus the previous stage's (match_rules[].after) for the " +
        "same signature, when both were found.",
      labelNames: ["measurement", "stage", "from_stage"],
      // Negative hops exist (clock skew between nodes): they land in the first bucket and show in _sum.
      buckets: LATENCY_BUCKETS,
      enableExemplars: this.#exemplars,
      registers,
    });
    this.#detected = new client.Counter({
      name: "signatures_detected_total",
      help: "Signatures computed at the source taps of this node.",
      labelNames: ["measurement"],
      registers,
    });
    this.#matched = new client.Counter({
      name: "signatures_matched_total",
      help: "Matches at a stage tap on this node (a signature found on two streams of a stage counts twice).",
      labelNames: ["measurement", "stage"],
      registers,
    });
    this.#active = new client.Gauge({
      name: "active_signatures",
      help: "Signatures currently matchable in this node's registry.",
      labelNames: ["measurement"],
      registers,
    });
    // Collected on scrape from a bounded, expiring map, so per-interval values stay visible without
    // unbounded cardinality.
    const last = this.#last;
    const expire = () => this.#expireLast();
    new client.Gauge({
      name: "audio_latency_last_seconds",
      help: "Latest latency per interval id (bounded set of series that expire).",
      labelNames: ["measurement", "stage", "interval_id"],
      registers,
      collect() {
        expire();
        this.reset();
        for (const e of last.values()) this.set(e.labels, e.value);
      },
    });
    this.#rowsRead = new client.Counter({
      name: "fsmpx_rows_read_total",
      help: "Pixie rows read, per query.",
      labelNames: ["query"],
      registers,
    });
    this.#decodeErrors = new client.Counter({
      name: "fsmpx_payload_decode_errors_total",
      help: "Payloads that could not be decoded as audio, by reason (skipped).",
      labelNames: ["measurement", "stream", "reason"],
      registers,
    });
    this.#truncated = new client.Counter({
      name: "fsmpx_payloads_truncated_total",
      help: "Payloads Pixie cut at its capture limit or removed (counted, not decoded).",
      labelNames: ["query"],
      registers,
    });
    this.#packets = new client.Counter({
      name: "fsmpx_packets_read_total",
      help: "Packets the live capture read (after the kernel's BPF filter).",
      registers,
    });
    this.#packetBytes = new client.Counter({
      name: "fsmpx_packet_bytes_total",
      help: "Wire bytes of the packets the live capture read.",
      registers,
    });
    this.#packetDrops = new client.Gauge({
      name: "fsmpx_packets_dropped",
      help:
        "Packets dropped before the sensor saw them since the capture started: kernel (buffer full), interface.",
      labelNames: ["where"],
      registers,
    });
    this.#packetSkips = new client.Counter({
      name: "fsmpx_packets_skipped_total",
      help:
        "Packets and messages skipped by the packet parsers, by reason (not_rtp, rtcp, tcp_gap, no_tap, ...).",
      labelNames: ["reason"],
      registers,
    });
    const depthSources = this.#depthSources;
    this.#mailboxDepth = new client.Gauge({
      name: "fsmpx_mailbox_depth",
      help: "Messages waiting in an actor's mailbox.",
      labelNames: ["actor"],
      registers,
      collect() {
        // Read at scrape time: setting a gauge on every enqueue would cost more than the message itself.
        for (const source of depthSources) {
          for (const { name, depth } of source()) this.set({ actor: name }, depth);
        }
      },
    });
    this.#dropped = new client.Counter({
      name: "fsmpx_mailbox_dropped_total",
      help:
        "Rows or messages an actor dropped, by reason (overflow, stopping, deadline; late: the reader's rows read too late).",
      labelNames: ["actor", "reason"],
      registers,
    });
    this.#restarts = new client.Counter({
      name: "fsmpx_actor_restarts_total",
      help: "Actor restarts by its supervisor.",
      labelNames: ["actor"],
      registers,
    });
    this.#poison = new client.Counter({
      name: "fsmpx_actor_poison_messages_total",
      help: "Messages that crashed an actor (not redelivered).",
      labelNames: ["actor"],
      registers,
    });
    this.#queryRestarts = new client.Counter({
      name: "fsmpx_pixie_query_restarts_total",
      help:
        "Pixie query restarts, by kind: rerun (run again from a time_ it had reached, after a drop, a skip " +
        "ahead or a change of pixie.scope's pods; fsm-px never resumes a query).",
      labelNames: ["query", "kind"],
      registers,
    });
    // Worked out on scrape: a stream that stopped answering must not freeze its lag at the last value it had.
    const lagAt = this.#lagAt;
    const clock = this.#now;
    new client.Gauge({
      name: "fsmpx_pixie_stream_lag_seconds",
      help: "Now minus the newest time_ received, per query.",
      labelNames: ["query"],
      registers,
      collect() {
        const now = clock();
        for (const [query, l] of lagAt) this.set({ query }, l.seconds + Math.max(0, now - l.atMs) / 1000);
      },
    });

    this.#pixieHealthy = new client.Gauge({
      name: "fsmpx_pixie_healthy",
      help: "1 when Pixie's HealthCheck reports OK.",
      registers,
    });
    this.#outboxDepth = new client.Gauge({
      name: "fsmpx_bus_outbox_depth",
      help: "Publishes waiting for the bus (NATS unreachable or slow).",
      registers,
    });
    this.#outboxOverflow = new client.Counter({
      name: "fsmpx_bus_outbox_overflow_total",
      help: "Publishes lost because the bounded outbox was full.",
      registers,
    });
    this.#published = new client.Counter({
      name: "fsmpx_bus_published_total",
      help: "Messages published on the bus, by kind (signature, match).",
      labelNames: ["kind"],
      registers,
    });
    this.#publishFailed = new client.Counter({
      name: "fsmpx_bus_publish_failed_total",
      help:
        "Messages never published on the bus, by kind and reason: rejected (refused by the server, e.g. its " +
        "permissions), too_large, bad_subject, encode (not encodable), closed (the bus closed first); one the bus " +
        "closed on while it waited to be retried keeps its last try's reason (timeout, disconnected, ...).",
      labelNames: ["kind", "reason"],
      registers,
    });
    this.#clockOffset = new client.Gauge({
      name: "node_clock_offset_seconds",
      help: "Estimated clock offset of a peer node relative to this one.",
      labelNames: ["peer"],
      registers,
    });
    this.#sigExpired = new client.Counter({
      name: "fsmpx_signatures_expired_total",
      help:
        "Signatures that stopped being matchable or were never accepted, by reason: ttl (expired in event time), " +
        "late (past its TTL on arrival), future (beyond the clock window), evicted (over max_active_signatures), " +
        "invalid (a signature the matcher cannot use).",
      labelNames: ["measurement", "reason"],
      registers,
    });
    this.#streamsEvicted = new client.Counter({
      name: "fsmpx_streams_evicted_total",
      help: "Streams finished early because engine.max_streams was reached (least recently active first).",
      labelNames: ["measurement", "stream"],
      registers,
    });
    this.#lookbackShort = new client.Counter({
      name: "fsmpx_signatures_lookback_short_total",
      help: "Signatures searched from before the target audio a live sensor keeps because its memory limit " +
        "shortened engine.lookback_seconds (actors/stream_budget.ts), which the configured lookback would still hold.",
      labelNames: ["measurement"],
      registers,
    });
    this.#repeated = new client.Counter({
      name: "fsmpx_matches_repeated_total",
      help:
        "Matches of audio that repeats at the source (a prompt in every call, a load test replaying one file; " +
        "audio/match/repeats.ts): dropped for a nearer twin (outcome dropped), or released before that twin was " +
        "found (outcome released_before_twin: its latency includes the time between the repeats).",
      labelNames: ["measurement", "stage", "outcome"],
      registers,
    });
    this.#rowsSkipped = new client.Counter({
      name: "fsmpx_rows_skipped_total",
      help:
        "Rows not fed to any pipeline, by reason: duplicate (same stream, time and payload), rerun_duplicate " +
        "(Pixie re-run overlap), unknown_query, unknown_stage, no_time (a replayed row without a usable time_), " +
        "stream_limit (past engine.max_streams). Query names not in the config are one label: (other).",
      labelNames: ["query", "reason"],
      registers,
    });
    this.#clockOutliers = new client.Counter({
      name: "fsmpx_rows_clock_outliers_total",
      help:
        "Rows whose time_ was too far ahead (engine.clock_window_seconds) to move the node's event clock " +
        "(still decoded).",
      registers,
    });
    this.#receiveFailed = new client.Counter({
      name: "fsmpx_bus_receive_failed_total",
      help: "Bus messages received that could not be decoded (skipped), by kind and reason.",
      labelNames: ["kind", "reason"],
      registers,
    });
    this.#pixieSkipped = new client.Counter({
      name: "fsmpx_pixie_batches_skipped_total",
      help: "Pixie responses skipped, by kind: decode, decrypt, unknown_table.",
      labelNames: ["kind"],
      registers,
    });
    new client.Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      registers,
      collect() {
        this.set(rss());
      },
    });
    new client.Gauge({
      name: "fsmpx_build_info",
      help: "fsm-px build information.",
      labelNames: ["version"],
      registers,
    }).set({ version: opts.version ?? "dev" }, 1);
    this.registry.setContentType(client.Registry.PROMETHEUS_CONTENT_TYPE);
  }

  /**
   * Records one match: histogram (with exemplar `{trace_id, signature_id, interval_id}`; the trace id when
   * traces are exported), matched counter and the per-interval gauge.
   */
  match(m: Match, traceId?: string): void {
    const labels = {
      measurement: m.measurement,
      stage: m.stage,
      source_pod: m.source.pod,
      target_pod: m.target.pod,
    };
    const intervalId = m.ids["interval_id"] ?? Object.values(m.ids)[0];
    this.#noteLatencyLabels(labels);
    if (this.#exemplars) {
      this.#latency.observe({
        labels,
        value: m.latencyS,
        exemplarLabels: exemplarLabels(m.signatureId, intervalId, traceId),
      });
    } else {
      this.#latency.observe(labels, m.latencyS);
    }
    this.#matched.inc({ measurement: m.measurement, stage: m.stage });
    if (intervalId) this.#setLast(m.measurement, m.stage, intervalId, m.latencyS);
  }

  /** Records what a stage added over the previous one (`audio_hop_latency_seconds`). */
  hop(
    m: { measurement: string; stage: string; signatureId: string; ids: Record<string, string> },
    hop: HopRecord,
    traceId?: string,
  ): void {
    const labels = { measurement: m.measurement, stage: m.stage, from_stage: hop.from_stage };
    if (this.#exemplars) {
      const intervalId = m.ids["interval_id"] ?? Object.values(m.ids)[0];
      this.#hop.observe({
        labels,
        value: hop.latency_s,
        exemplarLabels: exemplarLabels(m.signatureId, intervalId, traceId),
      });
    } else {
      this.#hop.observe(labels, hop.latency_s);
    }
  }

  #noteLatencyLabels(
    labels: { measurement: string; stage: string; source_pod: string; target_pod: string },
  ): void {
    const key =
      `${labels.measurement}\u0000${labels.stage}\u0000${labels.source_pod}\u0000${labels.target_pod}`;
    this.#latencyKeys.delete(key); // re-insert: Map order is least recently observed first
    this.#latencyKeys.set(key, { labels, at: this.#now() });
    while (this.#latencyKeys.size > this.#latencySeries) {
      const oldest = this.#latencyKeys.entries().next().value;
      if (oldest === undefined) break;
      this.#latencyKeys.delete(oldest[0]);
      this.#latency.remove(oldest[1].labels);
    }
  }

  /** Removes `audio_latency_seconds` label sets not observed within the TTL (at scrape time). */
  #expireLatency(): void {
    const cutoff = this.#now() - this.#latencySeriesTtlMs;
    for (const [key, e] of this.#latencyKeys) {
      if (e.at >= cutoff) break;
      this.#latencyKeys.delete(key);
      this.#latency.remove(e.labels);
    }
  }

  #setLast(measurement: string, stage: string, interval_id: string, value: number): void {
    const key = `${measurement}\u0000${stage}\u0000${interval_id}`;
    this.#last.delete(key); // re-insert so Map order is least-recently-updated first
    this.#last.set(key, { labels: { measurement, stage, interval_id }, value, updatedAt: this.#now() });
    while (this.#last.size > this.#lastSeries) {
      const oldest = this.#last.keys().next().value;
      if (oldest === undefined) break;
      this.#last.delete(oldest);
    }
  }

  #expireLast(): void {
    const cutoff = this.#now() - this.#lastTtlMs;
    for (const [key, e] of this.#last) {
      if (e.updatedAt >= cutoff) break; // insertion order = update order
      this.#last.delete(key);
    }
  }

  /**
   * Creates every series labelled by a configured measurement (and stage) at 0, on every node, so that rates and
   * alerts see a series from the start instead of a missing one (Prometheus practice). Call once with the
   * config's `measurements`.
   */
  initMeasurements(
    measurements: readonly { name: string; match_rules: readonly { stage: string }[] }[],
  ): void {
    for (const m of measurements) {
      const measurement = m.name;
      this.#detected.inc({ measurement }, 0);
      this.#active.set({ measurement }, 0);
      for (const reason of ["ttl", "late", "future", "evicted", "invalid"]) {
        this.#sigExpired.inc({ measurement, reason }, 0);
      }
      this.#streamsEvicted.inc({ measurement, stream: "source" }, 0);
      this.#lookbackShort.inc({ measurement }, 0);
      this.#rowsRead.inc({ query: queryName(measurement, SOURCE_TAP) }, 0);
      for (const r of m.match_rules) {
        this.#matched.inc({ measurement, stage: r.stage }, 0);
        for (const outcome of REPEAT_OUTCOMES) {
          this.#repeated.inc({ measurement, stage: r.stage, outcome }, 0);
        }
        this.#streamsEvicted.inc({ measurement, stream: r.stage }, 0);
        this.#rowsRead.inc({ query: queryName(measurement, r.stage) }, 0);
      }
    }
  }

  /** A signature was computed at a source tap of this node. */
  signatureDetected(measurement: string): void {
    this.#detected.inc({ measurement });
  }

  /** Signatures currently matchable for a measurement. */
  activeSignatures(measurement: string, n: number): void {
    this.#active.set({ measurement }, n);
  }

  /** Rows read from Pixie or a capture, per query. */
  rowsRead(query: string, n = 1): void {
    this.#rowsRead.inc({ query }, n);
  }

  /** Payloads skipped because they could not be decoded. */
  decodeErrors(measurement: string, stream: string, reason: string, n = 1): void {
    this.#decodeErrors.inc({ measurement, stream, reason }, n);
  }

  /** Payloads Pixie truncated or removed. */
  truncated(query: string, n = 1): void {
    this.#truncated.inc({ query }, n);
  }

  /** Registers a snapshot of mailbox depths read at every scrape (e.g. an actor system's stats). */
  watchMailboxes(source: () => readonly { name: string; depth: number }[]): void {
    this.#depthSources.push(source);
  }

  /** Mailbox depth of an actor. */
  mailboxDepth(actor: string, depth: number): void {
    this.#mailboxDepth.set({ actor }, depth);
  }

  /** Messages dropped by an actor's mailbox. */
  dropped(actor: string, reason: string, n = 1): void {
    this.#dropped.inc({ actor, reason }, n);
  }

  /** An actor was restarted. */
  restarted(actor: string): void {
    this.#restarts.inc({ actor });
  }

  /** A message crashed an actor. */
  poison(actor: string): void {
    this.#poison.inc({ actor });
  }

  /** A Pixie query was resumed or re-run. */
  queryRestarted(query: string, kind: "resume" | "rerun"): void {
    this.#queryRestarts.inc({ query, kind });
  }

  /** Now minus the newest time_ of a query, seconds. */
  streamLag(query: string, seconds: number, nowMs = this.#now()): void {
    const l = this.#lagAt.get(query);
    if (l) {
      l.seconds = seconds;
      l.atMs = nowMs;
    } else this.#lagAt.set(query, { seconds, atMs: nowMs });
  }

  /**
   * This sensor reads a Pixie query stream: from now on `fsmpx_pixie_last_response_timestamp_seconds` is served,
   * 0 until the stream first answers (a sensor without Pixie has no such series, so no alert on it).
   */
  pixieStreamOpened(): void {
    if (this.#pixieResponseGauge) return;
    const responded = () => this.#pixieResponseMs;
    this.#pixieResponseGauge = new client.Gauge({
      name: "fsmpx_pixie_last_response_timestamp_seconds",
      help:
        "When the Pixie query stream last answered (rows or a keep-alive, which Vizier sends every 2 s); " +
        "0 before its first answer.",
      registers: [this.registry],
      collect() {
        this.set(responded() / 1000);
      },
    });
  }

  /**
   * This sensor exports traces: from now on `fsmpx_otlp_spans_total{outcome}` (sent, failed: the collector
   * refused or did not answer, dropped: its queue was full) is served, read from `stats` on each scrape.
   */
  otlpOpened(stats: () => { sent: number; failed: number; dropped: number }): void {
    if (this.#otlpSpans) return;
    this.#otlpSpans = new client.Counter({
      name: "fsmpx_otlp_spans_total",
      help:
        "Trace spans by outcome: sent, failed (refused or unanswered by the collector), dropped (queue full).",
      labelNames: ["outcome"],
      registers: [this.registry],
      collect() {
        const s = stats();
        this.reset();
        this.inc({ outcome: "sent" }, s.sent);
        this.inc({ outcome: "failed" }, s.failed);
        this.inc({ outcome: "dropped" }, s.dropped);
      },
    });
  }

  /** The Pixie query stream answered (rows, metadata or a keep-alive). */
  pixieResponded(nowMs = this.#now()): void {
    this.#pixieResponseMs = nowMs;
  }

  /** When the Pixie query stream last answered, ms since the epoch (undefined: never). */
  get pixieLastResponseMs(): number | undefined {
    return this.#pixieResponseMs > 0 ? this.#pixieResponseMs : undefined;
  }

  /** Pixie health. */
  pixieHealthy(ok: boolean): void {
    this.#pixieHealthy.set(ok ? 1 : 0);
  }

  /** Bus outbox depth. */
  outboxDepth(n: number): void {
    this.#outboxDepth.set(n);
  }

  /** Publishes lost to a full outbox. */
  outboxOverflow(n = 1): void {
    this.#outboxOverflow.inc(n);
  }

  /** A message was published on the bus. */
  published(kind: "signature" | "match"): void {
    this.#published.inc({ kind });
  }

  /** A message will never be published (refused for good, unencodable, or abandoned at close). */
  publishFailed(kind: "signature" | "match", reason: string): void {
    this.#publishFailed.inc({ kind, reason });
  }

  /** Packets read by the live capture and their wire bytes. */
  packetsRead(n: number, bytes: number): void {
    if (n > 0) this.#packets.inc(n);
    if (bytes > 0) this.#packetBytes.inc(bytes);
  }

  /** Cumulative drops the capture reported (tcpdump restarts reset them). */
  packetsDropped(kernel: number, iface: number): void {
    this.#packetDrops.set({ where: "kernel" }, kernel);
    this.#packetDrops.set({ where: "interface" }, iface);
  }

  /** Packets or messages the packet parsers skipped, by reason (a fixed set of reasons). */
  packetsSkipped(reason: string, n = 1): void {
    this.#packetSkips.inc({ reason }, n);
  }

  /** Estimated clock offset of a peer, seconds. */
  clockOffset(peer: string, seconds: number): void {
    this.#clockOffset.set({ peer }, seconds);
  }

  /** A peer no longer measured (it left): its series goes, so node churn does not grow the series for ever. */
  clockOffsetGone(peer: string): void {
    this.#clockOffset.remove({ peer });
  }

  /** Signatures expired or refused by the registry (`n` may be 0: the series then exists at 0). */
  signaturesExpired(measurement: string, reason: string, n = 1): void {
    this.#sigExpired.inc({ measurement, reason }, n);
  }

  /** Streams evicted at the engine.max_streams cap (`stream`: source or the stage). */
  streamsEvicted(measurement: string, stream: string, n = 1): void {
    this.#streamsEvicted.inc({ measurement, stream }, n);
  }

  /** Signatures searched from before a shortened lookback (see stream_budget.ts). */
  lookbackShort(measurement: string, n = 1): void {
    this.#lookbackShort.inc({ measurement }, n);
  }

  /** A match met a repeat of its audio: dropped, or released before its nearer twin was found. */
  matchesRepeated(measurement: string, stage: string, outcome: RepeatOutcome): void {
    this.#repeated.inc({ measurement, stage, outcome });
  }

  /** Rows skipped before any pipeline (`query` is a configured name or `(other)`). */
  rowsSkipped(query: string, reason: RowSkipReason, n = 1): void {
    this.#rowsSkipped.inc({ query, reason }, n);
  }

  /** Rows too far ahead to move the event clock. */
  clockOutliers(n = 1): void {
    if (n > 0) this.#clockOutliers.inc(n);
  }

  /** A bus message could not be decoded. */
  receiveFailed(kind: string, reason: string): void {
    this.#receiveFailed.inc({ kind, reason });
  }

  /** A Pixie response was skipped. */
  pixieSkipped(kind: string): void {
    this.#pixieSkipped.inc({ kind });
  }

  /** Prometheus text exposition 0.0.4. */
  text(): Promise<string> {
    this.#expireLatency();
    return this.registry.metrics();
  }

  /** OpenMetrics 1.0 exposition, with exemplars. */
  async openMetrics(): Promise<string> {
    this.#expireLatency();
    return renderOpenMetrics(await this.registry.getMetricsAsJSON());
  }
}
