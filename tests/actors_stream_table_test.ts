/**
 * The stream table's cap shared between taps (max-min): a tap below its share takes room from the largest, a tap
 * at its share recycles quiet room of its own or of taps over their share, and active streams never thrash.
 * (Idle expiry, the LRU order and the quiet rule with one tap: hardening_time_units_test.ts.)
 */
import { deepEqual, equal } from "node:assert/strict";
import { StreamTable } from "../actors/stream_table.ts";

const MS = 1_000_000n;
const QUIET = 2_000n * MS;

/** A table of `cap` streams over every tap, idle after a minute, 2 s quiet to make room at the cap. */
function table(cap: number): StreamTable<string, string> {
  return new StreamTable<string, string>(60_000n * MS, cap, QUIET);
}

/** Touches `stream` of `tap` at `ms`; its state is `tap/stream`. What was evicted, "refused", or "" (room). */
function feed(t: StreamTable<string, string>, tap: string, stream: string, ms: bigint): string {
  const r = t.touch(tap, stream, ms * MS, () => `${tap}/${stream}`);
  return r === undefined ? "refused" : r.evicted ?? "";
}

/** The streams followed per tap. */
function perTap(t: StreamTable<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of t.values()) {
    const tap = v.slice(0, v.indexOf("/"));
    out[tap] = (out[tap] ?? 0) + 1;
  }
  return out;
}

Deno.test("stream table: a stage that fills the table first leaves the other its share; no thrash after", () => {
  // The live bench's order: every relay stream is active before the ASR's first row.
  const t = table(4);
  const relay = ["r0", "r1", "r2", "r3"];
  const asr = ["a0", "a1", "a2", "a3"];
  for (const s of relay) equal(feed(t, "relay", s, 0n), "");
  const evicted: string[] = [];
  const refused: Record<string, number> = {};
  for (let ms = 20n; ms <= 10_000n; ms += 20n) {
    for (const [tap, streams] of [["relay", relay], ["asr", asr]] as const) {
      for (const s of streams) {
        const r = feed(t, tap, s, ms);
        if (r === "refused") refused[tap] = (refused[tap] ?? 0) + 1;
        else if (r !== "") evicted.push(r);
      }
    }
  }
  deepEqual(perTap(t), { relay: 2, asr: 2 }, "each stage its share, whatever the order");
  deepEqual(evicted, ["relay/r0", "relay/r1"], "the relay's least recently fed, once each: no thrash");
  deepEqual([...t.values()], ["relay/r2", "relay/r3", "asr/a0", "asr/a1"]);
  // Every row of a stream not followed was refused, all along.
  deepEqual(refused, { relay: 2 * 499, asr: 2 * 500 });
});

Deno.test("stream table: a tap below its share takes room from the largest tap, not from one at its share", () => {
  const t = table(6);
  // b's streams are the least recently fed overall, but b holds no more than its share once c appears (6 / 3).
  for (const s of ["b0", "b1"]) feed(t, "b", s, 0n);
  for (const s of ["a0", "a1", "a2", "a3"]) feed(t, "a", s, 10n);
  equal(feed(t, "c", "c0", 20n), "a/a0");
  equal(feed(t, "c", "c1", 30n), "a/a1");
  equal(feed(t, "c", "c2", 40n), "refused", "c holds its share: active streams stay");
  deepEqual(perTap(t), { a: 2, b: 2, c: 2 });
  // a, at its share now, takes quiet room only.
  equal(feed(t, "a", "a4", 50n), "refused");
});

Deno.test("stream table: a tap at its share takes the quiet room of its own streams or of a tap over its share only", () => {
  const t = table(4);
  feed(t, "b", "b0", 0n);
  feed(t, "b", "b1", 0n);
  for (const s of ["a0", "a1"]) feed(t, "a", s, 10n);
  // b0 falls quiet; the others go on.
  for (let ms = 20n; ms <= 2_100n; ms += 20n) {
    for (const [tap, s] of [["a", "a0"], ["a", "a1"], ["b", "b1"]] as const) feed(t, tap, s, ms);
  }
  equal(feed(t, "a", "a2", 2_110n), "refused", "b0's room is b's share");
  equal(feed(t, "b", "b2", 2_120n), "b/b0", "b takes its own quiet room");
  deepEqual(perTap(t), { a: 2, b: 2 });
  // Room a tap does not use is lent: c holds less than its share, a more; once c's streams end, a takes it all.
  const u = table(6);
  for (const s of ["c0", "c1"]) feed(u, "c", s, 0n);
  for (const s of ["a0", "a1", "a2", "a3"]) feed(u, "a", s, 10n);
  for (const s of ["a0", "a1", "a2", "a3"]) feed(u, "a", s, 61_000n);
  deepEqual(u.sweep(61_000n * MS), ["c/c0", "c/c1"]);
  equal(feed(u, "a", "a4", 61_020n), "");
  equal(feed(u, "a", "a5", 61_020n), "");
  equal(feed(u, "a", "a6", 61_040n), "refused", "a alone: the whole cap, by the quiet rule");
  deepEqual(perTap(u), { a: 6 });
});

Deno.test("stream table: after a gap in every stream (a reader behind) each tap takes back its own room, no chain", () => {
  // A reader that falls behind drops rows of every stream at once: after the gap every stream is quiet. A tap
  // at its share must not take another's quiet room: that tap, below its share, would take an active stream
  // back, and so on at every gap.
  const t = table(4);
  const streams = [["relay", ["r0", "r1", "r2", "r3"]], ["asr", ["a0", "a1", "a2", "a3"]]] as const;
  const evicted: string[] = [];
  const run = (from: bigint, to: bigint) => {
    for (let ms = from; ms <= to; ms += 20n) {
      for (const [tap, keys] of streams) {
        for (const s of keys) {
          const r = feed(t, tap, s, ms);
          if (r !== "refused" && r !== "") evicted.push(r);
        }
      }
    }
  };
  run(0n, 4_000n);
  deepEqual(evicted, ["relay/r0", "relay/r1"]);
  t.shed(4_020n * MS);
  run(6_500n, 10_000n);
  t.shed(10_020n * MS);
  run(12_500n, 16_000n);
  deepEqual(perTap(t), { relay: 2, asr: 2 });
  // Quiet counts from when rows came back (the reader says it shed rows): the relay's refused r0 and r1, whose
  // rows come first after each gap,
  // no longer take the places of r2 and r3 before those had their turn (before: r2 and r3 evicted after the
  // first gap, and at 1,000 calls under overload 11 evictions a second).
  deepEqual(evicted, ["relay/r0", "relay/r1"], "nothing changes hands at a gap");
  deepEqual(t.get("relay", "r2"), "relay/r2");
});

/** A table of 2 full with the relay's streams a and b, fed every 20 ms for the first second. */
function fullOfTwo(): StreamTable<string, string> {
  const t = table(2);
  for (let ms = 0n; ms <= 1_000n; ms += 20n) {
    equal(feed(t, "relay", "a", ms), "");
    equal(feed(t, "relay", "b", ms), "");
  }
  return t;
}

Deno.test("stream table: without a word of rows shed, a gap in every stream is silence: the plain rule", () => {
  // A table of a few sparse streams (or calls that all ended) has gaps in every stream too; a new stream then
  // takes a quiet one's place at once.
  const t = fullOfTwo();
  equal(feed(t, "relay", "c", 6_000n), "relay/a");
});

Deno.test("stream table: after rows were shed, a stream that stays silent makes room once quiet since", () => {
  const t = fullOfTwo();
  equal(feed(t, "relay", "c", 1_000n), "refused");
  // Every stream's rows shed for 5 s; then c's row first: a and b have not had their turn yet.
  t.shed(1_020n * MS);
  equal(feed(t, "relay", "c", 6_000n), "refused");
  equal(feed(t, "relay", "a", 6_000n), "");
  // b never comes back: 2 s after rows came back it is quiet and c takes its place.
  for (let ms = 6_020n; ms < 8_000n; ms += 20n) {
    equal(feed(t, "relay", "a", ms), "");
    equal(feed(t, "relay", "c", ms), "refused", `at ${ms} ms`);
  }
  equal(feed(t, "relay", "a", 8_000n), "");
  equal(feed(t, "relay", "c", 8_000n), "relay/b");
  // A first row after the shed an hour ahead of every other (a clock off) is no end of a gap for the rows behind
  // it: a silent b makes room 2 s after its last row, as without any gap.
  const u = fullOfTwo();
  u.shed(1_020n * MS);
  equal(feed(u, "relay", "x", 3_600_000n), "refused");
  for (let ms = 1_020n; ms < 3_020n; ms += 20n) equal(feed(u, "relay", "a", ms), "");
  equal(feed(u, "relay", "c", 3_020n), "relay/b");
});

Deno.test("stream table: a stream quiet before the gap began stays quiet (sheds 1.5 s apart, as under overload)", () => {
  // a's call ended at 1 s; b goes on. The reader sheds a few rows every 1.5 s (each gap 100 ms before it says
  // so). The gap at 2.9 s began before a had been silent 2 s (a's rows may be among those shed), so a keeps its
  // place until 2 s after rows came back; at the next gap (4.4 s) a had been quiet for 3.4 s already, so c takes
  // its place with the next rows (before, every shed made a look active again for 2 s, and an ended call held
  // its place until the idle sweep, 60 s).
  const t = fullOfTwo();
  let taken = -1n;
  for (let ms = 1_020n; ms <= 59_000n && taken < 0n; ms += 20n) {
    if (ms % 1_500n === 0n) t.shed((ms - 100n) * MS);
    equal(feed(t, "relay", "b", ms), "");
    const r = feed(t, "relay", "c", ms);
    if (r !== "refused") {
      equal(r, "relay/a");
      taken = ms;
    }
  }
  equal(taken, 4_500n);
  // A stream still active when a gap began keeps the credit: b, fed until the gap at 3 s, is not taken by d
  // when rows come back first for d, until 2 s after they came back.
  const u = fullOfTwo();
  for (let ms = 1_020n; ms < 3_000n; ms += 20n) {
    equal(feed(u, "relay", "a", ms), "");
    equal(feed(u, "relay", "b", ms), "");
  }
  u.shed(3_000n * MS);
  equal(feed(u, "relay", "d", 8_000n), "refused");
  equal(feed(u, "relay", "a", 8_000n), "");
  equal(feed(u, "relay", "d", 9_980n), "refused");
  equal(feed(u, "relay", "a", 10_000n), "");
  equal(feed(u, "relay", "d", 10_000n), "relay/b");
});

Deno.test("stream table: rows back 2 s or more ahead of a row are a clock off, not a gap's end for it", () => {
  // Rows came back at 3 s (a's, after a shed); c's row at 1 s, when b was fed: b is active for it (before, the
  // resumption exactly 2 s ahead counted as its quiet start, 2 s in the future, and b was evicted).
  const t = fullOfTwo();
  t.shed(1_020n * MS);
  equal(feed(t, "relay", "a", 3_000n), "");
  equal(feed(t, "relay", "c", 1_000n), "refused");
});

Deno.test("stream table: a stream whose last row came from an hour ahead is swept once its rows stop", () => {
  // No cap: only the idle sweep ends streams. One row an hour ahead (a clock off) made the stream's last time an
  // hour ahead, and it was never swept after its call ended.
  const t = new StreamTable<string, string>(60_000n * MS);
  feed(t, "relay", "a", 0n);
  feed(t, "relay", "a", 3_600_000n);
  feed(t, "relay", "a", 20n);
  feed(t, "relay", "b", 20n);
  deepEqual(t.sweep(61_000n * MS), ["relay/b"]);
  deepEqual(t.sweep(122_000n * MS), ["relay/a"]);
});

Deno.test("stream table: one tap keeps the cap's plain rule (share = the cap)", () => {
  const t = table(2);
  feed(t, "s", "x", 0n);
  feed(t, "s", "y", 10n);
  equal(feed(t, "s", "z", 20n), "refused", "every stream active");
  feed(t, "s", "x", 2_000n);
  equal(feed(t, "s", "z", 2_020n), "s/y", "y quiet for 2 s");
});

Deno.test("stream table: a tap's streams after its last one left (removed, swept) are its own again, found by get", () => {
  const t = new StreamTable<string, string>(10n);
  t.touch("a", "s1", 0n, () => "a1");
  t.delete("a", "s1");
  // The tap touched last, its group gone with its last stream: a new stream goes in a group the table keeps.
  equal(t.touch("a", "s2", 1n, () => "a2")?.created, true);
  equal(t.get("a", "s2"), "a2");
  t.touch("b", "s1", 2n, () => "b1");
  deepEqual(t.sweep(20n), ["a2", "b1"]);
  equal(t.touch("b", "s3", 21n, () => "b3")?.created, true);
  equal(t.get("b", "s3"), "b3");
  equal(t.touch("b", "s3", 22n, () => "no")?.value, "b3");
  equal(t.size, 1);
});
