/**
 * The live hop tracker under forged match records on the bus (a peer with a sensor's NATS password chooses their
 * number and size). It was bounded by signatures only (50,000, each up to 64 matches), and kept each record's
 * whole ids: 8,000 signatures' forged records with 200-character stream names held 203 MB (1.27 GB at the bound,
 * for a 768 MiB pod). Now other nodes' matches keep no ids and the tracker forgets its least recently seen
 * signatures beyond ~64 MiB of estimated memory; a node's own journeys still get their hops.
 */
import { deepEqual, equal, ok } from "node:assert/strict";

Deno.test("hop tracker: forged match records from the bus hold a bounded heap, and own hops still resolve", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--v8-flags=--expose-gc",
      new URL("./support/hop_tracker_forged.ts", import.meta.url).pathname,
      "8000",
      "200",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    heapMB: number;
    size: number;
    hop: unknown;
  };
  ok(r.heapMB < 80, `${r.heapMB} MB held after 512,000 forged match records`);
  ok(r.size < 8000, `${r.size} signatures remembered`);
  deepEqual(r.hop, { from_stage: "relay", latency_s: 0.8, from_node: "node-a", from_stream: "relay-call" });
});

Deno.test("hop tracker: the byte bound forgets the least recently seen signatures, never below what it holds", async () => {
  const { HopTracker } = await import("../report/hops.ts");
  const t = new HopTracker({ m: { relay: "source", asr: "relay" } }, { maxBytes: 20_000 });
  const rec = (sig: number, j: number) => ({
    kind: "match" as const,
    measurement: "m",
    stage: "relay",
    signature_id: sig.toString(16).padStart(16, "0"),
    ids: { interval_id: "i" },
    source: { node: "n", pod: "p", stream: "s", time_ns: "1000000000", offset_ms: 0 },
    target: { node: `node-${j}`, pod: "p", stream: "t".repeat(100), time_ns: "1100000000", offset_ms: 0 },
    latency_s: 0.1,
    ber: 0,
  });
  for (let s = 0; s < 200; s++) for (let j = 0; j < 10; j++) t.observe(rec(s, j));
  ok(t.bytes <= 20_000 && t.bytes > 10_000, `${t.bytes} estimated bytes`);
  ok(t.size > 0 && t.size < 200, `${t.size} signatures`);
  // The newest signature is remembered: a repeat of its match is a duplicate.
  deepEqual(t.observe(rec(199, 9)), { resolved: [] });
  // One signature alone over the bound is forgotten whole, and the estimate stays exact.
  const tiny = new HopTracker({}, { maxBytes: 1_000 });
  for (let j = 0; j < 20; j++) tiny.observe(rec(1, j));
  ok(tiny.bytes <= 1_000 && tiny.bytes >= 0, `${tiny.bytes}`);
  for (let s = 0; s < 50; s++) tiny.observe(rec(s, 0));
  ok(tiny.bytes <= 1_000, `${tiny.bytes}`);
  equal(tiny.size >= 1, true);
});
