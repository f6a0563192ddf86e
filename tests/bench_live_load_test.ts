/** bench/live_load.ts's sensor as the pod runs it: the command, the memory limit read from the DaemonSet. */
import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import {
  cappedRows,
  daemonSetMemoryLimitMiB,
  type LiveLoadResult,
  printLiveLoad,
  rssMiB,
  sensorCommand,
  slope,
} from "../bench/live_load.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const daemonSet = (memory: string) =>
  `spec:\n  template:\n    spec:\n      containers:\n        - name: sensor\n          resources:\n` +
  `            limits:\n              memory: ${memory}\n`;

Deno.test("the memory limit is the DaemonSet's, in MiB", async () => {
  equal(daemonSetMemoryLimitMiB(daemonSet("768Mi")), 768);
  equal(daemonSetMemoryLimitMiB(daemonSet("1Gi")), 1024);
  equal(daemonSetMemoryLimitMiB(daemonSet(String(512 * 2 ** 20))), 512);
  throws(() => daemonSetMemoryLimitMiB("spec: {}"), /no memory limit/);
  // The deployed manifest has one.
  ok(daemonSetMemoryLimitMiB(await Deno.readTextFile(`${ROOT}k8s/daemonset.yaml`)) > 0);
});

Deno.test("with task, the sensor is deno task run (the run task's flags, not the bench's), limited as in a pod", () => {
  const cmd = sensorCommand("/tmp/c.yaml", { seconds: 1, warmupS: 0, task: true, limitMiB: 768 });
  equal(cmd[0], "unshare");
  deepStrictEqual(cmd.slice(-4), ["task", "run", "--config", "/tmp/c.yaml"]);
  ok(!cmd.includes("--allow-all"));
  ok(cmd.some((a) => a.includes(String(768 * 2 ** 20))), "the cgroup files say the limit");
  const plain = sensorCommand("/tmp/c.yaml", { seconds: 1, warmupS: 0, pin: 1 });
  deepStrictEqual(plain.slice(0, 3), ["taskset", "-c", "1"]);
  ok(plain.includes("--allow-all") && plain.at(-3) === "run");
  throws(
    () => sensorCommand("/tmp/c.yaml", { seconds: 1, warmupS: 0, task: true }, ["--cpu-prof"]),
    /not with/,
  );
});

Deno.test("RSS slope: least squares per sample, 0 when flat", () => {
  equal(slope([1, 2, 3, 4]), 1);
  equal(slope([5, 5, 5]), 0);
  equal(slope([7]), 0);
});

Deno.test("rows skipped at the stream caps are counted apart from other skips (not analysed, not capacity)", () => {
  equal(
    cappedRows({
      "fsmpx_rows_skipped_total{query=live/source,reason=stream_limit}": 544_480,
      "fsmpx_rows_skipped_total{query=live/asr,reason=stream_limit}": 3_280_000,
      "fsmpx_rows_skipped_total{query=live/relay,reason=no_audio}": 7,
      "fsmpx_streams_evicted_total{reason=stream_limit}": 12,
      "signatures_matched_total{stage=relay}": 5_111,
    }),
    3_824_480,
  );
  equal(cappedRows({}), 0);
});

Deno.test("RSS is read and printed in MiB, the unit of the container's limit (/proc's kB is KiB)", async () => {
  // A sleeping child's VmRSS as /proc says it, in KiB, against what the bench reads: a process whose memory does
  // not move between the two reads (this one's does: deno test --parallel runs other files in it meanwhile).
  // Read until its RSS holds still around the bench's read: just spawned, it may still be exec'ing (4 KiB, then
  // ~900 KiB in a CI run).
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const kibOf = async () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${sleeper.pid}/status`))?.[1] ?? NaN);
  try {
    let kib = NaN, mib = NaN;
    for (let i = 0; i < 100; i++) {
      const before = await kibOf();
      mib = await rssMiB(sleeper.pid);
      kib = await kibOf();
      if (before === kib && kib > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    ok(kib > 0 && Math.abs(mib - kib / 1024) < 1e-9, `${mib} MiB against ${kib} KiB`);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
  const r: LiveLoadResult = {
    calls: 1000,
    wallS: 60,
    rowsPerSec: 0,
    capped: 0,
    rowsPerCpuS: 0,
    callsPerCore: 0,
    sentPerSec: 0,
    cores: 1,
    dropped: 0,
    late: 0,
    feederSkipped: 0,
    producerLagMs: 0,
    readLagS: 0,
    maxQueued: 0,
    eventLagS: 0,
    rssMiB: [600, 610, 620, 630, 640],
    rssSlopeMiBPerMin: 1,
    sensorPeakMiB: 649,
    load: [0, 0],
    signatures: 0,
    matches: 0,
    detail: {},
    sustained: true,
  };
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    printLiveLoad(r);
  } finally {
    console.log = log;
  }
  const text = lines.join("\n");
  ok(text.includes("600 → 640 max → 640 MiB"), text);
  ok(text.includes("sensor VmHWM 649 MiB"), text);
  ok(text.includes("RSS every 5 s, MiB: 640"), text);
  ok(!/\d MB\b/.test(text), `an RSS labelled MB (1e6 bytes) though it is MiB: ${text}`);
});
