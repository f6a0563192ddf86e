/**
 * Start-up checks and the stream: the server version is checked first (a too-old server is a clear error, not a
 * confusing failure later), then the stream is created or brought to the configured limits, idempotently.
 * @module
 */
import { nanos } from "@nats-io/transport-node";
import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { STREAM_SUBJECTS } from "./subjects.ts";
import { logger } from "../util/log.ts";

const log = logger("bus");

/**
 * Oldest server fsm-px supports: 2.9.4. The v3 client's consumers API (ordered pull consumers with `consume`,
 * which every node uses to read signatures and `replay` uses to read records) is refused by the client below
 * 2.9.4 (its JS_SIMPLIFICATION feature gate); 2.9.0 is also the first server with the consumer-create API
 * that names ephemeral consumers. Features of 2.10+ (several filter subjects per consumer, compression,
 * metadata) and 2.11+ (per-message TTL) are not used, because 2.9 silently ignores what it does not know.
 */
export const MIN_SERVER_VERSION = "2.9.4";

/** A server older than {@link MIN_SERVER_VERSION}, or one whose version cannot be read. */
export class ServerVersionError extends Error {
  override name = "ServerVersionError";
}

/** Parses `2.9.10`, `v2.10.0-beta.1`, `2.11.0-RC.2` into [major, minor, patch]; null if it is none of these. */
export function parseVersion(v: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim());
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Negative, 0 or positive as a < b, a = b, a > b (pre-release suffixes ignored). */
export function compareVersions(a: [number, number, number], b: [number, number, number]): number {
  for (let i = 0; i < 3; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Throws {@link ServerVersionError} unless `version` is at least {@link MIN_SERVER_VERSION}. */
export function checkServerVersion(version: string | undefined): void {
  const have = version === undefined ? null : parseVersion(version);
  if (have === null) {
    throw new ServerVersionError(
      `cannot read the NATS server version (${
        JSON.stringify(version ?? "")
      }); fsm-px needs ${MIN_SERVER_VERSION} or newer`,
    );
  }
  const min = parseVersion(MIN_SERVER_VERSION)!;
  if (compareVersions(have, min) < 0) {
    throw new ServerVersionError(
      `NATS server ${version} is too old: fsm-px needs ${MIN_SERVER_VERSION} or newer with JetStream enabled (-js); ` +
        `upgrade the server`,
    );
  }
}

/** What the stream must look like. */
export interface StreamSpec {
  name: string;
  replicas: number;
  /** Messages older than this are removed. */
  retentionMs: number;
  /** Size cap; the oldest messages go first. */
  maxBytes: number;
  /** Window in which a repeated message id is dropped. */
  duplicateWindowMs: number;
  /** Largest message accepted (a signature is < 1 KB; anything near this is a bug upstream). */
  maxMsgSize: number;
}

/** Default largest message: generous for a signature or a match record, small enough to stop a runaway. */
export const DEFAULT_MAX_MSG_SIZE = 64 * 1024;

/** The stream configuration for a spec. */
export function streamConfig(spec: StreamSpec): StreamConfig {
  // The dedupe window cannot exceed the retention (the server refuses it).
  const dupMs = Math.min(spec.duplicateWindowMs, spec.retentionMs);
  return {
    name: spec.name,
    subjects: [...STREAM_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(spec.retentionMs),
    max_bytes: spec.maxBytes,
    max_msg_size: spec.maxMsgSize,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    max_consumers: -1,
    duplicate_window: nanos(dupMs),
    num_replicas: spec.replicas,
    // Direct get lets `replay` and operators read messages from any replica without a consumer.
    allow_direct: true,
  } as StreamConfig;
}

/** The fields of an existing stream that differ from the spec (names of config keys). */
export function streamDrift(have: StreamConfig, want: StreamConfig): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same([...(have.subjects ?? [])].sort(), [...want.subjects].sort())) out.push("subjects");
  for (
    const k of [
      "retention",
      "max_age",
      "max_bytes",
      "max_msgs",
      "max_msgs_per_subject",
      "max_msg_size",
      "duplicate_window",
      "num_replicas",
      "discard",
    ] as const
  ) {
    if (!same(have[k], want[k])) out.push(k);
  }
  return out;
}

/**
 * Creates the stream or updates the limits that differ; does nothing when the stream already matches, so every
 * node may run it at start-up. The storage type cannot change on a live stream: a mismatch is only reported. A
 * stream that does not keep its messages (interest or work-queue retention, which server 2.9 cannot change) is an
 * error: restarted sensors and `replay` would find nothing in it.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<StreamInfo> {
  const want = streamConfig(spec);
  let info: StreamInfo | null = null;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (e) {
    if ((e as Error).name !== "StreamNotFoundError" && (e as Error).message !== "stream not found") throw e;
  }
  if (info === null) {
    try {
      const created = await jsm.streams.add(want);
      log.info("stream created", {
        stream: spec.name,
        replicas: spec.replicas,
        retention_ms: spec.retentionMs,
      });
      return created;
    } catch (e) {
      // Another node created it between our info and add: fall through to the update path. The server can refuse
      // a concurrent create as "subjects overlap" too, and may not list the new stream at once (nats-server
      // #4600), so the stream is looked up a few times before the refusal stands.
      if (!/already in use|already exists|subjects overlap/i.test((e as Error).message)) throw e;
      info = await streamSoon(jsm, spec.name);
      if (info === null) {
        throw new Error(
          `${(e as Error).message}: another stream holds the subjects of stream ${spec.name} ` +
            `(${want.subjects.join(", ")}); use that stream's name or delete it`,
        );
      }
    }
  }
  if (info.config.sealed) {
    // A sealed stream refuses every message and can never be unsealed (the sensors' user may update the stream,
    // so a stolen sensor password can seal it). A sensor connected anyway, said "stream updated", and dropped
    // every signature as "rejected": nothing matched anywhere, and nothing said why.
    throw new Error(
      `stream ${spec.name} is sealed: it accepts no messages and the server cannot unseal it; an administrator ` +
        `must delete it (nats stream rm ${spec.name}, as fsm-px-admin; the sensors create it again) or set ` +
        `nats.stream to another name`,
    );
  }
  if (info.config.storage !== want.storage) {
    log.warn("stream storage differs from the expected file storage; left as it is", {
      stream: spec.name,
      storage: info.config.storage,
    });
  }
  const maxConsumers = info.config.max_consumers ?? -1;
  if (maxConsumers > 0) {
    // Not updatable (the server refuses a change), and each reader holds consumers of its own: past the limit a
    // sensor cannot read signatures at all. Said at start-up, before that happens.
    log.warn(
      "the stream limits its consumers; every sensor, UI and replay reading it holds its own, and past the " +
        "limit one cannot start (the server cannot change it on a live stream: delete the stream, the sensors " +
        "create it again without a limit, or use another stream name)",
      { stream: spec.name, max_consumers: maxConsumers },
    );
  }
  const drift = streamDrift(info.config, want);
  if (drift.length === 0) return info;
  const { name: _name, storage: _s, max_consumers: _m, ...update } = want;
  let updated: StreamInfo;
  try {
    updated = await jsm.streams.update(spec.name, { ...info.config, ...update });
  } catch (e) {
    if (info.config.retention !== want.retention) {
      throw new Error(
        `stream ${spec.name} has retention "${info.config.retention}" and fsm-px needs "limits" (it keeps ` +
          `signatures for restarted sensors and records for replay), which the server cannot change ` +
          `(${
            (e as Error).message
          }): delete the stream (the sensors create it again) or set nats.stream to ` +
          `another name`,
      );
    }
    throw e;
  }
  log.info("stream updated", { stream: spec.name, changed: drift });
  return updated;
}

/** Lookups of a stream another node is creating, and the pause between them, ms. */
const CREATE_RACE_LOOKUPS = 10, CREATE_RACE_PAUSE_MS = 50;

/** The stream `name` once the server lists it, or null when it does not within a few lookups. */
async function streamSoon(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  for (let i = 0; i < CREATE_RACE_LOOKUPS; i++) {
    try {
      return await jsm.streams.info(name);
    } catch (e) {
      if ((e as Error).name !== "StreamNotFoundError" && (e as Error).message !== "stream not found") throw e;
    }
    await new Promise((r) => setTimeout(r, CREATE_RACE_PAUSE_MS));
  }
  return null;
}
