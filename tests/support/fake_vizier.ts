/**
 * A real gRPC server on loopback that speaks Vizier's wire protocol (VizierService.ExecuteScript/HealthCheck and
 * VizierClusterInfo.GetClusterInfo) for tests. Tests script each ExecuteScript call with a handler that sends
 * metadata, batches (plain or encrypted for the client's JWK), keep-alives, stats, compile errors, and drops the
 * stream the ways Vizier and its proxies do. Every request is recorded so tests can assert what the client sent.
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
}

const enc = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The fake Vizier; see the module doc. */
export class FakeVizier {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Every call in arrival order. */
  readonly calls: RecordedCall[] = [];
  /** Handler for ExecuteScript calls (replace per test). */
  onExecute: ExecuteHandler = (c) => c.end();
  /** Status code the health stream reports. */
  healthCode: number;
  /** Batches sent as `encrypted_batch`. */
  encryptedBatches = 0;
  readonly #server: grpc.Server;
  #executeCount = 0;

  private constructor(server: grpc.Server, address: string, healthCode: number) {
    this.#server = server;
    this.address = address;
    this.healthCode = healthCode;
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
    const fake = new FakeVizier(server, `127.0.0.1:${port}`, opts.healthCode ?? 0);
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
    const write = async (r: ExecuteScriptResponse) => {
      if (cancelled || ended) return;
      let done!: () => void;
      lastWrite = new Promise<void>((resolve) => (done = resolve));
      if (!call.write(enc(encodeExecuteScriptResponse(r)), () => done())) {
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
    };
    try {
      await this.onExecute(c);
    } catch (e) {
      fail(grpc.status.INTERNAL, `fake handler failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Stops the server at once (open calls are cancelled). */
  stop(): Promise<void> {
    this.#server.forceShutdown();
    return Promise.resolve();
  }
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
