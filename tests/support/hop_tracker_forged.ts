/**
 * Run with `--v8-flags=--expose-gc`: the heap a {@link HopTracker} keeps after `S` signatures' worth of forged match
 * records from the bus (64 per signature, the per-signature bound, each on its own target stream of `LEN`
 * characters), decoded as the sensor's match feed decodes them (bus/replay_reader.ts `toRecord`), then whether a
 * node's own relay and ASR matches still get their hops. Prints `{"heapMB":…,"size":…,"hop":…}`.
 * @module
 */
import { HopTracker, MAX_MATCHES_PER_SIGNATURE, stagePaths } from "../../report/hops.ts";
import type { MatchRecord } from "../../report/records.ts";
import { toRecord } from "../../bus/replay_reader.ts";

const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const S = Number(Deno.args[0] ?? 8000);
const LEN = Number(Deno.args[1] ?? 200);
const paths = stagePaths({
  measurements: [{ name: "m", match_rules: [{ stage: "relay" }, { stage: "asr", after: "relay" }] }],
});
const T0 = 1_763_910_000_000_000_000n;
const enc = new TextEncoder();
const tap = (node: string, stream: string, ns: bigint) => ({
  node,
  pod: "voice/p-0",
  stream,
  time_ns: ns.toString(),
  offset_ms: 0,
});
const tracker = new HopTracker(paths);
gc();
const before = Deno.memoryUsage().heapUsed;
const pad = "x".repeat(LEN);
for (let s = 0; s < S; s++) {
  const id = (0x20000000 + s).toString(16).padStart(16, "0");
  for (let j = 0; j < MAX_MATCHES_PER_SIGNATURE; j++) {
    const rec = {
      kind: "match",
      measurement: "m",
      stage: "relay",
      signature_id: id,
      ids: { interval_id: `forged-${s}-${j}` },
      source: tap("node-x", "src", T0),
      target: tap(`node-${j}`, `${pad}${s}|${j}`, T0 + 100_000_000n),
      latency_s: 0.1,
      ber: 0,
    };
    const r = toRecord({ subject: "fsmpx.match.m.relay", data: enc.encode(JSON.stringify(rec)) });
    if (typeof r === "string" || r.kind !== "match") throw new Error(`not a record: ${String(r)}`);
    tracker.observe(r);
  }
}
gc();
const heapMB = Math.round((Deno.memoryUsage().heapUsed - before) / 1e6);
// The node's own journey after the flood: the ASR's hop is measured from the relay's match.
const own = {};
const mine = (stage: string, ns: bigint): MatchRecord => ({
  kind: "match",
  measurement: "m",
  stage,
  signature_id: "00000000000000ff",
  ids: { interval_id: "own" },
  source: tap("node-a", "call", T0),
  target: tap("node-a", `${stage}-call`, ns),
  latency_s: Number(ns - T0) / 1e9,
  ber: 0,
});
tracker.observe(mine("relay", T0 + 150_000_000n), own);
const { hop } = tracker.observe(mine("asr", T0 + 950_000_000n), own);
console.log(JSON.stringify({ heapMB, size: tracker.size, hop }));
