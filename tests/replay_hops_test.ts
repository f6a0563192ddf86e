/**
 * `replay` with hops, from a real nats-server where three real sensor processes (`main.ts run --capture`, one per
 * node of the demo captures, at --speed 10) published what they found: every match record `replay --format
 * records` prints carries the same hop (relay → asr, as the demo config's `after: relay` states) as `analyze` finds
 * on the same captures, and `replay`'s summary (`--format summary`) and table have the same per-stage, per-hop,
 * per-interval and per-call figures as `analyze`'s.
 *
 * analyze's hops are those of its summary: computed over all its records (report/hops.ts `addHops`). The records
 * `analyze --out` writes carry a hop only when the previous stage's match was known as the record left, which
 * depends on the order in which the stages' actors finish (it differs from run to run), so they are not the
 * reference.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { NatsServer } from "./support/nats_server.ts";
import {
  analyzeCaptures,
  compareStored,
  killAll,
  matchKey,
  parseRecords,
  ROOT,
  runMain,
  SensorProcess,
  writeSensorConfig,
} from "./support/sensor_process.ts";
import type { MatchRecord } from "../report/records.ts";
import { addHops, stagePaths } from "../report/hops.ts";
import { loadConfig } from "../config/load.ts";
import { gatedTest } from "./support/tools.ts";

const test = await gatedTest(import.meta.url, ["nats-server"]);

const DEMO = `${ROOT}fixtures/demo/`;
const CONFIG = `${DEMO}config.yaml`;
const NODES = ["node-a", "node-b", "node-c"] as const;
const capture = (node: string) => `${DEMO}${node}.jsonl`;

/** The summary table of `analyze` or `replay` from its first "measurement" line on (analyze adds a read line). */
function summaryTable(stdout: string): string {
  const at = stdout.indexOf("measurement ");
  ok(at >= 0, `a summary table in:\n${stdout}`);
  return stdout.slice(at).trimEnd();
}

test({
  name:
    "replay from nats-server after 3 sensor processes (demo captures, 10x): hops and table equal analyze's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const analyzed = await analyzeCaptures(CONFIG, NODES.map(capture));
    const paths = stagePaths((await loadConfig(CONFIG)).config);
    deepEqual(paths["call_audio"], { relay: "source", asr: "relay" }, "the demo config states relay → asr");
    const truth = { signatures: analyzed.signatures, matches: addHops(analyzed.matches, paths) };
    const asr = truth.matches.filter((m) => m.stage === "asr");
    ok(asr.length >= 20, `analyze finds asr matches on the demo captures: ${asr.length}`);
    ok(
      asr.every((m) => m.hop?.from_stage === "relay"),
      `analyze's asr hops start at the relay: ${asr.map((m) => JSON.stringify(m.hop))}`,
    );
    const analyzeTable = await runMain(["analyze", "--config", CONFIG, ...NODES.map(capture)]);
    equal(analyzeTable.code, 0, analyzeTable.stderr);
    const analyzed2 = await runMain([
      "analyze",
      "--config",
      CONFIG,
      "--format",
      "json",
      ...NODES.map(capture),
    ]);
    equal(analyzed2.code, 0, analyzed2.stderr);
    const analyzeJson = JSON.parse(analyzed2.stdout) as { measurements: unknown };

    const dir = await Deno.makeTempDir({ prefix: "fsmpx-replay-hops-" });
    const sensors: SensorProcess[] = [];
    let nats: NatsServer | undefined;
    try {
      nats = await NatsServer.start();
      const configs = new Map<string, string>();
      for (const node of NODES) {
        configs.set(node, await writeSensorConfig({ base: CONFIG, dir, node, natsUrl: nats.url }));
      }
      const started = await Promise.allSettled(
        NODES.map((node) =>
          SensorProcess.start({ node, config: configs.get(node)!, capture: capture(node), speed: 10 })
        ),
      );
      for (const s of started) if (s.status === "fulfilled") sensors.push(s.value);
      for (const s of started) if (s.status === "rejected") throw s.reason;
      await Promise.all(sensors.map((s) => s.waitReplayed(90_000)));
      for (const s of sensors) equal((await s.stop()).code, 0, `${s.node} exit code\n${s.stderr}`);

      // The records (JSON Lines), hops recomputed over the whole range.
      const recs = await runMain([
        "replay",
        "--config",
        configs.get("node-a")!,
        "--since",
        "1h",
        "--format",
        "records",
      ]);
      equal(recs.code, 0, recs.stderr);
      // `--format json` has always printed the records (a contract scripts depend on): the same lines.
      const asJson = await runMain([
        "replay",
        "--config",
        configs.get("node-a")!,
        "--since",
        "1h",
        "--format",
        "json",
      ]);
      equal(asJson.code, 0, asJson.stderr);
      equal(asJson.stdout, recs.stdout);
      const parsed = parseRecords(recs.stdout);
      const stored = {
        signatures: parsed.filter((r) => r.kind === "signature"),
        matches: parsed.filter((r): r is MatchRecord => r.kind === "match"),
      };
      deepEqual(compareStored(truth, stored), [], "replay's records are analyze's");
      const want = new Map(truth.matches.map((m) => [matchKey(m), m]));
      const hopDiffs: string[] = [];
      for (const m of stored.matches) {
        const w = want.get(matchKey(m))!;
        if (JSON.stringify(m.hop) !== JSON.stringify(w.hop)) {
          hopDiffs.push(`${matchKey(m)}: replay ${JSON.stringify(m.hop)}, analyze ${JSON.stringify(w.hop)}`);
        }
      }
      deepEqual(hopDiffs, [], "every match's hop equals analyze's");
      equal(
        stored.matches.filter((m) => m.hop?.from_stage === "relay").length,
        asr.length,
        "relay → asr hops",
      );

      // The summary: the same measurements object as analyze's, per-hop figures included.
      const json = await runMain([
        "replay",
        "--config",
        configs.get("node-a")!,
        "--since",
        "1h",
        "--format",
        "summary",
      ]);
      equal(json.code, 0, json.stderr);
      deepEqual(
        (JSON.parse(json.stdout) as { measurements: unknown }).measurements,
        analyzeJson.measurements,
        "replay's summary is analyze's",
      );
      ok(json.stdout.includes('"from_stage":"relay"'), "the summary has the relay → asr hop");

      // The table: the same figures per stage, per hop, per interval and per call.
      const table = await runMain(["replay", "--config", configs.get("node-a")!, "--since", "1h"]);
      equal(table.code, 0, table.stderr);
      equal(summaryTable(table.stdout), summaryTable(analyzeTable.stdout));
      ok(/hop from/.test(table.stdout) && /\basr\b.*\brelay\s+\+\d/.test(table.stdout), table.stdout);

      // A measurement name the config does not have reads nothing, and says why (session 30).
      const typo = await runMain([
        "replay",
        "--config",
        configs.get("node-a")!,
        "--since",
        "1h",
        "--measurement",
        "call_audoi",
      ]);
      equal(typo.code, 0, typo.stderr);
      ok(typo.stdout.includes("no signatures and no matches"), typo.stdout);
      ok(
        /"call_audoi", which .* does not name either \(it names call_audio\)/.test(typo.stderr),
        typo.stderr,
      );
    } finally {
      await killAll(sensors);
      await nats?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
