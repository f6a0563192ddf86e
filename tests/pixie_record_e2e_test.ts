/**
 * End to end through a real gRPC server speaking Pixie's protocol, as a standalone PEM (`pixie.direct_addr`): the
 * fake PEM holds the rows of committed captures in its `http_events` table and runs the script fsm-px composes
 * (no node scope, pods labelled by process, filters on ports: a standalone PEM has no Kubernetes metadata) while
 * dropping the stream now and then; `record` writes every row exactly once; `run` against the same server turns
 * ready (the PEM's HealthCheck sends no status) and produces the same matches as `analyze` on that capture
 * (compared through a real scrape of /metrics).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { FakeVizier } from "./support/fake_vizier.ts";
import { captureToStored } from "./support/capture_vizier.ts";
import { readCapture } from "../pixie/capture.ts";
import { captureRows, deno, freePort, MAIN, PORTS, writeConfig } from "./support/standalone_pem.ts";
import type { Row } from "../pixie/row.ts";

function matchedCounts(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (
    const m of metricsText.matchAll(
      /^signatures_matched_total\{measurement="([^"]+)",stage="([^"]+)"\} (\d+)/gm,
    )
  ) {
    out[`${m[1]}/${m[2]}`] = Number(m[3]);
  }
  return out;
}

Deno.test("standalone PEM: record writes every row once across drops; run turns ready and matches analyze", async () => {
  const rows = await captureRows();
  const fake = await FakeVizier.start({
    standalone: true,
    pems: [{ node: "node-x" }],
    broker: { batchRows: 16 },
    chaos: { seed: 11, dropEvery: [10, 40], maxDrops: 4 },
  });
  fake.pems[0]!.append("http_events", captureToStored(rows, (q) => PORTS[q]!));
  const dir = await Deno.makeTempDir();
  try {
    const config = await writeConfig(dir, fake.address, freePort(), rows[0]!.time);

    // record: every served row lands in the capture, stream by stream in capture order.
    const rec = await deno([
      "record",
      "--config",
      config,
      "--out",
      `${dir}/rec.jsonl`,
      "--max-rows",
      String(rows.length),
      "--duration",
      "60s",
    ]).output();
    const err = new TextDecoder().decode(rec.stderr);
    equal(rec.code, 0, err);
    ok(err.includes("captures contain audio"), "record warns that captures contain audio");
    const recorded = await readCapture(`${dir}/rec.jsonl`);
    equal(recorded.node, "node-x");
    deepEqual(recorded.problems, []);
    equal(recorded.rows.length, rows.length);
    const key = (r: Row) =>
      `${r.query} ${r.time} ${new TextDecoder().decode(r.columns["req_body"] as Uint8Array).length}`;
    deepEqual(recorded.rows.map(key).sort(), rows.map(key).sort());
    ok(fake.stats.drops > 0, "the stream was dropped while recording");
    ok(
      recorded.rows.every((r) =>
        /^\d+:\/app\//.test(new TextDecoder().decode(r.columns["pod"] as Uint8Array))
      ),
      "pods labelled by process",
    );

    // analyze on the recording.
    const an = await deno(["analyze", "--config", config, "--format", "json", `${dir}/rec.jsonl`]).output();
    equal(an.code, 0, new TextDecoder().decode(an.stderr));
    const summary = JSON.parse(new TextDecoder().decode(an.stdout)) as {
      measurements: { measurement: string; stages: { stage: string; matched_signatures: number }[] }[];
    };
    const expected: Record<string, number> = {};
    for (const m of summary.measurements) {
      for (const s of m.stages) expected[`${m.measurement}/${s.stage}`] = s.matched_signatures;
    }
    ok(Object.values(expected).every((n) => n > 0), JSON.stringify(expected));

    // run against the live stream: scrape until the matched counters reach analyze's, then SIGTERM.
    const metricsPort = Number(/listen: 127\.0\.0\.1:(\d+)/.exec(await Deno.readTextFile(config))![1]);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "run", "--config", config],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let got: Record<string, number> = {};
    let ready = false;
    let text = "";
    const started = Date.now();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
        ready ||= r.status === 200;
        await r.body?.cancel();
        text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        got = matchedCounts(text);
        if (Object.keys(expected).every((k) => (got[k] ?? 0) >= expected[k]!)) break;
      } catch {
        // not listening yet
      }
    }
    child.kill("SIGTERM");
    const status = await child.status;
    const runErr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    equal(status.code, 0, runErr);
    ok(ready, "readyz turned 200 once the standalone PEM answered its HealthCheck");
    deepEqual(got, expected);
    // The query stream's answers (rows and keep-alives) are timed for the silent-stream alert and /readyz.
    const answered = Number(/^fsmpx_pixie_last_response_timestamp_seconds (\S+)$/m.exec(text)?.[1]) * 1000;
    ok(answered >= started && answered <= Date.now(), `last response ${answered}, started ${started}`);
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
