import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { VirtualClock } from "../actors/clock.ts";
import {
  ActorCrashedError,
  type ActorRef,
  ActorStoppedError,
  ActorSystem,
  AskTimeoutError,
  type Behavior,
  MessageDroppedError,
  type SpawnOptions,
} from "../actors/runtime.ts";
import { captureLogs, gate, setup, statsOf } from "./fixtures_actors/helpers.ts";
import { setLogSink } from "../util/log.ts";

// Quiet by default; tests that assert on log lines capture them with captureLogs.
setLogSink(() => {});

const BP: SpawnOptions = { capacity: 16, overflow: "backpressure" };

Deno.test("messages are processed one at a time, in order, even when receive is async", async () => {
  const { clock, system } = setup();
  const seen: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const ref = system.spawn<number>("seq", () => ({
    async receive(n) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await clock.sleep(n % 3 === 0 ? 30 : 5);
      seen.push(n);
      inFlight--;
    },
  }), BP);
  for (let i = 0; i < 10; i++) strictEqual(await ref.tell(i), true);
  await clock.advance(1000);
  deepStrictEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  strictEqual(maxInFlight, 1);
  strictEqual(statsOf(system, "seq").processed, 10);
});

Deno.test("the factory runs after spawn returns, so it may refer to actors spawned later", async () => {
  const { clock, system } = setup();
  const got: string[] = [];
  // `sink` is declared after `head`; the factory only runs in a microtask, after both exist.
  const head: ActorRef<string> = system.spawn<string>("head", () => {
    const next = sink;
    return { receive: (m) => void next.tell(m.toUpperCase()) };
  }, BP);
  const sink = system.spawn<string>("sink", () => ({ receive: (m) => void got.push(m) }), BP);
  await head.tell("a");
  await head.tell("b");
  await clock.settle();
  deepStrictEqual(got, ["A", "B"]);
});

Deno.test("spawn rejects duplicate names, empty names and bad options", () => {
  const { system } = setup();
  system.spawn("a", () => ({ receive() {} }), BP);
  throws(() => system.spawn("a", () => ({ receive() {} }), BP), /already exists/);
  throws(() => system.spawn("", () => ({ receive() {} }), BP), /empty/);
  throws(
    () => system.spawn("b", () => ({ receive() {} }), { capacity: 0, overflow: "backpressure" }),
    /capacity/,
  );
  throws(
    () => system.spawn("c", () => ({ receive() {} }), { ...BP, restart: { factor: 0 } }),
    /restart.factor/,
  );
  const foreign = new ActorSystem({ clock: new VirtualClock() }).spawn("a", () => ({ receive() {} }), BP);
  throws(() => system.ingress(foreign), /does not belong/);
});

Deno.test("back-pressure: tell waits for room and resolves once the message is enqueued", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const seen: number[] = [];
  const ref = system.spawn<number>("slow", () => ({
    async receive(n) {
      if (n === 0) await g.wait;
      seen.push(n);
    },
  }), { capacity: 2, overflow: "backpressure" });
  await ref.tell(0);
  await clock.settle(); // 0 is now in receive, blocked on the gate
  strictEqual(await ref.tell(1), true);
  strictEqual(await ref.tell(2), true);
  let resolved3 = false;
  const t3 = ref.tell(3).then((v) => {
    resolved3 = true;
    return v;
  });
  strictEqual(ref.tryTell(99), false); // no room: tryTell does not wait
  await clock.settle();
  strictEqual(resolved3, false);
  deepStrictEqual(statsOf(system, "slow"), {
    ...statsOf(system, "slow"),
    depth: 2,
    waitingSenders: 1,
  });
  g.open();
  strictEqual(await t3, true);
  ok(resolved3);
  await clock.settle();
  deepStrictEqual(seen, [0, 1, 2, 3]);
  // Only the tryTell counted as a drop; a waiting sender is not a drop.
  strictEqual(statsOf(system, "slow").dropped.overflow, 1);
  strictEqual(metrics.droppedTotal("slow", "overflow"), 1);
  strictEqual(metrics.lastDepth("slow"), 0);
});

Deno.test("drop-newest: a full mailbox drops the incoming message, counted, tell never waits", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const seen: number[] = [];
  const ref = system.spawn<number>("dn", () => ({
    async receive(n) {
      if (n === 0) await g.wait;
      seen.push(n);
    },
  }), { capacity: 3, overflow: "drop-newest" });
  await ref.tell(0);
  await clock.settle();
  const results: boolean[] = [];
  for (let i = 1; i <= 6; i++) results.push(await ref.tell(i));
  deepStrictEqual(results, [true, true, true, false, false, false]);
  g.open();
  await clock.settle();
  deepStrictEqual(seen, [0, 1, 2, 3]);
  strictEqual(statsOf(system, "dn").dropped.overflow, 3);
  strictEqual(metrics.droppedTotal("dn", "overflow"), 3);
});

Deno.test("drop-oldest: a full mailbox evicts the oldest message, counted, keeps the newest", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const seen: number[] = [];
  const ref = system.spawn<number>("do", () => ({
    async receive(n) {
      if (n === 0) await g.wait;
      seen.push(n);
    },
  }), {
    capacity: 3,
    overflow: "drop-oldest",
    onDrop: (n, reason) => void dropped.push(`${n} ${reason}`),
  });
  const dropped: string[] = [];
  await ref.tell(0);
  await clock.settle();
  for (let i = 1; i <= 7; i++) strictEqual(await ref.tell(i), true);
  strictEqual(ref.tryTell(8), true);
  g.open();
  await clock.settle();
  deepStrictEqual(seen, [0, 6, 7, 8]);
  strictEqual(statsOf(system, "do").dropped.overflow, 5);
  strictEqual(metrics.droppedTotal("do", "overflow"), 5);
  // The spawner hears of each message dropped (a reader notes the rows its mailbox lost).
  deepStrictEqual(dropped, ["1 overflow", "2 overflow", "3 overflow", "4 overflow", "5 overflow"]);
});

Deno.test("drop-oldest with weights: batches are bounded, dropped and counted by their rows", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const seen: string[] = [];
  type B = { id: string; rows: number[] };
  const ref = system.spawn<B>("rows", () => ({
    async receive(b) {
      if (b.id === "first") await g.wait;
      seen.push(b.id);
    },
  }), { capacity: 100, overflow: "drop-oldest", weigh: (b) => b.rows.length });
  const batch = (id: string, n: number): B => ({ id, rows: Array.from({ length: n }, (_, i) => i) });
  await ref.tell(batch("first", 1));
  await clock.settle();
  for (let i = 0; i < 5; i++) strictEqual(await ref.tell(batch(`b${i}`, 40)), true);
  // 5 batches of 40 rows into room for 100: the three oldest went, 120 rows, counted as rows.
  strictEqual(statsOf(system, "rows").depth, 80);
  strictEqual(statsOf(system, "rows").dropped.overflow, 120);
  strictEqual(metrics.droppedTotal("rows", "overflow"), 120);
  strictEqual(metrics.lastDepth("rows"), 80);
  g.open();
  await clock.settle();
  deepStrictEqual(seen, ["first", "b3", "b4"]);
  strictEqual(statsOf(system, "rows").depth, 0);
});

Deno.test("mailbox depth is reported to the metrics hook and in stats", async () => {
  const { clock, metrics, system } = setup();
  const g = gate();
  const ref = system.spawn<number>("depth", () => ({
    async receive(n) {
      if (n === 0) await g.wait;
    },
  }), { capacity: 8, overflow: "backpressure" });
  await ref.tell(0);
  await clock.settle();
  for (let i = 1; i <= 4; i++) await ref.tell(i);
  strictEqual(metrics.lastDepth("depth"), 4);
  const s = statsOf(system, "depth");
  strictEqual(s.depth, 4);
  strictEqual(s.capacity, 8);
  strictEqual(s.overflow, "backpressure");
  strictEqual(s.state, "running");
  g.open();
  await clock.settle();
  strictEqual(metrics.lastDepth("depth"), 0);
  strictEqual(statsOf(system, "depth").processed, 5);
});

type Req = { q: number; reply: (r: number) => void } | { q: "ignore"; reply: (r: number) => void };

Deno.test("ask: request/reply resolves with the reply", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<Req>("sq", () => ({
    receive(m) {
      if (typeof m.q === "number") m.reply(m.q * m.q);
    },
  }), BP);
  const r = ref.ask<number>((reply) => ({ q: 7, reply }), 1000);
  await clock.settle();
  strictEqual(await r, 49);
  strictEqual(clock.pendingTimers, 0); // the timeout timer was cleared
});

Deno.test("ask: times out in virtual time with a clear error, not before", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<Req>("mute", () => ({ receive() {} }), BP);
  let settled = false;
  const r = ref.ask<number>((reply) => ({ q: "ignore", reply }), 500);
  const caught = r.catch((e: unknown) => {
    settled = true;
    return e;
  });
  await clock.advance(499);
  strictEqual(settled, false);
  await clock.advance(1);
  const err = await caught;
  ok(err instanceof AskTimeoutError);
  strictEqual(err.message, 'ask to actor "mute" timed out after 500 ms');
});

Deno.test("ask: a late reply after the timeout is ignored", async () => {
  const { clock, system } = setup();
  let saved: ((r: number) => void) | undefined;
  const ref = system.spawn<Req>("late", () => ({ receive: (m) => void (saved = m.reply) }), BP);
  const r = rejects(ref.ask<number>((reply) => ({ q: 1, reply }), 100), AskTimeoutError);
  await clock.advance(100);
  await r;
  saved?.(5); // must not throw or resolve anything
});

Deno.test("ask: a message that crashes the actor fails the ask at once with the cause", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<Req>("crashy", () => ({
    receive() {
      throw new Error("division by zero");
    },
  }), BP);
  await captureLogs(async () => {
    const r = rejects(
      ref.ask<number>((reply) => ({ q: 1, reply }), 60_000),
      (e: unknown) => e instanceof ActorCrashedError && /division by zero/.test(e.message),
    );
    await clock.settle();
    await r;
  });
});

Deno.test("ask: a message dropped on overflow fails the ask at once", async () => {
  const { clock, system } = setup();
  const g = gate();
  const ref = system.spawn<Req>("full", () => ({
    async receive(m) {
      await g.wait;
      m.reply(0);
    },
  }), { capacity: 1, overflow: "drop-newest" });
  const first = ref.ask<number>((reply) => ({ q: 1, reply }), 60_000);
  await clock.settle();
  const second = ref.ask<number>((reply) => ({ q: 2, reply }), 60_000); // fills the mailbox
  const third = ref.ask<number>((reply) => ({ q: 3, reply }), 60_000); // dropped
  await rejects(third, (e: unknown) => e instanceof MessageDroppedError && e.reason === "overflow");
  g.open();
  strictEqual(await first, 0);
  strictEqual(await second, 0);
});

Deno.test("ask: to a stopped actor rejects at once", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<Req>("gone", () => ({ receive: (m) => m.reply(1) }), BP);
  const p = system.shutdown({ deadlineMs: 1000 });
  await clock.settle();
  await p;
  await rejects(ref.ask<number>((reply) => ({ q: 1, reply }), 60_000), ActorStoppedError);
  strictEqual(clock.pendingTimers, 0);
  strictEqual(await ref.tell({ q: 1, reply: () => {} }), false);
  strictEqual(ref.tryTell({ q: 1, reply: () => {} }), false);
  strictEqual(statsOf(system, "gone").dropped.stopping, 2);
});

Deno.test("ask: a throwing message builder rejects the ask", async () => {
  const { system } = setup();
  const ref = system.spawn<Req>("b", () => ({ receive() {} }), BP);
  await rejects(
    ref.ask<number>(() => {
      throw new Error("cannot build");
    }, 100),
    /cannot build/,
  );
});

const RESTART = { maxRestarts: 3, windowMs: 10_000, backoffInitialMs: 100, backoffMaxMs: 1000, factor: 2 };

Deno.test("crash: the crashing message is counted as poison and not redelivered; restart after backoff with fresh state", async () => {
  const { clock, metrics, system } = setup();
  const seen: string[] = [];
  let built = 0;
  const ref = system.spawn<string>("counter", (ctx) => {
    built++;
    let count = 0; // per-incarnation state
    return {
      receive(m) {
        count++;
        if (m === "payload-7f3a") throw new Error("kaboom");
        seen.push(`${ctx.incarnation}:${m}:${count}`);
      },
    };
  }, { ...BP, restart: RESTART });
  const { lines } = await captureLogs(async () => {
    await ref.tell("x");
    await ref.tell("payload-7f3a");
    await ref.tell("y");
    await ref.tell("z");
    await clock.settle();
    deepStrictEqual(seen, ["0:x:1"]);
    let s = statsOf(system, "counter");
    strictEqual(s.state, "backoff");
    strictEqual(s.poison, 1);
    strictEqual(s.restarts, 0);
    strictEqual(s.depth, 2); // y and z wait in the mailbox during the backoff
    await clock.advance(99);
    deepStrictEqual(seen, ["0:x:1"]);
    await clock.advance(1);
    // Fresh state (count restarts at 1); the crashing message is not redelivered.
    deepStrictEqual(seen, ["0:x:1", "1:y:1", "1:z:2"]);
    s = statsOf(system, "counter");
    strictEqual(s.state, "running");
    strictEqual(s.restarts, 1);
    strictEqual(s.poison, 1);
    strictEqual(s.processed, 3);
  });
  strictEqual(built, 2);
  strictEqual(metrics.count("poison", "counter"), 1);
  strictEqual(metrics.count("restarted", "counter"), 1);
  // The error is logged under the actor's name with its message, never the payload.
  const err = lines.find((l) => l.level === "error" && l.component === "counter");
  ok(err);
  strictEqual(err.error, "kaboom");
  ok(!JSON.stringify(lines).includes("payload-7f3a"), "payload must not be logged");
});

Deno.test("crash: a rejected promise from receive is a crash too", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<number>("rej", () => ({
    async receive(n) {
      await clock.sleep(1);
      if (n === 1) throw new Error("async failure");
    },
  }), { ...BP, restart: RESTART });
  await captureLogs(async () => {
    await ref.tell(1);
    await ref.tell(2);
    await clock.advance(1);
    strictEqual(statsOf(system, "rej").poison, 1);
    await clock.advance(101);
    strictEqual(statsOf(system, "rej").processed, 1);
  });
});

Deno.test("crash: backoff grows exponentially and the incarnation's signal is aborted", async () => {
  const { clock, system } = setup();
  const starts: number[] = [];
  const signals: AbortSignal[] = [];
  const ref = system.spawn<string>("flaky", (ctx) => {
    starts.push(clock.now());
    signals.push(ctx.signal);
    return {
      receive() {
        throw new Error("always");
      },
    };
  }, { ...BP, restart: { ...RESTART, maxRestarts: 5 } });
  await captureLogs(async () => {
    await clock.settle();
    for (let i = 0; i < 4; i++) {
      await ref.tell("m");
      await clock.advance(2000);
    }
  });
  // Crashes at 0, 2000+100, 4000+... each restart waits 100, 200, 400, 800 ms after its crash.
  deepStrictEqual(starts.map((t, i) => i === 0 ? t : t - Math.floor(t / 2000) * 2000), [
    0,
    100,
    200,
    400,
    800,
  ]);
  ok(signals.slice(0, 4).every((s) => s.aborted));
  strictEqual(signals[4]?.aborted, false);
});

Deno.test("crash: onStop('crash') runs on the crashed incarnation before the restart", async () => {
  const { clock, system } = setup();
  const events: string[] = [];
  const ref = system.spawn<string>("res", (ctx) => ({
    onStart: () => void events.push(`start ${ctx.incarnation}`),
    receive: () => {
      throw new Error("x");
    },
    onStop: (reason) => void events.push(`stop ${ctx.incarnation} ${reason}`),
  }), { ...BP, restart: RESTART });
  await captureLogs(async () => {
    await ref.tell("a");
    await clock.advance(100);
  });
  deepStrictEqual(events, ["start 0", "stop 0 crash", "start 1"]);
});

Deno.test("crash: failing onStart or factory counts as a crash and is retried with backoff", async () => {
  const { clock, system } = setup();
  let attempts = 0;
  const got: string[] = [];
  const ref = system.spawn<string>("starter", () => {
    attempts++;
    if (attempts === 1) throw new Error("factory failed");
    return {
      onStart() {
        if (attempts === 2) return Promise.reject(new Error("onStart failed"));
      },
      receive: (m) => void got.push(m),
    };
  }, { ...BP, restart: RESTART });
  await captureLogs(async () => {
    await ref.tell("queued");
    await clock.settle();
    strictEqual(statsOf(system, "starter").state, "backoff");
    await clock.advance(100); // second attempt: onStart fails
    strictEqual(attempts, 2);
    deepStrictEqual(got, []);
    await clock.advance(200);
  });
  strictEqual(attempts, 3);
  deepStrictEqual(got, ["queued"]);
  const s = statsOf(system, "starter");
  strictEqual(s.poison, 0);
  strictEqual(s.restarts, 2);
});

Deno.test("escalation: more than maxRestarts in the window shuts the system down with code 1", async () => {
  const { clock, metrics, system } = setup();
  const downstream: number[] = [];
  const g = gate();
  let stopped = false;
  const bad = system.spawn<number>("bad", () => ({
    receive() {
      throw new Error("bad data");
    },
  }), { ...BP, restart: { ...RESTART, maxRestarts: 2 } });
  const other = system.spawn<number>("other", () => ({
    async receive(n) {
      await g.wait;
      downstream.push(n);
    },
    onStop: () => void (stopped = true),
  }), BP);
  const { lines } = await captureLogs(async () => {
    await other.tell(1);
    await other.tell(2);
    for (let i = 0; i < 6; i++) await bad.tell(i);
    await clock.advance(100); // crash 1 at 0, restart at 100, crash 2
    await clock.advance(200); // restart at 300, crash 3 > maxRestarts: escalate
    strictEqual(statsOf(system, "bad").state, "failed");
    ok(system.stopping.aborted);
    g.open();
    const t = await system.terminated;
    strictEqual(t.code, 1);
    ok(t.reason.includes('actor "bad"'), t.reason);
    ok(t.reason.includes("2 restarts within 10000 ms"), t.reason);
  });
  // Clean shutdown: the healthy actor drained and stopped.
  deepStrictEqual(downstream, [1, 2]);
  ok(stopped);
  const s = statsOf(system, "bad");
  strictEqual(s.poison, 3);
  strictEqual(s.restarts, 2);
  strictEqual(s.dropped.stopping, 3); // the three messages still queued when it gave up
  strictEqual(metrics.count("escalated", "bad"), 1);
  ok(lines.some((l) => l.component === "bad" && l.msg === "restart limit exceeded; escalating"));
  strictEqual(await bad.tell(9), false);
});

Deno.test("escalation: crashes spread wider than the window keep restarting", async () => {
  const { clock, system } = setup();
  const ref = system.spawn<number>("rare", () => ({
    receive() {
      throw new Error("rare");
    },
  }), { ...BP, restart: { ...RESTART, maxRestarts: 1, windowMs: 1000 } });
  await captureLogs(async () => {
    for (let i = 0; i < 5; i++) {
      await ref.tell(i);
      await clock.advance(1500);
    }
  });
  const s = statsOf(system, "rare");
  strictEqual(s.state, "running");
  strictEqual(s.poison, 5);
  strictEqual(s.restarts, 5);
  strictEqual(system.stopping.aborted, false);
});

Deno.test("a long synchronous burst to one actor does not starve another", async () => {
  const { clock, system } = setup();
  const order: string[] = [];
  const a = system.spawn<number>("a", () => ({ receive: (n) => void order.push(`a${n}`) }), {
    capacity: 2000,
    overflow: "backpressure",
  });
  const b = system.spawn<number>("b", () => ({ receive: (n) => void order.push(`b${n}`) }), BP);
  await clock.settle();
  for (let i = 0; i < 1000; i++) a.tryTell(i);
  b.tryTell(0);
  await clock.settle();
  strictEqual(order.length, 1001);
  // b's message is handled before a's burst is through.
  ok(order.indexOf("b0") < order.indexOf("a999"));
  strictEqual(statsOf(system, "a").processed, 1000);
});

Deno.test("behaviours see their context: name, self, clock, logger, incarnation", async () => {
  const { clock, system } = setup();
  const notes: string[] = [];
  const ref: ActorRef<string> = system.spawn<string>("ctx", (ctx) => {
    const b: Behavior<string> = {
      receive(m, c) {
        notes.push(`${c.name} ${m} ${c.clock.now()} ${c.incarnation} ${c.self === ref}`);
        if (m === "again") return;
        void c.self.tell("again");
      },
    };
    ok(typeof ctx.log.info === "function");
    return b;
  }, BP);
  await clock.advance(42);
  await ref.tell("hi");
  await clock.settle();
  deepStrictEqual(notes, ["ctx hi 42 0 true", "ctx again 42 0 true"]);
});

Deno.test("settled resolves once every actor is idle, messages they send each other included", async () => {
  const { system } = setup();
  const got: string[] = [];
  const g = gate();
  const sink = system.spawn<string>("sink", () => ({
    async receive(m) {
      if (m === "b") await g.wait;
      got.push(m);
    },
  }), BP);
  const head = system.spawn<string>("head", () => ({ receive: (m) => void sink.tell(m) }), BP);
  await head.tell("a");
  await head.tell("b");
  await head.tell("c");
  let settled = false;
  const done = system.settled().then(() => settled = true);
  for (let i = 0; i < 20; i++) await Promise.resolve();
  strictEqual(settled, false, "the sink still waits inside a receive");
  strictEqual(system.idle, false);
  deepStrictEqual(got, ["a"]);
  g.open();
  await done;
  deepStrictEqual(got, ["a", "b", "c"]);
  strictEqual(system.idle, true);
  strictEqual(await system.settled().then(() => true), true, "at once when nothing is queued");
});
