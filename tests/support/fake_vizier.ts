/**
 * A real gRPC server on loopback that speaks Vizier's wire protocol (VizierService.ExecuteScript/HealthCheck and
 * VizierClusterInfo.GetClusterInfo) for tests, and answers like the real thing. Every request is recorded so tests
 * can assert what the client sent.
 *
 * By default ExecuteScript runs the script: {@link compilePxl} compiles it like Pixie's planner (compile errors
 * with line/column in the whole script), the fake PEMs ({@link FakePem}) stream the rows of their table stores
 * through it (filters evaluated, agents pruned like Pixie prunes them, a 0-row keep-alive every 2 s per PEM), and
 * a model of the query broker forwards them. What the model copies from Pixie's source (pixie-io/pixie):
 * - src/vizier/services/query_broker/controllers/query_result_forwarder.go: each query has a buffer of 1,024
 *   messages (`activeQueryBufferSize`); a producer that finds it full cancels the query ("Query %s can not accept
 *   more data, consumer likely died"); the watchdog forgets a query 180 s after its consumer last read
 *   (`defaultConsumerTimeout`, "Query %s timedout waiting for consumer"); one consumer at a time (a new one
 *   cancels the old one, whose call then ends OK); `StreamResults` takes a message off the buffer before sending
 *   it, so the message in flight when the client drops is gone: a resume continues after it.
 * - query_executor.go: a request with `query_id` skips compiling and metadata (`runScript`) and goes straight to
 *   `StreamResults`; an unknown id fails there with a plain Go error ("error in StreamResults: Query %s not
 *   registered in query forwarder"), which gRPC reports as UNKNOWN; src/cloud/api/ptproxy/request_proxyer.go and
 *   src/vizier/services/query_broker/ptproxy/pt_proxy.go pass the code and message through unchanged.
 * - query_executor.go `compilePlan` + proto_utils.go `StatusToVizierStatus` / `StatusToError`: a compile error is
 *   one response with status code 3 and `error_details[].compiler_error{line,column,message}`, then the call fails
 *   with INVALID_ARGUMENT and the same message.
 * - server.go `HealthCheck`: a status every 5 s.
 * - An execution error ({@link FakeVizier.failExecution}; src/carnot/carnot.cc `ExecutePlan` sends it to the
 *   broker): proto_utils.go `BuildExecuteScriptResponse` turns it into a status response whose code
 *   `statusCodeToGRPCCode` maps, and that map lacks UNIMPLEMENTED and FAILED_PRECONDITION, which come out as 0;
 *   `handleRequest` fails the call with the mapped code, but on 0 it goes on, and the dead query sends nothing
 *   more until the watchdog's producer timeout (180 s, "Query %s timedout waiting for producers").
 * With `standalone: true` it answers like the standalone PEM (src/experimental/standalone_pem/vizier_server.h,
 * sink_server.h): a fresh uuid4 per call whatever `query_id` says (a "resume" re-executes the script), table id =
 * table name, compile errors as a bare INVALID_ARGUMENT "Failed to compile script with error='…'" without a status
 * message, HealthCheck returns OK at once without sending a status, no Kubernetes metadata (every
 * `df.ctx[...]` reads '' — src/shared/metadata/standalone_state_manager.cc), and an execution error as a status
 * holding only the message (code 0: sink_server.h sets no code) followed by CANCELLED without a message
 * (vizier_server.h, when `ExecuteQuery` fails).
 *
 * The lenient path: a test that sets {@link FakeVizier.onExecute} scripts each call itself (exact sequences of
 * metadata, batches, keep-alives, drops); `chaos` makes the model drop streams on its own, losing the message in
 * flight each time.
 * @module
 */

import { Buffer } from "node:buffer";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import {
  type ClusterInfo,
  type ColumnData,
  type ColumnInfo,
  type CompilerErrorDetail,
  DataType,
  decodeExecuteScriptRequest,
  decodeGetClusterInfoRequest,
  decodeHealthCheckRequest,
  encodeExecuteScriptResponse,
  encodeGetClusterInfoResponse,
  encodeHealthCheckResponse,
  encodeRowBatch,
  type ExecuteScriptRequest,
  type ExecuteScriptResponse,
  type PixieStatus,
  type RowBatch,
} from "../../pixie/messages.ts";
import { encryptCompactJwe } from "../../pixie/jwe.ts";
import { METHODS } from "../../pixie/proto.ts";
import type { Cell } from "../../pixie/row.ts";
import {
  type CompiledOutput,
  compilePxl,
  evalRow,
  FakePxlError,
  prunedOn,
  type StoredRow,
} from "./fake_pxl.ts";

export type { StoredRow } from "./fake_pxl.ts";

/** The parts of grpc-js's inner ServerHttp2Stream the fake touches. */
interface Http2StreamLike {
  readonly session?: { readonly destroyed: boolean; ping(cb: (err: Error | null) => void): boolean };
  close(code: number): void;
}

/** What the fake saw in one call. */
export interface RecordedCall {
  method: "ExecuteScript" | "HealthCheck" | "GetClusterInfo";
  /** The `pixie-api-key` header was present and right (or no key is required). */
  authorized: boolean;
  /** `pixie-api-client` header. */
  apiClient?: string;
  execute?: ExecuteScriptRequest;
  clusterId?: string;
}

/** Server side of one ExecuteScript call, driven by a test's handler. */
export interface ExecuteCall {
  readonly request: ExecuteScriptRequest;
  /** 0-based index among ExecuteScript calls. */
  readonly index: number;
  /** Query id this call reports (tests choose; default a fixed UUID per fresh call). */
  queryId: string;
  /** Resolves when the client cancels. */
  readonly cancelled: Promise<void>;
  isCancelled(): boolean;
  /** Sends one response as is. */
  send(r: Omit<ExecuteScriptResponse, "queryId">): Promise<void>;
  /**
   * Sends bytes as one gRPC message, whatever they hold: what no Vizier sends (a message that is not a valid
   * ExecuteScriptResponse), for tests of a peer that is not Pixie.
   */
  sendBytes(bytes: Uint8Array): Promise<void>;
  meta(id: string, name: string, relation: ColumnInfo[]): Promise<void>;
  /** Sends a batch; encrypted for the client's key when it asked for encryption (unless `encrypt: false`). */
  batch(b: RowBatch, opts?: { encrypt?: boolean }): Promise<void>;
  /** A 0-row batch, as Vizier sends about every 2 s. */
  keepAlive(tableId: string, relation: ColumnInfo[]): Promise<void>;
  stats(): Promise<void>;
  /** Status response with compiler errors, then the call fails with INVALID_ARGUMENT (Vizier's order). */
  compileError(errors: CompilerErrorDetail[]): void;
  /** Ends the call with a gRPC error. */
  fail(code: number, details: string): void;
  /** Resets the call's HTTP/2 stream (RST_STREAM INTERNAL_ERROR), as a dropped proxy connection does. */
  reset(): void;
  /** Ends the call normally (without eos: a drop for a streaming query). */
  end(): void;
  /** Refuses a resume the way the query broker does: UNKNOWN "… not registered in query forwarder". */
  refuseResume(): void;
}

/** Handler for one ExecuteScript call. */
export type ExecuteHandler = (call: ExecuteCall) => Promise<void> | void;

/** Options of {@link FakeVizier.start}. */
export interface FakeVizierOptions {
  /** Required `pixie-api-key`; undefined accepts any (direct PEM). */
  apiKey?: string;
  /** Serve TLS with this key pair (PEM). */
  tls?: { cert: Uint8Array; key: Uint8Array };
  clusters?: ClusterInfo[];
  /** ms between HealthCheck statuses. */
  healthIntervalMs?: number;
  /** Status code the health stream reports (0 healthy). */
  healthCode?: number;
  /** Answer like the standalone PEM (see the module doc). */
  standalone?: boolean;
  /** The fake cluster's PEMs (default: one PEM on node `node-1`). A standalone PEM uses the first. */
  pems?: FakePemOptions[];
  /** Time source of the model (keep-alives, consumer timeout), ms; default Date.now. */
  clock?: () => number;
  broker?: Partial<BrokerOptions>;
  /** Drop streams on purpose (seeded), losing the message in flight each time. */
  chaos?: ChaosOptions;
}

/** One PEM of the fake cluster. */
export interface FakePemOptions {
  node: string;
  /** Pods (`namespace/name`) on this node; agent pruning uses them. */
  pods?: string[];
  services?: string[];
}

/** The query broker's limits (Pixie's values by default). */
export interface BrokerOptions {
  /** Messages a query buffers for its consumer (activeQueryBufferSize). */
  bufferSize: number;
  /** A query whose consumer has not read for this long is forgotten (defaultConsumerTimeout). */
  consumerTimeoutMs: number;
  /**
   * A query no producer sent anything for this long is forgotten (defaultProducerTimeout). The model's PEMs send
   * keep-alives until a query fails in execution, so only such a query meets it.
   */
  producerTimeoutMs: number;
  /** Each PEM sends a 0-row batch per output table when it had nothing to send for this long. */
  keepAliveMs: number;
  /** Rows per batch a PEM sends. */
  batchRows: number;
  /** Real-time period of the producer loop. */
  tickMs: number;
}

/** Seeded stream drops by the model itself. */
export interface ChaosOptions {
  seed: number;
  /** A consumer's stream is dropped after a number of messages drawn uniformly from [min, max]. */
  dropEvery: [number, number];
  /** How the stream ends at a drop (drawn uniformly; default all). */
  kinds?: ("reset" | "unavailable" | "end" | "internal")[];
  /** The message in flight at a drop is lost (the broker counted it as sent); default true. */
  loseInFlight?: boolean;
  /** No drops after this many. */
  maxDrops?: number;
}

/** What the model did, for tests and benchmarks. */
export interface FakeClusterStats {
  drops: number;
  /** Messages taken off a buffer and lost because the consumer dropped. */
  lostMessages: number;
  /** Rows in those messages. */
  lostRows: number;
  /** Resumes answered with UNKNOWN "not registered". */
  refusedResumes: number;
  /** Queries forgotten because their buffer filled. */
  forgottenFull: number;
  /** Queries forgotten because no consumer read for the consumer timeout. */
  forgottenIdle: number;
  /** Rows the PEMs put into batches. */
  rowsServed: number;
}

/** Work one PEM did, summed over all queries. */
export interface PemWork {
  /** Queries the planner placed on this PEM (not pruned). */
  queries: number;
  /** Rows its memory sources read. */
  rowsScanned: number;
  /** Rows that passed the filters. */
  rowsOut: number;
  /** Row batches with rows it sent. */
  batches: number;
  /** 0-row keep-alive batches it sent. */
  keepAlives: number;
}

/** One PEM: a table store the tests fill, and the work done. */
export class FakePem {
  readonly node: string;
  readonly pods: Set<string>;
  readonly services: Set<string>;
  /** Rows per table, in arrival order. */
  readonly tables = new Map<string, StoredRow[]>();
  readonly work: PemWork = { queries: 0, rowsScanned: 0, rowsOut: 0, batches: 0, keepAlives: 0 };
  #onAppend: () => void;
  /** Creates the PEM. */
  constructor(o: FakePemOptions, onAppend: () => void) {
    this.node = o.node;
    this.pods = new Set(o.pods ?? []);
    this.services = new Set(o.services ?? []);
    this.#onAppend = onAppend;
  }
  /** Appends rows to a table (as Stirling would push them). */
  append(table: string, rows: StoredRow[]): void {
    const list = this.tables.get(table) ?? [];
    for (const r of rows) list.push(r);
    this.tables.set(table, list);
    this.#onAppend();
  }
}

const enc = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The fake Vizier; see the module doc. */
export class FakeVizier {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Every call in arrival order. */
  readonly calls: RecordedCall[] = [];
  /** Scripts each ExecuteScript call (the lenient path); undefined runs the model. */
  onExecute: ExecuteHandler | undefined;
  /** The fake cluster's PEMs. */
  readonly pems: FakePem[];
  /** What the model did. */
  readonly stats: FakeClusterStats = {
    drops: 0,
    lostMessages: 0,
    lostRows: 0,
    refusedResumes: 0,
    forgottenFull: 0,
    forgottenIdle: 0,
    rowsServed: 0,
  };
  readonly #standalone: boolean;
  readonly #broker: BrokerOptions;
  readonly #clock: () => number;
  readonly #chaos: ChaosOptions | undefined;
  #chaosRandom: () => number = () => 0;
  #dropsLeft = Infinity;
  readonly #queries = new Map<string, FakeQuery>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #skewMs = 0;
  /** Status code the health stream reports. */
  healthCode: number;
  /** Batches sent as `encrypted_batch`. */
  encryptedBatches = 0;
  readonly #server: grpc.Server;
  #executeCount = 0;

  private constructor(server: grpc.Server, address: string, opts: FakeVizierOptions) {
    this.#server = server;
    this.address = address;
    this.healthCode = opts.healthCode ?? 0;
    this.#standalone = opts.standalone ?? false;
    this.#broker = {
      bufferSize: 1024,
      consumerTimeoutMs: 180_000,
      producerTimeoutMs: 180_000,
      keepAliveMs: 2_000,
      batchRows: 64,
      tickMs: 20,
      ...opts.broker,
    };
    const base = opts.clock ?? (() => Date.now());
    this.#clock = () => base() + this.#skewMs;
    this.#chaos = opts.chaos;
    if (opts.chaos) {
      this.#chaosRandom = mulberry32(opts.chaos.seed);
      this.#dropsLeft = opts.chaos.maxDrops ?? Infinity;
    }
    const pems = opts.pems ?? [{ node: "node-1" }];
    this.pems = (this.#standalone ? pems.slice(0, 1) : pems).map((p) => new FakePem(p, () => this.#kick()));
  }

  /** The model's current time (ms). */
  nowMs(): number {
    return this.#clock();
  }

  /**
   * Fails every running query in execution, as Carnot does when an operator fails mid-stream (carnot.cc
   * `ExecutePlan` → `SendErrorToOutgoingConns`): its producers stop (no rows, no keep-alives), and the error,
   * `code` a Carnot status code ({@link CarnotCode}), reaches the consumer after the messages already buffered,
   * the way the broker or the standalone PEM passes it on (see the module doc).
   */
  failExecution(code: number, message: string): void {
    const now = this.#clock();
    for (const q of this.#queries.values()) {
      if (q.gone || q.failedAtMs !== undefined) continue;
      q.failedAtMs = now;
      q.buffer.push({ execError: { code, message } });
      q.notify();
    }
  }

  /** Moves the model's clock forward (keep-alives and timeouts catch up at the next tick). */
  async advance(ms: number): Promise<void> {
    this.#skewMs += ms;
    this.#produceAll();
    await new Promise((r) => setTimeout(r, 0));
  }

  /** Calls currently reading a query (the client's cancel reaches the server a moment after it aborts). */
  get consumers(): number {
    return [...this.#queries.values()].filter((q) => q.consumer !== undefined).length;
  }

  /** Query ids the broker still holds. */
  get liveQueries(): string[] {
    return [...this.#queries.values()].filter((q) => !q.gone && !q.standalone).map((q) => q.id);
  }

  /** ExecuteScript requests in arrival order. */
  get executeRequests(): ExecuteScriptRequest[] {
    return this.calls.flatMap((c) => (c.execute ? [c.execute] : []));
  }

  /** Starts the server on 127.0.0.1, port 0. */
  static async start(opts: FakeVizierOptions = {}): Promise<FakeVizier> {
    const server = new grpc.Server();
    const creds = opts.tls
      ? grpc.ServerCredentials.createSsl(enc(opts.tls.cert), [{
        cert_chain: enc(opts.tls.cert),
        private_key: enc(opts.tls.key),
      }])
      : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p)))
    );
    const fake = new FakeVizier(server, `127.0.0.1:${port}`, opts);
    fake.#install(opts);
    return fake;
  }

  #authorize(md: grpc.Metadata, method: RecordedCall["method"], opts: FakeVizierOptions): RecordedCall {
    const key = md.get("pixie-api-key")[0];
    const client = md.get("pixie-api-client")[0];
    const rec: RecordedCall = {
      method,
      authorized: opts.apiKey === undefined || key === opts.apiKey,
      apiClient: typeof client === "string" ? client : undefined,
    };
    this.calls.push(rec);
    return rec;
  }

  /** Echoes the presented key, as a careless proxy might, so tests can prove the client redacts it. */
  #denied(md: grpc.Metadata): grpc.ServiceError {
    const err = new Error("unauthenticated") as grpc.ServiceError;
    err.code = grpc.status.UNAUTHENTICATED;
    err.details = `invalid API key: ${String(md.get("pixie-api-key")[0] ?? "(none)")}`;
    err.metadata = new grpc.Metadata();
    return err;
  }

  #install(opts: FakeVizierOptions): void {
    const identity = (b: Uint8Array) => enc(b);
    const raw = (b: Buffer) => new Uint8Array(b);
    this.#server.addService({
      ExecuteScript: {
        path: METHODS.executeScript,
        requestStream: false,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: raw,
        responseSerialize: identity,
        responseDeserialize: raw,
      },
      HealthCheck: {
        path: METHODS.healthCheck,
        requestStream: false,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: raw,
        responseSerialize: identity,
        responseDeserialize: raw,
      },
    }, {
      ExecuteScript: (call: grpc.ServerWritableStream<Uint8Array, Uint8Array>) => {
        const rec = this.#authorize(call.metadata, "ExecuteScript", opts);
        const req = decodeExecuteScriptRequest(call.request);
        rec.execute = req;
        if (!rec.authorized) return void call.emit("error", this.#denied(call.metadata));
        void this.#runExecute(call, req);
      },
      HealthCheck: (call: grpc.ServerWritableStream<Uint8Array, Uint8Array>) => {
        const rec = this.#authorize(call.metadata, "HealthCheck", opts);
        rec.clusterId = decodeHealthCheckRequest(call.request);
        if (!rec.authorized) return void call.emit("error", this.#denied(call.metadata));
        // The standalone PEM's HealthCheck returns OK at once without writing a status (vizier_server.h).
        if (this.#standalone) return void call.end();
        let stopped = false;
        call.on("cancelled", () => (stopped = true));
        const tick = () => {
          if (stopped) return;
          call.write(
            enc(encodeHealthCheckResponse({ code: this.healthCode, message: "", compilerErrors: [] })),
          );
          setTimeout(tick, opts.healthIntervalMs ?? 50);
        };
        tick();
      },
    });
    this.#server.addService({
      GetClusterInfo: {
        path: METHODS.getClusterInfo,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: raw,
        responseSerialize: identity,
        responseDeserialize: raw,
      },
    }, {
      GetClusterInfo: (
        call: grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
        cb: grpc.sendUnaryData<Uint8Array>,
      ) => {
        const rec = this.#authorize(call.metadata, "GetClusterInfo", opts);
        rec.clusterId = decodeGetClusterInfoRequest(call.request);
        if (!rec.authorized) return cb(this.#denied(call.metadata));
        const all = opts.clusters ?? [];
        cb(
          null,
          enc(encodeGetClusterInfoResponse(rec.clusterId ? all.filter((c) => c.id === rec.clusterId) : all)),
        );
      },
    });
  }

  async #runExecute(call: grpc.ServerWritableStream<Uint8Array, Uint8Array>, req: ExecuteScriptRequest) {
    const index = this.#executeCount++;
    let cancelled = false;
    let ended = false;
    let onCancel!: () => void;
    const cancelledP = new Promise<void>((resolve) => (onCancel = resolve));
    call.on("cancelled", () => {
      cancelled = true;
      onCancel();
    });
    // Under Deno's node:http2, ending a stream (trailers or RST_STREAM) right after a write can overtake that
    // write's DATA frames, so a status would arrive before the last messages. A real Vizier never reorders;
    // every ending here first waits for the last write's callback and for a PING round trip, which the client
    // answers only after it has read every frame sent before the PING.
    let lastWrite: Promise<void> = Promise.resolve();
    const inner = (call as unknown as { call?: { stream?: Http2StreamLike } }).call?.stream;
    const flushedP = async () => {
      await lastWrite;
      const session = inner?.session;
      if (!session || session.destroyed || cancelled) return;
      await new Promise<void>((resolve) => {
        try {
          if (!session.ping(() => resolve())) resolve();
        } catch {
          resolve();
        }
      });
    };
    const write = (r: ExecuteScriptResponse) => writeBytes(encodeExecuteScriptResponse(r));
    const writeBytes = async (bytes: Uint8Array) => {
      if (cancelled || ended) return;
      let done!: () => void;
      lastWrite = new Promise<void>((resolve) => (done = resolve));
      if (!call.write(enc(bytes), () => done())) {
        await new Promise<void>((resolve) => {
          const done = () => {
            call.off("drain", done);
            resolve();
          };
          call.on("drain", done);
          void cancelledP.then(done);
        });
      }
    };
    const fail = (code: number, details: string) => {
      if (ended || cancelled) return;
      ended = true;
      void flushedP().then(() => failNow(code, details));
    };
    const failNow = (code: number, details: string) => {
      const err = new Error(details) as grpc.ServiceError;
      err.code = code;
      err.details = details;
      err.metadata = new grpc.Metadata();
      // emit("error") makes grpc-js flush pending messages, then send this status (destroy() would drop it).
      call.emit("error", err);
    };
    const reset = () => {
      if (ended || cancelled) return;
      ended = true;
      void flushedP().then(() => {
        // A real HTTP/2 RST_STREAM on the call's stream, as a proxy or a crashed broker produces.
        if (inner) inner.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        else failNow(grpc.status.INTERNAL, "Received RST_STREAM with code 2");
      });
    };
    const c: ExecuteCall = {
      request: req,
      index,
      queryId: req.queryId ?? `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`,
      cancelled: cancelledP,
      isCancelled: () => cancelled,
      send: (r) => write({ ...r, queryId: c.queryId }),
      sendBytes: (bytes) => writeBytes(bytes),
      meta: (id, name, relation) => write({ queryId: c.queryId, metaData: { id, name, relation } }),
      batch: async (b, o = {}) => {
        if (req.encryption?.jwkKey && o.encrypt !== false) {
          const jwe = await encryptCompactJwe(encodeRowBatch(b), req.encryption.jwkKey, {
            compress: req.encryption.compressionAlg === "DEF",
          });
          this.encryptedBatches++;
          await write({ queryId: c.queryId, encryptedBatch: new TextEncoder().encode(jwe) });
        } else {
          await write({ queryId: c.queryId, batch: b });
        }
      },
      keepAlive: (tableId, relation) => c.batch(emptyBatch(tableId, relation)),
      stats: () =>
        write({
          queryId: c.queryId,
          stats: { executionTimeNs: 1n, compilationTimeNs: 1n, bytesProcessed: 10n, recordsProcessed: 1n },
        }),
      compileError: (errors) => {
        const status: PixieStatus = {
          code: grpc.status.INVALID_ARGUMENT,
          message: "compile error",
          compilerErrors: errors,
        };
        void write({ queryId: c.queryId, status }).then(() =>
          fail(grpc.status.INVALID_ARGUMENT, "compile error")
        );
      },
      fail,
      reset,
      end: () => {
        if (ended || cancelled) return;
        ended = true;
        void flushedP().then(() => call.end());
      },
      refuseResume: () =>
        fail(
          grpc.status.UNKNOWN,
          `error in StreamResults: Query ${req.queryId ?? ""} not registered in query forwarder`,
        ),
    };
    try {
      if (this.onExecute) await this.onExecute(c);
      else await this.#model(c);
    } catch (e) {
      fail(grpc.status.INTERNAL, `fake handler failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Stops the server at once (open calls are cancelled). */
  stop(): Promise<void> {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    for (const q of this.#queries.values()) q.gone = "server stopped";
    this.#server.forceShutdown();
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------------------------
  // The model

  async #model(c: ExecuteCall): Promise<void> {
    const req = c.request;
    if (!this.#standalone && req.queryId) {
      this.#expire();
      const q = this.#queries.get(req.queryId);
      if (!q || q.gone) {
        this.stats.refusedResumes++;
        return c.refuseResume();
      }
      // query_executor.go runScript: no compile and no metadata on a resume, straight to StreamResults.
      return this.#consume(q, c);
    }
    let outputs: CompiledOutput[];
    try {
      outputs = compilePxl(req.queryStr);
    } catch (e) {
      if (!(e instanceof FakePxlError)) throw e;
      if (this.#standalone) {
        return c.fail(grpc.status.INVALID_ARGUMENT, `Failed to compile script with error='${e.message}'`);
      }
      return c.compileError([{ line: e.line, column: e.column, message: e.message }]);
    }
    const id = this.#standalone ? crypto.randomUUID() : c.queryId;
    c.queryId = id;
    const now = this.#clock();
    const q = new FakeQuery(id, this.#standalone, now);
    for (const [i, out] of outputs.entries()) {
      const tableId = this.#standalone ? out.name : `00000000-0000-4000-a000-${String(i).padStart(12, "0")}`;
      const relation: ColumnInfo[] = [...out.frame.columns].map(([name, type]) => ({ name, type }));
      const startNs = resolveStart(out.frame.startTime, now);
      // removable_ops_rule.cc: the planner leaves the query off PEMs its pod/service equality filters exclude.
      const pems = this.pems.filter((p) => !prunedOn(out.frame, p.pods, p.services));
      for (const p of pems) p.work.queries++;
      q.outputs.push({
        name: out.name,
        tableId,
        relation,
        out,
        cursors: pems.map((pem) => ({ pem, pos: 0, startNs, lastSentMs: now, eos: false })),
      });
      await c.meta(tableId, out.name, relation);
    }
    this.#queries.set(id, q);
    this.#startTicker();
    this.#produce(q);
    await this.#consume(q, c);
  }

  /** Drains a query's buffer into one call, until the call or the query ends. */
  async #consume(q: FakeQuery, c: ExecuteCall): Promise<void> {
    // A new consumer replaces the old one, whose call then ends OK (StreamResults returns nil).
    q.consumer?.end();
    q.consumer = c;
    q.lastConsumerMs = this.#clock();
    let budget = this.#chaos && this.#dropsLeft > 0 ? this.#drawBudget() : Infinity;
    const detach = () => {
      if (q.consumer === c) {
        q.consumer = undefined;
        q.lastConsumerMs = this.#clock();
      }
      if (q.standalone) q.gone ??= "call ended";
    };
    try {
      while (!c.isCancelled() && q.consumer === c) {
        if (q.gone) {
          if (!q.standalone) c.fail(grpc.status.UNKNOWN, q.gone);
          return;
        }
        const msg = q.buffer.shift();
        if (!msg) {
          await Promise.race([q.wait(), c.cancelled]);
          continue;
        }
        q.lastConsumerMs = this.#clock();
        if (budget-- <= 0) {
          this.#dropsLeft--;
          this.stats.drops++;
          if (this.#chaos!.loseInFlight ?? true) {
            this.stats.lostMessages++;
            this.stats.lostRows += msg.batch?.numRows ?? 0;
          } else {
            q.buffer.unshift(msg);
          }
          const kinds = this.#chaos!.kinds ?? ["reset", "unavailable", "end", "internal"];
          const kind = kinds[Math.floor(this.#chaosRandom() * kinds.length)]!;
          if (kind === "reset") c.reset();
          else if (kind === "unavailable") {
            c.fail(grpc.status.UNAVAILABLE, "upstream connect error or disconnect");
          } else if (kind === "internal") {
            c.fail(grpc.status.INTERNAL, "server closed the stream without sending trailers");
          } else c.end();
          return;
        }
        if (msg.execError) {
          const { code, message } = msg.execError;
          if (q.standalone) {
            // sink_server.h writes the error's message without a code; vizier_server.h's ExecuteScript then
            // returns CANCELLED, without a message, as ExecuteQuery failed.
            await c.send({ status: { code: 0, message, compilerErrors: [] } });
            q.gone = message;
            return c.fail(grpc.status.CANCELLED, "");
          }
          const mapped = STATUS_TO_GRPC[code] ?? 0;
          await c.send({ status: { code: mapped, message, compilerErrors: [] } });
          if (mapped !== 0) {
            // handleRequest: VizierStatusToError cancels the query and ends the call with the status.
            q.gone = message;
            return c.fail(mapped, message);
          }
          continue;
        }
        if (msg.batch) await c.batch(msg.batch);
        else if (msg.stats) await c.send({ stats: msg.stats });
        if (msg.last) {
          q.gone = "complete";
          return c.end();
        }
      }
    } finally {
      detach();
    }
  }

  #drawBudget(): number {
    const [lo, hi] = this.#chaos!.dropEvery;
    return lo + Math.floor(this.#chaosRandom() * (hi - lo + 1));
  }

  #kick(): void {
    for (const q of this.#queries.values()) if (!q.gone) this.#produce(q);
  }

  #startTicker(): void {
    this.#ticker ??= setInterval(() => this.#produceAll(), this.#broker.tickMs);
  }

  #produceAll(): void {
    this.#expire();
    let live = 0;
    for (const [id, q] of this.#queries) {
      if (q.gone) {
        if (!q.consumer) this.#queries.delete(id);
        continue;
      }
      live++;
      this.#produce(q);
    }
    if (live === 0 && this.#queries.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  /** The watchdog: forgets queries whose consumer has not read for the consumer timeout, or producers gone quiet. */
  #expire(): void {
    const now = this.#clock();
    for (const q of this.#queries.values()) {
      if (q.gone || q.standalone) continue;
      if (q.failedAtMs !== undefined && now - q.failedAtMs >= this.#broker.producerTimeoutMs) {
        q.gone = `Query ${q.id} timedout waiting for producers`;
        q.notify();
        continue;
      }
      if (q.consumer) continue;
      if (now - q.lastConsumerMs >= this.#broker.consumerTimeoutMs) {
        q.gone = `Query ${q.id} timedout waiting for consumer`;
        this.stats.forgottenIdle++;
      }
    }
  }

  /** Every PEM of every output reads its new rows and forwards batches and keep-alives into the buffer. */
  #produce(q: FakeQuery): void {
    // A query failed in execution: its producers are gone.
    if (q.failedAtMs !== undefined) return;
    const now = this.#clock();
    const b = this.#broker;
    const push = (m: BufferedMessage, at: number): boolean => {
      if (q.gone) return false;
      if (!q.standalone && !q.consumer && at - q.lastConsumerMs >= b.consumerTimeoutMs) {
        q.gone = `Query ${q.id} timedout waiting for consumer`;
        this.stats.forgottenIdle++;
        return false;
      }
      if (!q.standalone && q.buffer.length >= b.bufferSize) {
        // ForwardQueryResult's `default:` branch: the buffer is full, the query is cancelled.
        q.gone = `error in ForwardQueryResult: Query ${q.id} can not accept more data, consumer likely died`;
        this.stats.forgottenFull++;
        q.notify();
        return false;
      }
      q.buffer.push(m);
      q.notify();
      return true;
    };
    const ctxFor = (node: string) => ({ node, standalone: q.standalone });
    for (const o of q.outputs) {
      for (const cur of o.cursors) {
        const rows = cur.pem.tables.get(o.out.frame.table) ?? [];
        const out: Record<string, Cell>[] = [];
        while (cur.pos < rows.length) {
          const r = rows[cur.pos++]!;
          cur.pem.work.rowsScanned++;
          if (cur.startNs !== undefined && r.time < cur.startNs) continue;
          const cols = evalRow(o.out.frame, r, ctxFor(cur.pem.node));
          if (cols) out.push(cols);
        }
        cur.pem.work.rowsOut += out.length;
        for (let i = 0; i < out.length; i += b.batchRows) {
          const part = out.slice(i, i + b.batchRows);
          cur.pem.work.batches++;
          this.stats.rowsServed += part.length;
          if (!push({ batch: toBatch(o.tableId, o.relation, part, false) }, now)) return;
          cur.lastSentMs = now;
        }
        if (!o.out.frame.streaming) {
          if (!cur.eos) {
            cur.eos = true;
            if (!push({ batch: toBatch(o.tableId, o.relation, [], true) }, now)) return;
          }
          continue;
        }
        // Keep-alives catch up with the clock, in time order, so a long silence fills the buffer as it would.
        while (now - cur.lastSentMs >= b.keepAliveMs) {
          cur.lastSentMs += b.keepAliveMs;
          cur.pem.work.keepAlives++;
          if (!push({ batch: toBatch(o.tableId, o.relation, [], false) }, cur.lastSentMs)) return;
        }
      }
    }
    if (!q.finished && q.outputs.every((o) => !o.out.frame.streaming && o.cursors.every((c) => c.eos))) {
      q.finished = true;
      push({
        stats: { executionTimeNs: 1n, compilationTimeNs: 1n, bytesProcessed: 0n, recordsProcessed: 0n },
        last: true,
      }, now);
    }
  }
}

interface BufferedMessage {
  batch?: RowBatch;
  /** An execution error (Carnot status code and message). */
  execError?: { code: number; message: string };
  stats?: ExecuteScriptResponse["stats"];
  last?: boolean;
}

interface Cursor {
  pem: FakePem;
  pos: number;
  startNs: bigint | undefined;
  lastSentMs: number;
  eos: boolean;
}

/** One query the model runs: the broker's activeQuery (or a standalone PEM's call). */
class FakeQuery {
  readonly outputs: {
    name: string;
    tableId: string;
    relation: ColumnInfo[];
    out: CompiledOutput;
    cursors: Cursor[];
  }[] = [];
  readonly buffer: BufferedMessage[] = [];
  consumer: ExecuteCall | undefined;
  lastConsumerMs: number;
  /** Why the query is no longer held (undefined while it is). */
  gone: string | undefined;
  finished = false;
  /** When the query failed in execution (its producers stopped), model ms. */
  failedAtMs: number | undefined;
  #waiters: (() => void)[] = [];
  constructor(readonly id: string, readonly standalone: boolean, now: number) {
    this.lastConsumerMs = now;
  }
  wait(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r));
  }
  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/**
 * Carnot's status codes (src/common/base/statuspb/status.proto `Code`), which an execution error carries before
 * the query broker maps it to a gRPC code.
 */
export const CarnotCode = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 8,
  INTERNAL: 9,
  UNIMPLEMENTED: 10,
  RESOURCE_UNAVAILABLE: 11,
  SYSTEM: 12,
  FAILED_PRECONDITION: 13,
} as const;

/**
 * proto_utils.go `statusCodeToGRPCCode`, Carnot code to gRPC code. It has no UNIMPLEMENTED or FAILED_PRECONDITION:
 * Go's map lookup gives those 0, i.e. OK.
 */
const STATUS_TO_GRPC: Record<number, number> = {
  0: 0,
  1: grpc.status.CANCELLED,
  2: grpc.status.UNKNOWN,
  3: grpc.status.INVALID_ARGUMENT,
  4: grpc.status.DEADLINE_EXCEEDED,
  5: grpc.status.NOT_FOUND,
  6: grpc.status.ALREADY_EXISTS,
  7: grpc.status.PERMISSION_DENIED,
  8: grpc.status.UNAUTHENTICATED,
  9: grpc.status.INTERNAL,
  11: grpc.status.UNAVAILABLE,
  12: grpc.status.INTERNAL,
};

/**
 * The first `time_` a memory source reads; undefined reads every row the table holds. A DataFrame without
 * `start_time` is that (src/carnot/planner/objects/dataframe.cc sets no start; src/carnot/exec/memory_source_node.cc
 * then starts the cursor at `CurrentStartOfTable`), not "from now".
 */
function resolveStart(start: bigint | string | undefined, nowMs: number): bigint | undefined {
  if (start === undefined) return undefined;
  if (typeof start === "bigint") return start;
  const m = /^-(\d+)(ms|m|s|h|d)$/.exec(start)!;
  const unit: Record<string, bigint> = {
    ms: 1_000_000n,
    s: 1_000_000_000n,
    m: 60_000_000_000n,
    h: 3_600_000_000_000n,
    d: 86_400_000_000_000n,
  };
  return BigInt(nowMs) * 1_000_000n - BigInt(m[1]!) * unit[m[2]!]!;
}

const te = new TextEncoder();

/** Packs evaluated rows into a batch of `relation`. */
function toBatch(
  tableId: string,
  relation: ColumnInfo[],
  rows: Record<string, Cell>[],
  eos: boolean,
): RowBatch {
  const cols = relation.map((c): ColumnData => {
    const cells = rows.map((r) => r[c.name]);
    switch (c.type) {
      case DataType.TIME64NS:
        return { type: "time64ns", data: cells.map((v) => BigInt(v as bigint)) };
      case DataType.INT64:
        return {
          type: "int64",
          data: cells.map((v) => BigInt(typeof v === "number" ? Math.trunc(v) : v as bigint)),
        };
      case DataType.UINT128:
        return { type: "uint128", data: cells.map((v) => (typeof v === "bigint" ? v : 0n)) };
      case DataType.FLOAT64:
        return { type: "float64", data: cells.map((v) => Number(v)) };
      case DataType.BOOLEAN:
        return { type: "boolean", data: cells.map((v) => Boolean(v)) };
      default:
        return {
          type: "string",
          data: cells.map((v) => (v instanceof Uint8Array ? v : te.encode(String(v ?? "")))),
        };
    }
  });
  return { tableId, cols, numRows: rows.length, eow: eos, eos };
}

/** A seeded uniform [0, 1) generator. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 0-row batch of a relation. */
export function emptyBatch(tableId: string, relation: ColumnInfo[], eos = false): RowBatch {
  return { tableId, cols: relation.map((c) => emptyColumn(c.type)), numRows: 0, eow: eos, eos };
}

function emptyColumn(type: number): ColumnData {
  switch (type) {
    case DataType.BOOLEAN:
      return { type: "boolean", data: [] };
    case DataType.INT64:
      return { type: "int64", data: [] };
    case DataType.UINT128:
      return { type: "uint128", data: [] };
    case DataType.FLOAT64:
      return { type: "float64", data: [] };
    case DataType.STRING:
      return { type: "string", data: [] };
    default:
      return { type: "time64ns", data: [] };
  }
}

/** The relation of an http_events-like audio table (time_, upid, pod, req_body, req_body_size, remote_port). */
export const HTTP_RELATION: ColumnInfo[] = [
  { name: "time_", type: DataType.TIME64NS },
  { name: "upid", type: DataType.UINT128 },
  { name: "pod", type: DataType.STRING },
  { name: "req_body", type: DataType.STRING },
  { name: "req_body_size", type: DataType.INT64 },
  { name: "remote_port", type: DataType.INT64 },
  { name: "encrypted", type: DataType.BOOLEAN },
  { name: "latency_ms", type: DataType.FLOAT64 },
];

/** One http_events-like row for {@link httpBatch}. */
export interface HttpRow {
  time: bigint;
  pod?: string;
  body: Uint8Array | string;
  port?: bigint;
  upid?: bigint;
}

/** A batch of {@link HTTP_RELATION} rows. */
export function httpBatch(tableId: string, rows: HttpRow[], eos = false): RowBatch {
  const te = new TextEncoder();
  const bodies = rows.map((r) => (typeof r.body === "string" ? te.encode(r.body) : r.body));
  return {
    tableId,
    numRows: rows.length,
    eow: eos,
    eos,
    cols: [
      { type: "time64ns", data: rows.map((r) => r.time) },
      { type: "uint128", data: rows.map((r) => r.upid ?? 0n) },
      { type: "string", data: rows.map((r) => te.encode(r.pod ?? "default/pod-a")) },
      { type: "string", data: bodies },
      { type: "int64", data: bodies.map((b) => BigInt(b.length)) },
      { type: "int64", data: rows.map((r) => r.port ?? 8080n) },
      { type: "boolean", data: rows.map(() => false) },
      { type: "float64", data: rows.map(() => 1.5) },
    ],
  };
}

/** Generates a self-signed certificate for 127.0.0.1 with openssl (Debian's; tests only). */
export async function makeTestCert(): Promise<{ cert: Uint8Array; key: Uint8Array }> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-cert-" });
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
    return { cert: await Deno.readFile(`${dir}/cert.pem`), key: await Deno.readFile(`${dir}/key.pem`) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A clock for stream tests: sleeping records the delay and advances time at once (no wall-clock waits). */
export class ManualClock {
  /** Current time, ms since the epoch. */
  ms: number;
  /** Every delay the code under test slept. */
  readonly sleeps: number[] = [];
  /** Creates the clock at `startMs`. */
  constructor(startMs = 1_700_000_000_000) {
    this.ms = startMs;
  }
  /** StreamClock.nowMs. */
  nowMs = (): number => this.ms;
  /** StreamClock.nowNs. */
  nowNs = (): bigint => BigInt(this.ms) * 1_000_000n;
  /** StreamClock.sleep: records, advances, yields one macrotask. */
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.ms += ms;
    return new Promise((resolve) => setTimeout(resolve, 0));
  };
}

/** Channel options that make a TLS client accept the test certificate for 127.0.0.1. */
export const TEST_TLS_CHANNEL = {
  "grpc.ssl_target_name_override": "localhost",
  "grpc.default_authority": "localhost",
} as const;
