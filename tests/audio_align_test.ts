import { deepStrictEqual, notDeepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { ENV_VALUES, EnvelopeScratch, envelopeShift, sourceEnvelope } from "../audio/align/level_envelope.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function shifted(x: Float32Array, lead: number): Float32Array {
  const y = new Float32Array(x.length + lead);
  y.set(x, lead);
  return y;
}

function analysed(x: Float32Array): { ring: SampleRing; store: FrameStore } {
  const ring = new SampleRing(1 << 17);
  const store = new FrameStore(2048);
  ring.write(0, x, 0);
  new Fingerprinter(ring, store).advance();
  return { ring, store };
}

/** Source anchors of the fixture: grid frames where speech is loud (both prompts). */
const ANCHORS = [40, 60, 80, 250, 280, 310];

Deno.test("envelope: quantised levels of the instant's surroundings, 0..7", () => {
  const src = analysed(samples("speech_8k.ul"));
  const env = sourceEnvelope(src.ring, 40 * HOP + INSTANT_OFFSET)!;
  strictEqual(env.length, ENV_VALUES);
  ok(env.every((v) => v >= 0 && v <= 7));
  ok(env.some((v) => v === 7) && env.some((v) => v <= 2));
  strictEqual(sourceEnvelope(src.ring, 10), undefined, "samples before the stream are not held");
});

Deno.test("fine alignment finds the instant within a sample on the same audio, from any coarse frame error", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  for (const lead of [0, 37, 100, 1234]) {
    const tgt = analysed(shifted(x, lead));
    const al = new FineAligner(new FrameAnalyzer());
    for (const n of ANCHORS) {
      const instant = n * HOP + INSTANT_OFFSET;
      const env = sourceEnvelope(src.ring, instant)!;
      const truth = n * HOP + lead;
      const coarse = Math.round(truth / HOP);
      const fp = src.store.bits.slice(n, n + 128);
      const r = al.align(tgt.ring, tgt.store, fp, undefined, env, coarse)!;
      strictEqual(r.by, "envelope");
      // The source envelope is quantised to 3 bits, so even identical audio may peak one sample off.
      ok(Math.abs(r.sample - truth) <= 1, `lead ${lead} anchor ${n}: ${r.sample - truth} samples`);
      ok(r.ber < 0.02, `ber ${r.ber}`);
      // Without the envelope the sub-fingerprints alone get within a millisecond.
      const f = al.align(tgt.ring, tgt.store, fp, undefined, undefined, coarse)!;
      strictEqual(f.by, "fingerprint");
      ok(Math.abs(f.sample - truth) <= 8, `fingerprint-only: ${f.sample - truth} samples`);
      ok(f.ber < 0.02, `aligned-grid BER ${f.ber}`);
    }
  }
});

Deno.test("fine alignment through GSM 06.10 stays within a millisecond", () => {
  const src = analysed(samples("speech_8k.ul"));
  const lead = 555;
  const tgt = analysed(shifted(samples("speech_gsm_8k.ul"), lead));
  const al = new FineAligner(new FrameAnalyzer());
  for (const n of ANCHORS.slice(0, 3)) {
    const env = sourceEnvelope(src.ring, n * HOP + INSTANT_OFFSET)!;
    const truth = n * HOP + lead;
    const r = al.align(
      tgt.ring,
      tgt.store,
      src.store.bits.slice(n, n + 128),
      undefined,
      env,
      Math.round(truth / HOP),
    )!;
    ok(Math.abs(r.sample - truth) <= 8, `anchor ${n}: ${r.sample - truth} samples`);
  }
});

Deno.test("envelopeShift: gain does not matter and a 150-sample shift is found", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const k = 300 * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src.ring, k)!;
  const quiet = analysed(shifted(x.map((v) => v * 0.1), 200));
  const r = envelopeShift(quiet.ring, env, k + 200 - 150, ALIGN_RANGE, new EnvelopeScratch())!;
  strictEqual(r.shift, 150);
  // The correlation is of levels less their ±16 ms mean, where the 3-bit source quantisation weighs more.
  ok(r.corr > 0.8, `corr ${r.corr}`);
  strictEqual(envelopeShift(quiet.ring, env, 100, ALIGN_RANGE, new EnvelopeScratch()), undefined, "not held");
});

/** The fingerprint-only search as align.ts states it, every frame analysed afresh: the shift it picks. */
function referenceShift(ring: SampleRing, store: FrameStore, fp: Uint32Array, coarse: number): number {
  const an = new FrameAnalyzer();
  const { hop } = FP_PARAMS;
  const n = fp.length, w = Math.min(48, n);
  let bestStart = 0, bestScore = -Infinity;
  for (let j0 = 0; j0 + w <= n; j0++) {
    let sc = 0;
    for (let j = j0; j < j0 + w; j++) {
      sc += store.has(coarse + j, 1) ? Math.max(0, store.energy[(coarse + j) & store.mask]! + 80) : 0;
    }
    if (sc > bestScore) [bestScore, bestStart] = [sc, j0];
  }
  const soft = (origin: number): number => {
    let prev = new Float64Array(33), cur = new Float64Array(33);
    an.analyze(ring, origin + (bestStart - 1) * hop, prev);
    let total = 0, frames = 0;
    for (let j = bestStart; j < bestStart + w; j++) {
      an.analyze(ring, origin + j * hop, cur);
      let num = 0, den = 0;
      for (let m = 0; m < 32; m++) {
        const d = cur[m]! - cur[m + 1]! - (prev[m]! - prev[m + 1]!);
        num += (fp[j]! >>> (31 - m)) & 1 ? d : -d;
        den += d < 0 ? -d : d;
      }
      if (den > 0) [total, frames] = [total + num / den, frames + 1];
      [prev, cur] = [cur, prev];
    }
    return frames ? total / frames : -1;
  };
  const cache = new Map<number, number>();
  const at = (s: number) => cache.get(s) ?? cache.set(s, soft(coarse * hop + s)).get(s)!;
  const range = ALIGN_RANGE, step0 = hop / 4;
  let best = 0;
  for (let s = -range; s <= range; s += step0) if (at(s) > at(best)) best = s;
  for (let step = step0 >> 1; step >= 1; step >>= 1) {
    let next = best;
    for (const s of [best - step, best + step]) if (s >= -range && s <= range && at(s) > at(next)) next = s;
    best = next;
  }
  for (let moved = true, guard = 0; moved && guard < 8; guard++) {
    moved = false;
    for (const s of [best - 1, best + 1]) {
      if (s >= -range && s <= range && at(s) > at(best)) [best, moved] = [s, true];
    }
  }
  return best;
}

Deno.test("fingerprint-only alignment analyses each coarse frame once and picks the shift of the plain search", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  /** Counts analyses per position. */
  class Spy extends FrameAnalyzer {
    readonly seen = new Map<number, number>();
    override analyze(ring: SampleRing, pos: number, out: Float64Array): number {
      this.seen.set(pos, (this.seen.get(pos) ?? 0) + 1);
      return super.analyze(ring, pos, out);
    }
  }
  // One aligner for all, as a process has: what its memo holds from one alignment must not reach the next.
  const spy = new Spy();
  const al = new FineAligner(spy);
  for (const lead of [37, 1234]) {
    const tgt = analysed(shifted(x, lead));
    for (const n of ANCHORS.slice(0, 4)) {
      spy.seen.clear();
      const coarse = Math.round((n * HOP + lead) / HOP) + (n % 3) - 1;
      const fp = src.store.bits.slice(n, n + 128);
      const f = al.align(tgt.ring, tgt.store, fp, undefined, undefined, coarse)!;
      strictEqual(f.shift, referenceShift(tgt.ring, tgt.store, fp, coarse), `lead ${lead} anchor ${n}`);
      // Before the aligned grid's BER (24 frames and their previous ones), the search analysed no position twice.
      const repeated = [...spy.seen.values()].filter((c) => c > 1).length;
      ok(repeated <= 48, `lead ${lead} anchor ${n}: ${repeated} positions analysed more than once`);
    }
  }
});

Deno.test("sourceEnvelope takes an envelope search's window levels where they hold, the same levels", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  const k = 300 * HOP + INSTANT_OFFSET;
  const env = sourceEnvelope(src.ring, k)!;
  // A ring that ages its samples to 4 bits 8,192 samples after they arrive (a target's does after ~10 s).
  const lead = 200;
  const y = shifted(x, lead);
  const ring = new SampleRing(1 << 17, { hotSamples: 4096, warmSamples: 4096 });
  const upTo = k + lead + 6000;
  ring.write(0, y.subarray(0, upTo), 0);
  const scratch = new EnvelopeScratch();
  const r = envelopeShift(ring, env, k + lead - 100, ALIGN_RANGE, scratch)!;
  strictEqual(r.shift, 100);
  const instant = k + lead;
  for (const at of [instant, instant - 37, instant + ALIGN_RANGE - 1]) {
    deepStrictEqual(sourceEnvelope(ring, at, scratch), sourceEnvelope(ring, at), `instant ${at}`);
  }
  // Taken from the search's levels: a level changed there shows (the loudest window, the rest quantised down).
  const at = instant - 512 - scratch.dbFrom;
  const kept = scratch.db[at]!;
  scratch.db[at] = kept + 40;
  notDeepStrictEqual(sourceEnvelope(ring, instant, scratch), sourceEnvelope(ring, instant));
  // ... but not another ring's, nor once the samples aged to the 4-bit tier since the search.
  const other = analysed(y).ring;
  deepStrictEqual(sourceEnvelope(other, instant, scratch), sourceEnvelope(other, instant));
  ring.write(upTo, y.subarray(upTo, upTo + 16_384), 0);
  ok(ring.finalBefore > instant + 1544, `aged to ${ring.finalBefore}`);
  ok(sourceEnvelope(ring, instant), "still held");
  deepStrictEqual(sourceEnvelope(ring, instant, scratch), sourceEnvelope(ring, instant));
  // Outside the searched span: computed afresh.
  deepStrictEqual(sourceEnvelope(ring, instant + 4000), sourceEnvelope(ring, instant + 4000, scratch));
});

Deno.test("fine alignment past target sample 2^31 (a stream's 75th hour): the answer and BER it gives at 0", () => {
  const x = samples("speech_8k.ul");
  const src = analysed(x);
  // The same audio from sample 0 and from 2^31 - 2^15 on: anchors 250-310's blocks cross 2^31.
  const base = 2 ** 31 - 2 ** 15;
  const far = { ring: new SampleRing(1 << 17), store: new FrameStore(2048) };
  far.ring.write(base, x, 0);
  new Fingerprinter(far.ring, far.store).advance();
  const al = new FineAligner(new FrameAnalyzer());
  for (const n of ANCHORS) {
    const env = sourceEnvelope(src.ring, n * HOP + INSTANT_OFFSET)!;
    const fp = src.store.bits.slice(n, n + 128);
    for (const e of [env, undefined]) {
      // The far alignment first: nothing of the same block read just before it.
      const f = al.align(far.ring, far.store, fp, undefined, e, n + base / HOP)!;
      const r = al.align(src.ring, src.store, fp, undefined, e, n)!;
      deepStrictEqual(
        [f.by, f.sample - base, f.shift, f.ber],
        [r.by, r.sample, r.shift, r.ber],
        `anchor ${n} ${f.by}: the aligned grid's BER from sampled frames on both sides of 2^31`,
      );
    }
  }
});
