import { deepEqual, ok } from "node:assert/strict";
import { type CaptureEntries, gapHintsOf } from "../audio/align/gap_hints.ts";
import { GapHintCache } from "../audio/gap_hint_cache.ts";
import { ANALYSIS_RATE } from "../audio/decode/resample.ts";

/** A stream's entries that grow at the end and are forgotten at the start, like CaptureTimes. */
class Entries implements CaptureEntries {
  starts: number[] = [];
  times: number[] = [];
  first = 0;
  get length(): number {
    return this.starts.length - this.first;
  }
  startAt(i: number): number {
    return this.starts[this.first + i]!;
  }
  timeOffsetAt(i: number): number {
    return this.times[this.first + i]!;
  }
}

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("GapHintCache: the same hints as gapHintsOf over the entries held, as they grow and are pruned", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const e = new Entries();
    const cache = new GapHintCache(ANALYSIS_RATE);
    let sample = 0, time = 0, end = 0, queries = 0, hinted = 0;
    for (let m = 0; m < 3000; m++) {
      // Messages of 10-120 ms, some empty; capture times a message's length apart, some late (a lost message),
      // some early or stalled.
      const len = r() < 0.03 ? 0 : Math.round((10 + 110 * r()) * ANALYSIS_RATE / 1000);
      e.starts.push(sample);
      const late = r() < 0.08 ? (20 + 400 * r()) * 1e6 : r() < 0.02 ? 700e6 : (r() - 0.5) * 4e6;
      time += Math.round(len / ANALYSIS_RATE * 1e9 + late);
      e.times.push(time);
      sample += len;
      end = sample + Math.floor(r() * 200);
      // Forget the oldest entries now and then, those wholly before a horizon of ~3 s (at least one stays); queries
      // reach before it.
      if (r() < 0.05) {
        const horizon = sample - 20000 - Math.floor(r() * 10000);
        while (e.length > 1 && e.startAt(1) <= horizon) e.first++;
      }
      const calls = r() < 0.5 ? 0 : 1 + Math.floor(r() * 3);
      for (let c = 0; c < calls; c++) {
        const span = Math.floor(r() * 30000);
        const from = Math.floor(sample - r() * 40000);
        const to = r() < 0.1 ? from : from + span;
        const want = gapHintsOf(e, end, ANALYSIS_RATE, from, to);
        deepEqual(cache.hints(e, end, from, to), want, `seed ${seed} message ${m} [${from}, ${to})`);
        queries++;
        hinted += want.length;
      }
    }
    ok(queries > 1000 && hinted > 100, `seed ${seed}: ${queries} queries, ${hinted} hints`);
  }
});

Deno.test("GapHintCache: forgets hints before the oldest entry held", () => {
  const e = new Entries();
  const cache = new GapHintCache(ANALYSIS_RATE);
  for (let m = 0; m < 2000; m++) {
    e.starts.push(m * 160);
    // Every tenth message arrives 40 ms late: a gap hint.
    e.times.push(m * 20e6 + Math.floor(m / 10) * 40e6);
    e.first = Math.max(0, m - 100);
    cache.hints(e, (m + 1) * 160, m * 160 - 1000, m * 160);
  }
  ok(cache.size <= 2 * 10 + 64, `${cache.size} hints held`);
});
