/**
 * Small builders for the JetStream bus tests and bench: valid signatures and matches, bus options for a test
 * server, polling for a condition with a deadline, and a server of its own for a clock-skew test.
 * @module
 */
import type { Match, Signature } from "../../audio/types.ts";
import { signatureOf } from "../../audio/fingerprint/signature.ts";
import type { JetStreamBusOptions } from "../../bus/jetstream.ts";
import type { ClockSkewEstimator } from "../../bus/clock_skew.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "./nats_server.ts";
import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { connectNats } from "../../bus/connection.ts";
import { streamConfig } from "../../bus/stream_setup.ts";

import { type MatchRecord, matchRecord } from "../../report/records.ts";

/** A signature that encodes (16-hex id, 1..128 frames); `n` makes the id and the fingerprint distinct. */
export function testSignature(
  n: number,
  measurement = "m",
  node = "node-a",
  timeNs = 1_700_000_000_000_000_000n,
): Signature {
  const fp = new Uint32Array(128); // a full block, as the detector sends
  for (let i = 0; i < fp.length; i++) fp[i] = (n * 2654435761 + i * 40503) >>> 0;
  return signatureOf({
    id: n.toString(16).padStart(16, "0"),
    measurement,
    source: {
      node,
      pod: "ns/telephony-0",
      stream: "10.0.0.1:5060",
      timeNs: timeNs + BigInt(n) * 20_000_000n,
      offsetMs: 12.5,
    },
    fingerprint: fp,
    ids: { interval_id: `iv-${n}` },
  });
}

/** A match of {@link testSignature}(n) at `stage` on `targetNode`. */
export function testMatch(
  n: number,
  stage = "asr",
  targetNode = "node-b",
  ids: Record<string, string> = {},
): Match {
  const s = testSignature(n);
  const target = {
    node: targetNode,
    pod: "ns/asr-0",
    stream: "asr-stream",
    timeNs: s.source.timeNs + 250_000_000n,
    offsetMs: 3,
  };
  return {
    measurement: s.measurement,
    stage,
    signatureId: s.id,
    ids: { interval_id: `iv-${n}`, ...ids },
    source: s.source,
    target,
    latencyS: 0.25,
    ber: 0.12,
  };
}

/** Bus options for a test server (replicas 1, small limits). */
export function testBusOptions(
  url: string,
  node: string,
  over: Partial<JetStreamBusOptions> = {},
): JetStreamBusOptions {
  return {
    url,
    stream: "FSMPX_TEST",
    replicas: 1,
    retentionMs: 3600_000,
    maxBytes: 64 * 1024 * 1024,
    duplicateWindowMs: 120_000,
    outboxSize: 10_000,
    node,
    publishTimeoutMs: 2000,
    ...over,
  };
}

/** Polls `pred` every 20 ms until it holds; throws with `what` after `timeoutMs`. */
export async function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** {@link testMatch} as the record the exporter publishes. */
export function testMatchRecord(...args: Parameters<typeof testMatch>): MatchRecord {
  return matchRecord(testMatch(...args));
}

/** What {@link withClockPeers} hands a test: the server, and lists whose connections and estimators it closes. */
export interface ClockPeers {
  srv: NatsServer;
  conns: NatsConnection[];
  estimators: ClockSkewEstimator[];
}

/**
 * Runs a clock-skew test against a real nats-server of its own; whatever the test put in `conns` and
 * `estimators` is stopped and closed afterwards, then the server, whether the test passed or not.
 */
export async function withClockPeers(fn: (p: ClockPeers) => Promise<void>): Promise<void> {
  const srv = await NatsServer.start();
  const peers: ClockPeers = { srv, conns: [], estimators: [] };
  try {
    await fn(peers);
  } finally {
    for (const e of peers.estimators) await e.stop();
    for (const c of peers.conns) await c.close();
    await srv.stop();
  }
}

/** Creates the test stream as the bus would, with `over` on top, before any bus connects. */
export async function preexistingStream(url: string, over: Partial<StreamConfig>): Promise<void> {
  const o = testBusOptions(url, "admin");
  const nc = await connectNats({ url });
  try {
    const cfg = streamConfig({
      name: o.stream,
      replicas: o.replicas,
      retentionMs: o.retentionMs,
      maxBytes: o.maxBytes,
      duplicateWindowMs: o.duplicateWindowMs,
      maxMsgSize: 64 * 1024,
    });
    await (await jetstreamManager(nc)).streams.add({ ...cfg, ...over });
  } finally {
    await nc.close();
  }
}
