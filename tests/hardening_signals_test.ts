/**
 * Issue 15: a single Ctrl-C under `deno task` reached the sensor twice (from the terminal, to the whole process
 * group, and forwarded by the task runner) and skipped the graceful drain. A real `deno task run` in its own
 * process group gets SIGINT as a terminal sends it, and must drain and exit 0.
 */
import { equal, ok } from "node:assert/strict";
import { ROOT, sleep, writeSensorConfig } from "./support/sensor_process.ts";

Deno.test({
  name: "one Ctrl-C to `deno task run` (SIGINT to its process group) drains and exits 0",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-sigint-" });
    let child: Deno.ChildProcess | undefined;
    try {
      const config = await writeSensorConfig({
        base: `${ROOT}fixtures/e2e/config.yaml`,
        dir,
        node: "node-a",
        natsUrl: "",
      });
      // setsid: a process group of its own, as a shell gives a foreground job.
      child = new Deno.Command("setsid", {
        args: [
          Deno.execPath(),
          "task",
          "run",
          "--config",
          config,
          "--capture",
          `${ROOT}fixtures/e2e/node-a.jsonl`,
          "--speed",
          "1",
        ],
        cwd: ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let stderr = "";
      const reading = (async () => {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
      })();
      let exited = false;
      const status = child.status.then((s) => {
        exited = true;
        return s;
      });
      for (let i = 0; i < 1200 && !stderr.includes('"msg":"sensor started"'); i++) {
        if (exited) break;
        await sleep(50);
      }
      ok(stderr.includes('"msg":"sensor started"'), stderr);
      // What a terminal does on Ctrl-C: SIGINT to every process of the foreground group.
      const kill = await new Deno.Command("kill", { args: ["-INT", "--", `-${child.pid}`] }).output();
      equal(kill.code, 0, new TextDecoder().decode(kill.stderr));
      const s = await status;
      await reading;
      ok(stderr.includes("signal received; shutting down"), stderr);
      ok(!stderr.includes("second signal"), stderr);
      equal(s.code, 0, stderr);
    } finally {
      if (child) {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch {
          // the group is gone
        }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
