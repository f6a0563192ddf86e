/**
 * A tcpdump that neither starts listening nor exits (stuck opening its device) ends the capture's start with an
 * error the reader's supervisor acts on, instead of holding the live packet source for ever. Real parts: a child
 * process standing in for tcpdump, LiveCapture.
 */
import { match, ok } from "node:assert/strict";
import { join } from "node:path";
import { CaptureStartError, LiveCapture } from "../packets/live_capture.ts";

Deno.test("live capture: a tcpdump that never starts listening is a start error, and is stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-stuck-tcpdump-" });
  const pidFile = join(dir, "pid");
  const tcpdump = join(dir, "tcpdump");
  // Like tcpdump, it takes SIGUSR1 (the statistics request) without exiting.
  await Deno.writeTextFile(tcpdump, `#!/bin/sh\necho $$ > ${pidFile}\ntrap '' USR1\nexec sleep 600\n`);
  await Deno.chmod(tcpdump, 0o755);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const start = LiveCapture.start({
      tcpdump,
      iface: "lo",
      filter: "",
      snaplen: 1500,
      bufferMib: 1,
      startTimeoutMs: 2_000,
    }).then(() => "started", (e: unknown) => e);
    // A liveness bound (~20 s), not a timing assertion.
    const hung = new Promise<string>((
      resolve,
    ) => (timer = setTimeout(() => resolve("still starting"), 20_000)));
    const outcome = await Promise.race([start, hung]);
    ok(outcome instanceof CaptureStartError, String(outcome));
    match(outcome.message, /did not start listening within 2000 ms/);
    // The stuck child was stopped: gone, or a zombie not reaped yet (a liveness bound, ~10 s: under load the
    // signal and the exit take a moment).
    const pid = Number(await Deno.readTextFile(pidFile));
    const running = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
      } catch {
        return false; // gone
      }
    };
    for (let i = 0; i < 200 && running(); i++) await new Promise((r) => setTimeout(r, 50));
    ok(!running(), `pid ${pid} still running`);
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
});
