/**
 * The repeat guard across nodes, as deployed: three sensor processes over one nats-server replay the demo's
 * calls and the same calls again 40 s later (a load test replaying one recording). The telephony node's
 * signatures reach the relay's and the ASR's Matchers over JetStream, later than in one process, while the
 * earlier call's twin signatures wait there already: the Matchers must still hold every match until the nearer
 * twin could have come. What the sensors stored in JetStream is what `analyze` finds in one process: one match
 * per signature and stage, at its own call's latency.
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { NatsServer } from "./support/nats_server.ts";
import {
  analyzeCaptures,
  compareStored,
  killAll,
  replayRecords,
  ROOT,
  SensorProcess,
  writeSensorConfig,
} from "./support/sensor_process.ts";
import { isCopyStream, replayedLater } from "./support/replayed_later.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const NODES = ["node-a", "node-b", "node-c"] as const;
const CONFIG = `${ROOT}fixtures/demo/config.yaml`;

natsTest({
  name:
    "3 sensor processes + nats-server: a recording replayed in later calls is stored once per signature and stage",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-s31-repeats-" });
    const sensors: SensorProcess[] = [];
    let nats: NatsServer | undefined;
    try {
      const captures = new Map<string, string>();
      for (const node of NODES) {
        const f = join(dir, `${node}.jsonl`);
        const text = await Deno.readTextFile(`${ROOT}fixtures/demo/${node}.jsonl`);
        await Deno.writeTextFile(f, replayedLater(text, 40_000_000_000n));
        captures.set(node, f);
      }
      const truth = await analyzeCaptures(CONFIG, NODES.map((n) => captures.get(n)!));
      equal(truth.signatures.length, 60);
      equal(truth.matches.length, 120, "analyze: one match per signature at each of two stages");

      nats = await NatsServer.start();
      const configs = new Map<string, string>();
      for (const node of NODES) {
        configs.set(node, await writeSensorConfig({ base: CONFIG, dir, node, natsUrl: nats.url }));
      }
      // 4x real time: 80 s of calls in 20 s; event time runs 4x faster than the bus, so signatures arrive later
      // in event time than in real time.
      const started = await Promise.allSettled(
        NODES.map((node) =>
          SensorProcess.start({ node, config: configs.get(node)!, capture: captures.get(node)!, speed: 4 })
        ),
      );
      for (const s of started) if (s.status === "fulfilled") sensors.push(s.value);
      for (const s of started) if (s.status === "rejected") throw s.reason;
      await Promise.all(sensors.map((s) => s.waitReplayed(90_000)));
      for (const s of sensors) equal((await s.stop()).code, 0, `${s.node} exit code\n${s.stderr}`);

      const stored = await replayRecords(configs.get("node-a")!);
      const slowest = Math.max(...stored.matches.map((m) => m.latency_s));
      ok(slowest < 3, `slowest stored latency ${slowest} s (the calls are 40 s apart)`);
      for (const m of stored.matches) equal(isCopyStream(m.target.stream), isCopyStream(m.source.stream));
      equal(compareStored(truth, stored).join("\n"), "");
    } finally {
      await killAll(sensors);
      await nats?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
