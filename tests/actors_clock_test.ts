import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { SystemClock, VirtualClock } from "../actors/clock.ts";

Deno.test("VirtualClock: timers fire in due order, ties in creation order, at their own due time", async () => {
  const clock = new VirtualClock(1000);
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push(`c@${clock.now()}`));
  clock.setTimer(10, () => fired.push(`a@${clock.now()}`));
  clock.setTimer(10, () => fired.push(`b@${clock.now()}`));
  clock.setTimer(50, () => fired.push(`late@${clock.now()}`));
  await clock.advance(30);
  deepStrictEqual(fired, ["a@1010", "b@1010", "c@1030"]);
  strictEqual(clock.now(), 1030);
  strictEqual(clock.pendingTimers, 1);
  await clock.advance(19);
  strictEqual(fired.length, 3);
  await clock.advance(1);
  deepStrictEqual(fired.at(-1), "late@1050");
});

Deno.test("VirtualClock: timers created by timers fire within the same advance", async () => {
  const clock = new VirtualClock();
  const fired: number[] = [];
  clock.setTimer(10, () => {
    fired.push(clock.now());
    clock.setTimer(10, () => fired.push(clock.now()));
    clock.setTimer(100, () => fired.push(clock.now()));
  });
  await clock.advance(25);
  deepStrictEqual(fired, [10, 20]);
  strictEqual(clock.now(), 25);
});

Deno.test("VirtualClock: microtask chains settle between timers", async () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  clock.setTimer(5, () => {
    // A deep promise chain started by the first timer must complete before the second timer fires.
    let p = Promise.resolve();
    for (let i = 0; i < 50; i++) p = p.then(() => undefined);
    void p.then(() => log.push("chain done"));
  });
  clock.setTimer(6, () => log.push("second timer"));
  await clock.advance(10);
  deepStrictEqual(log, ["chain done", "second timer"]);
});

Deno.test("VirtualClock: an awaiting async function sleeps in virtual time", async () => {
  const clock = new VirtualClock();
  const marks: number[] = [];
  const task = (async () => {
    for (let i = 0; i < 3; i++) {
      await clock.sleep(100);
      marks.push(clock.now());
    }
  })();
  await clock.advance(250);
  deepStrictEqual(marks, [100, 200]);
  await clock.advance(50);
  deepStrictEqual(marks, [100, 200, 300]);
  await task;
});

Deno.test("VirtualClock: clearTimer cancels; unknown handles are ignored", async () => {
  const clock = new VirtualClock();
  let fired = 0;
  const h = clock.setTimer(10, () => fired++);
  clock.setTimer(20, () => fired++);
  clock.clearTimer(h);
  clock.clearTimer(9999);
  strictEqual(clock.pendingTimers, 1);
  await clock.advance(100);
  strictEqual(fired, 1);
  strictEqual(clock.pendingTimers, 0);
});

Deno.test("VirtualClock: sleep rejects with the abort reason and cancels its timer", async () => {
  const clock = new VirtualClock();
  const ac = new AbortController();
  const p = clock.sleep(1000, ac.signal);
  strictEqual(clock.pendingTimers, 1);
  ac.abort(new Error("stop now"));
  await rejects(p, /stop now/);
  strictEqual(clock.pendingTimers, 0);
  await rejects(clock.sleep(5, ac.signal), /stop now/);
});

Deno.test("VirtualClock: runUntilIdle fires everything and guards against runaway timers", async () => {
  const clock = new VirtualClock();
  const fired: number[] = [];
  clock.setTimer(500, () => fired.push(clock.now()));
  clock.setTimer(5, () => clock.setTimer(1000, () => fired.push(clock.now())));
  await clock.runUntilIdle();
  deepStrictEqual(fired, [500, 1005]);

  const tick = () => clock.setTimer(1, tick);
  tick();
  await rejects(clock.runUntilIdle(50), /reschedules itself forever/);
});

Deno.test("VirtualClock: advance rejects negative spans; negative delays count as zero", async () => {
  const clock = new VirtualClock();
  await rejects(clock.advance(-1), RangeError);
  let fired = false;
  clock.setTimer(-5, () => fired = true);
  await clock.advance(0);
  ok(fired);
  strictEqual(clock.now(), 0);
});

Deno.test("SystemClock: timers, clearTimer, sleep and abort on the real clock", async () => {
  const clock = new SystemClock();
  const t0 = clock.now();
  let fired = false;
  await new Promise<void>((resolve) => clock.setTimer(1, () => resolve()));
  const h = clock.setTimer(1, () => fired = true);
  clock.clearTimer(h);
  await clock.sleep(5);
  strictEqual(fired, false);
  ok(clock.now() >= t0);
  const ac = new AbortController();
  const p = clock.sleep(60_000, ac.signal);
  ac.abort(new Error("aborted"));
  await rejects(p, /aborted/);
});
