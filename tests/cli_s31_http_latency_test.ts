/**
 * Pixie's http_events row carries the response's time as `time_` (Stirling's socket_trace_connector.cc takes
 * `resp_message.timestamp_ns`), and `latency` = response − request, each at its message's last byte. The audio
 * of a request body passed the tap at the request's time: fsm-px takes `time_ − latency` for it (columns.latency,
 * filled in for http_events request bodies), as its packet capture takes the packet that completed the request.
 * Before, a service that answers after working on the chunk (a synchronous ASR endpoint) had its work counted as
 * the delay of the audio reaching it.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { analyzeCaptures, ROOT } from "./support/sensor_process.ts";
import { loadConfig } from "../config/load.ts";
import { MAX_PAYLOAD_LEAD_NS, payloadTime, type TapRule } from "../actors/tap_message.ts";
import type { Row } from "../pixie/row.ts";
import { answeredLater } from "./support/answered_later.ts";
import { rawFormat } from "./support/formats.ts";
import { encodeCaptureHeader, encodeCaptureLine, readCapture } from "../pixie/capture.ts";

/** The matches of `analyze` on `files`, by stage and signature, with their latency. */
async function matches(files: string[]): Promise<Map<string, number>> {
  const { matches } = await analyzeCaptures(join(ROOT, "fixtures/demo/config.yaml"), files);
  return new Map(matches.map((m) => [`${m.stage} ${m.signature_id}`, m.latency_s]));
}

Deno.test("s31 http_events: rows with the response's time_ and latency measure the requests' latencies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const demo = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
    const want = await matches(demo);
    ok(want.size >= 50, `${want.size} matches`);
    const answered: string[] = [];
    for (const [i, f] of demo.entries()) {
      const to = join(dir, `answered-${i}.jsonl`);
      const cap = await readCapture(f);
      const lines = answeredLater(cap.rows, 7 + i).map((r) => encodeCaptureLine(r));
      await Deno.writeTextFile(to, [encodeCaptureHeader(cap.node!), ...lines].join("\n") + "\n");
      answered.push(to);
    }
    const got = await matches(answered);
    deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, l] of got) {
      ok(Math.abs(l - want.get(k)!) < 1e-9, `${k}: ${l} s, from the requests ${want.get(k)} s`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const rule = (latency?: string): TapRule => ({
  columns: { time: "time_", pod: "pod", payload: "req_body", ...(latency ? { latency } : {}) },
  audio: rawFormat(),
  stream_key: ["pod"],
});
const row = (latency: unknown): Row => ({
  query: "m/source",
  node: "n",
  time: 1_000_000_000_000n,
  columns: { time_: 1_000_000_000_000n, latency: latency as bigint },
});

Deno.test("s31 payload time: time_ less a positive latency up to an hour; otherwise time_", () => {
  equal(payloadTime(rule("latency"), row(250_000_000n)), 999_750_000_000n);
  equal(payloadTime(rule("latency"), row(250_000_000)), 999_750_000_000n, "a capture's number");
  equal(payloadTime(rule(), row(250_000_000n)), 1_000_000_000_000n, "no column named");
  equal(payloadTime(rule("latency"), row(0n)), 1_000_000_000_000n, "Pixie's 0: a timestamp missing");
  equal(payloadTime(rule("latency"), row(-5n)), 1_000_000_000_000n, "negative: a mismatched pair");
  equal(payloadTime(rule("latency"), row(MAX_PAYLOAD_LEAD_NS + 1n)), 1_000_000_000_000n, "a long poll");
  equal(payloadTime(rule("latency"), row(undefined)), 1_000_000_000_000n, "an older capture without it");
});

const CONFIG = (filter: string, columns = "") => `
node: n
measurements:
  - name: m
    signature_rules:
      stream_filter: |
${filter.split("\n").map((l) => "        " + l).join("\n")}
${columns ? `      columns: ${columns}` : ""}
`;

Deno.test("s31 config: columns.latency is filled in for http_events request bodies only, where the filter keeps it", async () => {
  const dir = await Deno.makeTempDir();
  const load = async (text: string) => {
    const f = join(dir, "t.yaml");
    await Deno.writeTextFile(f, text);
    return (await loadConfig(f, {})).config.measurements[0]!.signature_rules.columns;
  };
  const http = "df = px.DataFrame(table='http_events', start_time='-30s')";
  equal((await load(CONFIG(http))).latency, "latency");
  equal((await load(CONFIG(http, "{ payload: resp_body }"))).latency, undefined, "the response's body");
  equal(
    (await load(CONFIG(`${http}\ndf = df[['time_', 'upid', 'req_body']]`))).latency,
    undefined,
    "left out",
  );
  equal(
    (await load(CONFIG("df = px.DataFrame(table='nats_events.beta', start_time='-30s')"))).latency,
    undefined,
  );
  equal((await load(CONFIG(http, "{ latency: req_body_size }"))).latency, "req_body_size", "as written");
  await Deno.remove(dir, { recursive: true });
});
