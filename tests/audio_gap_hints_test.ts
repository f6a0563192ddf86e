import { deepEqual } from "node:assert/strict";
import { GapHintMemo, gapHints, gapHintsOf } from "../audio/align/gap_hints.ts";
import { Timeline } from "../audio/decode/timeline.ts";
import { CaptureTimes } from "../audio/decode/capture_times.ts";

const MS = 1_000_000n;
const RATE = 8000;

/** A real-time tap: 20 ms messages captured at the end of their audio, with `lost` message indices missing. */
function tap(count: number, lost: number[], jitterMs: (k: number) => number = () => 0) {
  const times: bigint[] = [];
  const starts: number[] = [];
  let sample = 0;
  for (let k = 0; k < count; k++) {
    if (lost.includes(k)) continue;
    times.push(BigInt((k + 1) * 20) * MS + BigInt(Math.round(jitterMs(k) * 1e6)));
    starts.push(sample);
    sample += 160;
  }
  return { times, starts, end: sample };
}

Deno.test("gapHints: a lost 20 ms message is a 160-sample gap before the next message", () => {
  const t = tap(50, [10, 30, 31]);
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 0, t.end), [
    { at: 10 * 160, len: 160 },
    { at: 29 * 160, len: 320 },
  ]);
  deepEqual(gapHints(t.times, t.starts, t.end, RATE, 11 * 160, 20 * 160), [], "outside [from, to)");
});

Deno.test("gapHints: capture jitter below a quarter message and a stall beyond 500 ms are not gaps", () => {
  const jittery = tap(50, [], (k) => (k % 3) * 2);
  deepEqual(gapHints(jittery.times, jittery.starts, jittery.end, RATE, 0, jittery.end), []);
  const stalled = tap(50, []);
  for (let k = 20; k < stalled.times.length; k++) stalled.times[k] = stalled.times[k]! + 900n * MS;
  deepEqual(gapHints(stalled.times, stalled.starts, stalled.end, RATE, 0, stalled.end), []);
});

Deno.test("gapHintsOf: read from capture times as held, the same hints as from bigint copies", () => {
  let s = 7;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const tl = new Timeline(8000, { lookbackSamples: 8000 });
  const ct = new CaptureTimes(tl);
  const t0 = 1_763_900_000_123_456_789n;
  let sample = 0, hinted = 0;
  for (let i = 0; i < 2000; i++) {
    const n = rnd() < 0.02 ? 0 : 160;
    const lost = rnd() < 0.05 ? BigInt(Math.floor(rnd() * 3) + 1) * 20n * MS : 0n;
    const t = t0 + BigInt(i) * 20n * MS + lost + BigInt(Math.floor((rnd() - 0.8) * 3e6));
    tl.append(i, t, n);
    ct.push(t, sample);
    sample += n;
  }
  const times = Array.from({ length: ct.length }, (_, i) => ct.timeAt(i));
  const starts = Array.from({ length: ct.length }, (_, i) => ct.startAt(i));
  for (let k = 0; k < 300; k++) {
    const from = Math.floor(rnd() * sample), to = from + Math.floor(rnd() * 30_000);
    const want = gapHints(times, starts, sample, RATE, from, to);
    hinted += want.length;
    deepEqual(gapHintsOf(ct, sample, RATE, from, to), want);
  }
  if (hinted === 0) throw new Error("no gaps to compare");
});

Deno.test("GapHintMemo: asked while messages arrive and old ones are dropped, the same hints as a fresh scan", () => {
  let s = 11;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const tl = new Timeline(8000, { lookbackSamples: 16_000 });
  const ct = new CaptureTimes(tl, { horizonSamples: 16_000 });
  const memo = new GapHintMemo();
  const t0 = 1_763_900_000_123_456_789n;
  let sample = 0, hinted = 0, asked = 0;
  for (let i = 0; i < 6000; i++) {
    // Some empty messages, lost ones, capture jitter; a stall now and then.
    const n = rnd() < 0.02 ? 0 : rnd() < 0.1 ? 80 : 160;
    const lost = rnd() < 0.05 ? BigInt(Math.floor(rnd() * 3) + 1) * 20n * MS : 0n;
    const stall = rnd() < 0.002 ? 700n * MS : 0n;
    const t = t0 + BigInt(i) * 20n * MS + lost + stall + BigInt(Math.floor((rnd() - 0.8) * 3e6));
    tl.append(i, t, n);
    ct.push(t, sample, sample - 12_000);
    sample += n;
    // Asks as the verification does: spans ending near the newest audio, some further back, some overlapping
    // the last; an ask beyond the messages held, one before them.
    for (let q = Math.floor(rnd() * 3); q > 0; q--) {
      const r = rnd();
      const to = r < 0.05 ? sample + 5000 : sample - Math.floor(rnd() * (r < 0.3 ? 14_000 : 2_000));
      const from = r < 0.08 ? -1000 : to - Math.floor(rnd() * 6_000);
      const want = gapHintsOf(ct, sample, RATE, from, to);
      deepEqual(gapHintsOf(ct, sample, RATE, from, to, memo), want, `message ${i}: [${from}, ${to})`);
      hinted += want.length;
      asked++;
    }
  }
  if (hinted < 100) throw new Error(`${hinted} hints in ${asked} asks`);
});

Deno.test("GapHintMemo: overlapping asks read each message's capture time about once", () => {
  const t = tap(3000, [100, 700, 701, 2500]);
  let reads = 0;
  const entries = {
    length: t.starts.length,
    startAt: (i: number) => t.starts[i]!,
    timeOffsetAt: (i: number) => {
      reads++;
      return Number(t.times[i]! - t.times[0]!);
    },
  };
  const memo = new GapHintMemo();
  let asks = 0;
  // A verification's asks: 300-message spans, each starting 10 messages after the last one.
  for (let from = 0; from + 300 * 160 <= t.end; from += 1600, asks++) {
    const to = from + 300 * 160;
    deepEqual(
      gapHintsOf(entries, t.end, RATE, from, to, memo),
      gapHints(t.times, t.starts, t.end, RATE, from, to),
    );
  }
  reads = 0;
  const memo2 = new GapHintMemo();
  for (let from = 0; from + 300 * 160 <= t.end; from += 1600) {
    gapHintsOf(entries, t.end, RATE, from, from + 300 * 160, memo2);
  }
  // Without the memo: ~300 reads an ask.
  if (reads > t.starts.length + 2 * asks) {
    throw new Error(`${reads} reads for ${t.starts.length} messages, ${asks} asks`);
  }
});

Deno.test("GapHintMemo: an ask after a new message finds where it left off without a search over the entries", () => {
  const t = tap(4100, [500, 1700, 1701, 3333]);
  let held = 100, starts = 0;
  const entries = {
    get length() {
      return held;
    },
    startAt: (i: number) => {
      starts++;
      return t.starts[i]!;
    },
    timeOffsetAt: (i: number) => Number(t.times[i]! - t.times[0]!),
  };
  const memo = new GapHintMemo();
  let asks = 0;
  // A verification's asks as messages arrive: each span ends at the newest audio.
  for (; held < t.starts.length; held++, asks++) {
    const end = held < t.starts.length ? t.starts[held]! : t.end;
    const want = gapHints(t.times.slice(0, held), t.starts.slice(0, held), end, RATE, end - 300 * 160, end);
    const before = starts;
    deepEqual(gapHintsOf(entries, end, RATE, end - 300 * 160, end, memo), want);
    if (held > 200 && starts - before > 8) {
      throw new Error(`${starts - before} starts read for an ask after message ${held} (a search: ~12)`);
    }
  }
  if (asks < 3000) throw new Error(`${asks} asks`);
});
