/** bench/live_load.ts's sensor as the pod runs it: the command, the memory limit read from the DaemonSet. */
import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { cappedRows, daemonSetMemoryLimitMiB, sensorCommand, slope } from "../bench/live_load.ts";

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
