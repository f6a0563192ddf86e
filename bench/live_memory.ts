/**
 * A live sensor's memory at N concurrent calls, whatever CPU it gets: a live SensorNode in this process is fed
 * bench/live_load.ts's synthetic calls (a source tap and two target taps each, 20 ms μ-law messages) tick by
 * tick, each tick once the previous one is processed, with the node's wall and late-row clocks following event
 * time (nothing is late, nothing is dropped). bench/live_load.ts measures the sensor against the wall clock,
 * where a starved sensor drops rows and its rings never fill; here every stream's lookback fills as it would on
 * a sensor that keeps up, so the figure is the memory the node needs, not what it managed to read.
 *
 * The process runs as the DaemonSet runs the sensor: the run task's allocator variable and V8 flags, in a
 * container of `--limit-mib` (default 768) as deno sees it with `DENO_USE_CGROUPS=1` (bench/capture_memory.ts's
 * fake cgroup files), the node told the limit as the DaemonSet tells it (its memory plan, actors/stream_budget.ts);
 * `--no-plan`: the same limit, no plan (the node follows engine.max_streams at engine.lookback_seconds);
 * `--slab`: each batch's payloads are views of one buffer, as a live reader's are of a Pixie response's.
 *
 * `deno run -A bench/live_memory.ts [--calls 1000] [--seconds 45] [--max-streams 1000] [--limit-mib 768]
 *  [--no-plan] [--slab] [--max-active-signatures N]`: RSS every 5 s of event time and the peak (VmHWM), MiB; V8 heap and ArrayBuffers at the end, MB; the plan,
 * signatures and matches, CPU seconds.
 * @module
 */
import { finishNodes, SensorNode } from "../actors/node.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { parseConfigText } from "../config/load.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { Row } from "../pixie/row.ts";
import { liveCallsConfig, SyntheticCalls } from "../tests/support/live_calls.ts";
import { setLogSink } from "../util/log.ts";
import { inMemoryLimit, runTaskEnv, runTaskV8Flags } from "./capture_memory.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TAPS = ["source", "relay", "asr"] as const;

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

/** VmRSS or VmHWM of this process, MiB (the kernel's "kB" there is KiB: 1,024 bytes). */
function statusMiB(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function cpuS(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The measured node (in the child process). */
async function child(
  calls: number,
  seconds: number,
  maxStreams: number,
  limitMiB: number,
  plan: boolean,
  slab: boolean,
) {
  setLogSink(() => {});
  const text = liveCallsConfig({
    pixieAddr: "127.0.0.1:1",
    metricsListen: "127.0.0.1:0",
    maxStreams,
    logLevel: "error",
  });
  const sigs = arg("--max-active-signatures");
  const config = parseConfigText(
    sigs === undefined
      ? text
      : text.replace("engine:\n", `engine:\n  max_active_signatures: ${Number(sigs)}\n`),
    "live_memory.yaml",
    {},
  ).config;
  const gen = new SyntheticCalls(calls, 1);
  const startNs = BigInt(Date.now()) * 1_000_000n;
  let eventNs = startNs;
  const eventMs = () => Number(eventNs / 1_000_000n);
  const bus = new InProcessBus();
  const metrics = new FsmMetrics();
  let matches = 0;
  const node = await SensorNode.start({
    config,
    node: "live-node",
    bus,
    metrics,
    mode: "live",
    sinks: [{ match: () => void matches++ }],
    wallMs: eventMs,
    lateClockMs: eventMs,
    memoryLimitBytes: plan ? limitMiB * 1024 * 1024 : 0,
  });
  const pods = Array.from({ length: calls }, (_, c) => new TextEncoder().encode(`voice/call-${c % 50}`));
  const ticks = Math.round((seconds * 1e9) / Number(gen.tickNs));
  const rss: number[] = [];
  const cpu0 = cpuS();
  const queued = () => node.system.stats().reduce((s, a) => s + a.depth, 0);
  for (let tick = 0; tick < ticks; tick++) {
    eventNs = startNs + BigInt(tick) * gen.tickNs;
    gen.advance(tick, calls);
    const rows: Row[] = [];
    for (const tap of TAPS) {
      for (let c = 0; c < calls; c++) {
        const msg = gen.message(tap, c);
        if (msg === undefined) continue;
        rows.push({
          query: `live/${tap}`,
          node: "live-node",
          time: eventNs,
          columns: { time_: eventNs, pod: pods[c]!, req_body: msg },
        });
      }
    }
    // A batch of a few hundred rows per message, as a Pixie response hands them on; with `slab`, their payloads
    // are views of one buffer per batch, as the live reader's are of a response's (what a view kept alive keeps).
    for (let i = 0; i < rows.length; i += 250) {
      const batch = rows.slice(i, i + 250);
      if (slab) {
        const bytes = batch.reduce((n, r) => n + (r.columns["req_body"] as Uint8Array).length, 0);
        const buf = new Uint8Array(bytes);
        let at = 0;
        for (let k = 0; k < batch.length; k++) {
          const r = batch[k]!;
          const b = r.columns["req_body"] as Uint8Array;
          buf.set(b, at);
          batch[k] = { ...r, columns: { ...r.columns, req_body: buf.subarray(at, at + b.length) } };
          at += b.length;
        }
      }
      await node.ingestBatch(batch);
    }
    // The next tick once this one is through: nothing waits long enough to be late or dropped.
    while (queued() > 0) await new Promise((r) => setTimeout(r, 0));
    if (tick % 250 === 249) rss.push(Math.round(statusMiB("VmRSS")));
  }
  const cpu = cpuS() - cpu0;
  const mem = Deno.memoryUsage();
  const peak = statusMiB("VmHWM");
  const text2 = await metrics.text();
  await finishNodes([node], bus);
  await node.shutdown(30_000);
  const sum = (re: RegExp) =>
    text2.split("\n").filter((l) => re.test(l)).reduce(
      (s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)),
      0,
    );
  console.log(JSON.stringify({
    calls,
    seconds,
    plan: node.streamPlan,
    // RSS in MiB (the container limit's unit); the V8 heap and ArrayBuffers below in MB (1e6 bytes).
    rssEvery5sMiB: rss,
    peakMiB: Math.round(peak),
    heapMB: Math.round(mem.heapTotal / 1e6),
    externalMB: Math.round(mem.external / 1e6),
    cpuS: Math.round(cpu * 10) / 10,
    signatures: sum(/^signatures_detected_total/),
    matches,
    lookbackShort: sum(/^fsmpx_signatures_lookback_short_total/),
    streamLimitRows: sum(/^fsmpx_rows_skipped_total\{.*stream_limit/),
    evicted: sum(/^fsmpx_streams_evicted_total/),
    dropped: sum(/^fsmpx_mailbox_dropped_total/),
  }));
}

if (import.meta.main) {
  const calls = Number(arg("--calls") ?? 1000);
  const seconds = Number(arg("--seconds") ?? 45);
  const maxStreams = Number(arg("--max-streams") ?? 1000);
  const limitMiB = Number(arg("--limit-mib") ?? 768);
  const plan = !Deno.args.includes("--no-plan");
  const slab = Deno.args.includes("--slab");
  if (Deno.args.includes("--child")) await child(calls, seconds, maxStreams, limitMiB, plan, slab);
  else {
    const task = await Deno.readTextFile(`${ROOT}deno.json`);
    const argv = [
      Deno.execPath(),
      "run",
      "-A",
      `--v8-flags=${runTaskV8Flags(task).join(",")}`,
      new URL(import.meta.url).pathname,
      "--child",
      ...Deno.args,
    ];
    const [exe, ...args] = inMemoryLimit(limitMiB, argv);
    const out = await new Deno.Command(exe!, {
      args,
      env: { ...runTaskEnv(task), DENO_USE_CGROUPS: "1" },
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) Deno.exit(out.code);
  }
}
