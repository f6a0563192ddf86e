// Votes of lookup hits (audio/match/lookup.ts, target_matcher.ts): a near-exact hit is worth two votes, so a
// single one queues a pre-check where a single hit a few bits off does not, in both search orders.
import { strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { HIT_MAX_DIST } from "../audio/match/lookup.ts";
import { DEFAULT_THRESHOLDS } from "../audio/match/thresholds.ts";
import { TargetMatcher } from "../audio/match/target_matcher.ts";
import type { MatcherStats } from "../audio/match/types.ts";
import { SignatureIndex } from "../audio/match/signature_index.ts";
import { fpSignature, randomFrames } from "./support/fp_signature.ts";

const T0 = 1_000_000_000_000n;

const { fp: FP, background: BACKGROUND } = randomFrames(11);
const SIG = fpSignature(FP, T0);

/**
 * Target frames unrelated to the signature except, when `dist` is given, frame 250: the signature's frame 40
 * with `dist` bits of its low half flipped (the high half stays exact, so the lookup finds it); the first
 * `frames` of them.
 */
function target(dist: number | undefined, frames = BACKGROUND.length): FrameStore {
  const store = new FrameStore(BACKGROUND.length);
  for (let t = 0; t < frames; t++) {
    let v = BACKGROUND[t]!;
    if (t === 250 && dist !== undefined) v = (FP[40]! ^ ((1 << dist) - 1)) >>> 0;
    store.push(v, 0, -20, 0xffffffff);
  }
  return store;
}

function matcher(store: FrameStore, index: SignatureIndex): TargetMatcher {
  return new TargetMatcher({
    index,
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    firstSampleAtOrAfter: () => 0,
  });
}

/** Counters of a forward search over all of `store` with the signature indexed. */
function forward(store: FrameStore): MatcherStats {
  const index = new SignatureIndex();
  index.add(SIG);
  const m = matcher(store, index);
  m.onFrames(0, store.end);
  m.onFrames(store.end, store.end, true);
  return m.stats();
}

/** Counters of a backward search of the signature over all of `store`. */
function backward(store: FrameStore): MatcherStats {
  const m = matcher(store, new SignatureIndex());
  m.searchBackward(SIG);
  return m.stats();
}

Deno.test("votes: the unrelated frames alone give no hit at all", () => {
  strictEqual(forward(target(undefined)).hits, 0);
  strictEqual(forward(target(undefined)).prechecked, 0);
  strictEqual(backward(target(undefined)).prechecked, 0);
});

Deno.test("strong single hit: one hit within 1 bit queues a pre-check, one hit further off does not", () => {
  for (let dist = 0; dist <= HIT_MAX_DIST; dist++) {
    // The tuned STRONG_HIT_DIST, spelled out: the test is about its effect.
    const strong = dist <= 1;
    const fwd = forward(target(dist));
    strictEqual(fwd.hits > 0, true, `forward finds the hit at distance ${dist}`);
    strictEqual(fwd.prechecked, strong ? 1 : 0, `forward, distance ${dist}`);
    // The pre-check itself rejects it: one frame of 128 is no match.
    strictEqual(fwd.accepted, 0);
    strictEqual(backward(target(dist)).prechecked, strong ? 1 : 0, `backward, distance ${dist}`);
  }
});

Deno.test("a candidate whose pre-check frames are all there is pre-checked at once: a failing one is not queued", () => {
  // The exact hit at frame 250 (signature frame 40) makes alignment 210 a candidate, its pre-check due at frame
  // 274 (64 frames of the block): the store holds it already while frames up to 260 are searched.
  for (const [end, queued] of [[400, 0], [270, 1]] as const) {
    const index = new SignatureIndex();
    index.add(SIG);
    const m = matcher(target(0, end), index);
    m.onFrames(0, 260);
    strictEqual(m.pending, queued, `store to ${end}`);
    strictEqual(m.stats().prechecked, 1 - queued);
    strictEqual(m.stats().rejected, 1 - queued);
  }
});
