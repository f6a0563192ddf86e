// Tuned rules of the lookups (audio/match/lookup.ts) that no test failed without: silent target frames are not
// looked up, and a target value is also probed with each half's weakest bit toggled.
import { ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { DEFAULT_THRESHOLDS } from "../audio/match/thresholds.ts";
import { TargetMatcher } from "../audio/match/target_matcher.ts";
import type { MatcherStats } from "../audio/match/types.ts";
import { SignatureIndex } from "../audio/match/signature_index.ts";
import { fpSignature, randomFrames } from "./support/fp_signature.ts";

const T0 = 1_000_000_000_000n;

const { fp: FP, background: BACKGROUND } = randomFrames(17);
const SIG = fpSignature(FP, T0);

/** Unrelated target frames (at -20 dB) but frame 250: `v` at `energyDb`, its weakest bits per `weak`. */
function target(v: number, energyDb: number, weak = 0): FrameStore {
  const store = new FrameStore(BACKGROUND.length);
  for (let t = 0; t < BACKGROUND.length; t++) {
    if (t === 250) store.push(v, weak, energyDb, 0xffffffff);
    else store.push(BACKGROUND[t]!, 0, -20, 0xffffffff);
  }
  return store;
}

/** Counters of a forward search over all of `store` with the signature indexed. */
function forward(store: FrameStore): MatcherStats {
  const index = new SignatureIndex();
  index.add(SIG);
  const m = new TargetMatcher({
    index,
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    firstSampleAtOrAfter: () => 0,
  });
  m.onFrames(0, store.end);
  m.onFrames(store.end, store.end, true);
  return m.stats();
}

Deno.test("silent frames: a target frame quieter than -55 dB is not looked up (digital silence matches nothing)", () => {
  // The signature's frame 40 exactly, as loud as the rest: a hit.
  ok(forward(target(FP[40]!, -20)).hits > 0);
  ok(forward(target(FP[40]!, -50)).hits > 0);
  // The same value in a frame at -60 dB: silence (all-zero patterns of a dead line are one hot bucket).
  const silent = forward(target(FP[40]!, -60));
  strictEqual(silent.hits, 0);
  strictEqual(silent.prechecked, 0);
});

Deno.test("probes: a frame with a weak bit flipped in each half is found by toggling the weakest bit per half", () => {
  // weak 0: the weakest bit of the high half is bit 31, of the low half bit 15 (fingerprint.ts weakMask). With
  // both flipped neither half is exact; toggling either weakest bit gives an exact half, the whole within 1 bit.
  const v = (FP[40]! ^ (1 << 31) ^ (1 << 15)) >>> 0;
  ok(forward(target(v, -20, 0)).hits > 0);
  // Bits 30 and 14 flipped where the frame records them as each half's second weakest (weak 0x1010): the
  // fingerprint records two weak bits per half, the lookups toggle only the weakest (each probe costs a lookup
  // of every target frame), and the same distance is not found.
  const second = (FP[40]! ^ (1 << 30) ^ (1 << 14)) >>> 0;
  strictEqual(forward(target(second, -20, 0x1010)).hits, 0);
});
