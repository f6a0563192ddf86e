import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { Mailbox, Queue } from "../actors/mailbox.ts";

function takeAll<T>(mb: Mailbox<T>): T[] {
  const out: T[] = [];
  while (mb.size > 0) out.push(mb.take());
  return out;
}

Deno.test("Queue: FIFO across wrap-around and growth", () => {
  const q = new Queue<number>(4);
  const out: number[] = [];
  let next = 0;
  // Interleave pushes and shifts so the head wraps around the ring several times before and after growing.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < (round % 7) + 1; i++) q.push(next++);
    for (let i = 0; i < (round % 5) + 1 && q.size > 0; i++) out.push(q.shift());
  }
  while (q.size > 0) out.push(q.shift());
  deepStrictEqual(out, Array.from({ length: next }, (_, i) => i));
  throws(() => q.shift(), RangeError);
  strictEqual(q.peek(), undefined);
});

Deno.test("Queue: holds undefined items and drain empties in order", () => {
  const q = new Queue<number | undefined>(1);
  q.push(1);
  q.push(undefined);
  q.push(3);
  strictEqual(q.size, 3);
  strictEqual(q.peek(), 1);
  const seen: (number | undefined)[] = [];
  q.drain((x) => seen.push(x));
  deepStrictEqual(seen, [1, undefined, 3]);
  strictEqual(q.size, 0);
});

Deno.test("Queue.remove: takes out one item anywhere in a wrapped ring, the others keep their order", () => {
  const q = new Queue<number>(4);
  for (let i = 0; i < 3; i++) q.push(i);
  q.shift();
  q.shift();
  for (let i = 3; i < 6; i++) q.push(i); // 2..5, wrapped around the 4-slot ring
  strictEqual(q.remove(4), true);
  strictEqual(q.remove(9), false);
  strictEqual(q.size, 3);
  q.push(6);
  q.push(7); // grows past the slot freed
  const out: number[] = [];
  q.drain((x) => out.push(x));
  deepStrictEqual(out, [2, 3, 5, 6, 7]);
});

Deno.test("Mailbox: validates capacity and policy", () => {
  throws(() => new Mailbox(0, "backpressure"), /capacity/);
  throws(() => new Mailbox(1.5, "backpressure"), /capacity/);
  throws(() => new Mailbox(2, "drop-everything" as "backpressure"), /overflow policy/);
});

Deno.test("Mailbox drop-newest: a full mailbox discards the incoming message", async () => {
  const mb = new Mailbox<number>(2, "drop-newest");
  strictEqual(mb.offer(1), "enqueued");
  strictEqual(mb.offer(2), "enqueued");
  strictEqual(mb.offer(3), "dropped");
  strictEqual(await mb.put(4), false);
  deepStrictEqual(takeAll(mb), [1, 2]);
});

Deno.test("Mailbox drop-oldest: a full mailbox evicts the head and reports it", async () => {
  const evicted: number[] = [];
  const mb = new Mailbox<number>(3, "drop-oldest", (m) => evicted.push(m));
  for (let i = 1; i <= 5; i++) strictEqual(mb.offer(i), "enqueued");
  strictEqual(await mb.put(6), true);
  deepStrictEqual(evicted, [1, 2, 3]);
  deepStrictEqual(takeAll(mb), [4, 5, 6]);
});

Deno.test("Mailbox back-pressure: senders wait in FIFO order and are admitted one per take", async () => {
  const mb = new Mailbox<string>(2, "backpressure");
  strictEqual(mb.offer("a"), "enqueued");
  strictEqual(mb.offer("b"), "enqueued");
  strictEqual(mb.offer("c"), "full");
  const admitted: string[] = [];
  const pc = mb.park("c").then((ok) => ok && admitted.push("c"));
  const pd = mb.put("d").then((ok) => ok && admitted.push("d"));
  strictEqual(mb.waiting, 2);
  strictEqual(mb.size, 2);
  strictEqual(mb.take(), "a");
  // The freed slot goes to the first waiter; a newcomer may not overtake the queue of waiters.
  strictEqual(mb.size, 2);
  strictEqual(mb.waiting, 1);
  strictEqual(mb.offer("e"), "full");
  await pc;
  deepStrictEqual(admitted, ["c"]);
  strictEqual(mb.take(), "b");
  await pd;
  deepStrictEqual(admitted, ["c", "d"]);
  deepStrictEqual(takeAll(mb), ["c", "d"]);
  strictEqual(mb.offer("f"), "enqueued");
});

Deno.test("Mailbox.clear: discards held messages and releases waiting senders with false", async () => {
  const mb = new Mailbox<number>(1, "backpressure");
  mb.offer(1);
  const waiting = mb.put(2);
  const cleared: number[] = [];
  strictEqual(mb.clear((m) => cleared.push(m)), 2);
  deepStrictEqual(cleared, [1, 2]);
  strictEqual(await waiting, false);
  strictEqual(mb.size, 0);
  strictEqual(mb.waiting, 0);
});

Deno.test("Mailbox: a ring that has grown keeps order under sustained load", () => {
  const mb = new Mailbox<number>(1000, "drop-newest");
  const out: number[] = [];
  let next = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 90; i++) mb.offer(next++);
    for (let i = 0; i < 60; i++) out.push(mb.take());
  }
  out.push(...takeAll(mb));
  deepStrictEqual(out, Array.from({ length: next }, (_, i) => i));
});

/** A batch of `n` rows, named for the assertions. */
type Batch = { id: string; rows: number };
const rowsOf = (b: Batch) => b.rows;

Deno.test("Mailbox with weights: the bound is on rows, and drop-oldest evicts whole oldest batches until the new one fits", () => {
  const evicted: string[] = [];
  const mb = new Mailbox<Batch>(10, "drop-oldest", (b) => evicted.push(b.id), rowsOf);
  strictEqual(mb.offer({ id: "a", rows: 4 }), "enqueued");
  strictEqual(mb.offer({ id: "b", rows: 4 }), "enqueued");
  strictEqual(mb.load, 8);
  strictEqual(mb.size, 2);
  // 8 + 4 > 10: the oldest batch goes (one message, four rows), not the newest.
  strictEqual(mb.offer({ id: "c", rows: 4 }), "enqueued");
  deepStrictEqual(evicted, ["a"]);
  strictEqual(mb.load, 8);
  // A big batch pushes out as many old ones as it takes.
  strictEqual(mb.offer({ id: "d", rows: 9 }), "enqueued");
  deepStrictEqual(evicted, ["a", "b", "c"]);
  strictEqual(mb.load, 9);
  // Heavier than the whole capacity: it gets in alone (nothing else is held), so no sender waits forever.
  strictEqual(mb.offer({ id: "e", rows: 25 }), "enqueued");
  deepStrictEqual(evicted, ["a", "b", "c", "d"]);
  strictEqual(mb.load, 25);
  deepStrictEqual(takeAll(mb).map((b) => b.id), ["e"]);
  strictEqual(mb.load, 0);
});

Deno.test("Mailbox with weights: back-pressure admits waiting senders in order as their rows fit, several at one take", async () => {
  const mb = new Mailbox<Batch>(10, "backpressure", () => {}, rowsOf);
  strictEqual(mb.offer({ id: "a", rows: 8 }), "enqueued");
  strictEqual(mb.offer({ id: "b", rows: 3 }), "full");
  const admitted: string[] = [];
  const pb = mb.park({ id: "b", rows: 3 }).then((ok) => ok && admitted.push("b"));
  const pc = mb.put({ id: "c", rows: 2 }).then((ok) => ok && admitted.push("c"));
  // Room for c's 2 rows, but b waits ahead of it: a newcomer does not overtake.
  strictEqual(mb.offer({ id: "x", rows: 1 }), "full");
  strictEqual(mb.take().id, "a");
  await Promise.all([pb, pc]);
  deepStrictEqual(admitted, ["b", "c"]);
  strictEqual(mb.load, 5);
  strictEqual(mb.waiting, 0);
  // A batch larger than the capacity waits until the mailbox is empty, then enters alone.
  let big = false;
  const pd = mb.put({ id: "d", rows: 30 }).then((ok) => (big = ok));
  strictEqual(mb.take().id, "b");
  await Promise.resolve();
  strictEqual(big, false);
  strictEqual(mb.take().id, "c");
  await pd;
  strictEqual(big, true);
  strictEqual(mb.load, 30);
});

Deno.test("Mailbox.room: a producer waits for room without enqueuing, until its rows fit", async () => {
  const mb = new Mailbox<Batch>(10, "drop-oldest", () => {}, rowsOf);
  strictEqual(mb.room(10), undefined);
  strictEqual(mb.offer({ id: "a", rows: 6 }), "enqueued");
  strictEqual(mb.offer({ id: "b", rows: 3 }), "enqueued");
  strictEqual(mb.room(1), undefined);
  const ready: string[] = [];
  const r5 = mb.room(5)!.then(() => ready.push("5"));
  const r30 = mb.room(30)!.then(() => ready.push("30"));
  // Taking b's 3 rows would not do; taking a's 6 leaves room for 5, not yet for 30 (only an empty mailbox is).
  strictEqual(mb.take().id, "a");
  await r5;
  await Promise.resolve();
  deepStrictEqual(ready, ["5"]);
  strictEqual(mb.load, 3);
  strictEqual(mb.take().id, "b");
  await r30;
  deepStrictEqual(ready, ["5", "30"]);
  // Nothing was enqueued by waiting, and nothing dropped.
  strictEqual(mb.size, 0);
  // Clearing wakes the waiters too (the room they wait for is there).
  mb.offer({ id: "c", rows: 10 });
  const rc = mb.room(4)!;
  mb.clear(() => {});
  await rc;
});

Deno.test("Mailbox with weights: clear returns the rows discarded, held and waiting", async () => {
  const mb = new Mailbox<Batch>(10, "backpressure", () => {}, rowsOf);
  mb.offer({ id: "a", rows: 6 });
  mb.offer({ id: "b", rows: 4 });
  const waiting = mb.put({ id: "c", rows: 5 });
  strictEqual(mb.clear(() => {}), 15);
  strictEqual(await waiting, false);
  strictEqual(mb.load, 0);
});

/** `p`, or a failure after 20 s (a liveness bound: a wait that never ends is the bug, not a slow one). */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after 20 s`)), 20_000);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Mailbox.room: a wait given up (signal aborted) leaves the list, however long the mailbox stays full", async () => {
  const mb = new Mailbox<Batch>(10, "drop-oldest", () => {}, rowsOf);
  mb.offer({ id: "full", rows: 10 });
  // A producer giving up on each wait in turn (the reader's SOURCE_ROOM_WAIT_MS) while nothing is taken: before,
  // every abandoned wait stayed in the list, 1,000 of them here.
  for (let i = 0; i < 1000; i++) {
    const gaveUp = new AbortController();
    const wait = mb.room(5, gaveUp.signal)!;
    strictEqual(mb.waitingForRoom, 1);
    gaveUp.abort();
    await within(wait, "an aborted room wait");
    strictEqual(mb.waitingForRoom, 0);
  }
  // Already aborted: nothing to wait for, nothing listed.
  const aborted = AbortSignal.abort();
  await within(mb.room(5, aborted)!, "a room wait on an aborted signal");
  strictEqual(mb.waitingForRoom, 0);
  // A wait that got its room needs no abort to leave, and a later abort changes nothing.
  const late = new AbortController();
  const got = mb.room(5, late.signal)!;
  strictEqual(mb.take().id, "full");
  await within(got, "a room wait that got its room");
  strictEqual(mb.waitingForRoom, 0);
  late.abort();
  strictEqual(mb.waitingForRoom, 0);
});

Deno.test("Mailbox.room: an abandoned wait at the front does not hold back the waits behind it", async () => {
  const mb = new Mailbox<Batch>(10, "drop-oldest", () => {}, rowsOf);
  mb.offer({ id: "a", rows: 6 });
  mb.offer({ id: "b", rows: 4 });
  // A wait for 8 rows given up before any room was made, then a wait for 5.
  const gaveUp = new AbortController();
  const big = mb.room(8, gaveUp.signal)!;
  const small = mb.room(5)!;
  gaveUp.abort();
  await within(big, "the abandoned wait");
  // Taking a's 6 rows leaves room for 5, not 8: before, the abandoned wait for 8 at the front kept the wait for 5
  // waiting until b was taken too (here: for ever).
  strictEqual(mb.take().id, "a");
  await within(small, "the wait behind an abandoned one");
  strictEqual(mb.waitingForRoom, 0);
});
