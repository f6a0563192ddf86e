/**
 * The bus a command uses, from the `nats` section: JetStream when `nats.url` is set, else in-process.
 * @module
 */
import type { Config } from "../config/schema.ts";
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
export function connectJetStream(config: Config, metrics?: BusMetrics): Promise<JetStreamBus> {
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
