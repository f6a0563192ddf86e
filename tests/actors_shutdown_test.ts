import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ActorStoppedError, type SpawnOptions, type Termination } from "../actors/runtime.ts";
import { createSignalHandler } from "../actors/shutdown.ts";
import { captureLogs, gate, setup, statsOf } from "./fixtures_actors/helpers.ts";
import { setLogSink } from "../util/log.ts";

// Quiet by default; tests that assert on log lines capture them with captureLogs.
setLogSink(() => {});

const BP: SpawnOptions = { capacity: 64, overflow: "backpressure" };

Deno.test("shutdown drains actors in spawn order; draining actors still feed downstream; flush runs last", async () => {
  const { clock, system } = setup();
  const events: string[] = [];
  const out: string[] = [];
  // reader -> worker -> sink, each step async (a microtask hop) so work is genuinely in flight.
  const reader = system.spawn<number>("reader", () => ({
    async receive(n) {
      await Promise.resolve();
      await worker.tell(n * 10);
    },
    async onStop(reason) {
      events.push(`reader stop ${reason}`);
      // Flush on stop: the worker is still running and accepts it.
      strictEqual(await worker.tell(-1), true);
    },
  }), { capacity: 4, overflow: "backpressure" });
  const worker = system.spawn<number>("worker", () => ({
    async receive(n) {
      await Promise.resolve();
      await sink.tell(`w${n}`);
    },
    onStop: () => void events.push("worker stop"),
  }), { capacity: 4, overflow: "backpressure" });
  const sink = system.spawn<string>("sink", () => ({
    receive: (s) => void out.push(s),
    onStop: () => void events.push(`sink stop after ${out.length}`),
  }), { capacity: 4, overflow: "backpressure" });
  system.onFlush(async (budgetMs) => {
    await Promise.resolve();
    events.push(`flush registered ${budgetMs}`);
  });

  // 20 messages through capacity-4 mailboxes: most are parked senders or queued when the shutdown starts.
  const input = system.ingress(reader);
  const sends = Array.from({ length: 20 }, (_, i) => input.tell(i));
  const t = await system.shutdown({
    deadlineMs: 5000,
    flushMs: 1000,
    flush: () => Promise.resolve(void events.push("flush option")),
  });
  deepStrictEqual(await Promise.all(sends), Array(20).fill(true));
  deepStrictEqual(t, { code: 0, reason: "shutdown" });
  deepStrictEqual(out, [...Array.from({ length: 20 }, (_, i) => `w${i * 10}`), "w-1"]);
  deepStrictEqual(events, [
    "reader stop shutdown",
    "worker stop",
    "sink stop after 21",
    "flush registered 1000",
    "flush option",
  ]);
  for (const s of system.stats()) {
    strictEqual(s.state, "stopped");
    deepStrictEqual(s.dropped, { overflow: 0, stopping: 0, deadline: 0 });
  }
  deepStrictEqual(await system.terminated, t);
  strictEqual(clock.pendingTimers, 0);
});

Deno.test("shutdown stops intake: ingress tells are dropped as 'stopping', asks rejected, ctx.stopping aborted", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const got: number[] = [];
  let stoppingSeen: AbortSignal | undefined;
  const ref = system.spawn<number>("intake", (ctx) => {
    stoppingSeen = ctx.stopping;
    return {
      async receive(n) {
        await g.wait;
        got.push(n);
      },
    };
  }, BP);
  const input = system.ingress(ref);
  strictEqual(await input.tell(1), true);
  await clock.settle();
  const done = system.shutdown({ deadlineMs: 1000 });
  ok(stoppingSeen?.aborted);
  strictEqual(await input.tell(2), false);
  strictEqual(input.tryTell(3), false);
  await rejects(input.ask<number>(() => 4, 100), ActorStoppedError);
  // An actor still draining may use the ordinary reference (internal traffic during the drain).
  strictEqual(await ref.tell(5), true);
  g.open();
  strictEqual((await done).code, 0);
  deepStrictEqual(got, [1, 5]);
  strictEqual(statsOf(system, "intake").dropped.stopping, 2);
  strictEqual(metrics.droppedTotal("intake", "stopping"), 2);
  throws(() => system.spawn("late", () => ({ receive() {} }), BP), /stopping/);
  strictEqual(await ref.tell(6), false);
  strictEqual(statsOf(system, "intake").dropped.stopping, 3);
});

Deno.test("shutdown deadline: in virtual time, what is left is dropped as 'deadline' and later actors are abandoned", async () => {
  const { clock, metrics, system } = setup();
  const processed: number[] = [];
  const events: string[] = [];
  const never = new Promise<void>(() => {});
  const slow = system.spawn<number>("slow", () => ({
    async receive(n) {
      await clock.sleep(100);
      processed.push(n);
    },
    onStop: () => void events.push("slow stop"),
  }), BP);
  const stuck = system.spawn<number>("stuck", () => ({
    async receive(n) {
      if (n === 0) await never;
    },
    onStop: () => void events.push("stuck stop"),
  }), BP);
  for (let i = 0; i < 10; i++) await slow.tell(i);
  for (let i = 0; i < 4; i++) await stuck.tell(i);
  // A sender parked under back-pressure when the deadline hits is released with false and counted.
  const tiny = system.spawn<number>("tiny", () => ({ receive: () => never }), {
    capacity: 1,
    overflow: "backpressure",
  });
  await tiny.tell(0);
  await clock.settle();
  await tiny.tell(1);
  const parked = tiny.tell(2);
  system.onFlush(() => Promise.resolve(void events.push("flushed")));

  const { lines, result: t } = await captureLogs(async () => {
    const done = system.shutdown({ deadlineMs: 350 });
    await clock.advance(349);
    strictEqual(events.length, 0);
    await clock.advance(1);
    return await done;
  });
  strictEqual(t.code, 0);
  deepStrictEqual(processed, [0, 1, 2]); // 3 done by 300 ms; message 3 was in flight at 350
  const s = statsOf(system, "slow");
  strictEqual(s.dropped.deadline, 6);
  strictEqual(s.state, "stopped");
  strictEqual(statsOf(system, "stuck").dropped.deadline, 3);
  strictEqual(statsOf(system, "tiny").dropped.deadline, 2);
  strictEqual(await parked, false);
  strictEqual(metrics.droppedTotal("slow", "deadline"), 6);
  // Abandoned actors still get onStop (not awaited); flush hooks still run.
  await clock.settle();
  deepStrictEqual(events.sort(), ["flushed", "slow stop", "stuck stop"]);
  ok(lines.some((l) => l.msg === "drain deadline passed; remaining messages dropped" && l.dropped === 11));
  // The abandoned in-flight receive finishing later does nothing harmful.
  await clock.advance(100);
  deepStrictEqual(processed, [0, 1, 2, 3]);
  strictEqual(statsOf(system, "slow").state, "stopped");
});

Deno.test("shutdown deadline also bounds a hanging onStop", async () => {
  const { clock, system } = setup();
  const later: string[] = [];
  const a = system.spawn<number>(
    "hangs",
    () => ({ receive() {}, onStop: () => new Promise<void>(() => {}) }),
    BP,
  );
  const b = system.spawn<number>("next", () => ({ receive: (n) => void later.push(`b${n}`) }), BP);
  await a.tell(1);
  const g = gate();
  // Hold b busy so it still has a queued message at the deadline.
  const c = system.spawn<number>("busy", () => ({ receive: () => g.wait }), BP);
  await c.tell(1);
  await c.tell(2);
  await b.tell(1);
  const t = await captureLogs(async () => {
    const done = system.shutdown({ deadlineMs: 200 });
    await clock.advance(200);
    return await done;
  });
  strictEqual(t.result.code, 0);
  deepStrictEqual(later, ["b1"]); // b drained before the deadline concurrently with a's onStop
  strictEqual(statsOf(system, "busy").dropped.deadline, 1);
});

Deno.test("shutdown deadline: a wait for the system to settle ends when a stuck actor is abandoned", async () => {
  const { clock, system } = setup();
  const never = new Promise<void>(() => {});
  const stuck = system.spawn<number>("stuck", () => ({ receive: () => never }), BP);
  await stuck.tell(1);
  await clock.settle();
  // What a capture replay does between batches (cli/capture_run.ts settleAll): wait for every actor to be idle.
  let settled = false;
  void system.settled().then(() => settled = true);
  const done = system.shutdown({ deadlineMs: 100 });
  await clock.advance(100);
  strictEqual((await done).code, 0);
  await clock.settle();
  strictEqual(statsOf(system, "stuck").state, "stopped");
  ok(system.idle);
  ok(settled, "settled() still waiting on an actor abandoned at the deadline");
});

Deno.test("shutdown: an actor in backoff restarts at once to drain its queue", async () => {
  const { clock, system } = setup();
  const got: string[] = [];
  const ref = system.spawn<string>("recovering", () => ({
    receive(m) {
      if (m === "bad") throw new Error("bad");
      got.push(m);
    },
  }), { ...BP, restart: { backoffInitialMs: 60_000, backoffMaxMs: 60_000 } });
  await captureLogs(async () => {
    await ref.tell("bad");
    await ref.tell("a");
    await ref.tell("b");
    await clock.settle();
    strictEqual(statsOf(system, "recovering").state, "backoff");
    // No clock advance: the drain must not wait for the 60 s backoff.
    const t = await system.shutdown({ deadlineMs: 1000 });
    strictEqual(t.code, 0);
  });
  deepStrictEqual(got, ["a", "b"]);
  strictEqual(statsOf(system, "recovering").restarts, 1);
  strictEqual(clock.pendingTimers, 0);
});

Deno.test("shutdown: crashes during the drain skip the message and restart immediately", async () => {
  const { clock, system } = setup();
  const got: number[] = [];
  const ref = system.spawn<number>("odd", () => ({
    receive(n) {
      if (n % 2 === 1) throw new Error("odd");
      got.push(n);
    },
  }), { ...BP, restart: { maxRestarts: 10 } });
  for (let i = 0; i < 6; i++) await ref.tell(i);
  const t = await captureLogs(() => system.shutdown({ deadlineMs: 1000 }));
  strictEqual(t.result.code, 0);
  deepStrictEqual(got, [0, 2, 4]);
  strictEqual(statsOf(system, "odd").poison, 3);
  strictEqual(clock.now(), 0);
});

Deno.test("shutdown: escalation during a requested shutdown turns the exit code to 1", async () => {
  const { system } = setup();
  const ref = system.spawn<number>("fragile", () => ({
    receive() {
      throw new Error("nope");
    },
  }), { ...BP, restart: { maxRestarts: 1 } });
  for (let i = 0; i < 4; i++) await ref.tell(i);
  const { result: t } = await captureLogs(() => system.shutdown({ deadlineMs: 1000, reason: "SIGTERM" }));
  strictEqual(t.code, 1);
  ok(t.reason.startsWith('escalated: actor "fragile"'), t.reason);
  strictEqual(statsOf(system, "fragile").dropped.stopping, 2);
});

Deno.test("shutdown: failing and hanging flush hooks are bounded by flushMs and logged", async () => {
  const { clock, system } = setup();
  const ran: string[] = [];
  system.onFlush(() => Promise.reject(new Error("nats down")));
  system.onFlush(() => {
    ran.push("second");
    return new Promise<void>(() => {});
  });
  const { lines, result } = await captureLogs(async () => {
    let settled = false;
    const done = system.shutdown({ deadlineMs: 100, flushMs: 500 }).then((t) => {
      settled = true;
      return t;
    });
    await clock.advance(499);
    strictEqual(settled, false);
    await clock.advance(1);
    return await done;
  });
  deepStrictEqual(result, { code: 0, reason: "shutdown" });
  deepStrictEqual(ran, ["second"]);
  ok(lines.some((l) => l.msg === "flush hook failed" && l.error === "nats down"));
  ok(lines.some((l) => l.msg === "flush hooks did not finish in time"));
});

Deno.test("shutdown is idempotent and validates its options", async () => {
  const { system } = setup();
  throws(() => system.shutdown({ deadlineMs: -1 }), /deadlineMs/);
  const a = system.shutdown({ deadlineMs: 10, reason: "first" });
  const b = system.shutdown({ deadlineMs: 99, reason: "second" });
  strictEqual(a, b);
  strictEqual((await captureLogs(() => a)).result.reason, "first");
});

// ---------------------------------------------------------------- signal handling (in process)

function exitRecorder() {
  const codes: number[] = [];
  return { codes, exit: (code: number) => void codes.push(code) };
}

Deno.test("signal handler: the first signal drains and exits 0", async () => {
  const { clock, system } = setup();
  const got: number[] = [];
  const ref = system.spawn<number>("w", () => ({
    async receive(n) {
      await clock.sleep(10);
      got.push(n);
    },
  }), BP);
  for (let i = 0; i < 5; i++) await ref.tell(i);
  const { codes, exit } = exitRecorder();
  const flushed: number[] = [];
  const h = createSignalHandler(system, {
    deadlineMs: 1000,
    flushMs: 300,
    flush: (ms) => Promise.resolve(void flushed.push(ms)),
    exit,
  });
  await captureLogs(async () => {
    h.handle("SIGTERM");
    ok(system.stopping.aborted);
    await clock.advance(50);
    strictEqual(await h.exited, 0);
  });
  deepStrictEqual(got, [0, 1, 2, 3, 4]);
  deepStrictEqual(codes, [0]);
  deepStrictEqual(flushed, [300]);
  strictEqual((await system.terminated).reason, "SIGTERM");
});

Deno.test("signal handler: a second signal exits 1 at once, and exit is never called twice", async () => {
  const { clock, system } = setup();
  const g = gate();
  const ref = system.spawn<number>("blocked", () => ({ receive: () => g.wait }), BP);
  await ref.tell(1);
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, { deadlineMs: 60_000, exit });
  await captureLogs(async () => {
    h.handle("SIGINT");
    await clock.settle();
    deepStrictEqual(codes, []);
    h.handle("SIGINT");
    deepStrictEqual(codes, [1]);
    strictEqual(await h.exited, 1);
    g.open();
    await system.terminated;
    await clock.settle();
    h.handle("SIGTERM");
  });
  deepStrictEqual(codes, [1]);
});

Deno.test("signal handler: an escalation exits with the system's code 1 without any signal", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<number>("doomed", () => ({
    receive() {
      throw new Error("doomed");
    },
  }), { ...BP, restart: { maxRestarts: 0 } });
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, { deadlineMs: 1000, exit });
  const t: Termination = (await captureLogs(async () => {
    await ref.tell(1);
    await clock.settle();
    return await system.terminated;
  })).result;
  strictEqual(t.code, 1);
  strictEqual(await h.exited, 1);
  deepStrictEqual(codes, [1]);
});

Deno.test("signal handler: a finish runs first, with intake open; the drain gets what it left of the deadline", async () => {
  const { clock, system } = setup();
  const got: number[] = [];
  const ref = system.spawn<number>("w", () => ({ receive: (n) => void got.push(n) }), BP);
  const input = system.ingress(ref);
  const events: string[] = [];
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, {
    deadlineMs: 1000,
    exit,
    finish: async (ms, phase) => {
      events.push(`finish ${ms}`);
      phase("first");
      // Intake is still open: a live source's last rows still go in while the streams are finished.
      strictEqual(system.stopping.aborted, false);
      strictEqual(await input.tell(7), true);
      await clock.sleep(300);
      events.push("finished");
    },
  });
  const { lines } = await captureLogs(async () => {
    h.handle("SIGTERM");
    strictEqual(system.stopping.aborted, false);
    await clock.advance(300);
    strictEqual(await h.exited, 0);
  });
  deepStrictEqual(events, ["finish 1000", "finished"]);
  deepStrictEqual(got, [7]);
  deepStrictEqual(codes, [0]);
  strictEqual(lines.find((l) => l.msg === "shutting down")?.["deadlineMs"], 700);
  ok(lines.some((l) => l.msg === "streams in progress finished"));
});

Deno.test("signal handler: a finish phase that never answers does not hold the stop past the deadline", async () => {
  const { clock, system } = setup();
  const got: number[] = [];
  const ref = system.spawn<number>("w", () => ({ receive: (n) => void got.push(n) }), BP);
  await ref.tell(1);
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, {
    deadlineMs: 1000,
    exit,
    finish: (_ms, phase) => {
      phase("sources");
      phase("matcher");
      return new Promise<void>(() => {});
    },
  });
  const { lines } = await captureLogs(async () => {
    h.handle("SIGTERM");
    await clock.advance(999);
    strictEqual(system.stopping.aborted, false, "still finishing within the deadline");
    deepStrictEqual(codes, []);
    await clock.advance(1);
    strictEqual(await h.exited, 0);
  });
  strictEqual(clock.now(), 1000, "stopped at the deadline");
  deepStrictEqual(codes, [0]);
  const warn = lines.filter((l) => l.level === "warn");
  deepStrictEqual(warn.map((l) => [l["phase"], l["error"]]), [["matcher", "deadline passed"]]);
  strictEqual(lines.find((l) => l.msg === "shutting down")?.["deadlineMs"], 0);
  deepStrictEqual(got, [1], "taken before the signal");
});

Deno.test("signal handler: a failing finish is logged with its phase, and the drain gets the whole deadline left", async () => {
  const { system } = setup();
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, {
    deadlineMs: 1000,
    exit,
    finish: (_ms, phase) => {
      phase("bus");
      return Promise.reject(new Error('ask to actor "matcher" timed out'));
    },
  });
  const { lines } = await captureLogs(async () => {
    h.handle("SIGINT");
    strictEqual(await h.exited, 0);
  });
  deepStrictEqual(codes, [0]);
  const warn = lines.find((l) => l.level === "warn");
  deepStrictEqual([warn?.["phase"], warn?.["error"]], ["bus", 'ask to actor "matcher" timed out']);
  strictEqual(lines.find((l) => l.msg === "shutting down")?.["deadlineMs"], 1000);
});

Deno.test("signal handler: a second signal during the finish exits 1 at once", async () => {
  const { clock, system } = setup();
  const g = gate();
  const { codes, exit } = exitRecorder();
  const h = createSignalHandler(system, { deadlineMs: 60_000, exit, finish: () => g.wait });
  await captureLogs(async () => {
    h.handle("SIGTERM");
    await clock.advance(10);
    deepStrictEqual(codes, []);
    h.handle("SIGTERM");
    deepStrictEqual(codes, [1]);
    strictEqual(await h.exited, 1);
    g.open();
    await clock.settle();
  });
  deepStrictEqual(codes, [1]);
  strictEqual(system.stopping.aborted, false, "no drain begins after the exit");
  strictEqual(clock.pendingTimers, 0);
});

// ---------------------------------------------------------------- real processes, real signals

const FIXTURES = fileURLToPath(new URL("./fixtures_actors/", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Starts a fixture script with `deno run`; returns the child and a line reader over its stdout. */
function runFixture(script: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", `${FIXTURES}${script}`],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let buf = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  const waitFor = async (prefix: string): Promise<string> => {
    for (;;) {
      const hit = lines.find((l) => l.startsWith(prefix));
      if (hit !== undefined) return hit;
      const { value, done } = await reader.read();
      if (done) throw new Error(`fixture ended before printing "${prefix}"; got: ${lines.join(" | ")}`);
      buf += decoder.decode(value, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      lines.push(...parts);
    }
  };
  const rest = async (): Promise<string[]> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
    }
    if (buf) lines.push(...buf.split("\n").filter((l) => l.length > 0));
    buf = "";
    return lines;
  };
  const stderr = new Response(child.stderr).text();
  return { child, waitFor, rest, stderr };
}

function field(line: string | undefined, key: string): number {
  const m = line?.match(new RegExp(`\\b${key}=(\\d+)`));
  if (!m?.[1]) throw new Error(`no ${key}= in ${line}`);
  return Number(m[1]);
}

Deno.test("process: SIGTERM drains every queued message, flushes, and exits 0", async () => {
  const p = runFixture("drain_on_sigterm.ts");
  const ready = await p.waitFor("ready");
  const queued = field(ready, "queued");
  ok(queued > 100, ready); // most messages are still queued or parked when the signal arrives
  p.child.kill("SIGTERM");
  const [status, lines, stderr] = await Promise.all([p.child.status, p.rest(), p.stderr]);
  strictEqual(status.code, 0, stderr);
  const atStop = lines.find((l) => l.startsWith("stopping"));
  strictEqual(field(atStop, "processed"), 0);
  strictEqual(field(atStop, "lateAccepted"), 0);
  const stopped = lines.find((l) => l.startsWith("sink-stopped"));
  strictEqual(field(stopped, "processed"), 200);
  const flushed = lines.find((l) => l.startsWith("flushed"));
  strictEqual(field(flushed, "processed"), 200);
  strictEqual(field(flushed, "dropped"), 1); // the late ingress tell, counted as 'stopping'
  ok(stderr.includes('"msg":"signal received; shutting down"'), stderr);
});

Deno.test("process: an actor that keeps crashing escalates and the process exits non-zero", async () => {
  const p = runFixture("escalate.ts");
  const [status, lines, stderr] = await Promise.all([p.child.status, p.rest(), p.stderr]);
  strictEqual(status.code, 1, stderr);
  const done = lines.find((l) => l.startsWith("terminated"));
  ok(done?.includes("code=1"), lines.join("\n"));
  strictEqual(field(done, "healthyProcessed"), 3); // the healthy actor was still drained cleanly
  ok(stderr.includes('"component":"flaky"') && stderr.includes("restart limit exceeded"), stderr);
});
