/**
 * `discover` against a standalone PEM (`pixie.direct_addr`): the PEM has no Kubernetes metadata, so its
 * `df.ctx['node']` is '' and a node scope keeps no row. discover composed its table queries with the node scope
 * every other command drops in this mode, and read 0 rows ("no rows: nothing was captured") from a PEM full of
 * audio. Run through the fake Vizier's standalone model, which runs the composed script (filters evaluated, no
 * Kubernetes metadata), with the demo's traffic of three processes on three ports in its http_events table.
 */
import assert from "node:assert/strict";
import { FakeVizier } from "./support/fake_vizier.ts";
import { captureToStored } from "./support/capture_vizier.ts";
import { runMain } from "./support/sensor_process.ts";
import { readCapture } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PORTS: Record<string, bigint> = {
  "call_audio/source": 8001n,
  "call_audio/relay": 8002n,
  "call_audio/asr": 8003n,
};

Deno.test("discover: a standalone PEM's tables are read without a node scope, and the proposal filters on the port", async () => {
  const rows: Row[] = [];
  for (const n of ["node-a", "node-b", "node-c"]) {
    rows.push(...(await readCapture(`${ROOT}fixtures/demo/${n}.jsonl`)).rows.slice(0, 150));
  }
  // The PEM's rows are recent: the discovery queries start 30 s back.
  const first = rows.reduce((t, r) => (r.time < t ? r.time : t), rows[0]!.time);
  const shift = BigInt(Date.now() - 10_000) * 1_000_000n - first;
  const recent = rows.map((r) => ({
    ...r,
    time: r.time + shift,
    columns: { ...r.columns, time_: r.time + shift },
  }));
  const fake = await FakeVizier.start({ standalone: true, pems: [{ node: "node-x" }] });
  fake.pems[0]!.append("http_events", captureToStored(recent, (q) => PORTS[q]!));
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-discover-pem-" });
  try {
    const src = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
    const cfg = `${dir}/pem.yaml`;
    await Deno.writeTextFile(
      cfg,
      src.replace(/^node:.*$/m, "node: node-x").replace(/^metrics:[\s\S]*?(?=^\S)/m, "")
        .replace(/px\.contains\(df\.ctx\['pod'\], '[^']*'\)/g, "df.local_port > 0") +
        `pixie:\n  direct_addr: ${fake.address}\n`,
    );
    const r = await runMain(["discover", "--config", cfg, "--duration", "3s", "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as {
      tables: { table: string; rows: number }[];
      streams: { pod: string; snippet?: string }[];
    };
    const script = fake.executeRequests.find((q) => q.queryStr.includes("'http_events'"))!.queryStr;
    assert.doesNotMatch(script, /ctx\['node'\]/, script);
    assert.equal(
      d.tables.find((t) => t.table === "http_events")?.rows,
      rows.length,
      JSON.stringify(d.tables),
    );
    // One group per process, each proposed with what a standalone PEM can filter on: its port.
    for (const [word, port] of [["telephony", 8001n], ["media-relay", 8002n], ["asr", 8003n]] as const) {
      const s = d.streams.find((x) => x.pod.endsWith(`:/app/${word}-0`));
      assert.ok(s?.snippet, `${word} in ${d.streams.map((x) => x.pod)}`);
      assert.match(s.snippet, new RegExp(`df = df\\[df\\.local_port == ${port}\\]`));
      assert.doesNotMatch(s.snippet, /ctx\[/);
    }
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
