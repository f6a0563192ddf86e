/**
 * A Pixie Vizier client over @grpc/grpc-js: Pixie Cloud (TLS, `pixie-api-key` metadata, cluster by name or UUID)
 * or a standalone PEM (plaintext). Messages are encoded with {@link ./messages.ts}; 64-bit values stay bigint.
 * The API key is registered as a secret, so it is masked in every log line and in the errors this module throws.
 * @module
 */

import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { redact, registerSecret } from "../util/log.ts";
import {
  type ClusterInfo,
  decodeExecuteScriptResponse,
  decodeGetClusterInfoResponse,
  decodeHealthCheckResponse,
  encodeExecuteScriptRequest,
  encodeGetClusterInfoRequest,
  encodeHealthCheckRequest,
  type ExecuteScriptRequest,
  type ExecuteScriptResponse,
  type PixieStatus,
  UUID_RE,
} from "./messages.ts";
import { CLUSTER_STATUS_HEALTHY, METHODS } from "./proto.ts";
import { logger } from "../util/log.ts";
import { ResponseQueue } from "./response_queue.ts";

const log = logger("pixie");

/**
 * `px.cloudapi.ClusterStatus.CS_DEGRADED` (pixie-io/pixie src/api/proto/cloudpb/cloudapi.proto: CS_UNKNOWN 0,
 * CS_HEALTHY 1, CS_UNHEALTHY 2, CS_DISCONNECTED 3, CS_UPDATING 4, CS_CONNECTED 5, CS_UPDATE_FAILED 6,
 * CS_DEGRADED 7). The cloud's proxy serves degraded clusters too (src/cloud/api/ptproxy/request_proxyer.go accepts
 * VZ_ST_HEALTHY and VZ_ST_DEGRADED), so a name may resolve to one.
 */
export const CLUSTER_STATUS_DEGRADED = 7;

const STATUS_NAMES: Record<number, string> = {
  0: "unknown",
  1: "healthy",
  2: "unhealthy",
  3: "disconnected",
  4: "updating",
  5: "connected",
  6: "update failed",
  7: "degraded",
};

/** gRPC status codes fsm-px acts on. */
export const GrpcCode = grpc.status;

/** Where and how to reach Pixie. */
export type PixieConnectOptions =
  | {
    mode: "cloud";
    /** `host:port` of Pixie Cloud (config `pixie.cloud_addr`, e.g. `work.withpixie.ai:443`). */
    cloudAddr: string;
    /** The Pixie API key (sent as `pixie-api-key`; never logged). */
    apiKey: string;
    /** PEM file of the CA for a self-hosted cloud (config `pixie.ca_file`); read at connect. */
    caFile?: string;
    /** The CA PEM itself (wins over caFile). */
    caPem?: Uint8Array;
    /** Extra grpc-js channel options (tests: `grpc.ssl_target_name_override`). */
    channelOptions?: grpc.ChannelOptions;
  }
  | {
    mode: "direct";
    /** `host:port` of a standalone PEM (config `pixie.direct_addr`), plaintext. */
    directAddr: string;
    channelOptions?: grpc.ChannelOptions;
  };

/** A failed gRPC call, with the key masked out of its message. */
export class PixieRpcError extends Error {
  /** gRPC status code ({@link GrpcCode}). */
  readonly code: number;
  /** Server-provided details, redacted. */
  readonly details: string;
  /** Creates the error. */
  constructor(code: number, details: string, context: string) {
    const safe = redact(details);
    super(redact(`${context}: ${grpc.status[code] ?? code} ${safe}`));
    this.name = "PixieRpcError";
    this.code = code;
    this.details = safe;
  }
}

/** `pixie.cluster` did not name exactly one healthy cluster. */
export class PixieClusterError extends Error {
  /** The clusters the key can see, for the message and for callers. */
  readonly clusters: ClusterInfo[];
  /** Creates the error. */
  constructor(message: string, clusters: ClusterInfo[]) {
    super(redact(message));
    this.name = "PixieClusterError";
    this.clusters = clusters;
  }
}

function describeCluster(c: ClusterInfo): string {
  const status = STATUS_NAMES[c.status]
    ? `${STATUS_NAMES[c.status]}, status ${c.status}`
    : `status ${c.status}`;
  const pretty = c.prettyClusterName && c.prettyClusterName !== c.clusterName
    ? ` "${c.prettyClusterName}"`
    : "";
  return `${c.clusterName || "(unnamed)"}${pretty} ${c.id} (${status})`;
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function asError(e: unknown, context: string): Error {
  if (e instanceof PixieRpcError) return e;
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "number") {
    const details = "details" in e && typeof e.details === "string" ? e.details : String(e);
    return new PixieRpcError(e.code, details, context);
  }
  return new Error(redact(`${context}: ${e instanceof Error ? e.message : String(e)}`));
}

/**
 * A response's decode that never throws: a message that is no ExecuteScriptResponse, or a batch that breaks its
 * own rules (a column without data, a negative row count), comes back marked {@link ExecuteScriptResponse.malformed}.
 * A decoder that throws makes grpc-js end the call (INTERNAL "Response message parsing error"), and the re-run
 * that follows reads the same batch from Pixie's table again: the stream never got past it.
 */
function decodeOrMalformed(b: Buffer): ExecuteScriptResponse {
  try {
    return decodeExecuteScriptResponse(b);
  } catch (e) {
    return { queryId: "", malformed: e instanceof Error ? e.message : String(e) };
  }
}

/** Bytes Pixie may send ahead of what this client has read, per call and per connection (HTTP/2 flow control). */
export const FLOW_CONTROL_WINDOW = 4 * 1024 * 1024;

/** Channel options of every {@link PixieClient} (`channelOptions` may override them). */
export const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Batches of audio bodies can exceed the 4 MiB default.
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  // Quiet streams (no traffic to capture) must survive idle proxies; Pixie Cloud tolerates 30 s pings.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  // HTTP/2's default window (64 KiB, ~200 rows of audio) lets Pixie send that much per round trip of a
  // WINDOW_UPDATE, both processes scheduled: on a loaded node the reader then starves with its backlog waiting in
  // the peer (bench/live_load.ts --calls 1000 --pod, load 6 on 2 cores: the sensor's main thread runnable 40-60%
  // of the time with 60 s of rows waiting, 75-99% with this window). The client still holds at most this much
  // beyond its queue of responses (response_queue.ts).
  "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW,
};

/**
 * Longest run of queued responses handed on without a turn of the event loop, ms: responses that arrived together
 * are otherwise all handed on (decoded, de-duplicated, routed) in one turn, and /metrics waits.
 */
const TURN_MS = 3;

/** A connection to Pixie Cloud or a standalone PEM. */
export class PixieClient {
  /** True for Pixie Cloud (end-to-end encryption defaults on), false for a direct PEM. */
  readonly cloud: boolean;
  /** Where the channel points (no secrets). */
  readonly address: string;
  readonly #client: grpc.Client;
  readonly #apiKey: string | undefined;

  private constructor(client: grpc.Client, address: string, apiKey: string | undefined) {
    this.#client = client;
    this.address = address;
    this.#apiKey = apiKey;
    this.cloud = apiKey !== undefined;
  }

  /** Opens a channel (lazily connected by grpc-js). Reads `caFile` if given. */
  static async connect(opts: PixieConnectOptions): Promise<PixieClient> {
    const options = { ...DEFAULT_CHANNEL_OPTIONS, ...opts.channelOptions };
    if (opts.mode === "direct") {
      const client = new grpc.Client(opts.directAddr, grpc.credentials.createInsecure(), options);
      return new PixieClient(client, opts.directAddr, undefined);
    }
    registerSecret(opts.apiKey);
    if (!opts.apiKey) throw new Error("pixie: cloud mode needs an API key");
    let ca: Uint8Array | undefined = opts.caPem;
    if (!ca && opts.caFile) {
      try {
        ca = await Deno.readFile(opts.caFile);
      } catch (e) {
        throw new Error(`pixie.ca_file ${opts.caFile}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const creds = grpc.credentials.createSsl(ca ? toBuffer(ca) : null);
    const client = new grpc.Client(opts.cloudAddr, creds, options);
    return new PixieClient(client, opts.cloudAddr, opts.apiKey);
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.#apiKey !== undefined) md.set("pixie-api-key", this.#apiKey);
    md.set("pixie-api-client", "fsm-px");
    return md;
  }

  /** Lists the clusters the API key can see (cloud only). */
  listClusters(timeoutMs = 30_000): Promise<ClusterInfo[]> {
    if (!this.cloud) return Promise.reject(new Error("pixie: listing clusters needs Pixie Cloud"));
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        METHODS.getClusterInfo,
        (b: Uint8Array) => toBuffer(b),
        (b: Buffer) => decodeGetClusterInfoResponse(b),
        encodeGetClusterInfoRequest(),
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, value) => {
          if (err) reject(asError(err, "GetClusterInfo"));
          else resolve(value ?? []);
        },
      );
    });
  }

  /**
   * Resolves `pixie.cluster` to a cluster UUID: a UUID is used as given (lower-cased); a name must match exactly
   * one healthy cluster's name or pretty name, or else exactly one degraded one (accepted with a warning: Pixie's
   * proxy serves it, some agents may be missing); otherwise a {@link PixieClusterError} lists the clusters. A
   * direct PEM ignores the cluster id, so it returns the input (or "").
   */
  async resolveCluster(nameOrUuid: string | undefined): Promise<string> {
    if (!this.cloud) return nameOrUuid ?? "";
    if (!nameOrUuid) throw new PixieClusterError("pixie.cluster is required with Pixie Cloud", []);
    if (UUID_RE.test(nameOrUuid)) return nameOrUuid.toLowerCase();
    const clusters = await this.listClusters();
    const named = clusters.filter((c) => c.clusterName === nameOrUuid || c.prettyClusterName === nameOrUuid);
    const healthy = named.filter((c) => c.status === CLUSTER_STATUS_HEALTHY);
    const list = clusters.length ? clusters.map(describeCluster).join("; ") : "none";
    if (healthy.length === 1) return healthy[0]!.id;
    const degraded = named.filter((c) => c.status === CLUSTER_STATUS_DEGRADED);
    if (healthy.length === 0 && degraded.length === 1) {
      const c = degraded[0]!;
      log.warn("pixie.cluster is DEGRADED: Pixie serves it, but some of its agents may be missing", {
        cluster: describeCluster(c),
      });
      return c.id;
    }
    if (healthy.length === 0 && degraded.length > 1) {
      throw new PixieClusterError(
        `pixie.cluster "${nameOrUuid}" is ambiguous: ${degraded.length} degraded clusters have that name ` +
          `(${degraded.map(describeCluster).join("; ")}); use the cluster UUID`,
        clusters,
      );
    }
    if (healthy.length > 1) {
      throw new PixieClusterError(
        `pixie.cluster "${nameOrUuid}" is ambiguous: ${healthy.length} healthy clusters have that name ` +
          `(${healthy.map(describeCluster).join("; ")}); use the cluster UUID`,
        clusters,
      );
    }
    if (named.length > 0) {
      throw new PixieClusterError(
        `pixie.cluster "${nameOrUuid}" is not healthy (${named.map(describeCluster).join("; ")})`,
        clusters,
      );
    }
    throw new PixieClusterError(`pixie.cluster "${nameOrUuid}" not found; clusters: ${list}`, clusters);
  }

  async *#stream<T>(
    method: string,
    body: Uint8Array,
    decode: (b: Buffer) => T,
    context: string,
    signal?: AbortSignal,
  ): AsyncGenerator<T> {
    if (signal?.aborted) return;
    // Each response's encoded size, from its decode to its 'data' event (one each, in order), for the queue's
    // byte bound.
    const decodedBytes: number[] = [];
    const call = this.#client.makeServerStreamRequest(
      method,
      (b: Uint8Array) => toBuffer(b),
      (b: Buffer): T => {
        const m = decode(b);
        decodedBytes.push(b.length);
        return m;
      },
      body,
      this.#metadata(),
    );
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    // Aborted, the iteration ends at once: what is still queued or buffered is not wanted (a re-run or skip reads
    // from its own start), and a call cancelled while paused may never deliver what its buffer holds.
    const onAbort = () => {
      call.cancel();
      notify();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    // Our own queue rather than the Readable's async iterator: grpc-js emits 'error' as soon as the status
    // arrives, and the iterator would then throw away messages still buffered, i.e. rows sent before a drop.
    const queue = new ResponseQueue<T>();
    let failure: unknown;
    let failed = false;
    let ended = false;
    call.on("data", (m: T) => {
      // Not once failed: the rest of a failed call's buffer must flow, or its end is never seen.
      if (queue.push(m, decodedBytes.shift() ?? 0) && !failed) call.pause();
      notify();
    });
    call.on("error", (e: unknown) => {
      failure = e;
      failed = true;
      if (call.isPaused()) call.resume();
      notify();
    });
    call.on("end", () => {
      ended = true;
      notify();
    });
    call.on("close", () => {
      ended = true;
      notify();
    });
    let turnAt = performance.now();
    try {
      for (;;) {
        if (signal?.aborted) break;
        if (queue.length > 0) {
          if (performance.now() - turnAt >= TURN_MS) {
            await new Promise((resolve) => setTimeout(resolve, 0));
            turnAt = performance.now();
          }
          const m = queue.shift();
          if (queue.low && call.isPaused() && !failed) call.resume();
          yield m;
          continue;
        }
        if (ended || (failed && call.readableLength === 0)) break;
        await new Promise<void>((resolve) => (wake = resolve));
        turnAt = performance.now();
      }
      if (failed && !signal?.aborted) throw asError(failure, context);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /**
   * Runs (or, with `queryId`, resumes) a script. Yields every response as it arrives; throws
   * {@link PixieRpcError} when the call fails. Aborting `signal` cancels the call and ends the iteration quietly.
   */
  execute(req: ExecuteScriptRequest, signal?: AbortSignal): AsyncGenerator<ExecuteScriptResponse> {
    return this.#stream(
      METHODS.executeScript,
      encodeExecuteScriptRequest(req),
      decodeOrMalformed,
      req.queryId ? "ExecuteScript (resume)" : "ExecuteScript",
      signal,
    );
  }

  /** Vizier's health stream: a status about every 5 s (code 0 healthy). */
  healthCheck(clusterId: string, signal?: AbortSignal): AsyncGenerator<PixieStatus> {
    return this.#stream(
      METHODS.healthCheck,
      encodeHealthCheckRequest(clusterId),
      (b) => decodeHealthCheckResponse(b),
      "HealthCheck",
      signal,
    );
  }

  /** Closes the channel; running calls fail with CANCELLED/UNAVAILABLE. */
  close(): void {
    this.#client.close();
  }
}
