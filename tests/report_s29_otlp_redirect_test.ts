/**
 * An OTLP collector that answers with a redirect: fetch follows it by default and drops only `Authorization` on
 * the way to another origin, so the other `otlp.headers` (an `X-Api-Key`, a tenant token) went to whatever host
 * the answer named, with the spans. Redirects are not followed: the spans count as failed, and nothing reaches the
 * host named.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { OtlpExporter } from "../report/otlp.ts";
import type { SignatureRecord } from "../report/records.ts";
import { setLogSink } from "../util/log.ts";

const KEY = "otlp-key-3f9a1c2e7b6d4e0f";

function signature(i: number): SignatureRecord {
  return {
    kind: "signature",
    measurement: "m",
    signature_id: i.toString(16).padStart(16, "0"),
    node: "node-a",
    pod: "voice/p-0",
    stream: "call",
    time_ns: (1_763_910_000_000_000_000n + BigInt(i)).toString(),
    offset_ms: 0,
    ids: { interval_id: `i-${i}` },
    bytes: 700,
  };
}

Deno.test("OTLP: a collector answering with a redirect to another host gets no span and no header sent there", async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  // The host the redirect names: it must never be asked.
  const elsewhere: { method: string; headers: [string, string][] }[] = [];
  const other = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    elsewhere.push({ method: req.method, headers: [...req.headers] });
    await req.arrayBuffer();
    return new Response(null, { status: 200 });
  });
  let asked = 0;
  const collector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    asked++;
    await req.arrayBuffer();
    const status = [307, 308, 302][asked % 3]!;
    return new Response(null, {
      status,
      headers: { location: `http://localhost:${other.addr.port}/v1/traces` },
    });
  });
  try {
    const exp = new OtlpExporter({
      endpoint: `http://127.0.0.1:${collector.addr.port}`,
      headers: { "X-Api-Key": KEY, "X-Scope-OrgID": "tenant-a" },
      batch: 2,
      flushMs: 10,
    });
    for (let i = 0; i < 6; i++) exp.signature(signature(i));
    await exp.close();
    // Before the fix: the three requests were followed to the other host with X-Api-Key (sent 6, failed 0).
    deepEqual(elsewhere, [], "nothing reached the host the redirect named");
    equal(asked, 3);
    deepEqual(exp.stats(), { sent: 0, failed: 6, dropped: 0, requests: 3 });
    ok(lines.some((l) => l.includes("redirect, not followed")), lines.join("\n"));
    ok(!lines.some((l) => l.includes(KEY)), "the key is in no log line");
  } finally {
    setLogSink(prev);
    await collector.shutdown();
    await other.shutdown();
  }
});
