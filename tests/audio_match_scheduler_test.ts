// The checks' scheduler (audio/match/scheduler.ts): checks run at their due frame in the order they were
// scheduled, the final ones in the order of the due buckets an earlier scheduler kept (so results stay the
// same), and a stream with nothing pending holds nothing.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { CheckScheduler, type Pending, spareLists } from "../audio/match/scheduler.ts";
import type { Signature } from "../audio/types.ts";

const SIG = { id: "sig" } as unknown as Signature;

function recorder(reschedule?: (p: Pending) => boolean) {
  const ran: string[] = [];
  const touched: number[][] = [];
  const sched = new CheckScheduler<string[]>({
    check: (p, out, final) => {
      ran.push(`${p.s}@${p.due}${final ? "!" : ""}`);
      out.push(String(p.s));
      return reschedule?.(p) ?? false;
    },
    touch: (now, due) => touched.push([due, now.length]),
  });
  return { sched, ran, touched };
}

Deno.test("scheduler: due checks run in due order, those of one frame in scheduling order, touched together", () => {
  const { sched, ran, touched } = recorder();
  sched.start(0);
  for (const [s, due] of [[1, 30], [2, 10], [3, 30], [4, 20], [5, 30], [6, 10]]) {
    sched.precheck(SIG, 0, 0, s!, due!);
  }
  strictEqual(sched.pending, 6);
  const out: string[] = [];
  sched.runDue(25, out);
  deepStrictEqual(ran, ["2@10", "6@10", "4@20"]);
  sched.runDue(40, out);
  deepStrictEqual(ran.slice(3), ["1@30", "3@30", "5@30"]);
  deepStrictEqual(touched, [[10, 2], [30, 3]]);
  strictEqual(sched.pending, 0);
  strictEqual(sched.bytes, 0, "nothing pending, nothing held");
});

Deno.test("scheduler: a check is due no earlier than the next frame to run; a rescheduled one waits for its frame", () => {
  let again = true;
  const { sched, ran } = recorder((p) => {
    if (!again) return false;
    again = false;
    p.due = 50;
    p.verify = true;
    sched.schedule(p);
    return true;
  });
  sched.start(0);
  const out: string[] = [];
  sched.runDue(9, out);
  sched.precheck(SIG, 0, 0, 7, 3); // due before the next frame to run (10): runs at 10
  sched.runDue(10, out);
  deepStrictEqual(ran, ["7@10"]);
  sched.runDue(49, out);
  strictEqual(ran.length, 1);
  sched.runDue(50, out);
  deepStrictEqual(ran, ["7@10", "7@50"]);
});

Deno.test("scheduler: at the end of a stream every check runs, ordered by due frame modulo 1024", () => {
  const { sched, ran } = recorder();
  sched.start(1000);
  // Due at 1025 (bucket 1), 1030 (bucket 6), then 1020 (bucket 996): the buckets' order, not the frames'.
  sched.precheck(SIG, 0, 0, 1, 1030);
  sched.precheck(SIG, 0, 0, 2, 1020);
  sched.precheck(SIG, 0, 0, 3, 1025);
  sched.precheck(SIG, 0, 0, 4, 1030);
  sched.runAll([]);
  deepStrictEqual(ran, ["3@1025!", "1@1030!", "4@1030!", "2@1020!"]);
  strictEqual(sched.pending, 0);
});

Deno.test("scheduler: checks due far ahead and near run together in due and scheduling order, also over a jump", () => {
  const { sched, ran, touched } = recorder();
  sched.start(0);
  // Due 300 and 1,000 from frame 0 (far ahead), then 300 again and 290 from frame 101 (near).
  sched.precheck(SIG, 0, 0, 1, 300);
  sched.precheck(SIG, 0, 0, 2, 1000);
  sched.precheck(SIG, 0, 0, 3, 300);
  const out: string[] = [];
  sched.runDue(100, out);
  strictEqual(ran.length, 0);
  sched.precheck(SIG, 0, 0, 4, 300);
  sched.precheck(SIG, 0, 0, 5, 290);
  sched.precheck(SIG, 0, 0, 6, 300);
  strictEqual(sched.pending, 6);
  sched.runDue(299, out);
  deepStrictEqual(ran, ["5@290"]);
  sched.runDue(300, out);
  deepStrictEqual(ran.slice(1), ["1@300", "3@300", "4@300", "6@300"]);
  deepStrictEqual(touched, [[300, 4]]);
  // A jump of many frames at once: what is due in between runs, in due order.
  sched.precheck(SIG, 0, 0, 7, 500);
  sched.precheck(SIG, 0, 0, 8, 400);
  sched.runDue(1_000_000, out);
  deepStrictEqual(ran.slice(5), ["8@400", "7@500", "2@1000"]);
  strictEqual(sched.pending, 0);
  strictEqual(sched.bytes, 0);
});

Deno.test("scheduler: a stream's emptied lists serve the next stream that needs some, in the same order", () => {
  const a = recorder(), b = recorder();
  a.sched.start(0);
  b.sched.start(0);
  for (const [s, due] of [[1, 5], [2, 3], [3, 5]]) a.sched.precheck(SIG, 0, 0, s!, due!);
  const before = spareLists();
  a.sched.runDue(10, []);
  deepStrictEqual(a.ran, ["2@3", "1@5", "3@5"]);
  strictEqual(a.sched.bytes, 0, "nothing pending, nothing held");
  strictEqual(spareLists(), before + 2, "its two lists kept as spares");
  // Another stream takes them (no new lists) and finds them empty: its checks run as scheduled, no others.
  for (const [s, due] of [[4, 12], [5, 11], [6, 12]]) b.sched.precheck(SIG, 0, 0, s!, due!);
  strictEqual(spareLists(), before);
  b.sched.runDue(20, []);
  deepStrictEqual(b.ran, ["5@11", "4@12", "6@12"]);
  strictEqual(spareLists(), before + 2);
});
