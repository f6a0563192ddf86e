// The timeline's interleaved records (audio/decode/block_column.ts BlockRecords) against the column layout they
// replaced (tests/support/timeline_reference.ts): random appends, prunes, follower retention and queries give
// the same spans, times, gaps and bytes, through widening, far values and capture-time rebases.
import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { Timeline } from "../audio/decode/timeline.ts";
import { BLOCK, BlockRecords } from "../audio/decode/block_column.ts";
import { ReferenceTimeline } from "./support/timeline_reference.ts";

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/** The outcome of `f`: its value, or the error's class and message. */
function outcome<T>(f: () => T): T | string {
  try {
    return f();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

interface Scenario {
  rate: number;
  lookback: number;
  /** Native samples of message i. */
  frames: (rnd: () => number, i: number) => number;
  /** Capture time step before message i, ns. */
  step: (rnd: () => number, i: number) => bigint;
  /** Ordinal step before message i. */
  ordinal: (rnd: () => number, i: number) => number;
  gapShare: number;
  follower: boolean;
}

const steady = (n: number) => () => n;
const SCENARIOS: Record<string, Scenario> = {
  "20 ms μ-law, jitter": {
    rate: 8000,
    lookback: 8000,
    frames: steady(160),
    step: (r) => 20_000_000n + BigInt(Math.floor(r() * 2_000_000)) - 1_000_000n,
    ordinal: steady(1),
    gapShare: 0.02,
    follower: false,
  },
  "chunked 16 kHz, bursty times, skipped ordinals, a follower": {
    rate: 16000,
    lookback: 12000,
    frames: (r) => (r() < 0.05 ? 0 : 1 + Math.floor(r() * (r() < 0.1 ? 40_000 : 1900))),
    step: (r) => BigInt(Math.floor(r() * (r() < 0.1 ? 4e9 : 60e6))),
    ordinal: (r) => (r() < 0.1 ? 1 + Math.floor(r() * 5000) : 1),
    gapShare: 0.1,
    follower: true,
  },
  "44.1 kHz, long silences, times going back": {
    rate: 44100,
    lookback: 20000,
    frames: (r) => 441 * (1 + Math.floor(r() * 4)),
    step: (r) =>
      (r() < 0.02 ? BigInt(Math.floor(r() * 1e13)) : 10_000_000n) - (r() < 0.05 ? 30_000_000n : 0n),
    ordinal: (r) => (r() < 0.01 ? 1e9 : 1),
    gapShare: 0.05,
    follower: true,
  },
  "48 kHz, jumps past 2^53 ns (rebases)": {
    rate: 48000,
    lookback: 8000,
    frames: steady(960),
    step: (r) => (r() < 0.01 ? 1n << 54n : 20_000_000n),
    ordinal: steady(1),
    gapShare: 0,
    follower: false,
  },
};

function compare(tl: Timeline, ref: ReferenceTimeline, rnd: () => number, label: string): void {
  strictEqual(tl.length, ref.length, label);
  strictEqual(tl.nativeLength, ref.nativeLength, label);
  strictEqual(tl.firstSample, ref.firstSample, label);
  strictEqual(tl.appended, ref.appended, label);
  strictEqual(tl.timeBase, ref.timeBase, label);
  strictEqual(tl.bytes, ref.bytes, `${label}: bytes`);
  deepStrictEqual(tl.spans(), ref.spans(), label);
  const lo = Math.max(0, tl.firstSample - 5), hi = tl.length + 5;
  for (let q = 0; q < 24; q++) {
    const k = lo + Math.floor(rnd() * (hi - lo));
    deepStrictEqual(tl.locate(k), ref.locate(k), `${label}: locate ${k}`);
    deepStrictEqual(tl.spanAt(k), ref.spanAt(k), `${label}: spanAt ${k}`);
    strictEqual(tl.isGap(k), ref.isGap(k), `${label}: isGap ${k}`);
    const to = k + Math.floor(rnd() * 4000);
    deepStrictEqual(tl.gaps(k, to), ref.gaps(k, to), `${label}: gaps ${k}..${to}`);
    const e = tl.appended - 1 - Math.floor(rnd() * 3000);
    deepStrictEqual(
      outcome(() => tl.entryTime(e)),
      outcome(() => ref.entryTime(e)),
      `${label}: entryTime ${e}`,
    );
    deepStrictEqual(
      outcome(() => tl.entryStart(e)),
      outcome(() => ref.entryStart(e)),
      `${label}: entryStart ${e}`,
    );
  }
}

for (const [name, sc] of Object.entries(SCENARIOS)) {
  Deno.test(`timeline records: the same as the column layout on random appends, prunes and queries (${name})`, () => {
    for (const seed of [1, 2, 3]) {
      const rnd = lcg(seed * 7919 + name.length);
      const opts = { lookbackSamples: sc.lookback };
      const tl = new Timeline(sc.rate, opts), ref = new ReferenceTimeline(sc.rate, opts);
      let time = 1_763_900_000_123_456_789n, ordinal = 0, retained = 0;
      if (sc.follower) {
        tl.retainFrom(0, sc.lookback * 2, 256);
        ref.retainFrom(0, sc.lookback * 2, 256);
      }
      for (let i = 0; i < 6000; i++) {
        time += sc.step(rnd, i);
        ordinal += sc.ordinal(rnd, i);
        const frames = sc.frames(rnd, i), gap = rnd() < sc.gapShare;
        deepStrictEqual(tl.append(ordinal, time, frames, gap), ref.append(ordinal, time, frames, gap));
        // The entry just appended, as a follower asks for it (the timeline answers from what it kept).
        const last = tl.appended - 1;
        deepStrictEqual(outcome(() => tl.entryStart(last)), outcome(() => ref.entryStart(last)));
        deepStrictEqual(outcome(() => tl.entryTime(last)), outcome(() => ref.entryTime(last)));
        if (rnd() < 0.01) {
          const before = tl.length - Math.floor(rnd() * sc.lookback);
          tl.prune(before);
          ref.prune(before);
        }
        if (sc.follower && rnd() < 0.02) {
          // The follower moves on (as CaptureTimes does every 256 messages), at most to the newest entry.
          retained = Math.min(tl.appended - 1, retained + Math.floor(rnd() * 600));
          tl.retainFrom(retained);
          ref.retainFrom(retained);
        }
        if (i % 97 === 0 || i > 5950) compare(tl, ref, rnd, `${name} seed ${seed} @ ${i}`);
      }
    }
  });
}

Deno.test("timeline records: an entry's fields share its block's lines (one buffer, extras and bases first)", () => {
  const r = new BlockRecords(2 * BLOCK, [24, 8, 8], { extras: 1 });
  // Header: the extra and three bases (32 bytes); 32 records of 3 + 1 + 1 bytes.
  strictEqual(r.bytes, 2 * (32 + BLOCK * 5));
  r.setExtra(0, 1, 12345);
  for (let s = 0; s < 2 * BLOCK; s++) {
    r.set(0, s, 1e15 + s * 100_003);
    r.set(1, s, s % 2 ? -160 : 160);
    r.set(2, s, 3 * s);
  }
  strictEqual(r.extra(0, 1), 12345, "the extra is not a base");
  for (let s = 0; s < 2 * BLOCK; s++) {
    strictEqual(r.get(0, s), 1e15 + s * 100_003);
    strictEqual(r.get(1, s), s % 2 ? -160 : 160);
    strictEqual(r.get(2, s), 3 * s);
  }
  // Column 1 widens (every other value is far from its block's first): the others read back the same.
  for (let s = 0; s < 2 * BLOCK; s++) r.set(1, s, s % 2 ? 1000 + s : -5);
  strictEqual(r.width(1), 16);
  strictEqual(r.width(0), 24);
  for (let s = 0; s < 2 * BLOCK; s++) {
    strictEqual(r.get(0, s), 1e15 + s * 100_003);
    strictEqual(r.get(1, s), s % 2 ? 1000 + s : -5);
    strictEqual(r.get(2, s), 3 * s);
  }
  strictEqual(r.extra(0, 1), 12345);
  strictEqual(r.bytes, 2 * (32 + BLOCK * 6));
});

Deno.test("timeline records: columns' layout packed in one number, four columns at most", () => {
  const r = new BlockRecords(BLOCK, [8, 16, 24, 32]);
  const values = [-100, 30_000, -8_000_000, 2_000_000_000];
  for (let s = 0; s < BLOCK; s++) values.forEach((v, c) => r.set(c, s, s === 0 ? 0 : v));
  for (let s = 1; s < BLOCK; s++) values.forEach((v, c) => strictEqual(r.get(c, s), v));
  strictEqual(r.bytes, 4 * 8 + BLOCK * 10);
  throws(() => new BlockRecords(BLOCK, [8, 8, 8, 8, 8]), RangeError);
});
