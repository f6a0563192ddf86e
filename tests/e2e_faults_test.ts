/**
 * Across nodes, under faults: three sensor processes over one nats-server replay the committed e2e captures
 * (accelerated) while a sensor is killed and restarted, the server restarts, a consumer stalls, or the stream
 * refuses publishes. Afterwards, with every sensor gone, `replay` reads the records back from JetStream: every
 * match `analyze` finds must be stored exactly once (the stream keeps one per signature, stage and target
 * stream), with the same target message and latency.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "./support/nats_server.ts";
import {
  analyzeCaptures,
  type Analyzed,
  compareStored,
  killAll,
  matchKey,
  replayRecords,
  ROOT,
  SensorProcess,
  sleep,
  writeSensorConfig,
} from "./support/sensor_process.ts";
import { DEFAULT_MAX_MSG_SIZE } from "../bus/stream_setup.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const E2E = `${ROOT}fixtures/e2e/`;
const CONFIG = `${E2E}config.yaml`;
const NODES = ["node-a", "node-b", "node-c"] as const;
type Node = typeof NODES[number];
const capture = (node: string) => `${E2E}${node}.jsonl`;

let truthCache: Analyzed | undefined;
/** analyze on the same captures (computed once per file). */
async function groundTruth(): Promise<Analyzed> {
  truthCache ??= await analyzeCaptures(CONFIG, NODES.map(capture));
  ok(truthCache.signatures.length >= 8 && truthCache.matches.length >= 16, "analyze finds too little");
  return truthCache;
}

/** One nats-server and the sensors of a test; every process is stopped by {@link withCluster}. */
class Cluster {
  readonly nats: NatsServer;
  readonly dir: string;
  readonly configs = new Map<Node, string>();
  /** The current process of each node. */
  readonly sensors = new Map<Node, SensorProcess>();
  /** Every process ever started (killed ones included), for the cleanup. */
  readonly all: SensorProcess[] = [];

  constructor(nats: NatsServer, dir: string) {
    this.nats = nats;
    this.dir = dir;
  }

  sensor(node: Node): SensorProcess {
    const s = this.sensors.get(node);
    if (!s) throw new Error(`${node} not started`);
    return s;
  }

  async start(node: Node, speed: number): Promise<SensorProcess> {
    let config = this.configs.get(node);
    if (config === undefined) {
      config = await writeSensorConfig({ base: CONFIG, dir: this.dir, node, natsUrl: this.nats.url });
      this.configs.set(node, config);
    }
    const s = await SensorProcess.start({ node, config, capture: capture(node), speed });
    this.all.push(s);
    this.sensors.set(node, s);
    return s;
  }

  /** Starts the nodes concurrently (each at its speed). */
  async startAll(speeds: Record<Node, number>): Promise<void> {
    const r = await Promise.allSettled(NODES.map((n) => this.start(n, speeds[n])));
    for (const x of r) if (x.status === "rejected") throw x.reason;
  }

  /** Waits for every current sensor to finish its capture, then SIGTERMs each: all must exit 0. */
  async finishAndStop(): Promise<void> {
    await Promise.all([...this.sensors.values()].map((s) => s.waitReplayed()));
    for (const s of this.sensors.values()) {
      equal((await s.stop()).code, 0, `${s.node} must exit 0 on SIGTERM\n${s.stderr}`);
    }
  }

  /** The records in JetStream, read by `replay` once the sensors have left. */
  stored(): Promise<Analyzed> {
    return replayRecords(this.configs.get("node-a")!);
  }
}

async function withCluster(fn: (c: Cluster) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-e2e-faults-" });
  let c: Cluster | undefined;
  try {
    c = new Cluster(await NatsServer.start(), dir);
    await fn(c);
  } catch (e) {
    const log = c ? (await c.nats.log()).split("\n").slice(-30).join("\n") : "";
    throw new Error(`${(e as Error).message}\n--- nats-server log (tail) ---\n${log}`, { cause: e });
  } finally {
    if (c) {
      await killAll(c.all);
      await c.nats.stop();
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Log messages of a process (for "it said so" assertions). */
function said(s: SensorProcess, msg: string): boolean {
  return s.logs().some((l) => l.msg === msg);
}

/**
 * A stream message size limit that refuses every signature and takes every match record: signatures (binary,
 * ~800 bytes) are larger than match records (JSON, ~500 bytes); the stream counts the headers too.
 */
function sizeBetween(truth: Analyzed): number {
  const header = (id: string) => `NATS/1.0\r\nNats-Msg-Id: ${id}\r\n\r\n`.length;
  // On the wire a match record has no target envelope (bus/jetstream.ts keeps it local).
  const wire = (m: Analyzed["matches"][number]) => JSON.stringify({ ...m, target_envelope_b64: undefined });
  const matchMax = Math.max(...truth.matches.map((m) => wire(m).length + header(matchKey(m))));
  const sigMin = Math.min(...truth.signatures.map((s) => s.bytes + header(s.signature_id)));
  ok(
    matchMax + 20 < sigMin,
    `no size refuses signatures only: match records up to ${matchMax}, signatures ${sigMin}`,
  );
  return Math.floor((matchMax + sigMin) / 2);
}

const SIG = { kind: "signature" };
const MATCH = { kind: "match" };

natsTest(
  "fault: a target sensor SIGKILLed mid-run and restarted recovers the signatures from JetStream; every match stored once",
  async () => {
    const truth = await groundTruth();
    const relay = truth.matches.filter((m) => m.stage === "relay").length;
    await withCluster(async (c) => {
      await c.startAll({ "node-a": 2, "node-b": 2, "node-c": 2 });
      const first = c.sensor("node-b");
      await first.waitMetric("fsmpx_bus_published_total", MATCH, (v) => v >= 2);
      const killed = await first.kill();
      equal(killed.signal, "SIGKILL");
      ok(
        !said(first, "capture replayed; serving metrics until stopped"),
        "node-b was killed after its capture ended",
      );

      // Restarted after the source has published most of its signatures: they must come from the stream.
      await c.sensor("node-a").waitMetric(
        "fsmpx_bus_published_total",
        SIG,
        (v) => v >= truth.signatures.length - 2,
      );
      const second = await c.start("node-b", 4);
      await second.waitReplayed();
      equal(
        await second.metric("signatures_matched_total", { stage: "relay" }),
        relay,
        "the restarted node-b matches every relay signature, those published before it started included",
      );
      await c.finishAndStop();
      deepEqual(compareStored(truth, await c.stored()), []);
    });
  },
);

natsTest(
  "fault: the source sensor SIGKILLed mid-run and restarted republishes its signatures (deduplicated); every match stored once",
  async () => {
    const truth = await groundTruth();
    await withCluster(async (c) => {
      await c.startAll({ "node-a": 2, "node-b": 2, "node-c": 2 });
      const first = c.sensor("node-a");
      await first.waitMetric("fsmpx_bus_published_total", SIG, (v) => v >= 4);
      equal((await first.kill()).signal, "SIGKILL");
      ok(
        !said(first, "capture replayed; serving metrics until stopped"),
        "node-a was killed after its capture ended",
      );
      // The targets finish their captures before the restarted source is through: its last signatures reach
      // nodes whose target streams have ended.
      await c.sensor("node-b").waitReplayed();
      await c.sensor("node-c").waitReplayed();
      const second = await c.start("node-a", 2);
      await second.waitReplayed();
      equal(await second.metric("signatures_detected_total"), truth.signatures.length);
      await c.finishAndStop();
      deepEqual(compareStored(truth, await c.stored()), []);
    });
  },
);

natsTest(
  "fault: nats-server restarted mid-run (same store): outboxes hold, consumers resume; every match stored once",
  async () => {
    const truth = await groundTruth();
    await withCluster(async (c) => {
      await c.startAll({ "node-a": 2, "node-b": 2, "node-c": 2 });
      await c.sensor("node-a").waitMetric("fsmpx_bus_published_total", SIG, (v) => v >= 3);
      await c.nats.stopProcess();
      // Long enough for signatures and matches to queue in the outboxes.
      await sleep(2500);
      await c.nats.startProcess();
      await c.finishAndStop();
      for (const s of c.sensors.values()) {
        ok(
          said(s, "NATS connection lost; publishing into the outbox until it is back"),
          `${s.node} saw no outage`,
        );
        ok(said(s, "NATS connection back; publishing the outbox"), `${s.node} did not reconnect`);
      }
      // The source went on detecting during the outage: its outbox held signatures until the server was back.
      const back = c.sensor("node-a").logs().find((l) =>
        l.msg === "NATS connection back; publishing the outbox"
      );
      ok(Number(back?.["depth"]) > 0, `node-a held nothing in its outbox: ${JSON.stringify(back)}`);
      deepEqual(compareStored(truth, await c.stored()), []);
    });
  },
);

natsTest(
  "fault: slow consumer (source at 8x, targets at 2x, one target SIGSTOPped for 4 s); every match stored once",
  async () => {
    const truth = await groundTruth();
    await withCluster(async (c) => {
      await c.startAll({ "node-a": 8, "node-b": 2, "node-c": 2 });
      const asr = c.sensor("node-c");
      await asr.waitMetric("fsmpx_bus_published_total", MATCH, (v) => v >= 1);
      asr.signal("SIGSTOP");
      try {
        await sleep(4000);
      } finally {
        asr.signal("SIGCONT");
      }
      await c.finishAndStop();
      deepEqual(compareStored(truth, await c.stored()), []);
    });
  },
);

natsTest(
  "fault: publishes refused by the stream (max_msg_size lowered mid-run) are counted and logged; the sensor runs on and exits 0",
  async () => {
    const truth = await groundTruth();
    await withCluster(async (c) => {
      await c.startAll({ "node-a": 2, "node-b": 2, "node-c": 2 });
      const source = c.sensor("node-a");
      await source.waitMetric("fsmpx_bus_published_total", SIG, (v) => v >= 3);
      const limit = sizeBetween(truth);
      const nc = await connect({ servers: c.nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info("FSMPX");
        await jsm.streams.update("FSMPX", { ...info.config, max_msg_size: limit });
        try {
          await source.waitMetric("fsmpx_bus_publish_failed_total", SIG, (v) => v >= 2);
        } finally {
          await jsm.streams.update("FSMPX", { ...info.config, max_msg_size: DEFAULT_MAX_MSG_SIZE });
        }
      } finally {
        await nc.close();
      }
      await Promise.all([...c.sensors.values()].map((s) => s.waitReplayed()));
      ok(source.exitStatus === null, "node-a keeps running after refused publishes");
      const published = await source.metric("fsmpx_bus_published_total", SIG);
      const refused = await source.metric("fsmpx_bus_publish_failed_total", {
        kind: "signature",
        reason: "too_large",
      });
      ok(refused >= 2, `refused signatures counted: ${refused}`);
      equal(
        published + refused,
        truth.signatures.length,
        "every signature either stored or counted as refused",
      );
      for (const s of c.sensors.values()) {
        equal(
          await s.metric("fsmpx_bus_publish_failed_total", MATCH),
          0,
          `${s.node}: no match record refused`,
        );
      }
      ok(
        source.logs().some((l) =>
          l.msg === "publish refused; message dropped" && l["reason"] === "too_large"
        ),
        "the refusal is logged",
      );
      await c.finishAndStop();

      // What was stored is exactly analyze's records of the signatures that got through, each once.
      const stored = await c.stored();
      equal(stored.signatures.length, published);
      const through = new Set(stored.signatures.map((s) => s.signature_id));
      const expected: Analyzed = {
        signatures: truth.signatures.filter((s) => through.has(s.signature_id)),
        matches: truth.matches.filter((m) => through.has(m.signature_id)),
      };
      equal(expected.signatures.length, published, "stored signatures are analyze's");
      ok(expected.matches.length < truth.matches.length, "refused signatures cost their matches");
      deepEqual(compareStored(expected, stored), []);
    });
  },
);
