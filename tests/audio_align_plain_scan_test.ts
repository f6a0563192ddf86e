import { ok, strictEqual } from "node:assert/strict";
import { ALIGN_RANGE, ENVELOPE_RANGE, INSTANT_OFFSET } from "../audio/align/align.ts";
import { MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import {
  ALT_MARGIN,
  ALT_SEPARATION,
  COARSE_STEP,
  DETREND_SPAN,
  ENV_HOP,
  ENV_VALUES,
  EnvelopeScratch,
  envelopeShift,
  FAR_HANDICAP,
  flatPlainSide,
  NEAR_SHIFT,
  placedCorrelation,
  plainCorrelation,
  REFINE_CANDIDATES,
  sourceEnvelope,
  SourceSides,
} from "../audio/align/level_envelope.ts";
import { PlainScan, SCAN_TOLERANCE } from "../audio/align/plain_scan.ts";
import { FP_PARAMS } from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const HOP = FP_PARAMS.hop;

function samples(name: string): Float32Array {
  return Float32Array.from(Deno.readFileSync(new URL(name, FIXTURES)), (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function ringOf(x: Float32Array): SampleRing {
  const ring = new SampleRing(1 << 17);
  ring.write(0, x, 0);
  return ring;
}

/** A deterministic pseudo-random generator (LCG), [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Speech-like window levels (dB): loud bursts, pauses at a floor, pitch-rate ripple. */
function levels(n: number, rnd: () => number): Float64Array {
  const db = new Float64Array(n);
  let on = true, left = 0, level = 60;
  for (let i = 0; i < n; i++) {
    if (left-- <= 0) {
      on = !on;
      left = 200 + Math.floor(rnd() * 900);
      level = 45 + 30 * rnd();
    }
    db[i] = on ? level + 8 * Math.sin(i / (20 + 10 * rnd())) + 4 * rnd() : -20 + 3 * rnd();
  }
  return db;
}

Deno.test("plain scan: every estimate is within its tolerance of the exact correlation, with room to spare", () => {
  const rnd = random(7);
  // The cross terms in WebAssembly SIMD and in JS.
  const scans = [
    new PlainScan(ENV_VALUES, ENV_HOP, DETREND_SPAN),
    new PlainScan(ENV_VALUES, ENV_HOP, DETREND_SPAN, { simd: false }),
  ];
  let estimated = 0, left = 0, worst = 0;
  for (let trial = 0; trial < 24; trial++) {
    const scan = scans[trial % 2]!;
    const range = (trial >> 1) % 2 ? 1024 : 256;
    const positions = 2 * range + (ENV_VALUES - 1) * ENV_HOP + 1;
    const db = levels(positions, rnd);
    // A long pause at the target's floor: shifts that see only it are flat, left to the exact formula.
    if (trial >= 22) db.fill(-20, 0, 3000);
    const sDb = Float64Array.from({ length: ENV_VALUES }, () => -45 + 45 * Math.round(rnd() * 7) / 7);
    const sides = new SourceSides();
    sides.reset(sDb, Uint8Array.from(sDb, (v) => Math.round(((v + 45) / 45) * 7)));
    // The search's coarse grid; clamps that change along it (a new loudest value, a noise floor), the source's
    // every few shifts.
    const ds: number[] = [];
    for (let d = 0; d <= 2 * range; d += Math.abs(d - range) > NEAR_SHIFT ? 2 * COARSE_STEP : COARSE_STEP) {
      ds.push(d);
    }
    const floors = Float64Array.from(ds, (d) => 10 + (d > range ? 15 : 0) + (d % 400 < 12 ? 5 : 0));
    const rels = Float64Array.from(floors, (f, j) => (j % 3 === 0 && (trial >> 1) % 3 === 0 ? -45 : f - 75));
    const out = new Float64Array(ds.length);
    scan.scan(db, Int32Array.from(ds), ds.length, floors, rels, (rel) => sides.get(rel), out);
    const at = new Int32Array(ENV_VALUES);
    ds.forEach((d, j) => {
      if (Number.isNaN(out[j]!)) {
        left++;
        return;
      }
      estimated++;
      for (let i = 0; i < ENV_VALUES; i++) at[i] = d + i * ENV_HOP;
      const exact = placedCorrelation(db, sDb, at, floors[j]!, rels[j]!);
      worst = Math.max(worst, Math.abs(out[j]! - exact));
    });
  }
  ok(estimated > 1000 && left > 0, `${estimated} estimated, ${left} left to the exact formula`);
  ok(worst < SCAN_TOLERANCE / 100, `worst error ${worst}`);
});

Deno.test("plainCorrelation is placedCorrelation to the bit, whatever clamps came before it", () => {
  const rnd = random(11);
  const db = levels(4096, rnd);
  const sDb = Float64Array.from({ length: ENV_VALUES }, () => -45 + 45 * Math.round(rnd() * 7) / 7);
  const sides = new SourceSides();
  sides.reset(sDb, new Uint8Array(ENV_VALUES).fill(1));
  const at = new Int32Array(ENV_VALUES);
  for (let t = 0; t < 300; t++) {
    const d = Math.floor(rnd() * (4096 - ENV_VALUES * ENV_HOP));
    const floor = -25 + 60 * rnd();
    const rel = t % 4 === 0 ? -45 : -45 + 40 * Math.floor(rnd() * 6) / 5;
    for (let i = 0; i < ENV_VALUES; i++) at[i] = d + i * ENV_HOP;
    strictEqual(plainCorrelation(db, d, floor, rel, sides), placedCorrelation(db, sDb, at, floor, rel));
  }
});

Deno.test("a shift whose every value is at or below its clamp scores -1 exactly, as the search takes it", () => {
  const rnd = random(13);
  const sDb = Float64Array.from({ length: ENV_VALUES }, () => -45 + 45 * Math.round(rnd() * 7) / 7);
  const sides = new SourceSides();
  sides.reset(sDb, new Uint8Array(ENV_VALUES).fill(2));
  const db = new Float64Array(ENV_VALUES * ENV_HOP);
  for (let t = 0; t < 400; t++) {
    // Digital silence (-20 dB) to full scale (~90 dB), values at or just below the clamp.
    const floor = -20 + 110 * rnd();
    for (let k = 0; k < db.length; k++) db[k] = t % 2 ? floor : floor - 30 * rnd() * rnd();
    let max = -Infinity;
    for (let i = 0; i < ENV_VALUES; i++) max = Math.max(max, db[i * ENV_HOP]!);
    ok(flatPlainSide(max, floor));
    strictEqual(plainCorrelation(db, 0, floor, t % 3 ? -45 : floor - max, sides), -1);
  }
  ok(!flatPlainSide(12.5, 12.5 - 1e-9), "one value above the clamp is not flat");
});

/**
 * The envelope search done exhaustively on the exact correlations (the fit's corrAt, which scores any shift
 * exactly): every coarse shift, the best REFINE_CANDIDATES refined, the best peak and a runner-up.
 */
function exhaustive(corrAt: (shift: number) => number, range: number) {
  const handicapped = (d: number) =>
    corrAt(d - range) - (Math.abs(d - range) > NEAR_SHIFT ? FAR_HANDICAP : 0);
  const coarse: { d: number; c: number }[] = [];
  for (let d = 0; d <= 2 * range; d += Math.abs(d - range) > NEAR_SHIFT ? 2 * COARSE_STEP : COARSE_STEP) {
    coarse.push({ d, c: handicapped(d) });
  }
  // Stable: equal scores keep the earlier shift first.
  const top = coarse.slice().sort((a, b) => b.c - a.c).slice(0, REFINE_CANDIDATES);
  const peaks = top.map(({ d: d0 }) => {
    let pd = d0, pc = -Infinity;
    for (let d = Math.max(0, d0 - COARSE_STEP + 1); d <= Math.min(2 * range, d0 + COARSE_STEP - 1); d++) {
      const c = handicapped(d);
      if (c > pc || (c === pc && Math.abs(d - range) < Math.abs(pd - range))) [pd, pc] = [d, c];
    }
    return { d: pd, c: pc };
  });
  peaks.sort((a, b) => b.c - a.c || Math.abs(a.d - range) - Math.abs(b.d - range));
  const best = peaks[0]!;
  const alt = peaks.find((p) => Math.abs(p.d - best.d) >= ALT_SEPARATION && p.c >= best.c - ALT_MARGIN);
  return { shift: best.d - range, alt: alt ? alt.d - range : undefined };
}

Deno.test("envelope search: scoring only the shifts the scan cannot rule out answers as the exhaustive search", () => {
  const clean = samples("speech_8k.ul");
  const src = ringOf(clean);
  const rnd = random(3);
  const noisy = clean.map((v) => v + 0.02 * (rnd() - 0.5));
  const targets = [ringOf(clean), ringOf(samples("speech_gsm_8k.ul")), ringOf(noisy)];
  // One scratch for all: its caches (source sides, kernels, the re-scoring of one signature at the next frame)
  // must not change an answer.
  const scratch = new EnvelopeScratch();
  let compared = 0, alts = 0;
  for (const n of [40, 60, 80, 250, 280, 310]) {
    const env = sourceEnvelope(src, n * HOP + INSTANT_OFFSET)!;
    for (const tgt of targets) {
      for (const range of [ALIGN_RANGE, ENVELOPE_RANGE]) {
        for (const miss of [-300, -37, 0, 128, 256]) {
          const center = n * HOP + INSTANT_OFFSET + miss;
          const r = envelopeShift(tgt, env, center, range, scratch);
          if (!r) continue;
          const want = exhaustive(r.corrAt, range);
          strictEqual(r.shift, want.shift, `anchor ${n} range ${range} miss ${miss}`);
          strictEqual(r.alt?.shift, want.alt, `anchor ${n} range ${range} miss ${miss}: runner-up`);
          const fresh = envelopeShift(tgt, env, center, range, new EnvelopeScratch())!;
          strictEqual(fresh.shift, r.shift);
          strictEqual(fresh.corr, r.corr);
          // Every shift's score, whichever window levels the reused scratch kept (before, after or around the
          // new span) and whichever squares it summed for the rest.
          for (let d = -range; d <= range; d += 5) strictEqual(r.corrAt(d), fresh.corrAt(d), `shift ${d}`);
          compared++;
          if (want.alt !== undefined) alts++;
        }
      }
    }
  }
  ok(compared >= 150, `${compared} searches compared (${alts} with a runner-up)`);
});
