// The checks' scheduler (audio/match/scheduler.ts): checks run at their due frame in the order they were
// scheduled (pre-checks and verifications alike), the final ones in the order of the due buckets an earlier
// scheduler kept (so results stay the same), and a stream with nothing pending holds nothing.
import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { CheckScheduler, spareLists } from "../audio/match/scheduler.ts";
import type { Signature } from "../audio/types.ts";

const SIG = { id: "sig" } as unknown as Signature;

/** A scheduler whose checks record what ran: `s@due` of verifications, `s?` of pre-checks, `!` when final. */
function recorder(onPrecheck?: (s: number) => void) {
  const ran: string[] = [];
  const touched: number[][] = [];
  const sched = new CheckScheduler<string[]>({
    check: (p, out, final) => {
      ran.push(`${p.s}@${p.due}${final ? "!" : ""}`);
      out.push(String(p.s));
      return false;
    },
    precheck: (slot, _gen, s, out, final) => {
      ran.push(`${s}?${final ? "!" : ""}`);
      out.push(String(s));
      onPrecheck?.(s);
      void slot;
    },
    touch: (slots, from, to) => touched.push([...slots.subarray(from, to)]),
  });
  /** Schedules a verification of s, due at `due`. */
  const verify = (s: number, due: number) => sched.schedule(sched.verification(SIG, 0, 0, s, due));
  return { sched, ran, touched, verify };
}

Deno.test("scheduler: due checks run in due order, those of one frame in scheduling order, pre-checks touched together", () => {
  const { sched, ran, touched, verify } = recorder();
  sched.start(0);
  sched.precheck(11, 0, 1, 30);
  sched.precheck(12, 0, 2, 10);
  verify(3, 30);
  sched.precheck(14, 0, 4, 20);
  sched.precheck(15, 0, 5, 30);
  verify(6, 10);
  sched.precheck(17, 0, 7, 30);
  strictEqual(sched.pending, 7);
  const out: string[] = [];
  sched.runDue(25, out);
  deepStrictEqual(ran, ["2?", "6@10", "4?"]);
  sched.runDue(40, out);
  deepStrictEqual(ran.slice(3), ["1?", "3@30", "5?", "7?"]);
  deepStrictEqual(touched, [[11, 15, 17]], "the slots of a frame's pre-checks, when more than one");
  strictEqual(sched.pending, 0);
  strictEqual(sched.bytes, 0, "nothing pending, nothing held");
});

Deno.test("scheduler: a check is due no earlier than the next frame to run; one scheduled while running waits for its frame", () => {
  const { sched, ran, verify } = recorder((s) => verify(s, 50));
  sched.start(0);
  const out: string[] = [];
  sched.runDue(9, out);
  sched.precheck(0, 0, 7, 3); // due before the next frame to run (10): runs at 10
  sched.runDue(10, out);
  deepStrictEqual(ran, ["7?"]);
  sched.runDue(49, out);
  strictEqual(ran.length, 1);
  sched.runDue(50, out);
  deepStrictEqual(ran, ["7?", "7@50"]);
  // Scheduled at its own due frame while that frame's checks run: it runs in that frame too.
  const again = recorder((s) => s === 9 && again.verify(10, 0));
  again.sched.start(0);
  again.sched.precheck(0, 0, 9, 5);
  again.sched.runDue(5, out);
  deepStrictEqual(again.ran, ["9?", "10@5"]);
});

Deno.test("scheduler: a pre-check is due within 128 frames of the next frame to run", () => {
  const { sched } = recorder();
  sched.start(100);
  sched.precheck(0, 0, 1, 227);
  throws(() => sched.precheck(0, 0, 1, 228), RangeError);
});

Deno.test("scheduler: at the end of a stream every check runs, ordered by due frame modulo 1024", () => {
  const { sched, ran, verify } = recorder();
  sched.start(1000);
  // Due at 1025 (bucket 1), 1030 (bucket 6), then 1020 (bucket 996): the buckets' order, not the frames'.
  sched.precheck(0, 0, 1, 1030);
  verify(2, 1020);
  sched.precheck(0, 0, 3, 1025);
  verify(4, 1030);
  sched.precheck(0, 0, 5, 1020);
  sched.runAll([]);
  deepStrictEqual(ran, ["3?!", "1?!", "4@1030!", "2@1020!", "5?!"]);
  strictEqual(sched.pending, 0);
  strictEqual(sched.bytes, 0);
});

Deno.test("scheduler: checks due far ahead and near run together in due and scheduling order, also over a jump", () => {
  const { sched, ran, verify } = recorder();
  sched.start(0);
  // Verifications due 300 and 1,000 from frame 0 (far ahead), then checks due 300 again and 290 from frame 201
  // (near).
  verify(1, 300);
  verify(2, 1000);
  verify(3, 300);
  const out: string[] = [];
  sched.runDue(200, out);
  strictEqual(ran.length, 0);
  verify(4, 300);
  sched.precheck(0, 0, 5, 290);
  sched.precheck(0, 0, 6, 300);
  strictEqual(sched.pending, 6);
  sched.runDue(299, out);
  deepStrictEqual(ran, ["5?"]);
  sched.runDue(300, out);
  deepStrictEqual(ran.slice(1), ["1@300", "3@300", "4@300", "6?"]);
  // A jump of many frames at once: what is due in between runs, in due order.
  verify(7, 500);
  sched.precheck(0, 0, 8, 400);
  sched.runDue(1_000_000, out);
  deepStrictEqual(ran.slice(5), ["8?", "7@500", "2@1000"]);
  strictEqual(sched.pending, 0);
  strictEqual(sched.bytes, 0);
});

Deno.test("scheduler: a stream's emptied lists serve the next stream that needs some, in the same order", () => {
  const a = recorder(), b = recorder();
  a.sched.start(0);
  b.sched.start(0);
  for (const [s, due] of [[1, 5], [2, 3], [3, 5]]) a.verify(s!, due!);
  const before = spareLists();
  a.sched.runDue(10, []);
  deepStrictEqual(a.ran, ["2@3", "1@5", "3@5"]);
  strictEqual(a.sched.bytes, 0, "nothing pending, nothing held");
  strictEqual(spareLists(), before + 2, "its two lists kept as spares");
  // Another stream takes them (no new lists) and finds them empty: its checks run as scheduled, no others.
  for (const [s, due] of [[4, 12], [5, 11], [6, 12]]) b.verify(s!, due!);
  strictEqual(spareLists(), before);
  b.sched.runDue(20, []);
  deepStrictEqual(b.ran, ["5@11", "4@12", "6@12"]);
  strictEqual(spareLists(), before + 2);
});

Deno.test("scheduler: a lane of pre-checks grows past its first entries and keeps their order", () => {
  const { sched, ran } = recorder();
  sched.start(0);
  const want: string[] = [];
  for (let s = 0; s < 200; s++) {
    sched.precheck(0, 0, s, 10 + (s % 3));
    if (s % 3 === 0) want.push(`${s}?`);
  }
  sched.runDue(10, []);
  deepStrictEqual(ran, want);
  strictEqual(sched.pending, 133);
});

Deno.test("scheduler: a pre-check due at any of the lane's frames runs at that frame, lap after lap", () => {
  // The lane tells which of its 128 due frames have pre-checks from a mask (a bit each, four words): every bit is
  // set when its frame gets one and cleared when it runs, across each word's edges and the lane's wrap.
  const { sched, ran } = recorder();
  sched.start(0);
  const at = new Map<number, number>();
  for (let t = 0; t < 600; t++) {
    // Due 1 to 127 frames ahead, more than one frame's at times, none at others.
    for (const ahead of [1 + (t % 127), (7 * t) % 127 + 1]) {
      if ((t + ahead) % 5 === 3) continue;
      sched.precheck(0, 0, t + ahead, t + ahead);
      at.set(t + ahead, (at.get(t + ahead) ?? 0) + 1);
    }
    ran.length = 0;
    sched.runDue(t, []);
    deepStrictEqual(ran, Array.from({ length: at.get(t) ?? 0 }, () => `${t}?`), `frame ${t}`);
  }
});
