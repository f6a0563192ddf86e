/** bench/packets_live_speed.ts's sensor CPU: this process and its running tcpdump child, not /proc/self alone. */
import { ok } from "node:assert/strict";
import { childrenNamed, processCpuSeconds, sensorCpuSeconds } from "../bench/packets_live_speed.ts";

Deno.test("the sensor's CPU counts a running child of the named command (as tcpdump), which /proc/self does not", async () => {
  // A child that burns CPU until killed: `sh` stands for tcpdump.
  const child = new Deno.Command("sh", { args: ["-c", "while :; do :; done"], stdout: "null" }).spawn();
  try {
    // Until the child has used a few tenths of a second: on a loaded runner (deno test --parallel) that can take
    // many times as long in wall time.
    for (let i = 0; i < 1200 && processCpuSeconds(child.pid) < 0.2; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Read in this order, each sum is at least what was read before it: the child's CPU only grows, and other
    // tests' `sh` children (which may start or end meanwhile) only add to the children's sum.
    const self = processCpuSeconds("self");
    const own = processCpuSeconds(child.pid);
    const s = sensorCpuSeconds("sh");
    ok(childrenNamed("sh").includes(child.pid), "the child is found by its command name");
    ok(own >= 0.2, `child CPU ${own}`);
    ok(s.children >= own, `children ${s.children}, the child ${own}`);
    ok(s.total >= self + own, `the sensor's CPU ${s.total} includes the child's ${own} and its own ${self}`);
    ok(childrenNamed("no-such-command").length === 0);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
