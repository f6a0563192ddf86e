/**
 * The bus a command uses, from the `nats` section: JetStream when `nats.url` is set, else in-process.
 * @module
 */
import type { Config } from "../config/schema.ts";
import { configIssue } from "../config/load.ts";
import type { ConfigError } from "../config/errors.ts";
import type { NatsConnectOptions } from "../bus/connection.ts";
import { JetStreamBus } from "../bus/jetstream.ts";
import type { BusMetrics } from "../bus/outbox.ts";

/** Connection options (credentials included; they are registered as secrets by the loader). */
export function natsConnectOptions(config: Config): NatsConnectOptions {
  const n = config.nats;
  return {
    url: n.url,
    name: config.node,
    credentialsFile: n.credentials_file || undefined,
    user: n.user || undefined,
    password: n.password || undefined,
    token: n.token || undefined,
    tls: { caFile: n.tls.ca_file, certFile: n.tls.cert_file, keyFile: n.tls.key_file },
  };
}

/** Connects the JetStream bus described by the config (creating or updating the stream). */
export async function connectJetStream(config: Config, metrics?: BusMetrics): Promise<JetStreamBus> {
  try {
    return await connectBus(config, metrics);
  } catch (e) {
    throw streamRefusal(config, e) ?? e;
  }
}

/** JetStream API error codes of a stream the server cannot place as configured (nats-server errors.json). */
const JS_REPLICAS_NOT_CLUSTERED = 10074, JS_NO_PEERS = 10005, JS_INSUFFICIENT = 10023, JS_NO_STORAGE = 10047;

/**
 * A stream the server refuses to create or update for its size or replicas, as the config error it is, at the
 * setting (exit 2): the server's words alone ("replicas > 1 not supported in non-clustered mode", "insufficient
 * storage resources available") named neither the key nor the file, e.g. for the Kubernetes config (replicas 3,
 * 4GiB) run against one dev nats-server. Undefined for any other error.
 */
function streamRefusal(config: Config, e: unknown): ConfigError | undefined {
  const code = (e as { name?: unknown; code?: unknown }).name === "JetStreamApiError"
    ? (e as { code?: unknown }).code
    : undefined;
  const n = config.nats;
  const said = (e as Error).message;
  const replicas = () =>
    configIssue(
      config,
      ["nats", "replicas"],
      "at most as many replicas as the NATS cluster has JetStream servers",
      `${n.replicas}, which the server refuses (${said})`,
      "set nats.replicas: 1 for a single nats-server, or run a JetStream cluster (k8s/nats/)",
    );
  const bytes = () =>
    configIssue(
      config,
      ["nats", "max_bytes"],
      "a stream size the server's JetStream storage can hold (its max_file_store)",
      `${n.max_bytes} bytes, which the server refuses (${said})`,
      "lower nats.max_bytes, or raise the server's jetstream max_file_store",
    );
  switch (code) {
    case JS_REPLICAS_NOT_CLUSTERED:
      return replicas();
    case JS_NO_STORAGE:
      return bytes();
    case JS_NO_PEERS:
    case JS_INSUFFICIENT:
      // Too few servers, or none with room for the stream's size (a cluster says "..., insufficient storage").
      return /storage/i.test(said) || n.replicas <= 1 ? bytes() : replicas();
  }
  return undefined;
}

function connectBus(config: Config, metrics?: BusMetrics): Promise<JetStreamBus> {
  const n = config.nats;
  return JetStreamBus.connect({
    ...natsConnectOptions(config),
    stream: n.stream,
    replicas: n.replicas,
    retentionMs: n.retention_ms,
    maxBytes: n.max_bytes,
    duplicateWindowMs: n.duplicate_window_ms,
    outboxSize: n.outbox_size,
    node: config.node,
    metrics,
  });
}
