import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { Timeline } from "../audio/decode/timeline.ts";

const T0 = 1_700_000_000_000_000_000n;

Deno.test("timeline at 8 kHz: each sample maps to its message and offset", () => {
  const tl = new Timeline(8000);
  tl.append(0, T0, 160);
  tl.append(1, T0 + 20_000_000n, 160);
  equal(tl.length, 320);
  deepEqual(tl.locate(0), { timeNs: T0, offsetMs: 0, messageIndex: 0, gap: false });
  deepEqual(tl.locate(159), { timeNs: T0, offsetMs: 19.875, messageIndex: 0, gap: false });
  deepEqual(tl.locate(160), { timeNs: T0 + 20_000_000n, offsetMs: 0, messageIndex: 1, gap: false });
  deepEqual(tl.locate(200), { timeNs: T0 + 20_000_000n, offsetMs: 5, messageIndex: 1, gap: false });
  equal(tl.locate(320), undefined);
  equal(tl.locate(-1), undefined);
});

Deno.test("timeline at 16 kHz: analysis sample k is native sample 2k", () => {
  const tl = new Timeline(16000);
  tl.append(0, T0, 321); // odd length: the next message starts between two analysis instants
  tl.append(1, T0 + 1n, 320);
  const s0 = tl.spanAt(0)!;
  deepEqual([s0.start, s0.end], [0, 161]);
  const s1 = tl.spanAt(161)!;
  deepEqual([s1.start, s1.end, s1.nativeStart], [161, 321, 321]);
  // Analysis 161 is native 322, one native sample (1/16 ms) into message 1.
  equal(tl.locate(161)!.offsetMs, 1 / 16);
  equal(tl.locate(160)!.offsetMs, 20);
  equal(tl.length, 321);
});

Deno.test("timeline at 44.1 kHz: offsets are exact to the analysis instant", () => {
  const tl = new Timeline(44100);
  const sizes = [441, 882, 1000, 1, 2, 4410];
  sizes.forEach((n, i) => tl.append(i, T0 + BigInt(i), n));
  let native = 0;
  const starts = sizes.map((n) => {
    const s = native;
    native += n;
    return s;
  });
  for (let k = 0; k < tl.length; k++) {
    const loc = tl.locate(k)!;
    const pos = (k * 44100) / 8000; // native position of the instant
    const i = loc.messageIndex;
    ok(pos >= starts[i]! && pos < starts[i]! + sizes[i]!, `k=${k} in message ${i}`);
    ok(Math.abs(loc.offsetMs - ((pos - starts[i]!) / 44100) * 1000) < 1e-9);
  }
  // A message shorter than one analysis period may own no instant; it still advances native time.
  equal(tl.spans().some((s) => s.messageIndex === 3), false);
  equal(tl.nativeLength, native);
});

Deno.test("timeline: gaps are mapped to their message and flagged", () => {
  const tl = new Timeline(8000);
  tl.append(0, T0, 160);
  tl.append(1, T0 + 20_000_000n, 160, true);
  tl.append(2, T0 + 40_000_000n, 160);
  equal(tl.isGap(159), false);
  equal(tl.isGap(160), true);
  equal(tl.isGap(319), true);
  equal(tl.isGap(320), false);
  deepEqual(tl.locate(170), { timeNs: T0 + 20_000_000n, offsetMs: 1.25, messageIndex: 1, gap: true });
  deepEqual(tl.gaps(0, 480), [{ start: 160, end: 320 }]);
  deepEqual(tl.gaps(300, 310), [{ start: 160, end: 320 }]);
  deepEqual(tl.gaps(320, 480), []);
  deepEqual(tl.gaps(0, 160), []);
});

Deno.test("timeline: messages without audio own nothing", () => {
  const tl = new Timeline(8000);
  equal(tl.append(0, T0, 0), undefined);
  tl.append(1, T0, 10);
  equal(tl.locate(0)!.messageIndex, 1);
});

Deno.test("timeline: a stream of messages without audio holds a bounded number of them", () => {
  // E.g. a JSON tap whose every body Pixie cut before one came whole: no message has a size, each is an entry that
  // owns no sample. The lookback (samples) never passed them: every one was held, ~8 bytes a message.
  const tl = new Timeline(8000, { lookbackSamples: 8000 });
  for (let i = 0; i < 100_000; i++) tl.append(i, T0 + BigInt(i) * 20_000_000n, 0, i % 2 === 0);
  ok(tl.bytes < 4000, `${tl.bytes} bytes`);
  equal(tl.length, 0);
  equal(tl.firstSample, 0);
  equal(tl.entryTime(99_999), T0 + 99_999n * 20_000_000n, "the newest is held");
  // Audio after them maps as ever.
  tl.append(100_000, T0 + 2_000_000_000_000n, 160);
  equal(tl.locate(0)!.messageIndex, 100_000);
  equal(tl.locate(0)!.timeNs, T0 + 2_000_000_000_000n);
  deepEqual(tl.spans().map((s) => s.messageIndex), [100_000]);
});

Deno.test("timeline: spans beyond the lookback are pruned, in bulk without losing order", () => {
  const tl = new Timeline(8000, { lookbackSamples: 8000 });
  for (let i = 0; i < 2000; i++) tl.append(i, T0 + BigInt(i) * 20_000_000n, 160);
  equal(tl.length, 320_000);
  // Newest 8000 samples (50 messages) must still map; anything ending before that is gone.
  equal(tl.locate(320_000 - 8000)!.messageIndex, 1950);
  equal(tl.locate(319_999)!.messageIndex, 1999);
  equal(tl.locate(320_000 - 8001), undefined);
  equal(tl.locate(0), undefined);
  equal(tl.firstSample, 312_000);
  equal(tl.spans().length, 50);
  for (let k = 312_000; k < 320_000; k += 37) equal(tl.locate(k)!.messageIndex, Math.floor(k / 160));
});

Deno.test("timeline: out-of-order capture times are kept in arrival order", () => {
  const tl = new Timeline(8000);
  tl.append(0, T0 + 100n, 8);
  tl.append(1, T0, 8);
  equal(tl.locate(0)!.timeNs, T0 + 100n);
  equal(tl.locate(8)!.timeNs, T0);
});

Deno.test("timeline: bad construction arguments throw", () => {
  throws(() => new Timeline(4000), RangeError);
  throws(() => new Timeline(8000, { lookbackSamples: -1 }), RangeError);
});

Deno.test("timeline: every append is an entry; a follower keeps older entries without the lookback seeing them", () => {
  const tl = new Timeline(8000, { lookbackSamples: 800 });
  tl.retainFrom(0);
  for (let i = 0; i < 100; i++) {
    // Every tenth message empty: an entry that owns no sample.
    tl.append(i, T0 + BigInt(i) * 20_000_000n, i % 10 === 5 ? 0 : 160);
  }
  equal(tl.appended, 100);
  equal(tl.entryStart(0), 0);
  equal(tl.entryStart(6), 5 * 160, "after the empty message, where it was");
  equal(tl.entryStart(5), 5 * 160);
  equal(tl.entryTime(5), T0 + 100_000_000n);
  // The lookback's own view: 800 samples, no empty span among its spans.
  equal(tl.locate(0), undefined);
  equal(tl.firstSample, tl.length - 800);
  equal(tl.spans().length, 5);
  ok(tl.spans().every((s) => s.end > s.start));
  tl.retainFrom(50);
  throws(() => tl.entryStart(49), RangeError);
  equal(tl.entryStart(50), 45 * 160);
  ok(tl.bytes < 2000, `${tl.bytes}`);
});

Deno.test("timeline: messages of random lengths, pruned as they go, locate where a running sum puts them", () => {
  // Message starts are derived from each block's first and the lengths before them, in slots reused as the
  // lookback moves on.
  const tl = new Timeline(8000, { lookbackSamples: 2000 });
  let s = 12345;
  const rnd = (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
  const starts: number[] = [];
  let end = 0;
  for (let i = 0; i < 3000; i++) {
    const n = 20 + rnd(300);
    tl.append(i, T0 + BigInt(i) * 20_000_000n, n);
    starts.push(end);
    end += n;
    // Lookups now and then (slots rewritten in between), and after every message for a while.
    if (i % 97 !== 0 && (i < 1000 || i > 1100)) continue;
    for (let q = 0; q < 4; q++) {
      // A message still held: its first sample and one inside it locate to it.
      const j = i - rnd(Math.min(i + 1, 6));
      const k = starts[j]! + (q % 2 === 0 ? 0 : rnd((starts[j + 1] ?? end) - starts[j]!));
      equal(tl.locate(k)?.messageIndex, j, `message ${j} at sample ${k} after ${i + 1} messages`);
    }
  }
});

Deno.test("timeline: message starts read between appends, drops, regrowths and wraps are a running sum's", () => {
  // The timeline keeps the running starts of the block it read last: a slot rewritten after the ring wrapped
  // onto that block, or the columns re-laid when they grow, must not answer from them. A follower that reads a
  // few messages, lets them go, and reads again after the ring came round (no lookback read in between: its
  // lookback is 0) is the case where nothing else would have moved them on.
  for (const seed of [1, 2, 3, 4]) {
    let s = seed * 7919;
    const rnd = (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
    const tl = new Timeline(8000, { lookbackSamples: seed === 4 ? 3000 : 0 });
    tl.retainFrom(0, 0, 0);
    const starts: number[] = [];
    const times: bigint[] = [];
    let end = 0, kept = 1, from = 0;
    for (let i = 0; i < 6000; i++) {
      // Lengths that fit 8 bits and some that do not (the length column widens), empty ones, gaps.
      const r = rnd(20);
      const n = r === 0 ? 0 : r === 1 ? 200 + rnd(5000) : 1 + rnd(120);
      const t = T0 + BigInt(i) * 20_000_000n + BigInt(rnd(1000));
      tl.append(i, t, n, r === 2);
      starts.push(end);
      times.push(t);
      end += n;
      // Now and then the follower keeps more messages (the ring grows) or lets all but a few go.
      if (rnd(50) === 0) kept = rnd(3) === 0 ? 1 + rnd(300) : 1 + rnd(8);
      from = Math.max(from, i + 1 - kept);
      tl.retainFrom(from);
      if (rnd(3) !== 0) continue;
      for (let q = 0; q < 1 + rnd(4); q++) {
        const j = from + rnd(i + 1 - from);
        equal(tl.entryStart(j), starts[j], `seed ${seed}: start of message ${j} after ${i + 1}`);
        equal(tl.entryTime(j), times[j], `seed ${seed}: time of message ${j} after ${i + 1}`);
      }
    }
  }
});

Deno.test("timeline: starts read from a block's slots after the ring wrapped onto them, or regrew, are the new entries'", () => {
  // The running starts kept for the block read last (timeline.ts #run) answer for the entries that block held
  // then: here nothing moves them on before the block's slots hold other entries (every append's own lookback
  // check reads the oldest entry, at a block's first slot, whose start needs no sum).
  const lengths = (o: number) => 7 + ((o * 37) % 50);
  const startOf = (o: number) => {
    let v = 0;
    for (let k = 0; k < o; k++) v += lengths(k);
    return v;
  };
  const tl = new Timeline(8000, { lookbackSamples: 1e12 });
  let next = 0;
  const append = (n: number) => {
    for (let k = 0; k < n; k++, next++) tl.append(next, T0 + BigInt(next) * 1_000_000n, lengths(next));
  };
  // Ordinals 0-31 in the first block's slots, 32-63 in the second's (the columns' first size, 64).
  append(48);
  tl.prune(startOf(32));
  equal(tl.entryStart(40), startOf(40));
  append(16);
  // The ring wraps: 64-95 into the first block's slots; then 32-63 go, and 96-127 take the second block's.
  append(32);
  tl.prune(startOf(64));
  // (Read at a block's first entry: a read inside the first block would move the kept starts there.)
  equal(tl.entryStart(64), startOf(64), "the wrapped block");
  append(32);
  equal(tl.entryStart(104), startOf(104), "the second block's slots hold 96-127 now");
  equal(tl.entryTime(104), T0 + 104_000_000n);
  // The columns regrow with the oldest held entry at slot 0: block boundaries move to other entries.
  tl.prune(startOf(80));
  equal(tl.entryStart(90), startOf(90));
  append(80);
  for (const o of [90, 100, 130, 170]) equal(tl.entryStart(o), startOf(o), `entry ${o} after the regrowth`);
});

Deno.test("timeline: add is append without the span, entry for entry", () => {
  const a = new Timeline(16000, { lookbackSamples: 4000 }),
    b = new Timeline(16000, { lookbackSamples: 4000 });
  let t = 1_700_000_000_000_000_000n;
  for (let i = 0; i < 500; i++) {
    t += BigInt(20_000_000 + ((i * 7919) % 3000) - 1500);
    const frames = i % 17 === 0 ? 0 : i % 13 === 0 ? 1 : 320, gap = i % 11 === 0;
    a.append(i, t, frames, gap);
    b.add(i, t, frames, gap);
  }
  deepEqual(b.spans(), a.spans());
  equal(b.appended, a.appended);
  equal(b.length, a.length);
  for (let k = b.firstSample; k < b.length; k += 37) deepEqual(b.locate(k), a.locate(k));
});
