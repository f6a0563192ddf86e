/** bench/packets_live_speed.ts's sensor CPU: this process and its running tcpdump child, not /proc/self alone. */
import { ok } from "node:assert/strict";
import { childrenNamed, processCpuSeconds, sensorCpuSeconds } from "../bench/packets_live_speed.ts";

Deno.test("the sensor's CPU counts a running child of the named command (as tcpdump), which /proc/self does not", async () => {
  // A child that burns CPU while this process waits: `sleep` under another name stands for tcpdump.
  const child = new Deno.Command("sh", {
    args: ["-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 5"],
    stdout: "null",
  }).spawn();
  try {
    const own0 = processCpuSeconds(child.pid);
    const s0 = sensorCpuSeconds("sh");
    // Wait until the child has used a few tenths of a second, this process idle meanwhile.
    for (let i = 0; i < 100 && sensorCpuSeconds("sh").children - s0.children < 0.3; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const s1 = sensorCpuSeconds("sh");
    const own = processCpuSeconds(child.pid) - own0;
    ok(childrenNamed("sh").includes(child.pid), "the child is found by its command name");
    ok(own >= 0.3, `child CPU ${own}`);
    // Not "this process stayed idle": deno test --parallel runs other test files in this process meanwhile. The
    // child's CPU is in the children's sum and so in the sensor's total (other tests' sh children may add more).
    ok(s1.children - s0.children >= own - 0.02, `children ${s1.children - s0.children}, the child ${own}`);
    ok(s1.total - s0.total >= own - 0.02, "the sensor's CPU includes the child's");
    ok(childrenNamed("no-such-command").length === 0);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
