/**
 * A long-running Pixie query that survives dropped streams. It runs the script composed from the configured
 * queries and yields batches of {@link Row}s (each row once per query name sharing its table).
 *
 * - Drops lose nothing. A dropped stream (UNAVAILABLE, RST_STREAM, missing trailers, an end without eos, a stall)
 *   is never resumed with `query_id`: Vizier's query broker takes a message off its buffer before sending it, so
 *   the batch in flight at a drop is counted as sent and a resume continues after it (query_result_forwarder.go
 *   `StreamResults`), and a standalone PEM ignores `query_id` and runs the script again. Instead the script is
 *   re-run from the newest `time_` seen per table minus an overlap ({@link PixieQueryStreamOptions.rerunOverlapMs},
 *   which also covers rows that reach a table out of time order), and rows already delivered are dropped by their
 *   fingerprint (the time and a 64-bit hash of every cell, see delivered_rows.ts), so rows sharing a `time_` with
 *   the last one seen are neither lost nor doubled. The cost: the broker keeps the abandoned query until its consumer timeout (180 s) or until its
 *   1,024-message buffer fills.
 * - The broker's own refusals (a query it forgot: gRPC UNKNOWN "… not registered in query forwarder", "… can not
 *   accept more data, consumer likely died", "… timedout waiting for consumer") are re-run at once, without backoff.
 * - Otherwise waits between attempts with exponential backoff and full jitter above a floor; never a tight loop.
 * - Decrypts `encrypted_batch` (end-to-end encryption is on by default with Pixie Cloud).
 * - Compile errors end the stream with a {@link PixieCompileError} placed in the user's stream_filter (a standalone
 *   PEM gives no line or column: the error names the query whose filter holds what the message quotes); bad
 *   credentials and invalid requests end it with the {@link PixieRpcError}; bad batches are counted and skipped.
 * @module
 */

import { detectPixieMarker } from "./markers.ts";
import { logger, redact } from "../util/log.ts";
import { parseDurationNs } from "../util/duration.ts";
import type { Cell, Row } from "./row.ts";
import { batchToRows, checkBatch, PixieDecodeError, type TimeColumn } from "./columns.ts";
import { DeliveredRows, hashRows, type RowHashes } from "./delivered_rows.ts";
import { GrpcCode, PixieRpcError } from "./client.ts";
import { decryptCompactJwe, encryptionOptionsFor, generateJweKeyPair, type JweKeyPair } from "./jwe.ts";
import {
  type ColumnInfo,
  DataType,
  decodeRowBatch,
  type ExecuteScriptRequest,
  type ExecuteScriptResponse,
  type PixieStatus,
  type RowBatch,
} from "./messages.ts";
import {
  type ComposedQueryInput,
  type ComposedScript,
  type ComposedTable,
  composeScript,
  inlineStartTime,
} from "./pxl.ts";
import type { InputMeter } from "../util/input_meter.ts";
import { QuietTimer } from "../util/quiet_timer.ts";

const log = logger("pixie");

/** What {@link PixieQueryStream} needs from a client ({@link PixieClient} has it). */
export interface PixieExecutor {
  /** Pixie Cloud (encryption defaults on) or a direct PEM. */
  readonly cloud: boolean;
  /** Runs or resumes a script; see {@link PixieClient.execute}. */
  execute(req: ExecuteScriptRequest, signal?: AbortSignal): AsyncIterable<ExecuteScriptResponse>;
}

/** Counters and gauges the stream reports; every method is optional. Query names are `<measurement>/<tap>`. */
export interface PixieStreamMetrics {
  /** Rows delivered (after dropping re-run duplicates). */
  rowsRead?(query: string, n: number): void;
  /** The query was re-run after a drop (this stream never resumes; `resume` is kept for the metric's label). */
  restarts?(query: string, kind: "resume" | "rerun"): void;
  /** Rows a re-run delivered again and were dropped as duplicates. */
  duplicates?(query: string, n: number): void;
  /** A response arrived (rows, metadata or a keep-alive): the stream is alive. */
  responded?(): void;
  /** Wall-clock now minus the newest `time_` seen, in seconds; reported on every batch, keep-alives included. */
  lag?(query: string, seconds: number): void;
  /** Payload cells Pixie cut short (they end with `... [TRUNCATED]`). */
  truncated?(query: string, n: number): void;
  /** A batch or response that had to be skipped: decode, decrypt, unknown_table. */
  errors?(query: string | undefined, kind: string): void;
}

/** Time source; tests inject one. */
export interface StreamClock {
  /** Wall-clock ms, for timeouts and the resume window. */
  nowMs(): number;
  /** Wall-clock ns since the epoch, for the lag gauge and relative start times. */
  nowNs(): bigint;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Backoff between attempts. */
export interface BackoffOptions {
  /** Cap of the first attempt's window. */
  initialMs: number;
  /** Largest window. */
  maxMs: number;
  /** Floor of every delay, so full jitter never gives ~0. */
  minMs: number;
  /** A connection that lived this long resets the attempt count. */
  stableMs: number;
}

/** Options of {@link PixieQueryStream}. */
export interface PixieQueryStreamOptions {
  client: PixieExecutor;
  /** Cluster UUID (cloud) or anything (direct PEM). */
  clusterId: string;
  /** The configured queries (one node). */
  queries: readonly ComposedQueryInput[];
  /** End-to-end encryption; default on with Pixie Cloud, off for a direct PEM. */
  encryption?: boolean;
  /** Key pair to use (default: generated once per stream). */
  keys?: JweKeyPair;
  metrics?: PixieStreamMetrics;
  backoff?: Partial<BackoffOptions>;
  /**
   * A re-run starts this long before the newest `time_` seen (ms; default 5,000): rows at or just before that
   * time may have been in the lost batch, or may reach the table late (each PEM inserts rows in batches, not in
   * time order across connections). Rows in the overlap already delivered are recognised and dropped.
   */
  rerunOverlapMs?: number;
  /** Silence (no response, not even a keep-alive) after which the stream counts as dropped (ms; 0 disables). */
  idleTimeoutMs?: number;
  /** Most rows of a table remembered for the re-run dedupe (default {@link MAX_REMEMBERED_ROWS}). */
  maxRememberedRows?: number;
  clock?: StreamClock;
  /** Uniform [0, 1) source for jitter. */
  random?: () => number;
  signal?: AbortSignal;
  /** `query_name` label sent to Vizier. */
  queryName?: string;
  /** Told when the stream waits for the next response and when it works on one (see input_meter.ts). */
  inputMeter?: InputMeter;
  /**
   * A stream of the same queries that stopped (closed): this one goes on from where it was, re-run like after a
   * drop (from the newest `time_` it saw minus the overlap, rows it delivered dropped), not from the configured
   * start, which would read its rows again (a relative start) or skip what came meanwhile.
   */
  resumeFrom?: PixieQueryStream;
}

/** One compile error, placed in the user's configuration. */
export interface CompileErrorLocation {
  /** Measurement and tap of the (first) query whose stream_filter holds the error. */
  measurement?: string;
  tap?: string;
  /** Every query sharing that stream_filter. */
  queries: string[];
  /** 1-based line and column in the user's stream_filter (undefined when in a part fsm-px adds). */
  line?: number;
  col?: number;
  /** What fsm-px added there, when not in the user's text. */
  part?: string;
  /** Pixie's message. */
  message: string;
  /** Line and column in the composed script, as Pixie reported them (0 when it gave none: standalone PEM). */
  scriptLine: number;
  scriptCol: number;
}

/** Pixie could not compile the composed script. */
export class PixieCompileError extends Error {
  /** All errors Pixie reported, first one in `message`. */
  readonly errors: CompileErrorLocation[];
  /** First error's measurement. */
  readonly measurement?: string;
  /** First error's tap (`source` or a stage). */
  readonly tap?: string;
  /** First error's line in the user's stream_filter. */
  readonly line?: number;
  /** First error's column in the user's stream_filter. */
  readonly col?: number;
  /** Creates the error. */
  constructor(errors: CompileErrorLocation[], fallback: string) {
    const first = errors[0];
    super(redact(first ? describeCompileError(first) : `PxL compile error: ${fallback}`));
    this.name = "PixieCompileError";
    this.errors = errors;
    this.measurement = first?.measurement;
    this.tap = first?.tap;
    this.line = first?.line;
    this.col = first?.col;
  }
}

function describeCompileError(e: CompileErrorLocation): string {
  if (e.scriptLine === 0) {
    // A standalone PEM's bare INVALID_ARGUMENT: no position, only the message.
    const also = e.queries.length > 1 ? ` (shared by ${e.queries.join(", ")})` : "";
    const where = e.measurement === undefined
      ? `the script of queries ${e.queries.join(", ")}`
      : `stream_filter of measurement ${e.measurement}, tap ${e.tap}${also}`;
    return `PxL compile error in ${where} (the standalone PEM reports no line or column): ${e.message}`;
  }
  if (e.measurement === undefined) {
    return `PxL compile error at script line ${e.scriptLine}, column ${e.scriptCol}: ${e.message}`;
  }
  const also = e.queries.length > 1 ? ` (shared by ${e.queries.join(", ")})` : "";
  const where = `measurement ${e.measurement}, tap ${e.tap}${also}`;
  if (e.line !== undefined && e.part === undefined) {
    return `stream_filter of ${where}: line ${e.line}, column ${e.col}: ${e.message}`;
  }
  if (e.line !== undefined) {
    return `stream_filter of ${where}: line ${e.line}, column ${e.col} (${e.part}): ${e.message}`;
  }
  return `PxL that fsm-px adds after the stream_filter of ${where} (${e.part}): ${e.message}`;
}

/**
 * Vizier answered with a status that is not a compile error: a non-OK code, or a message under code 0 (an
 * execution error whose code the standalone PEM leaves out or the broker cannot map). Not fatal unless the code
 * says so: the stream re-runs.
 */
export class PixieQueryError extends Error {
  /** Status code (gRPC codes). */
  readonly code: number;
  /** Creates the error. */
  constructor(status: PixieStatus) {
    // Code 0 with a message is an execution error that came without its code (see #handle).
    const code = status.code === 0 ? "" : `${GrpcCode[status.code] ?? status.code} `;
    super(redact(`Pixie query failed: ${code}${status.message}`));
    this.name = "PixieQueryError";
    this.code = status.code;
  }
}

/** The default wall clock. */
export const systemClock: StreamClock = {
  nowMs: () => Date.now(),
  nowNs: () => BigInt(Date.now()) * 1_000_000n,
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    }),
};

/**
 * Most rows of one table the re-run dedupe remembers, whatever their times: the rows of the overlap (5 s) at
 * 50,000 rows a second in one table fit twice (a 1,000-call node reads ~50,000 a second a tap). Rows whose time
 * does not move (a `time_` stuck at 0 or at one value) all lie in the overlap; without a bound the table's
 * dedupe grew ~48 bytes a row for ever (145 MB after 3 million rows).
 */
export const MAX_REMEMBERED_ROWS = 1 << 19;

/** Re-run backoff of a dropped query: 1 s doubling to 30 s, full jitter, reset after 30 s connected. */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 1_000,
  maxMs: 30_000,
  minMs: 250,
  stableMs: 30_000,
};

/** Delay before attempt number `attempt` (0-based): full jitter over min(max, initial * 2^attempt), floored. */
export function backoffDelay(attempt: number, b: BackoffOptions, random: () => number): number {
  const window = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(b.minMs, Math.floor(random() * window));
}

/**
 * True if Pixie cut a payload cell: it ends with the truncation marker, or (cut at the parse limit, without a
 * marker) it is shorter than the body's original size (`*_body_size`) when that column is known.
 */
export function isTruncated(cell: unknown, bodySize?: number): boolean {
  if (!(cell instanceof Uint8Array)) return false;
  return detectPixieMarker(cell) === "truncated" || (bodySize !== undefined && bodySize > cell.length);
}

/** A body size cell as a size; undefined when it is not a finite count. */
function bodySizeOf(v: Cell | undefined): number | undefined {
  const n = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : undefined;
  return n !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * The cells of the batch's column that a row's record holds under `name` (the last column of that name, as the
 * record keeps); undefined when the record's own lookup is needed: no such column, `__proto__` (not an own key
 * of the record), UINT128 (UUID strings in the record).
 */
function columnCells(
  batch: RowBatch,
  relation: readonly ColumnInfo[],
  name: string,
): readonly Cell[] | undefined {
  if (name === "__proto__") return undefined;
  for (let c = relation.length - 1; c >= 0; c--) {
    if (relation[c]!.name !== name) continue;
    const col = batch.cols[c]!;
    return col.type === "uint128" ? undefined : col.data;
  }
  return undefined;
}

/** The index of the STRING column a row's record holds under `name` (the last of that name), or -1. */
function payloadIndex(relation: readonly ColumnInfo[], name: string): number {
  if (name === "__proto__") return -1;
  for (let c = relation.length - 1; c >= 0; c--) {
    if (relation[c]!.name === name) return relation[c]!.type === DataType.STRING ? c : -1;
  }
  return -1;
}

/** Parses a relative start like `-30s` (any duration of util/duration.ts after the minus) to ns; undefined if it is not one. */
export function relativeToNs(start: string): bigint | undefined {
  if (!start.startsWith("-")) return undefined;
  const ns = parseDurationNs(start.slice(1));
  return ns === undefined ? undefined : BigInt(Math.round(ns));
}

interface TableState {
  /** Newest `time_` delivered. */
  watermark?: bigint;
  /** The rows delivered with `time_` >= watermark - overlap (at the time), by time and hash of every cell. */
  recent: DeliveredRows;
  /** `recent`'s size after its last pruning. */
  prunedSize: number;
  /** The last row further ahead of the wall clock than the overlap (see #handle). */
  ahead: bigint | undefined;
  eos: boolean;
}

/**
 * The query broker forgot the query (query_result_forwarder.go): a resume it refuses, or a query it cancelled
 * because its buffer filled or its consumer went away. Plain Go errors there reach clients as gRPC UNKNOWN with the
 * message intact (the cloud proxies pass code and message through).
 */
export function isBrokerForgotten(e: unknown): boolean {
  return e instanceof PixieRpcError && e.code === GrpcCode.UNKNOWN &&
    /not registered in query forwarder|can not accept more data|consumer likely died|timedout waiting for consumer|timedout trying to register consumer/i
      .test(e.details);
}

const STANDALONE_COMPILE = /^Failed to compile script with error='([\s\S]*)'$/;

function isFatal(e: unknown): boolean {
  if (e instanceof PixieCompileError) return true;
  const code = e instanceof PixieRpcError || e instanceof PixieQueryError ? e.code : undefined;
  return code === GrpcCode.UNAUTHENTICATED || code === GrpcCode.PERMISSION_DENIED ||
    code === GrpcCode.INVALID_ARGUMENT || code === GrpcCode.UNIMPLEMENTED;
}

/** A self-healing Pixie query; iterate it for batches of rows. */
export class PixieQueryStream implements AsyncIterable<Row[]> {
  readonly #opts: PixieQueryStreamOptions;
  readonly #clock: StreamClock;
  readonly #random: () => number;
  readonly #backoff: BackoffOptions;
  readonly #abort = new AbortController();
  readonly #states: Map<string, TableState>;
  /** Taken over from {@link PixieQueryStreamOptions.resumeFrom}: the first run is a re-run. */
  readonly #resumed: boolean;
  #tablesById = new Map<string, { table: ComposedTable; relation: ColumnInfo[] }>();
  #composed: ComposedScript | undefined;
  #keys: JweKeyPair | undefined;
  #queryId: string | undefined;
  #startedAtNs: bigint | undefined;
  #started = false;
  /** The queries now configured; {@link setQueries} swaps them. */
  #queries: readonly ComposedQueryInput[];
  /** The running call, which {@link setQueries} cancels to re-run with the new queries. */
  #call: AbortController | undefined;
  /** The backoff wait between runs, which {@link setQueries} and {@link skipTo} cut short. */
  #wait: AbortController | undefined;
  /** New queries are waiting for the next run. */
  #requeried = false;
  /** No re-run starts before this `time_` (ns; see {@link skipTo}). */
  #floorNs = 0n;
  /** {@link skipTo} cancelled the running call. */
  #skipping = false;
  /** Scratch for the rows' hashes of one batch. */
  #hashes: RowHashes | undefined;

  /** Creates the stream; nothing runs until it is iterated. Throws PxlComposeError on a bad configuration. */
  constructor(opts: PixieQueryStreamOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.#queries = opts.queries;
    this.#composed = composeScript(opts.queries);
    const from = opts.resumeFrom;
    this.#states = from ? from.#states : new Map();
    if (from) {
      this.#startedAtNs = from.#startedAtNs;
      this.#floorNs = from.#floorNs;
    }
    // A stream that never started a call has no position to go on from.
    this.#resumed = this.#startedAtNs !== undefined;
    if (opts.signal) {
      if (opts.signal.aborted) this.#abort.abort();
      else opts.signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    }
  }

  /** The script currently running (changes on a re-run). */
  get composed(): ComposedScript | undefined {
    return this.#composed;
  }

  /** The query id Vizier assigned, once known. */
  get queryId(): string | undefined {
    return this.#queryId;
  }

  /** Rows the re-run dedupe remembers, over every table. */
  get rememberedRows(): number {
    let n = 0;
    for (const st of this.#states.values()) n += st.recent.size;
    return n;
  }

  /**
   * Replaces the queries (e.g. a new scope: this node's pods changed) and re-runs the script with them at once,
   * the way a drop is re-run (from the newest `time_` seen minus the overlap, rows already delivered dropped by
   * fingerprint), so no row is lost or doubled. Neither counted as a restart nor backed off. Throws
   * PxlComposeError, and changes nothing, when the new queries cannot be composed.
   */
  setQueries(queries: readonly ComposedQueryInput[]): void {
    composeScript(queries);
    this.#queries = queries;
    this.#requeried = true;
    this.#call?.abort();
    this.#wait?.abort();
  }

  /**
   * Skips ahead: re-runs the script at once from `timeNs` (or from where a re-run would start, if later), so the
   * rows between the newest `time_` seen and `timeNs`, waiting in Pixie, are never read. For a sensor too slow to
   * even read (and drop) its backlog as fast as Pixie adds to it (actors/late_rows.ts); Pixie then holds the
   * backlog, not this process. Neither counted as a restart nor backed off.
   */
  skipTo(timeNs: bigint): void {
    if (timeNs <= this.#floorNs) return;
    this.#floorNs = timeNs;
    this.#skipping = true;
    this.#requeried = true;
    this.#call?.abort();
    this.#wait?.abort();
  }

  /** Stops the stream: the running call is cancelled and iteration ends. */
  close(): void {
    this.#abort.abort();
  }

  /** Iterates batches of rows; single use. */
  [Symbol.asyncIterator](): AsyncIterator<Row[]> {
    if (this.#started) throw new Error("PixieQueryStream can be iterated once");
    this.#started = true;
    return this.#run();
  }

  #allNames(): string[] {
    return this.#queries.map((q) => q.name);
  }

  #compose(rerun: boolean): ComposedScript {
    if (!rerun) return composeScript(this.#queries);
    const old = this.#composed;
    const overlapNs = BigInt(Math.max(0, Math.round(this.#opts.rerunOverlapMs ?? 5_000))) * 1_000_000n;
    const inputs = this.#queries.map((q) => {
      const display = old
        ? [...old.tables.values()].find((t) => t.names.includes(q.name))?.display
        : undefined;
      const st = display ? this.#states.get(display) : undefined;
      if (st?.watermark !== undefined || this.#floorNs > 0n) {
        // A watermark ahead of the wall clock (a row's time_ from the future, or the host's clock stepped back
        // since) goes back to it: a re-run from there would read nothing until the clock caught up.
        const now = this.#clock.nowNs();
        if (st?.watermark !== undefined && st.watermark > now) st.watermark = now;
        // So does a skip's floor once the host's clock stepped back below it.
        if (this.#floorNs > now) this.#floorNs = now;
        let from = st?.watermark === undefined ? 0n : st.watermark - overlapNs;
        if (from < this.#floorNs) from = this.#floorNs;
        return { ...q, startTime: from > 0n ? from : 0n };
      }
      // No row yet: go on from where the first run began. Its start, given here or in the filter's own
      // px.DataFrame(..., start_time='-30s'), is relative to each run, so a re-run after a long drop would
      // otherwise never read the rows of the drop's beginning.
      const start = q.startTime ?? inlineStartTime(q.streamFilter);
      if (typeof start === "string" && this.#startedAtNs !== undefined) {
        const rel = relativeToNs(start);
        if (rel !== undefined) return { ...q, startTime: this.#startedAtNs - rel };
      }
      return q;
    });
    return composeScript(inputs);
  }

  #encryption(): boolean {
    return this.#opts.encryption ?? this.#opts.client.cloud;
  }

  async *#run(): AsyncGenerator<Row[]> {
    const signal = this.#abort.signal;
    if (this.#encryption() && !this.#keys) this.#keys = this.#opts.keys ?? await generateJweKeyPair();
    let rerun = this.#resumed;
    let attempt = 0;
    while (!signal.aborted) {
      this.#requeried = false;
      this.#skipping = false;
      this.#composed = this.#compose(rerun);
      this.#tablesById = new Map();
      this.#queryId = undefined;
      for (const t of this.#composed.tables.values()) {
        const st = this.#states.get(t.display) ??
          { recent: new DeliveredRows(), prunedSize: 0, ahead: undefined, eos: false };
        st.eos = false;
        this.#states.set(t.display, st);
      }
      const composed = this.#composed;
      // Never `query_id`: see the module doc (a resume can lose the batch in flight).
      const req: ExecuteScriptRequest = {
        queryStr: composed.script,
        clusterId: this.#opts.clusterId,
        queryName: this.#opts.queryName ?? "fsm-px",
      };
      if (this.#keys) req.encryption = encryptionOptionsFor(this.#keys);
      this.#startedAtNs ??= this.#clock.nowNs();
      const connectedAt = this.#clock.nowMs();
      let failure: unknown;
      let finished = false;
      // A half-open connection can stall without an error; Vizier sends keep-alives about every 2 s, so a long
      // silence is a drop. The watchdog is paused while the consumer holds a batch.
      const call = new AbortController();
      this.#call = call;
      const onAbort = () => call.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      const idleMs = this.#opts.idleTimeoutMs ?? 30_000;
      let stalled = false;
      const idle = new QuietTimer(idleMs, () => {
        stalled = true;
        call.abort();
      });
      try {
        const meter = this.#opts.inputMeter;
        const metrics = this.#opts.metrics;
        for await (const resp of this.#opts.client.execute(req, call.signal)) {
          meter?.working();
          metrics?.responded?.();
          idle.hold(true);
          const rows = await this.#handle(resp, composed);
          if (rows.length) yield rows;
          idle.touch();
          idle.hold(false);
          meter?.waiting();
        }
        finished = !stalled && this.#finished(composed);
      } catch (e) {
        const bare = this.#bareCompileError(e);
        if (bare) throw bare;
        if (isFatal(e)) throw e;
        failure = e;
      } finally {
        this.#opts.inputMeter?.waiting();
        idle.stop();
        signal.removeEventListener("abort", onAbort);
        this.#call = undefined;
      }
      if (signal.aborted || finished) return;
      if (this.#requeried && !stalled) {
        // setQueries or skipTo cancelled the call: re-run now, as after a drop but without waiting.
        if (this.#skipping) {
          log.warn("too far behind to read the backlog; skipping ahead", {
            from_ns: String(this.#floorNs),
            query_id: this.#queryId,
          });
        } else log.info("pixie queries changed; re-running", { query_id: this.#queryId });
        rerun = true;
        continue;
      }
      if (stalled) {
        failure = new PixieRpcError(GrpcCode.UNAVAILABLE, `no response for ${idleMs} ms`, "ExecuteScript");
      }

      const now = this.#clock.nowMs();
      if (now - connectedAt >= this.#backoff.stableMs) attempt = 0;
      // The broker forgot the query: nothing to wait for, re-run at once (backoff again if that repeats).
      const forgotten = isBrokerForgotten(failure);
      const delay = forgotten && attempt === 0 ? 0 : backoffDelay(attempt, this.#backoff, this.#random);
      attempt++;
      log.warn("pixie stream dropped", {
        error: failure === undefined ? "ended without eos" : redact(String(failure)),
        next: "rerun",
        delay_ms: delay,
        query_id: this.#queryId,
      });
      // New queries or a skip ahead do not wait out the backoff: the re-run would read what they asked for late.
      if (delay > 0 && !this.#requeried) {
        const wait = this.#wait = new AbortController();
        await this.#clock.sleep(delay, AbortSignal.any([signal, wait.signal]));
        this.#wait = undefined;
      }
      if (signal.aborted) return;
      for (const name of this.#allNames()) this.#opts.metrics?.restarts?.(name, "rerun");
      rerun = true;
    }
  }

  /** A standalone PEM's compile error: a bare INVALID_ARGUMENT, no status, no line or column. */
  #bareCompileError(e: unknown): PixieCompileError | undefined {
    if (!(e instanceof PixieRpcError) || e.code !== GrpcCode.INVALID_ARGUMENT) return undefined;
    const m = STANDALONE_COMPILE.exec(e.details);
    if (!m) return undefined;
    const message = m[1]!;
    // Name the query whose own text holds what the message quotes ('contains', 'socket_data', a column, ...).
    const quoted = [...message.matchAll(/'([^']+)'/g)].map((q) => q[1]!);
    const tables = [...(this.#composed?.tables.values() ?? [])];
    const filterOf = (t: ComposedTable) =>
      this.#queries.find((q) => q.name === t.display)?.streamFilter ?? "";
    // A word every filter holds ('px' of "'px' object has no attribute 'regex_matchx'", the message of an unknown
    // function) tells the filters apart no more than none does: only the others choose, when there are any.
    const holding = (w: string) => tables.filter((t) => filterOf(t).includes(w)).length;
    const telling = quoted.filter((w) => holding(w) < tables.length);
    const words = telling.length > 0 ? telling : quoted;
    const hits = tables.filter((t) => words.some((w) => filterOf(t).includes(w)));
    const one = hits.length === 1 ? hits[0]! : undefined;
    const parsed = one ? /^(.*)\/([^/]+)$/.exec(one.display) : null;
    const loc: CompileErrorLocation = {
      measurement: parsed?.[1],
      tap: parsed?.[2],
      queries: one ? one.names : tables.flatMap((t) => t.names),
      message,
      scriptLine: 0,
      scriptCol: 0,
    };
    return new PixieCompileError([loc], message);
  }

  #finished(composed: ComposedScript): boolean {
    // A normal end after every table's eos; streaming tables never send eos, so their end is a drop.
    for (const t of composed.tables.values()) if (!this.#states.get(t.display)?.eos) return false;
    return true;
  }

  #statusError(status: PixieStatus, composed: ComposedScript): Error {
    if (status.compilerErrors.length === 0) return new PixieQueryError(status);
    const errors = status.compilerErrors.map((ce): CompileErrorLocation => {
      const m = composed.mapCompileError(ce.line, ce.column);
      return {
        measurement: m?.measurement,
        tap: m?.tap,
        queries: m?.names ?? [],
        line: m?.line,
        col: m?.col,
        part: m?.part,
        message: ce.message,
        scriptLine: ce.line,
        scriptCol: ce.column,
      };
    });
    return new PixieCompileError(errors, status.message);
  }

  async #handle(resp: ExecuteScriptResponse, composed: ComposedScript): Promise<Row[]> {
    const metrics = this.#opts.metrics;
    if (resp.malformed !== undefined) {
      metrics?.errors?.(undefined, "decode");
      log.warn("skipping a response that cannot be decoded", { error: redact(resp.malformed) });
      return [];
    }
    if (resp.queryId) this.#queryId = resp.queryId;
    // A status with a message is an error even with code 0: the standalone PEM sends its execution errors with
    // no code (sink_server.h) and then ends the call CANCELLED without a message, and Vizier's broker maps the
    // Carnot codes it has no entry for (UNIMPLEMENTED, FAILED_PRECONDITION) to 0 and then keeps the dead query
    // open (proto_utils.go statusCodeToGRPCCode, query_result_forwarder.go handleRequest). Skipped, the message
    // was lost: the drop said CANCELLED, or the idle watchdog's silence.
    if (resp.status && (resp.status.code !== 0 || resp.status.message !== "")) {
      throw this.#statusError(resp.status, composed);
    }
    if (resp.metaData) {
      const table = composed.tables.get(resp.metaData.name);
      if (table) this.#tablesById.set(resp.metaData.id, { table, relation: resp.metaData.relation });
      else metrics?.errors?.(undefined, "unknown_table");
      return [];
    }
    let batch: RowBatch | undefined = resp.batch;
    if (resp.encryptedBatch) {
      if (!this.#keys) {
        metrics?.errors?.(undefined, "decrypt");
        return [];
      }
      try {
        batch = decodeRowBatch(await decryptCompactJwe(resp.encryptedBatch, this.#keys.privateKey));
      } catch (e) {
        metrics?.errors?.(undefined, "decrypt");
        log.warn("skipping a batch that cannot be decrypted", { error: String(e) });
        return [];
      }
    }
    if (!batch) return [];
    const entry = this.#tablesById.get(batch.tableId);
    if (!entry) {
      metrics?.errors?.(undefined, "unknown_table");
      return [];
    }
    const { table, relation } = entry;
    const st = this.#states.get(table.display)!;
    if (batch.eos) st.eos = true;
    let decoded: Row[];
    // The rows' hashes first (the batch checked against its relation for them), with the payload cells' hash32
    // for the taps' row dedupe, which then need not read every payload again; the rows carry it.
    const cell = payloadIndex(relation, table.columns.payload);
    let hashes: RowHashes | undefined;
    let checkedTimes: TimeColumn | undefined;
    try {
      if (batch.numRows > 0) {
        checkedTimes = checkBatch(batch, relation, table.columns.time);
        hashes = this.#hashes = hashRows(batch.cols, relation, batch.numRows, this.#hashes, cell);
      }
      decoded = batchToRows(batch, relation, {
        query: table.display,
        node: table.node,
        timeColumn: table.columns.time,
        checkedTimes,
        payloadHashes: hashes?.cell !== undefined && cell >= 0
          ? { column: cell, hashes: hashes.cell }
          : undefined,
      });
    } catch (e) {
      if (!(e instanceof PixieDecodeError)) throw e;
      for (const n of table.names) metrics?.errors?.(n, "decode");
      log.warn("skipping a batch that does not fit its table", { table: table.display, error: e.message });
      return [];
    }
    const overlapNs = BigInt(Math.max(0, Math.round(this.#opts.rerunOverlapMs ?? 5_000))) * 1_000_000n;
    // The wall clock bounds the watermark, as it bounds a re-run's start (see #compose): a watermark further ahead
    // of it than the overlap (the host's clock stepped back since, or a row from the future followed on) goes
    // back to it, so the rows that come now are remembered again and the lag reads true.
    const nowNs = this.#clock.nowNs();
    const horizon = nowNs + overlapNs;
    if (st.watermark !== undefined && st.watermark > horizon) st.watermark = nowNs;
    if (decoded.length === 0 || hashes === undefined) {
      this.#report(table, 0, 0, 0, st);
      return [];
    }
    const kept: Row[] = [];
    let truncated = 0;
    let duplicates = 0;
    // The payload and size cells straight from the batch's columns (the cells the rows' records hold), not
    // looked up by name in each record.
    const payloadColumn = table.columns.payload;
    const sizeColumn = table.columns.body_size;
    const payloads = columnCells(batch, relation, payloadColumn);
    const sizes = sizeColumn === undefined ? undefined : columnCells(batch, relation, sizeColumn);
    let watermark = st.watermark;
    let from = watermark === undefined ? undefined : watermark - overlapNs;
    for (let i = 0; i < decoded.length; i++) {
      const row = decoded[i]!;
      const time = row.time;
      // Rows older than the window are kept without a fingerprint: a re-run starts after them. (Tried, session
      // 24: the bound made only for rows not past the watermark, no bigint per row in order: no gain, read path
      // A/B 1.05-1.08x.)
      if (st.recent.seenOrAdd(time, hashes.h1[i]!, hashes.h2[i]!, from === undefined || time >= from)) {
        duplicates++;
        continue;
      }
      if (watermark === undefined || time > watermark) {
        // A row further ahead of the wall clock than the overlap moves the watermark only when the row before it
        // beyond the horizon was near it (a clock ahead of this host's: every row is): one row with a `time_`
        // from the future took the watermark along, and from then on no row was remembered (each lay before the
        // window), so a re-run delivered the overlap's rows again, and the lag read as far negative.
        let follows = true;
        if (time > horizon) {
          const ahead = st.ahead;
          follows = ahead !== undefined && time - ahead <= overlapNs && ahead - time <= overlapNs;
          st.ahead = time;
        }
        if (follows) {
          watermark = st.watermark = time;
          from = time - overlapNs;
        }
      }
      const payload = payloads ? payloads[i] : row.columns[payloadColumn];
      if (payload instanceof Uint8Array) {
        const size = sizeColumn === undefined ? undefined : sizes ? sizes[i] : row.columns[sizeColumn];
        if (isTruncated(payload, bodySizeOf(size))) truncated++;
      }
      kept.push(row);
    }
    if (st.recent.size > 2 * st.prunedSize + 1024 && from !== undefined) {
      st.recent.prune(from);
      st.prunedSize = st.recent.size;
    }
    const most = this.#opts.maxRememberedRows ?? MAX_REMEMBERED_ROWS;
    if (st.recent.size > most) {
      // Time does not move on (see MAX_REMEMBERED_ROWS): the rows that came first are forgotten.
      st.recent.keepNewest(most >> 1);
      st.prunedSize = st.recent.size;
    }
    this.#report(table, kept.length, duplicates, truncated, st);
    if (table.names.length === 1 && table.names[0] === table.display) return kept;
    const out: Row[] = [];
    for (const name of table.names) {
      for (const row of kept) out.push(name === table.display ? row : { ...row, query: name });
    }
    return out;
  }

  /** The batch's counters and the lag gauge, for every query name the table carries. */
  #report(table: ComposedTable, kept: number, duplicates: number, truncated: number, st: TableState): void {
    const metrics = this.#opts.metrics;
    if (!metrics) return;
    for (const name of table.names) {
      if (kept) metrics.rowsRead?.(name, kept);
      if (duplicates) metrics.duplicates?.(name, duplicates);
      if (truncated) metrics.truncated?.(name, truncated);
      if (st.watermark !== undefined) {
        metrics.lag?.(name, Number(this.#clock.nowNs() - st.watermark) / 1e9);
      }
    }
  }
}
