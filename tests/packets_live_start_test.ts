/**
 * A tcpdump that neither starts listening nor exits (stuck opening its device) ends the capture's start with an
 * error the reader's supervisor acts on, instead of holding the live packet source for ever; one that is merely slow
 * to start is not killed by the first statistics request. Real parts: a child process standing in for tcpdump,
 * LiveCapture.
 */
import assert, { match, ok } from "node:assert/strict";
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

Deno.test("live capture: a tcpdump slower to start than one statistics interval is not killed by the request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-slow-tcpdump-" });
  // Like tcpdump, it sets its SIGUSR1 handler only just before it says "listening on" (tcpdump.c); before that the
  // signal's default action ends it. It opens its device for 1.5 s.
  const script = join(dir, "slow_tcpdump.ts");
  await Deno.writeTextFile(
    script,
    `await new Promise((r) => setTimeout(r, 1500));
Deno.addSignalListener("SIGUSR1", () => console.error("7 packets captured"));
console.error("listening on lo, link-type EN10MB (Ethernet), snapshot length 1500 bytes");
await new Promise((r) => setTimeout(r, 600_000));
`,
  );
  const tcpdump = join(dir, "tcpdump");
  await Deno.writeTextFile(tcpdump, `#!/bin/sh\nexec '${Deno.execPath()}' run -A --no-check '${script}'\n`);
  await Deno.chmod(tcpdump, 0o755);
  try {
    const opts = { tcpdump, iface: "lo", filter: "", snaplen: 1500, bufferMib: 1, statsEveryMs: 200 };
    const cap = await LiveCapture.start({ ...opts, startTimeoutMs: 20_000 }).then((c) => c, (e: Error) => e);
    ok(cap instanceof LiveCapture, String(cap));
    // Statistics are asked for once it listens (a liveness bound, ~10 s).
    for (let i = 0; i < 200 && cap.stats.captured === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await cap.close();
    assert.equal(cap.stats.captured, 7, "its statistics line was read");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
