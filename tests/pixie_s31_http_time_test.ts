/**
 * Through a real gRPC server speaking Pixie's protocol (a fake standalone PEM), rows as Stirling writes
 * http_events: `time_` the response's, `latency` the time from the request to it. The script fsm-px composes keeps
 * `latency` beside the request body (columns.latency, filled in for http_events request bodies); `record` writes
 * it, and `analyze` of the recording measures the requests' latencies: those of the same traffic with the
 * requests' own times.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { FakeVizier } from "./support/fake_vizier.ts";
import { captureToStored } from "./support/capture_vizier.ts";
import { answeredLater } from "./support/answered_later.ts";
import { captureRows, deno, freePort, PORTS, writeConfig } from "./support/standalone_pem.ts";
import { encodeCaptureHeader, encodeCaptureLine, readCapture } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";

const td = new TextDecoder();

/** analyze's matches of `capture` under `config`: latency by stage and signature. */
async function latencies(config: string, capture: string, out: string): Promise<Map<string, number>> {
  const an = await deno(["analyze", "--config", config, "--out", out, capture]).output();
  equal(an.code, 0, td.decode(an.stderr));
  const recs = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
  return new Map(
    recs.filter((x) => x.kind === "match").map((
      m,
    ) => [`${m.stage} ${m.signature_id}`, m.latency_s as number]),
  );
}

Deno.test("s31 standalone PEM: http_events rows stamped with their responses measure their requests' latencies", async () => {
  const requests = await captureRows();
  const answered = answeredLater(requests, 31);
  const fake = await FakeVizier.start({
    standalone: true,
    pems: [{ node: "node-x" }],
    broker: { batchRows: 64 },
  });
  fake.pems[0]!.append("http_events", captureToStored(answered, (q) => PORTS[q]!));
  const dir = await Deno.makeTempDir();
  try {
    const config = await writeConfig(dir, fake.address, freePort(), answered[0]!.time - 1_000_000_000n);
    const rec = await deno([
      "record",
      "--config",
      config,
      "--out",
      `${dir}/rec.jsonl`,
      "--max-rows",
      String(answered.length),
      "--duration",
      "60s",
    ]).output();
    equal(rec.code, 0, td.decode(rec.stderr));
    const recorded = await readCapture(`${dir}/rec.jsonl`);
    equal(recorded.rows.length, answered.length);
    // The composed script kept Pixie's latency beside the body: every row has it.
    const lead = (r: Row) => BigInt(r.columns["latency"] as number | bigint);
    ok(recorded.rows.every((r) => lead(r) >= 5_000_000n), "every recorded row carries its latency");

    // The recording with its requests' times instead, as a capture of its own (the same pods, streams, bodies).
    const asRequests = recorded.rows.map((r): Row => {
      const { latency: _, ...columns } = r.columns;
      const time = r.time - lead(r);
      return { ...r, time, columns: { ...columns, time_: time } };
    }).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    const reqFile = `${dir}/requests.jsonl`;
    await Deno.writeTextFile(
      reqFile,
      [encodeCaptureHeader("node-x"), ...asRequests.map((r) => encodeCaptureLine(r))].join("\n") + "\n",
    );
    const want = await latencies(config, reqFile, `${dir}/a.jsonl`);
    const got = await latencies(config, `${dir}/rec.jsonl`, `${dir}/b.jsonl`);
    ok(want.size >= 10, `${want.size} matches`);
    deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, l] of got) {
      ok(Math.abs(l - want.get(k)!) < 1e-9, `${k}: ${l} s, the request's ${want.get(k)} s`);
    }
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
