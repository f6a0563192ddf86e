/**
 * The forward search of two checkouts side by side in one process, call by call: TargetMatcher.onFrames of each,
 * timed inside, over the bench's matcher load (bench/matcher_ab.ts: the bench corpus against 10,000 background
 * signatures) with its streams taken `--copies` times over (as many target streams as an analyze of the bench
 * corpus holds, so that each stream's matcher state is out of cache when its next message comes, as there), the
 * two alternating every `--chunk` messages and the order swapped each time. Prints the median over the chunks of
 * before's CPU over after's, and the total's ratio; the matcher's counters must agree.
 *
 * `deno run --allow-all bench/matcher_calls_ab.ts BEFORE_DIR [AFTER_DIR] [--copies N] [--chunk M] [--passes P]`
 * @module
 */

import { MEASUREMENT } from "./accuracy.ts";
import { timeInside } from "./fingerprint_speed.ts";
import { formatOf, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import { type Engine, engine, matcherLoad } from "./matcher_ab.ts";
import { initAudioEngine } from "../audio/pipeline.ts";

interface Message {
  timeNs: bigint;
  payload: Uint8Array;
}

interface Pipeline {
  push(m: Message): unknown[];
  stats(): { matcher: Record<string, number> };
}

const args = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const opt = (name: string, d: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : d;
};
if (args.length < 1) {
  throw new Error("usage: matcher_calls_ab.ts BEFORE_DIR [AFTER_DIR] [--copies N] [--chunk M]");
}
const copies = opt("--copies", 6), chunk = opt("--chunk", 200), passes = opt("--passes", 2);
await initAudioEngine();
const engines: Engine[] = [await engine("before", args[0]!), await engine("after", args[1] ?? ".")];

const { streams, live } = await matcherLoad();
const order: { stream: number; m: Message }[] = [];
for (let c = 0; c < copies; c++) {
  streams.forEach((s, i) => {
    for (const m of s.messages) order.push({ stream: c * streams.length + i, m });
  });
}
order.sort((a, b) => (a.m.timeNs < b.m.timeNs ? -1 : a.m.timeNs > b.m.timeNs ? 1 : 0));
console.log(`${streams.length * copies} streams, ${order.length} messages, ${live.length} signatures`);

for (let p = 0; p < passes; p++) {
  const inside = engines.map((e) => timeInside(e.proto.matcher, "onFrames"));
  const feeds = engines.map((e) => {
    const index = new e.pipeline.SignatureIndex({ maxActive: live.length + 1 });
    for (const s of live) index.add(s);
    return Array.from({ length: streams.length * copies }, (_, i): Pipeline =>
      new e.pipeline.TargetPipeline({
        measurement: MEASUREMENT,
        stage: "ab",
        node: "node-b",
        pod: "voice/ab-0",
        stream: `${streams[i % streams.length]!.stream}#${Math.floor(i / streams.length)}`,
        format: formatOf(SOURCE_CHAIN),
        index,
      }));
  });
  const ratios: number[] = [], total: [number, number] = [0, 0];
  for (let c = 0, k = 0; c < order.length; c += chunk, k++) {
    const took = [0, 0];
    for (let j = 0; j < 2; j++) {
      const e = (j + k) % 2, i0 = inside[e]!.cpuS;
      for (let i = c; i < Math.min(order.length, c + chunk); i++) {
        feeds[e]![order[i]!.stream]!.push(order[i]!.m);
      }
      took[e] = inside[e]!.cpuS - i0;
    }
    total[0] += took[0]!;
    total[1] += took[1]!;
    if (took[1]! > 0) ratios.push(took[0]! / took[1]!);
  }
  for (const t of inside) t.restore();
  const counters = feeds.map((f) => {
    const sum: Record<string, number> = {};
    for (const tp of f) for (const [k, v] of Object.entries(tp.stats().matcher)) sum[k] = (sum[k] ?? 0) + v;
    return JSON.stringify(sum);
  });
  ratios.sort((a, b) => a - b);
  console.log(
    `pass ${p + 1}: onFrames before ${total[0]!.toFixed(2)} s, after ${total[1]!.toFixed(2)} s (${
      (total[0]! / total[1]!).toFixed(3)
    }x); median of ${ratios.length} chunks ${ratios[ratios.length >> 1]!.toFixed(3)}x; counters ${
      counters[0] === counters[1] ? "identical" : `DIFFER ${counters.join(" / ")}`
    }`,
  );
}
