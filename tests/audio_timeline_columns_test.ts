import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { Timeline } from "../audio/decode/timeline.ts";
import { CaptureTimes } from "../audio/decode/capture_times.ts";
import { gapHints, gapHintsOf } from "../audio/align/gap_hints.ts";

const T0 = 1_763_900_000_123_456_789n;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

Deno.test("timeline columns: exact capture times and ordinals through many wraps of the ring", () => {
  const tl = new Timeline(16000, { lookbackSamples: 8000 });
  const rnd = lcg(1);
  const sent: { index: number; time: bigint; native: number; frames: number; gap: boolean }[] = [];
  let native = 0;
  for (let i = 0; i < 20_000; i++) {
    // 1..640 native samples (some own no analysis instant), jittered ns times, a gap now and then.
    const frames = 1 + Math.floor(rnd() * 640);
    const time = T0 + BigInt(i) * 20_000_000n + BigInt(Math.floor(rnd() * 999_999));
    const gap = rnd() < 0.05;
    tl.append(i, time, frames, gap);
    sent.push({ index: i, time, native, frames, gap });
    native += frames;
  }
  const first = tl.firstSample;
  ok(tl.length - first >= 8000);
  for (let k = first; k < tl.length; k += 37) {
    const loc = tl.locate(k)!;
    const m = sent[loc.messageIndex]!;
    strictEqual(loc.timeNs, m.time);
    strictEqual(loc.gap, m.gap);
    const pos = k * 2; // native position of analysis sample k at 16 kHz
    ok(pos >= m.native && pos < m.native + m.frames, `k=${k} in message ${m.index}`);
    strictEqual(loc.offsetMs, ((pos - m.native) / 16000) * 1000);
  }
  strictEqual(tl.locate(first - 1), undefined);
  // Spans as objects, contiguous on the analysis timeline.
  const spans = tl.spans();
  for (let j = 1; j < spans.length; j++) strictEqual(spans[j]!.start, spans[j - 1]!.end);
  const last = sent[sent.length - 1]!;
  deepStrictEqual(spans[spans.length - 1], {
    messageIndex: last.index,
    timeNs: last.time,
    nativeStart: last.native,
    nativeEnd: last.native + last.frames,
    start: Math.ceil(last.native / 2),
    end: Math.ceil((last.native + last.frames) / 2),
    gap: last.gap,
  });
});

Deno.test("timeline columns: a 33 s lookback of jittered 20 ms messages takes under 11 KB", () => {
  // ~6 bytes an entry (float64 columns took 24; a native start column, 16-bit ordinals and 32-bit times, 13.5):
  // capture times less the audio time since their block's first entry are jitter, 24 bits. And the store sized
  // for what the lookback holds (1,672 spans) rather than the next power of two (2,048): it was 49 KB.
  const tl = new Timeline(8000, { lookbackSamples: 267_456 });
  const rnd = lcg(3);
  const time = (i: number) => T0 + BigInt(i) * 20_000_000n + BigInt(Math.floor(rnd() * 6_000_000));
  const sent: bigint[] = [];
  for (let i = 0; i < 5000; i++) {
    sent.push(time(i));
    tl.append(i, sent[i]!, 160);
  }
  ok(tl.bytes <= 11_000, `${tl.bytes} bytes`);
  strictEqual(tl.spans().length, 1672);
  for (const s of tl.spans()) strictEqual(s.timeNs, sent[s.messageIndex]!);
});

Deno.test("timeline columns: long silences in capture time and skipped ordinals stay exact", () => {
  const tl = new Timeline(48000, { lookbackSamples: 80_000 });
  const sent: { time: bigint; index: number; native: number; frames: number }[] = [];
  let time = T0, index = 0, native = 0;
  for (let i = 0; i < 3000; i++) {
    // 60 ms at 48 kHz; every 7th message after a 5 s silence (DTX), every 11th after 40,000 failed messages.
    const frames = i % 13 === 0 ? 48_000 : 2880;
    time += i % 7 === 0 ? 5_000_000_001n : 60_000_000n;
    index += i % 11 === 0 ? 40_000 : 1;
    tl.append(index, time, frames);
    sent.push({ time, index, native, frames });
    native += frames;
  }
  const byIndex = new Map(sent.map((m) => [m.index, m]));
  for (let k = tl.firstSample; k < tl.length; k += 101) {
    const loc = tl.locate(k)!;
    const m = byIndex.get(loc.messageIndex)!;
    strictEqual(loc.timeNs, m.time);
    ok(k * 6 >= m.native && k * 6 < m.native + m.frames);
  }
});

Deno.test("timeline columns: capture times that jump by more than 104 days: the new ones exact", () => {
  const tl = new Timeline(8000, { lookbackSamples: 1 << 20 });
  const far = T0 + 200n * 86_400_000_000_000n + 7n;
  tl.append(0, T0, 160);
  tl.append(1, far, 160);
  tl.append(2, far + 20_000_001n, 160);
  // The span before the jump is re-expressed from the new base (float64 ns: within a few ns at 200 days).
  const old = tl.locate(0)!.timeNs - T0;
  ok(old >= -4n && old <= 4n, `${old}`);
  strictEqual(tl.locate(160)!.timeNs, far);
  strictEqual(tl.locate(320)!.timeNs, far + 20_000_001n);
});

Deno.test("capture times: the same bound and gap hints as bigint arrays", () => {
  const rnd = lcg(2);
  const tl = new Timeline(8000, { lookbackSamples: 8000 });
  const ct = new CaptureTimes(tl);
  const times: bigint[] = [];
  const starts: number[] = [];
  let sample = 0;
  for (let i = 0; i < 3000; i++) {
    // 20 ms messages; now and then one lost (a capture-time gap), captured out of order, or empty.
    const n = rnd() < 0.02 ? 0 : 160;
    const lost = rnd() < 0.03 ? 20_000_000n : 0n;
    const jitter = BigInt(Math.floor((rnd() - 0.8) * 3_000_000));
    const t = T0 + BigInt(i) * 20_000_000n + lost + jitter;
    tl.append(i, t, n);
    ct.push(t, sample);
    times.push(t);
    starts.push(sample);
    sample += n;
  }
  strictEqual(ct.length, times.length);
  for (let k = 0; k < 200; k++) {
    const t = T0 + BigInt(Math.floor(rnd() * 61e9)) - 500_000_000n;
    let lo = 0, hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    strictEqual(ct.firstSampleAtOrAfter(t, sample), lo < times.length ? starts[lo]! : sample);
    const from = Math.floor(rnd() * sample), to = from + Math.floor(rnd() * 40_000);
    deepStrictEqual(gapHintsOf(ct, sample, 8000, from, to), gapHints(times, starts, sample, 8000, from, to));
  }
  // The entry holding sample 100,001 stays (the bound reads it), those before it go; the timeline, whose own
  // lookback is shorter, kept them until then.
  ct.pruneBefore(100_001);
  const kept = starts.findLastIndex((s) => s <= 100_001);
  strictEqual(ct.startAt(0), starts[kept]!);
  strictEqual(ct.timeAt(0), times[kept]!);
  strictEqual(ct.length, 3000 - kept);
  strictEqual(tl.firstSample, sample - 8000 - ((sample - 8000) % 160));
  strictEqual(ct.bytes, 0);
});

Deno.test("capture times: one entry per timeline append, checked; no storage of their own", () => {
  const tl = new Timeline(16000, { lookbackSamples: 800 });
  const ct = new CaptureTimes(tl, { horizonSamples: 800 });
  // A media gap and its message: two entries, pushed after both were appended.
  tl.append(0, T0, 320);
  ct.push(T0, 0);
  tl.append(1, T0 + 5n, 640, true);
  tl.append(1, T0 + 40_000_000n, 320);
  ct.push(T0 + 5n, 160);
  ct.push(T0 + 40_000_000n, 480);
  deepStrictEqual([0, 1, 2].map((i) => ct.timeAt(i)), [T0, T0 + 5n, T0 + 40_000_000n]);
  throws(() => ct.push(T0 + 60_000_000n, 640), Error, "no entry left");
  tl.append(2, T0 + 60_000_000n, 320);
  throws(() => ct.push(T0 + 60_000_000n, 641), Error, "another start");
});

Deno.test("capture times: sized for the horizon the owner keeps, pruned every 256, in the timeline's bytes", () => {
  // The target pipeline's horizon (2,048 frames of 128 samples) of 20 ms messages: 1,638 messages and up to 255
  // more between prunings, beyond the timeline's own 33 s lookback (1,672). Its own columns took 17 KB.
  const horizon = 2048 * 128;
  const tl = new Timeline(8000, { lookbackSamples: 267_456 });
  const ct = new CaptureTimes(tl, { horizonSamples: horizon });
  let most = 0;
  for (let i = 0; i < 20_000; i++) {
    const sample = i * 160;
    const t = T0 + BigInt(i) * 20_000_000n;
    tl.append(i, t, 160);
    ct.push(t, sample, Math.max(0, sample - horizon));
    most = Math.max(most, ct.length);
    if (i >= 1000) {
      strictEqual(ct.timeAt(ct.length - 1), t);
      strictEqual(ct.timeAt(0), T0 + BigInt(i + 1 - ct.length) * 20_000_000n);
    }
  }
  ok(most < 1638 + 256 + 2, `${most} held at most`);
  ok(most > 1672, `${most}: beyond the timeline's lookback`);
  ok(tl.bytes <= 17_000, `${tl.bytes} bytes`);
  // Without `oldest` nothing is pruned.
  const tl2 = new Timeline(8000, { lookbackSamples: 800 });
  const all = new CaptureTimes(tl2);
  for (let i = 0; i < 600; i++) {
    tl2.append(i, T0 + BigInt(i), 160);
    all.push(T0 + BigInt(i), i * 160);
  }
  strictEqual(all.length, 600);
  strictEqual(all.startAt(0), 0);
});

Deno.test("timeline columns: capture times read from their words are the bigint's, at int64's ends and beyond them", () => {
  const max = (1n << 63n) - 1n, min = -(1n << 63n);
  const cases: bigint[][] = [
    [T0, T0 + 1n, T0 - 5n, T0 + 2n ** 40n],
    // A difference just inside and just past 2^53 ns from the base (the second rebases).
    [0n, 2n ** 53n - 1n, 2n ** 53n + 3n],
    [max - 10n, max, max - 20_000_000n],
    [min, min + 7n, min + 20_000_000n],
    // Beyond int64 (a time no clock gives, but a bigint holds): still exact from the base.
    [max + 5n, max + 25_000_005n, 1n << 70n, (1n << 70n) + 3n],
    // 2^64 apart: the same low 64 bits, nowhere near each other.
    [0n, (1n << 64n) + 5n],
  ];
  for (const times of cases) {
    const tl = new Timeline(8000, { lookbackSamples: 1 << 20 });
    times.forEach((t, i) => tl.append(i, t, 160));
    // Every entry exact while all are within 2^53 ns of the first (the base); else the last (after a rebase).
    const near = times.every((t) => t - times[0]! < 2n ** 53n && times[0]! - t < 2n ** 53n);
    times.forEach((t, i) => {
      if (near || i === times.length - 1) strictEqual(tl.entryTime(i), t, `${times.join()} @ ${i}`);
    });
  }
});

Deno.test("capture times: a later search starts at the last answer while times are in order, the same answers", () => {
  const rnd = lcg(7);
  const tl = new Timeline(8000, { lookbackSamples: 8000 });
  const ct = new CaptureTimes(tl);
  let probes = 0;
  const read = tl.entryTimeOffset.bind(tl);
  tl.entryTimeOffset = (e: number) => (probes++, read(e));
  const times: bigint[] = [];
  const starts: number[] = [];
  let sample = 0;
  /** The binary search over every entry (the answer before the galloping search). */
  const want = (t: bigint) => {
    let lo = 0, hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo < times.length ? starts[lo]! : sample;
  };
  const push = (t: bigint, n: number) => {
    tl.append(times.length, t, n);
    ct.push(t, sample);
    times.push(t);
    starts.push(sample);
    sample += n;
  };
  for (let i = 0; i < 2000; i++) push(T0 + BigInt(i) * 20_000_000n + BigInt(Math.floor(rnd() * 5e6)), 160);
  // Searches a little later each time (signatures as they arrive), now and then a late one.
  let t = T0 + 10_000_000_000n;
  let inOrder = 0;
  for (let k = 0; k < 300; k++) {
    const late = rnd() < 0.1;
    const q = late ? t - BigInt(Math.floor(rnd() * 5e9)) : (t += BigInt(Math.floor(rnd() * 60e6)));
    const before = probes;
    strictEqual(ct.firstSampleAtOrAfter(q, sample), want(q), `search ${k}`);
    // The bound is never after the answer, and within the slack of the last search reads no entry.
    const b = probes;
    ok(ct.sampleAtOrBefore(q, sample, 500_000_000n) <= want(q));
    // (The first search has no last answer: a whole binary search.)
    if (!late && k > 0) {
      inOrder++;
      ok(probes - before <= 8, `${probes - before} probes`);
      strictEqual(probes, b, "the bound read no entry");
    }
  }
  ok(inOrder > 200);
  // A capture time out of order: every search is the whole binary search again (its answers, whatever they are).
  push(times[times.length - 1]! - 30_000_000n, 160);
  for (let i = 0; i < 20; i++) push(times[times.length - 1]! + 20_000_000n, 160);
  for (let k = 0; k < 50; k++) {
    const q = T0 + BigInt(Math.floor(rnd() * 41e9));
    const before = probes;
    strictEqual(ct.firstSampleAtOrAfter(q, sample), want(q));
    ok(probes - before >= 10, "a whole binary search");
  }
  // A bound is still at or before the answer (entries before the last in-order answer are earlier still).
  ok(ct.sampleAtOrBefore(t + 1n, sample, 10_000_000_000n) <= want(t + 1n));
});

Deno.test("timeline: capture times in order from an entry on, until one steps back or the base moves", () => {
  const tl = new Timeline(8000, { lookbackSamples: 80_000 });
  for (let i = 0; i < 10; i++) tl.append(i, T0 + BigInt(i) * 20_000_000n, 160);
  ok(tl.inOrderFrom(0));
  // The same time again is in order; an earlier one is not (from before it).
  tl.append(10, T0 + 180_000_000n, 160);
  ok(tl.inOrderFrom(0));
  tl.append(11, T0 + 170_000_000n, 160);
  ok(!tl.inOrderFrom(10));
  ok(tl.inOrderFrom(11));
  // A jump of more than 104 days moves the base: offsets either side are not compared.
  tl.append(12, T0 + 200n * 86_400_000_000_000n, 160);
  ok(!tl.inOrderFrom(11));
  ok(tl.inOrderFrom(12));
});
