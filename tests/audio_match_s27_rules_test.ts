// Tuned rules of verification (audio/match/thresholds.ts, score.ts) that no test failed without: each test builds
// the situation its rule decides on synthetic frames (random sub-fingerprints, a known number of bit errors per
// frame) and checks the rule's effect, so that dropping or weakening the rule fails the test.
import { ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { fpSignature } from "./support/fp_signature.ts";
import {
  DEFAULT_THRESHOLDS,
  type MatchThresholds,
  MIN_USED_FRAMES,
  requiredZ,
} from "../audio/match/thresholds.ts";
import { significance } from "../audio/match/score.ts";
import { emptyMatcherStats, type VerifyTrace } from "../audio/match/types.ts";
import { Verifier } from "../audio/match/verify.ts";
import type { Signature } from "../audio/types.ts";
import { flipBits, xorshift32 } from "./support/rng.ts";

const T0 = 1_000_000_000_000n;
/** Target frame where the blocks are placed. */
const AT = 200;
const ALL_STRONG = 0xffffffff;

function signature(fp: Uint32Array): Signature {
  return fpSignature(fp, T0);
}

/** A store of `frames` (each with strong-bit mask `strong`). */
function storeOf(frames: Uint32Array, strong = ALL_STRONG): FrameStore {
  const store = new FrameStore(512);
  for (const v of frames) store.push(v, 0, -20, strong);
  return store;
}

/** Verifies `sig` found by a vote at AT in `store` under `rule`; the match and the verification's traces. */
function verify(sig: Signature, store: FrameStore, rule: MatchThresholds = DEFAULT_THRESHOLDS) {
  const traces: VerifyTrace[] = [];
  const v = new Verifier({
    store,
    rule,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    observe: (t) => traces.push(t),
  }, emptyMatcherStats());
  return { match: v.verify(sig, AT), traces };
}

/** A random `n`-frame block whose frame j is `base[j % period]` (`period` n: no repetition). */
function periodicBlock(n: number, period: number, r: () => number): Uint32Array {
  const base = Uint32Array.from({ length: period }, () => r());
  return Uint32Array.from({ length: n }, (_, j) => base[j % period]!);
}

/** 400 random target frames with `fp` at AT, `errors` bit errors in each of its frames. */
function targetWith(fp: Uint32Array, errors: number, r: () => number, len = 400): Uint32Array {
  const target = Uint32Array.from({ length: len }, () => r());
  for (let j = 0; j < fp.length && AT + j < len; j++) target[AT + j] = flipBits(fp[j]!, errors, r);
  return target;
}

Deno.test("margin: audio that repeats every 6 frames fits nearly as well a period away: no clear peak, no match", () => {
  // A block of repetitive audio (a tone, a ringback, hold music): a period away the block agrees as well but for
  // the 6 frames that run past the copy, a weighted BER only ~0.02 worse.
  const r = xorshift32(5);
  const fp = periodicBlock(128, 6, r);
  const rep = verify(signature(fp), storeOf(targetWith(fp, 3, r)));
  strictEqual(rep.traces.length, 1);
  const t = rep.traces[0]!;
  strictEqual(t.frame, AT);
  ok(t.z >= requiredZ(DEFAULT_THRESHOLDS, 128), `significant on its own: z ${t.z}`);
  ok(t.second - t.ber < DEFAULT_THRESHOLDS.margin && t.second > t.ber, `ber ${t.ber} second ${t.second}`);
  strictEqual(rep.match, undefined, "rejected for want of a peak");
  // The same audio without the repetition: a clear peak, a match.
  const plain = periodicBlock(128, 128, r);
  strictEqual(verify(signature(plain), storeOf(targetWith(plain, 3, r))).match?.frame, AT);
});

Deno.test("margin span: the second best is looked for up to 6 frames either side of the peak", () => {
  // Repeats 4, 5 and 6 frames away (all within the span) and the other side: each is found and rejects.
  for (const period of [2, 4, 5, 6]) {
    const r = xorshift32(10 + period);
    const fp = periodicBlock(128, period, r);
    const got = verify(signature(fp), storeOf(targetWith(fp, 3, r)));
    strictEqual(got.match, undefined, `period ${period}`);
    const t = got.traces[0]!;
    ok(t.second - t.ber < DEFAULT_THRESHOLDS.margin, `period ${period}: ber ${t.ber} second ${t.second}`);
  }
  // Repeating 8 frames away, beyond the span: the next period is not compared, and the peak stands.
  const r = xorshift32(9);
  const fp = periodicBlock(128, 8, r);
  strictEqual(verify(signature(fp), storeOf(targetWith(fp, 3, r))).match?.frame, AT);
});

Deno.test("min used frames: a block with fewer than 16 frames held is not verified, however clean", () => {
  const r = xorshift32(21);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const full = targetWith(fp, 0, r);
  // The target has so far received the block's first 12 frames, exact: significant enough for 12 frames
  // (z ~8 against the 6.93 they need), but too few to stand on.
  const early = 12;
  ok(early < MIN_USED_FRAMES);
  const z12 = significance(0, 32 * early, 32 * early);
  ok(z12 > requiredZ(DEFAULT_THRESHOLDS, early), `z ${z12}`);
  const partial = verify(signature(fp), storeOf(full.subarray(0, AT + early)));
  strictEqual(partial.match, undefined);
  // Once 16 frames are held it is a match.
  strictEqual(verify(signature(fp), storeOf(full.subarray(0, AT + MIN_USED_FRAMES))).match?.frame, AT);
});

Deno.test("threshold BER: a configured lower significance still needs a weighted BER of at most 0.4", () => {
  // With the default significance (6.4) no block of up to 128 frames reaches it at a BER of 0.4: the bound
  // decides only under a rule whose significance is configured lower.
  ok(significance(DEFAULT_THRESHOLDS.thresholdBer, 4096, 4096) < DEFAULT_THRESHOLDS.minZ);
  const rule: MatchThresholds = { ...DEFAULT_THRESHOLDS, minZ: 2 };
  const r = xorshift32(31);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  // 14 errors in 32 bits per frame: BER 0.4375, z 2.3; with 12: BER 0.375, z 4.6.
  const poor = verify(signature(fp), storeOf(targetWith(fp, 14, r)), rule);
  const t = poor.traces[0]!;
  ok(t.ber > DEFAULT_THRESHOLDS.thresholdBer && t.z >= requiredZ(rule, 128), `ber ${t.ber} z ${t.z}`);
  strictEqual(poor.match, undefined);
  strictEqual(verify(signature(fp), storeOf(targetWith(fp, 12, r)), rule).match?.frame, AT);
});

/** `v` with `n` of the bits in `mask` (from its lowest set bit up, starting at the `from`-th) flipped. */
function flipWithin(v: number, mask: number, n: number, from: number): number {
  const bits: number[] = [];
  for (let b = 0; b < 32; b++) if ((mask >>> b) & 1) bits.push(b);
  for (let i = 0; i < n; i++) v ^= 1 << bits[(from + i) % bits.length]!;
  return v >>> 0;
}

Deno.test("weak bits: errors where the target measured small energy differences count 0.3, strong ones fully", () => {
  // Half of each target frame's bits strong. 8 bit errors per frame: on weak bits (what noise flips first) the
  // block is a clear match (weighted BER 0.12); the same count on strong bits is no match (0.38, z 3.9). With
  // every bit counted alike both would score BER 0.25, z 9.2: both matches.
  const strong = 0x0000ffff;
  const r = xorshift32(41);
  const fp = Uint32Array.from({ length: 128 }, () => r());
  const errorsOn = (bits: number) => {
    const target = Uint32Array.from({ length: 400 }, () => r());
    for (let j = 0; j < 128; j++) target[AT + j] = flipWithin(fp[j]!, bits, 8, j);
    return verify(signature(fp), storeOf(target, strong));
  };
  const weak = errorsOn(~strong);
  strictEqual(weak.match?.frame, AT);
  ok(weak.match.ber < 0.15, `ber ${weak.match.ber}`);
  const onStrong = errorsOn(strong);
  strictEqual(onStrong.match, undefined);
  ok(onStrong.traces[0]!.ber > 0.35, `ber ${onStrong.traces[0]!.ber}`);
});
