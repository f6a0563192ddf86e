/**
 * Busy actors give the event loop a turn every few milliseconds (actors/runtime.ts, SLICE_MS): actors hand each
 * other messages in microtasks, and without these turns a timer, a socket read or a scrape would wait until
 * every mailbox is empty. State conditions only: what had been processed when a timer fired.
 */
import { equal, ok } from "node:assert/strict";
import process from "node:process";
import { actorBusyFraction, ActorSystem, SLICE_MS } from "../actors/runtime.ts";

/** Burns `ms` of this process's CPU time (however long a busy host takes to give it). */
function burnCpu(ms: number): void {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const end = cpu() + ms;
  while (cpu() < end) {
    // busy
  }
}

/** Burns `ms` of wall time (a stand-in for decoding and fingerprinting a row). */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

Deno.test("a busy pipeline lets a timer (and so I/O) run before its mailboxes are empty", async () => {
  const system = new ActorSystem();
  const total = 200;
  let processed = 0;
  const done = Promise.withResolvers<void>();
  // Two actors in a chain, each message synchronous and costing a slice's worth of CPU every few messages.
  const sink = system.spawn<number>("sink", () => ({
    receive(n) {
      burn(SLICE_MS / 4);
      processed++;
      if (n === total - 1) done.resolve();
    },
  }), { capacity: 16, overflow: "backpressure" });
  const head = system.spawn<number>("head", () => ({
    receive: (n) => sink.tell(n).then(() => {}),
  }), { capacity: total, overflow: "backpressure" });
  let atTimer = -1;
  // Armed before the work starts: it is due at once, but can only run on a turn of the event loop.
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      atTimer = processed;
      resolve();
    }, 0)
  );
  for (let i = 0; i < total; i++) head.tryTell(i);
  await done.promise;
  await timer;
  ok(atTimer >= 0, "the timer ran");
  ok(atTimer < total, `the timer waited for all ${total} messages (${total * SLICE_MS / 4} ms of work)`);
  equal(processed, total);
  const t = await system.shutdown({ deadlineMs: 1000 });
  equal(t.code, 0);
});

Deno.test("an idle system leaves no turn timer behind (nothing keeps a process or a test open)", async () => {
  const system = new ActorSystem();
  const done = Promise.withResolvers<void>();
  let n = 0;
  const a = system.spawn<number>("a", () => ({
    receive() {
      burn(SLICE_MS / 2);
      if (++n === 40) done.resolve();
    },
  }), { capacity: 64, overflow: "backpressure" });
  for (let i = 0; i < 40; i++) a.tryTell(i);
  await done.promise;
  // The test's op sanitizer fails the test if a timer armed for a turn were still pending at its end.
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("when the event loop's turns are long (a flood of input), the actors' slices grow to match", async () => {
  // A stand-in for I/O callbacks decoding a flood of responses: every turn of the event loop burns 30 ms of CPU.
  const burnMs = 30;
  let floods = 0;
  let flooding = true;
  const flood = () => {
    if (!flooding) return;
    burnCpu(burnMs);
    floods++;
    setTimeout(flood, 0);
  };
  const system = new ActorSystem();
  const total = 2000;
  let processed = 0;
  const done = Promise.withResolvers<void>();
  const a = system.spawn<number>("a", () => ({
    receive() {
      burn(0.2);
      if (++processed === total) done.resolve();
    },
  }), { capacity: total, overflow: "backpressure" });
  setTimeout(flood, 0);
  for (let i = 0; i < total; i++) a.tryTell(i);
  await done.promise;
  flooding = false;
  // With slices of SLICE_MS the actor would get 16 messages (3.2 ms, one look at the time) per 30 ms turn, a
  // tenth of the thread; with slices as long as the turns, up to 150 (fewer when a busy host deschedules it).
  const perTurn = total / Math.max(1, floods);
  ok(perTurn >= 30, `${perTurn.toFixed(0)} messages per flooded turn (${floods} turns)`);
  await system.shutdown({ deadlineMs: 1000 });
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("actorBusyFraction: near 1 while actors never run out of work, near 0 once they wait for input", async () => {
  const system = new ActorSystem();
  const worker = system.spawn<number>("worker", () => ({ receive: () => burn(1) }), {
    capacity: 100_000,
    overflow: "backpressure",
  });
  // Keep the mailbox fed for 2.5 s: the actor is always busy (timers still fire between its slices).
  const end = performance.now() + 2_500;
  let busy = 0;
  while (performance.now() < end) {
    // A few tens of ms of work queued at a time, no more: the idle part starts soon after the feeding stops.
    if (system.stats()[0]!.depth < 30) { for (let i = 0; i < 50; i++) void worker.tell(i); }
    await new Promise((r) => setTimeout(r, 10));
    busy = actorBusyFraction();
  }
  await system.settled();
  // Idle: the actors wait for input.
  await new Promise((r) => setTimeout(r, 2_500));
  const idle = actorBusyFraction();
  await system.shutdown({ deadlineMs: 1000 });
  ok(busy >= 0.9, `busy ${busy}`);
  ok(idle <= 0.1, `idle ${idle}`);
});
