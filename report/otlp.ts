/**
 * Each interval's journey as an OpenTelemetry trace over OTLP/HTTP (protobuf), so Grafana Tempo or Jaeger draw
 * the waterfall people know: one trace per measurement, interval id and signature (report/trace_ids.ts), a
 * zero-length root span at the source tap's capture time, and a span per match from the previous tap's capture
 * time to this tap's (parent: the span of the previous stage's match the hop was measured from, else the root),
 * with node, pod, stage and BER attributes.
 *
 * Timestamps are the taps' capture times (event time), never the exporter's clock. Spans are encoded by the
 * official `@opentelemetry/otlp-transformer` (fed span objects with explicit times and derived ids, so no SDK
 * tracer, clock or random ids are involved) and POSTed to `<endpoint>/v1/traces`. Export is best effort: a
 * bounded queue, batches, failures and drops counted and logged, never thrown into the pipeline.
 * @module
 */
import "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { MatchRecord, SignatureRecord } from "./records.ts";
import { SOURCE_STAGE } from "./hops.ts";
import { matchSpanIdOf, spanIdOf, textHash, traceIdOf } from "./trace_ids.ts";
import { logger, registerSecret } from "../util/log.ts";

const log = logger("otlp");

/** `[seconds, nanoseconds]` as OpenTelemetry JS carries times. */
type HrTime = [number, number];

type Attr = string | number | boolean;

/** What the OTLP transformer reads of a span (the SDK's ReadableSpan, reduced to what is serialised). */
export interface SpanData {
  name: string;
  kind: number;
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
  parentSpanContext?: { traceId: string; spanId: string; traceFlags: number };
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: { code: number };
  attributes: Record<string, Attr>;
  links: never[];
  events: never[];
  ended: true;
  resource: ReturnType<typeof resourceFromAttributes>;
  instrumentationScope: { name: string; version?: string };
  droppedAttributesCount: 0;
  droppedEventsCount: 0;
  droppedLinksCount: 0;
}

/** `SpanKind.INTERNAL` of @opentelemetry/api (SPAN_KIND_INTERNAL, 1, on the wire): a hop is no request. */
const KIND_INTERNAL = 0;

/**
 * Longest string attribute value, UTF-8 bytes. A target's stream is its `stream_key` rendered from the message
 * (`$.session`, `$.streamSid`: whatever the sender wrote, of any length), unlike the source's, which the
 * signature format caps: a 200 KB session id made every span of that stream 200 KB, and a batch of 512 of them
 * ~100 MB, past a collector's request limit (20 MiB by default), so the whole batch, other streams' spans too,
 * was refused. A longer value keeps a prefix and a hash of the whole (distinct values stay distinct).
 */
export const MAX_ATTRIBUTE_BYTES = 256;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** `v` within {@link MAX_ATTRIBUTE_BYTES}: unchanged if it fits, else a prefix + `~` + 8 hex digits of its hash. */
function capped(v: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: shorter strings need no look.
  if (v.length * 3 <= MAX_ATTRIBUTE_BYTES) return v;
  const bytes = utf8.encode(v);
  if (bytes.length <= MAX_ATTRIBUTE_BYTES) return v;
  const suffix = "~" + textHash(v).slice(0, 8);
  let end = MAX_ATTRIBUTE_BYTES - suffix.length;
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return fromUtf8.decode(bytes.subarray(0, end)) + suffix;
}

function bounded(attributes: Record<string, Attr>): Record<string, Attr> {
  for (const [k, v] of Object.entries(attributes)) if (typeof v === "string") attributes[k] = capped(v);
  return attributes;
}

function hr(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

/** Options of the span builders and the exporter. */
export interface OtlpOptions {
  /** `service.name` of the resource (default `fsm-px`). */
  serviceName?: string;
  /** Extra resource attributes (e.g. `k8s.node.name`). */
  resource?: Record<string, string>;
}

/** Builds spans from records: the root span of a signature, the hop span of a match. */
export class SpanBuilder {
  readonly #resource: ReturnType<typeof resourceFromAttributes>;
  readonly #scope = { name: "fsm-px" };

  constructor(opts: OtlpOptions = {}) {
    this.#resource = resourceFromAttributes({
      "service.name": opts.serviceName ?? "fsm-px",
      ...opts.resource,
    });
  }

  #span(
    traceId: string,
    spanId: string,
    parent: string | undefined,
    name: string,
    start: bigint,
    end: bigint,
    attributes: Record<string, Attr>,
  ): SpanData {
    const ctx = { traceId, spanId, traceFlags: 1 };
    return {
      name,
      kind: KIND_INTERNAL,
      spanContext: () => ctx,
      parentSpanContext: parent ? { traceId, spanId: parent, traceFlags: 1 } : undefined,
      startTime: hr(start),
      // A hop can be negative when the nodes' clocks disagree: the span is then drawn at its end time, with the
      // signed hop kept in its attributes.
      endTime: hr(end < start ? start : end),
      duration: hr(end < start ? 0n : end - start),
      status: { code: 0 },
      attributes: bounded(attributes),
      links: [],
      events: [],
      ended: true,
      resource: this.#resource,
      instrumentationScope: this.#scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }

  /** The zero-length root span at the source tap. */
  root(s: SignatureRecord): SpanData {
    const traceId = traceIdOf(s.measurement, s.signature_id, s.ids["interval_id"]);
    const t = BigInt(s.time_ns);
    return this.#span(traceId, spanIdOf(traceId, SOURCE_STAGE), undefined, `${s.measurement} source`, t, t, {
      "fsmpx.measurement": s.measurement,
      "fsmpx.stage": SOURCE_STAGE,
      "fsmpx.signature_id": s.signature_id,
      "fsmpx.node": s.node,
      "k8s.node.name": s.node,
      "k8s.pod.name": s.pod,
      "fsmpx.stream": s.stream,
      "fsmpx.offset_ms": s.offset_ms,
      ...idAttributes(s.ids),
    });
  }

  /**
   * The span of a match: from the previous tap's capture time (the hop's start) to this tap's. Without a known
   * hop the span starts at the source and says so (`fsmpx.hop_known: false`). Its parent is the span of the
   * previous stage's match the hop names; the root when the hop is from the source, unknown, or from a record
   * that does not name the match (written before hops did).
   */
  hop(m: MatchRecord): SpanData {
    const traceId = traceIdOf(m.measurement, m.signature_id, m.ids["interval_id"]);
    const end = BigInt(m.target.time_ns);
    const from = m.hop?.from_stage ?? SOURCE_STAGE;
    const start = m.hop ? end - BigInt(Math.round(m.hop.latency_s * 1e9)) : BigInt(m.source.time_ns);
    const attributes: Record<string, Attr> = {
      "fsmpx.measurement": m.measurement,
      "fsmpx.stage": m.stage,
      "fsmpx.from_stage": from,
      "fsmpx.signature_id": m.signature_id,
      "fsmpx.node": m.target.node,
      "k8s.node.name": m.target.node,
      "k8s.pod.name": m.target.pod,
      "fsmpx.stream": m.target.stream,
      "fsmpx.ber": m.ber,
      "fsmpx.latency_s": m.latency_s,
      "fsmpx.hop_known": m.hop !== undefined,
      "fsmpx.source.node": m.source.node,
      "fsmpx.source.pod": m.source.pod,
      ...idAttributes(m.ids),
    };
    if (m.hop) attributes["fsmpx.hop_latency_s"] = m.hop.latency_s;
    const h = m.hop;
    const parent =
      h && h.from_stage !== SOURCE_STAGE && h.from_node !== undefined && h.from_stream !== undefined
        ? matchSpanIdOf(traceId, h.from_stage, h.from_node, h.from_stream)
        : spanIdOf(traceId, SOURCE_STAGE);
    return this.#span(
      traceId,
      matchSpanIdOf(traceId, m.stage, m.target.node, m.target.stream),
      parent,
      `${from} → ${m.stage}`,
      start,
      end,
      attributes,
    );
  }
}

function idAttributes(ids: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(ids).map(([k, v]) => [`fsmpx.id.${k}`, v]));
}

/** Encodes spans as an OTLP `ExportTraceServiceRequest` (protobuf). */
export function encodeSpans(spans: readonly SpanData[]): Uint8Array {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans as never);
  if (!bytes) throw new Error("OTLP serialisation produced nothing");
  return bytes;
}

/** The URL spans are POSTed to: the endpoint as configured, `/v1/traces` appended unless already there. */
export function tracesUrl(endpoint: string): string {
  const e = endpoint.replace(/\/+$/, "");
  return e.endsWith("/v1/traces") ? e : `${e}/v1/traces`;
}

/**
 * The URL without its `user:password@`; the password is also registered as a secret, for error messages that
 * quote the URL.
 */
function withoutCredentials(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.username === "" && u.password === "") return url;
  registerSecret(u.password);
  try {
    registerSecret(decodeURIComponent(u.password));
  } catch {
    // Not valid percent-encoding: the raw form registered above is the only one that can appear.
  }
  u.username = "";
  u.password = "";
  return u.toString();
}

/**
 * What went wrong with a request, its cause included: Deno's fetch throws "fetch failed" and keeps the reason (a
 * certificate the system does not trust, a name that does not resolve, a refused connection) in `cause`, so every
 * such failure was logged as "fetch failed" and nothing said which.
 */
function fetchError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? e.cause.message : e.cause === undefined ? "" : String(e.cause);
  return cause === "" || e.message.includes(cause) ? e.message : `${e.message}: ${cause}`;
}

/** Longest answer read for a partial success: a real one is a count and a sentence. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Longest `error_message` of a partial success logged (it is the collector's text, of any length). */
const MAX_REJECT_MESSAGE = 300;

/**
 * The spans a 2xx answer says were rejected (`ExportTraceServiceResponse.partial_success`), at most `sent`;
 * undefined when none were, or the answer is no protobuf response (empty, another type, garbage, too long, cut
 * short): the request was accepted, and that is all it says.
 */
async function rejectedSpans(
  res: Response,
  sent: number,
): Promise<{ spans: number; message: string } | undefined> {
  if (res.body === null || !/^application\/(x-)?protobuf\b/i.test(res.headers.get("content-type") ?? "")) {
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_RESPONSE_BYTES) return undefined;
      chunks.push(value);
    }
  } catch {
    // The answer broke off (or timed out) after its 2xx status: the spans were accepted.
    return undefined;
  } finally {
    reader.releaseLock();
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  let partial: { rejectedSpans?: number; errorMessage?: string } | undefined;
  try {
    partial = ProtobufTraceSerializer.deserializeResponse(body).partialSuccess;
  } catch {
    return undefined;
  }
  const n = Number(partial?.rejectedSpans ?? 0);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const message = String(partial?.errorMessage ?? "");
  return {
    spans: Math.min(Math.floor(n), sent),
    message: message.length > MAX_REJECT_MESSAGE ? `${message.slice(0, MAX_REJECT_MESSAGE)}…` : message,
  };
}

/** A Retry-After header in ms (delay-seconds or an HTTP date), or undefined when absent or not understood. */
function retryAfterMs(v: string | null): number | undefined {
  if (v === null || v.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Options of the exporter. */
export interface OtlpExporterOptions extends OtlpOptions {
  /** Base URL of an OTLP/HTTP receiver, e.g. `http://tempo:4318`. */
  endpoint: string;
  /** Extra request headers (e.g. a tenant id); never logged. */
  headers?: Record<string, string>;
  /** Spans per request (default 512). */
  batch?: number;
  /** Spans waiting at most (default 10,000): beyond, new spans are dropped and counted. */
  maxQueue?: number;
  /** Longest a span waits before its batch is sent, ms (default 2000). */
  flushMs?: number;
  /** Request timeout, ms (default 10,000). */
  timeoutMs?: number;
  /** Longest pause a collector's 429 or 503 buys, ms (default 60,000). */
  maxPauseMs?: number;
}

/** Counters of an exporter. */
export interface OtlpStats {
  sent: number;
  failed: number;
  dropped: number;
  requests: number;
}

/**
 * Exports records as spans: a record sink (`signature`, `match`) with a bounded queue sent in batches.
 * `close()` sends what is queued.
 */
export class OtlpExporter {
  readonly #opts: OtlpExporterOptions;
  readonly #url: string;
  /** The URL as logged: fetch sends `user:password@` as basic auth, so it is a secret. */
  readonly #shownUrl: string;
  readonly #builder: SpanBuilder;
  readonly #queue: SpanData[] = [];
  readonly #stats: OtlpStats = { sent: 0, failed: 0, dropped: 0, requests: 0 };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #draining: Promise<void> | undefined;
  #closed = false;
  /** Set by close(): what is queued goes at once, a collector's pause notwithstanding. */
  #closing = false;
  /** No request before this (Date.now() ms): the collector said it is overloaded (429, 503). */
  #pausedUntil = 0;
  /** The pause without a Retry-After, ms: doubles while the collector keeps refusing, back to none on a success. */
  #backoffMs = 0;
  /** Ends the running pause early (close). */
  #wake: (() => void) | undefined;
  /** Aborts the requests of a close whose budget ran out. */
  readonly #closeAbort = new AbortController();

  constructor(opts: OtlpExporterOptions) {
    this.#opts = opts;
    this.#url = tracesUrl(opts.endpoint);
    this.#shownUrl = withoutCredentials(this.#url);
    this.#builder = new SpanBuilder(opts);
  }

  /** Counters so far. */
  stats(): OtlpStats {
    return { ...this.#stats };
  }

  /** A signature: the root span of its trace. */
  signature = (rec: SignatureRecord): void => this.#add(this.#builder.root(rec));

  /** A match: its hop span. */
  match = (rec: MatchRecord): void => this.#add(this.#builder.hop(rec));

  #add(span: SpanData): void {
    // After close nothing will send it: dropped like a span that finds the queue full, and counted.
    if (this.#closed || this.#queue.length >= (this.#opts.maxQueue ?? 10_000)) {
      this.#stats.dropped++;
      if (this.#stats.dropped === 1 || this.#stats.dropped % 1000 === 0) {
        log.warn("OTLP queue full or closed; spans dropped", { dropped: this.#stats.dropped });
      }
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= (this.#opts.batch ?? 512)) void this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), this.#opts.flushMs ?? 2000);
    }
  }

  /** Sends everything queued (in batches, one request at a time); resolves when done. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // One drain at a time, and it runs until the queue is empty: a span queued while a request is in flight
    // joins it instead of chaining one more flush per span for as long as the collector is slow.
    if (this.#draining === undefined && this.#queue.length > 0) this.#draining = this.#drain();
    return this.#draining ?? Promise.resolve();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        await this.#pause();
        const batch = this.#queue.splice(0, this.#opts.batch ?? 512);
        await this.#send(batch);
      }
    } finally {
      this.#draining = undefined;
    }
  }

  async #send(batch: SpanData[]): Promise<void> {
    this.#stats.requests++;
    try {
      const res = await fetch(this.#url, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf", ...this.#opts.headers },
        body: encodeSpans(batch) as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.any([
          AbortSignal.timeout(this.#opts.timeoutMs ?? 10_000),
          this.#closeAbort.signal,
        ]),
        // A redirect is not followed: fetch drops only Authorization on a redirect to another origin, so every
        // other `otlp.headers` value (X-Api-Key, a tenant token) went to wherever the answer pointed.
        redirect: "manual",
      });
      const rejected = res.ok ? await rejectedSpans(res, batch.length) : undefined;
      await res.body?.cancel().catch(() => {});
      if (res.status >= 300 && res.status < 400) {
        throw new Error(
          `HTTP ${res.status}: a redirect, not followed (set otlp.endpoint to the collector itself)`,
        );
      }
      if (res.status === 429 || res.status === 503) this.#throttled(res.headers.get("retry-after"));
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.#backoffMs = 0;
      if (rejected !== undefined) {
        // OTLP partial success: the collector took the request but dropped these spans (too old, too large, a
        // tenant limit); they were counted sent and nothing was logged, so a trace store that kept none of them
        // looked healthy on /metrics. Not sent again, as the spec wants.
        this.#stats.failed += rejected.spans;
        this.#stats.sent += batch.length - rejected.spans;
        log.warn("OTLP collector rejected spans; spans lost", {
          url: this.#shownUrl,
          spans: rejected.spans,
          failed: this.#stats.failed,
          error: rejected.message,
        });
        return;
      }
      this.#stats.sent += batch.length;
    } catch (e) {
      this.#stats.failed += batch.length;
      log.warn("OTLP export failed; spans lost", {
        url: this.#shownUrl,
        spans: batch.length,
        failed: this.#stats.failed,
        error: fetchError(e),
      });
    }
  }

  /**
   * The collector is overloaded: no request until its Retry-After (seconds or a date) has passed, else for a
   * backoff doubling from 1 s, at most `maxPauseMs` either way. The refused batch is not sent again; the
   * spans that arrive meanwhile wait in the queue (bounded: beyond it they are dropped and counted). Before, the
   * next batches went at once and met the same refusal: a rate-limited collector (Retry-After: 1) made the whole
   * queue, 2,000 spans, fail within 0.1 s.
   */
  #throttled(retryAfter: string | null): void {
    const max = this.#opts.maxPauseMs ?? 60_000;
    let ms = retryAfterMs(retryAfter);
    if (ms === undefined) ms = this.#backoffMs = Math.min(max, this.#backoffMs * 2 || 1000);
    this.#pausedUntil = Date.now() + Math.min(ms, max);
  }

  async #pause(): Promise<void> {
    const ms = this.#pausedUntil - Date.now();
    if (this.#closing || ms <= 0) return;
    log.warn("OTLP collector overloaded; export paused", { url: this.#shownUrl, pauseMs: ms });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /**
   * Sends what is queued (at once, even while the collector asked for a pause) and stops accepting spans. With a
   * budget: a collector that has not taken everything by then loses the rest (the request in flight counted
   * failed, the queue dropped), so a stop does not wait on it.
   */
  async close(budgetMs?: number): Promise<void> {
    this.#closing = true;
    this.#wake?.();
    const flushed = this.flush();
    if (budgetMs !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const out = await Promise.race([
        flushed.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), budgetMs)),
      ]);
      clearTimeout(timer);
      if (out) {
        // A collector that does not answer held a stop until the sensor's flush deadline, and the spans in the
        // request and the queue were lost uncounted: what is queued is dropped (counted) and the request ends
        // as failed (counted).
        const left = this.#queue.splice(0).length;
        this.#stats.dropped += left;
        this.#closeAbort.abort(new Error(`the stop's ${budgetMs} ms for the collector ran out`));
        log.warn("OTLP collector did not take the last spans before the stop; spans lost", {
          url: this.#shownUrl,
          queued: left,
        });
      }
    }
    await flushed;
    this.#closed = true;
  }
}
