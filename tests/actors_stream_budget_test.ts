/**
 * A live sensor's memory budget (actors/stream_budget.ts): the plan from a memory limit, the container's limit
 * as cgroup v1 and v2 say it, the per-stream bytes the plan is made of, and a live node following what its plan
 * says (a shorter lookback first, then fewer streams, counted) while a replay follows its config whatever the
 * limit.
 */
import { equal, ok } from "node:assert/strict";
import {
  BUDGET_FRACTION,
  containerMemoryLimit,
  LIVE_BASE_BYTES,
  liveMemoryLimit,
  MEMORY_LIMIT_ENV,
  MIN_LIVE_LOOKBACK_SECONDS,
  planStreams,
  SIGNATURE_BYTES,
  sourceStreamBytes,
  targetStreamBytes,
} from "../actors/stream_budget.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import {
  SignatureIndex,
  TARGET_HOT_SAMPLES,
  TARGET_WARM_SAMPLES,
  TargetPipeline,
} from "../audio/pipeline.ts";
import { encodeSamples } from "../audio/decode/codecs.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { setLogSink } from "../util/log.ts";
import { parseMetricsText, sumSamples } from "./support/sensor_process.ts";
import { e2eConfig, e2eRows, recorder, sec } from "./support/actor_fixtures.ts";
import { rng } from "./support/rng.ts";
import { FORMAT } from "./support/speech_signatures.ts";
import { parse as parseYaml } from "yaml";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import { matcher } from "../actors/matcher.ts";
import { type ExporterMsg, type MatcherMsg, NO_COUNTERS, type NodeCounters } from "../actors/messages.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";

setLogSink(() => {});
const MIB = 1024 * 1024;
const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;
const DEMAND = { lookbackSeconds: 30, maxStreams: 1000, measurements: 1, maxActiveSignatures: 10_000 };
/** What DEMAND's active signatures are planned to hold. */
const SIGS = 10_000 * SIGNATURE_BYTES;

Deno.test("stream budget: without a limit, or with room, the config is followed as it is", () => {
  for (const limit of [undefined, 0, 4096 * MIB]) {
    const p = planStreams(DEMAND, limit);
    equal(p.limited, "none");
    equal(p.lookbackSeconds, 30);
    equal(p.maxSourceStreams, 1000);
    equal(p.maxTargetStreams, 1000);
  }
});

Deno.test("stream budget: a limit a little short of 1,000 streams' needs shortens the target lookback, keeps every stream", () => {
  const p = planStreams(DEMAND, 940 * MIB);
  equal(p.limited, "lookback");
  equal(p.maxSourceStreams, 1000);
  equal(p.maxTargetStreams, 1000);
  ok(p.lookbackSeconds < 30 && p.lookbackSeconds > MIN_LIVE_LOOKBACK_SECONDS, `${p.lookbackSeconds} s`);
  ok(p.plannedBytes <= p.budgetBytes!, `${p.plannedBytes} planned in ${p.budgetBytes}`);
  equal(p.budgetBytes, 940 * MIB * BUDGET_FRACTION - LIVE_BASE_BYTES - SIGS);
  // The longest lookback that fits: a quarter second more would not.
  const more = 1000 * (sourceStreamBytes() + targetStreamBytes(p.lookbackSeconds + 0.25));
  ok(more > p.budgetBytes!, "a quarter second more fits: the lookback was cut too far");
});

Deno.test("stream budget: the DaemonSet's 768 MiB at 1,000 streams and 10,000 signatures: 12 s and ~830 streams", () => {
  const p = planStreams(DEMAND, 768 * MIB);
  equal(p.limited, "streams");
  equal(p.lookbackSeconds, MIN_LIVE_LOOKBACK_SECONDS);
  ok(p.maxTargetStreams >= 800 && p.maxTargetStreams < 900, `${p.maxTargetStreams} streams`);
  // What the pod is planned to hold stays 10% under its limit.
  ok(LIVE_BASE_BYTES + SIGS + p.plannedBytes <= 0.9 * 768 * MIB);
  // The active signatures are planned for: fewer of them leave room for more streams.
  ok(planStreams({ ...DEMAND, maxActiveSignatures: 1000 }, 768 * MIB).maxTargetStreams > p.maxTargetStreams);
});

Deno.test("stream budget: past what the shortest lookback fits, fewer streams (both caps), never below 12 s", () => {
  for (const [mib, max] of [[512, 1000], [768, 1000], [850, 3000], [1024, 10000]] as const) {
    const p = planStreams({ ...DEMAND, maxStreams: max }, mib * MIB);
    equal(p.limited, "streams");
    equal(p.lookbackSeconds, MIN_LIVE_LOOKBACK_SECONDS);
    equal(p.maxSourceStreams, p.maxTargetStreams);
    ok(p.maxTargetStreams < max && p.maxTargetStreams >= 1);
    ok(p.plannedBytes <= p.budgetBytes!);
    // One more stream of each would not fit.
    const perCap = sourceStreamBytes() + targetStreamBytes(MIN_LIVE_LOOKBACK_SECONDS);
    ok(p.plannedBytes + perCap > p.budgetBytes!);
  }
  // Two measurements: each Detector's sources count.
  const two = planStreams({ ...DEMAND, measurements: 2 }, 850 * MIB);
  const one = planStreams(DEMAND, 850 * MIB);
  ok(two.maxTargetStreams < one.maxTargetStreams || two.lookbackSeconds < one.lookbackSeconds);
  // A configured lookback under the floor is never lengthened.
  equal(planStreams({ ...DEMAND, lookbackSeconds: 5, maxStreams: 100_000 }, 768 * MIB).lookbackSeconds, 5);
  // Even a tiny limit follows one stream of each.
  equal(planStreams(DEMAND, 1 * MIB).maxTargetStreams, 1);
});

Deno.test("stream budget: the container's limit from cgroup v2 and v1, none when unlimited", () => {
  const files = (f: Record<string, string>) => (p: string) => f[p];
  equal(
    containerMemoryLimit(files({
      "/proc/self/cgroup": "0::/kubepods/pod1/c1\n",
      "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "805306368\n",
    })),
    805306368,
  );
  // In a container's own cgroup namespace the path is "/" and the file is at the root.
  equal(
    containerMemoryLimit(
      files({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "536870912\n" }),
    ),
    536870912,
  );
  equal(
    containerMemoryLimit(files({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n" })),
    undefined,
  );
  equal(
    containerMemoryLimit(files({
      "/proc/self/cgroup": "12:cpu,cpuacct:/x\n9:memory:/docker/abc\n",
      "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456",
    })),
    268435456,
  );
  equal(
    containerMemoryLimit(files({
      "/proc/self/cgroup": "9:memory:/\n",
      "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
    })),
    undefined,
  );
  equal(containerMemoryLimit(files({})), undefined);
  // engine.memory_limit_mib wins; 0 turns the budget off.
  const limited = files({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "1000" });
  equal(liveMemoryLimit(512, "768", limited), 512 * MIB);
  equal(liveMemoryLimit(0, "768", limited), undefined);
  // Then the DaemonSet's variable (the Downward API's limits.memory in MiB), then the cgroup files.
  equal(liveMemoryLimit(undefined, "768", limited), 768 * MIB);
  equal(liveMemoryLimit(undefined, "0", limited), undefined);
  equal(liveMemoryLimit(undefined, undefined, limited), 1000);
  equal(liveMemoryLimit(undefined, "", limited), 1000);
});

Deno.test("stream budget: a full ring's and a full target stream's bytes are what the plan counts", () => {
  const r = rng(5);
  for (const lb of [12, 20, 30]) {
    const ring = new SampleRing(lb * 8000 + 20000, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    const chunk = new Float32Array(160);
    for (let at = 0; at < (lb + 10) * 8000; at += 160) {
      for (let i = 0; i < 160; i++) chunk[i] = (r() - 0.5) * 0.5;
      ring.write(at, chunk, 0);
    }
    equal(ring.bytes, ring.fullBytes, `${lb} s`);
  }
  for (const lb of [12, 30]) {
    const tp = new TargetPipeline({
      measurement: "m",
      stage: "t",
      node: "n",
      pod: "p",
      stream: "x",
      format: FORMAT,
      index: new SignatureIndex(),
      lookbackSeconds: lb,
    });
    const pcm = new Float32Array(160);
    const t0 = 1_763_900_000_000_000_000n;
    for (let k = 0; k < (lb + 10) * 50; k++) {
      for (let i = 0; i < 160; i++) pcm[i] = Math.sin((k * 160 + i) * 0.05) * 0.3 * (1 + r());
      tp.push({ timeNs: t0 + BigInt(k + 1) * 20_000_000n, payload: encodeSamples("mulaw", pcm) });
    }
    const b = tp.memoryBreakdown();
    const held = b.samples + b.frames + b.timeline;
    const planned = TargetPipeline.fullBytes(lb);
    ok(Math.abs(held - planned) <= 0.05 * planned, `${lb} s: ${held} held, ${planned} planned`);
  }
});

Deno.test("stream budget: a live node under its limit follows fewer target streams, counted; a replay does not", async () => {
  const rows = await e2eRows("node-b");
  const config = await e2eConfig();
  // Room for one stream of each (at the shortest lookback) and no more.
  const perCap = sourceStreamBytes() + targetStreamBytes(MIN_LIVE_LOOKBACK_SECONDS);
  const sigs = config.engine.max_active_signatures * config.measurements.length * SIGNATURE_BYTES;
  const limit = Math.ceil((LIVE_BASE_BYTES + sigs + 1.5 * perCap) / BUDGET_FRACTION);
  const skipped: Record<string, number> = {};
  for (const mode of ["live", "replay"] as const) {
    const metrics = new FsmMetrics();
    const bus = new InProcessBus();
    const node = await SensorNode.start({
      config,
      node: "node-b",
      bus,
      metrics,
      mode,
      memoryLimitBytes: limit,
      // The capture's own time: no row is late or from the future.
      wallMs: () => Number(rows[rows.length - 1]!.time / 1_000_000n),
    });
    if (mode === "live") {
      equal(node.streamPlan.limited, "streams");
      equal(node.streamPlan.maxTargetStreams, 1);
      equal(node.streamPlan.lookbackSeconds, MIN_LIVE_LOOKBACK_SECONDS);
    } else equal(node.streamPlan.limited, "none");
    for (const row of rows) await node.ingest(row);
    await finishNodes([node], bus);
    await node.shutdown(30_000);
    const samples = parseMetricsText(await metrics.text());
    skipped[mode] = sumSamples(samples, "fsmpx_rows_skipped_total", { reason: "stream_limit" }) +
      sumSamples(samples, "fsmpx_streams_evicted_total");
  }
  ok(skipped["live"]! > 0, `live: ${skipped["live"]} rows skipped or streams evicted at the budget's cap`);
  equal(skipped["replay"], 0);
});

Deno.test("stream budget: signatures reaching between the planned and the configured lookback are counted", async () => {
  const rows = await e2eRows("node-b");
  const newest = rows.reduce((t, r) => (r.time > t ? r.time : t), 0n);
  const run = async (configured: number | undefined) => {
    const config = await e2eConfig((d) => void (d["engine"] = { lookback_seconds: 12 }));
    const system = new ActorSystem({ clock: new VirtualClock() });
    const short: string[] = [];
    const counters: NodeCounters = { ...NO_COUNTERS, lookbackShort: (m) => void short.push(m) };
    const m = system.spawn(
      "matcher",
      matcher({
        config,
        node: "node-b",
        exporter: system.spawn("exporter", recorder<ExporterMsg>([]), OPTS),
        idleNs: sec(60),
        tickNs: sec(1),
        counters,
        ...(configured === undefined ? {} : { configuredLookbackSeconds: configured }),
      }),
      OPTS,
    );
    await m.tell({ kind: "rows", rows });
    const r = rng(3);
    // Search starts (source time less the 2 s skew allowance) 5, 20 and 40 s before the newest target row.
    for (const [i, back] of [7, 22, 42].entries()) {
      const fingerprint = Uint32Array.from({ length: 64 }, () => Math.floor(r() * 2 ** 32));
      const sig = signatureOf({
        id: `00000000000000a${i}`,
        measurement: config.measurements[0]!.name,
        source: { node: "node-a", pod: "p", stream: "s", timeNs: newest - sec(back), offsetMs: 0 },
        fingerprint,
        ids: {},
      });
      await m.tell({ kind: "activate", sig });
    }
    await m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
    await system.shutdown({ deadlineMs: 1000 });
    return short.length;
  };
  // Only the one 20 s back: within 30 s, beyond 12 s.
  equal(await run(30), 1);
  equal(await run(undefined), 0);
});

Deno.test("stream budget: the DaemonSet tells the sensor its memory limit in MiB (the run task cannot read cgroups)", async () => {
  const doc = parseYaml(await Deno.readTextFile(new URL("../k8s/daemonset.yaml", import.meta.url))) as {
    spec: {
      template: {
        spec: {
          containers: {
            name: string;
            env?: { name: string; valueFrom?: { resourceFieldRef?: Record<string, string> } }[];
            resources?: { limits?: { memory?: string } };
          }[];
        };
      };
    };
  };
  const sensor = doc.spec.template.spec.containers.find((c) => c.name === "sensor")!;
  ok(sensor.resources?.limits?.memory, "the sensor has a memory limit");
  const ref = sensor.env?.find((e) => e.name === MEMORY_LIMIT_ENV)?.valueFrom?.resourceFieldRef;
  equal(ref?.["resource"], "limits.memory");
  equal(ref?.["divisor"], "1Mi");
  equal(ref?.["containerName"], "sensor");
  // The run task lets the sensor read the variable.
  const task = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks
    .run as string;
  ok(/--allow-env=[^ ]*FSMPX_\*/.test(task), task);
});
