/**
 * Run with `--v8-flags=--expose-gc`: the heap a {@link HopTracker} keeps per signature after observing a relay
 * and an ASR match of each of `N` signatures as a live exporter hands them (whole records with their level
 * envelopes, dropped by everything else once observed). Prints `{"bytesPerSignature":…,"size":…}`.
 * @module
 */
import { HopTracker, stagePaths } from "../../report/hops.ts";
import { matchRecord } from "../../report/records.ts";
import type { Match } from "../../audio/types.ts";

const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const paths = stagePaths({
  measurements: [{ name: "m", match_rules: [{ stage: "relay" }, { stage: "asr", after: "relay" }] }],
});
const N = Number(Deno.args[0] ?? 20_000);
const T0 = 1_763_910_000_000_000_000n;
// Streams as a live node has them: one string per stream, shared by all its matches.
const streams = (stage: string) =>
  Array.from({ length: 1000 }, (_, i) => `voice/${stage}-0|10.0.0.2|${20000 + i}`);
const targets: Record<string, string[]> = { relay: streams("relay"), asr: streams("asr") };
const sources = streams("gateway");
const tracker = new HopTracker(paths);
const owner = {};
gc();
const before = Deno.memoryUsage().heapUsed;
for (let i = 0; i < N; i++) {
  const src = T0 + BigInt(i) * 50_000_000n;
  for (const [stage, ms] of [["relay", 150n], ["asr", 950n]] as const) {
    const envelope = new Uint8Array(256).map((_, k) => (i + k * 7) & 7);
    const m: Match = {
      measurement: "m",
      stage,
      signatureId: (0x10000000 + i).toString(16).padStart(16, "0"),
      ids: {},
      source: {
        node: "node-a",
        pod: "voice/gateway-0",
        stream: sources[i % 1000]!,
        timeNs: src,
        offsetMs: 1.5,
      },
      target: {
        node: "node-b",
        pod: `voice/${stage}-0`,
        stream: targets[stage]![i % 1000]!,
        timeNs: src + ms * 1_000_000n,
        offsetMs: 2.5,
      },
      latencyS: Number(ms) / 1000,
      ber: 0.01,
      targetEnvelope: envelope,
    };
    tracker.observe(matchRecord(m), owner);
  }
}
gc();
const after = Deno.memoryUsage().heapUsed;
console.log(JSON.stringify({ bytesPerSignature: Math.round((after - before) / N), size: tracker.size }));
