// The tuned rules of many-part scoring across gaps the capture times show (audio/match/parts.ts), one test each,
// on synthetic frames (random sub-fingerprints, all bits strong, a few bit errors per frame) laid out the way a
// silence-suppressing sender leaves them in its stream: the block's parts joined, each earlier by the audio left
// out before it. Every test checks the rule's effect, so that dropping or changing the rule fails it.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { FP_PARAMS, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import {
  FRAME_PLACE,
  inLonePart,
  NOT_SENT_MARGIN,
  PARTS_MIN_FRACTION,
  PartScorer,
  type PartsScore,
  partsWin,
} from "../audio/match/parts.ts";
import { DEFAULT_THRESHOLDS, requiredZ } from "../audio/match/thresholds.ts";
import {
  type CoarseMatch,
  emptyMatcherStats,
  type MatcherStats,
  type TargetGap,
  type VerifyContext,
  type VerifyTrace,
} from "../audio/match/types.ts";
import { Verifier } from "../audio/match/verify.ts";
import type { Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import { flipBits, xorshift32 } from "./support/rng.ts";

const T0 = 1_000_000_000_000n;
const HOP = FP_PARAMS.hop;
/** Target frame of the block's first part. */
const AT = 200;
const N = 128;

interface Layout {
  sig: Signature;
  store: FrameStore;
}

/**
 * A random 128-frame signature, frames `masked` masked (a pause, a soft onset), and 500 random target frames in
 * which unmasked frame j sits at `place(j)` (undefined: not sent) with 2 bit errors.
 */
/** The signature of `fp` (frames `mask` leaves out) and a frame store holding `target`. */
function stored(
  fp: Uint32Array,
  mask: Uint8Array,
  target: ArrayLike<number>,
): { sig: Signature; store: FrameStore } {
  const store = new FrameStore(target.length);
  for (let i = 0; i < target.length; i++) store.push(target[i]!, 0, -20, 0xffffffff);
  const sig = signatureOf({
    id: "sig",
    measurement: "m",
    source: { node: "a", pod: "p", stream: "s", timeNs: T0, offsetMs: 0 },
    fingerprint: fp,
    mask,
    ids: {},
  });
  return { sig, store };
}

function layout(place: (j: number) => number | undefined, masked: (j: number) => boolean, seed = 3): Layout {
  const r = xorshift32(seed);
  const fp = Uint32Array.from({ length: N }, () => r());
  const mask = new Uint8Array(N / 8);
  const target = Uint32Array.from({ length: 500 }, () => r());
  for (let j = 0; j < N; j++) {
    if (masked(j)) {
      mask[j >> 3] = mask[j >> 3]! | (1 << (j & 7));
      continue;
    }
    const p = place(j);
    if (p !== undefined) target[p] = flipBits(fp[j]!, 2, r);
  }
  return stored(fp, mask, target);
}

function verifyAt(l: Layout, s: number, extra: Partial<VerifyContext> = {}): {
  match: CoarseMatch | undefined;
  traces: VerifyTrace[];
} {
  const traces: VerifyTrace[] = [];
  const stats: MatcherStats = emptyMatcherStats();
  const v = new Verifier({
    store: l.store,
    rule: DEFAULT_THRESHOLDS,
    hop: HOP,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    observe: (t) => traces.push(t),
    ...extra,
  }, stats);
  return { match: v.verify(l.sig, s), traces };
}

/** A context that knows `gaps` (analysis samples). */
function knowing(gaps: TargetGap[]): Partial<VerifyContext> {
  return { gapsIn: (from, to) => gaps.filter((g) => g.at >= from && g.at < to) };
}

/**
 * A DTX pause inside the block: 40 frames of speech, a pause (frames 40..69, masked) of which the sender sent the
 * first 10 frames (hangover) and left 15 out, then 58 frames of speech 15 frames earlier than in the source.
 */
const PAUSE_GAP: TargetGap = { at: (AT + 50) * HOP, len: 15 * HOP };
function pause(): Layout {
  return layout((j) => (j < 50 ? AT + j : j >= 65 ? AT + j - 15 : undefined), (j) => j >= 40 && j < 70);
}

Deno.test("parts: a block spanning a suppressed pause is placed by its first part, not by the larger later one", () => {
  const l = pause();
  // Votes find the block where its larger part (after the pause) aligns: 15 frames early.
  const blind = verifyAt(l, AT - 15);
  ok(blind.match?.frame !== AT, "without capture-time gaps the first part's place is not found");
  const r = verifyAt(l, AT - 15, knowing([PAUSE_GAP]));
  strictEqual(r.match?.frame, AT);
  strictEqual(r.match.parts, 1);
  strictEqual(r.match.instantNotSent, undefined);
  ok(r.match.second - r.match.ber >= DEFAULT_THRESHOLDS.margin, "a peak in parts too");
  // Found through the first part: the same answer.
  strictEqual(verifyAt(l, AT, knowing([PAUSE_GAP])).match?.frame, AT);
});

Deno.test("parts win ties: an instant in a soft onset the sender left out is found, and said not sent", () => {
  // The sender resumed 10 frames after the onset; the onset's first 12 frames are quiet (masked), so the block
  // scores the same in parts as whole. The target has comfort noise (random) before the gap.
  const gap: TargetGap = { at: AT * HOP, len: 15 * HOP };
  const l = layout((j) => AT + j - 10, (j) => j < 12);
  const p = new PartScorer();
  p.setGaps([gap]);
  const parts = p.best(l.sig, AT - 10, l.store, HOP)!;
  const whole = verifyAt(l, AT - 10).match!;
  ok(Math.abs(parts.z - whole.z) < 1e-9, `parts z ${parts.z} whole z ${whole.z}`);
  ok(partsWin(parts, whole.z), "a tie goes to the parts");
  strictEqual(parts.instantSent, false);
  const r = verifyAt(l, AT - 10, knowing([gap]));
  strictEqual(r.match?.instantNotSent, true);
  strictEqual(r.match.parts, 1);
});

Deno.test("not-sent margin: an instant less than a hop inside a gap's end is the resumed audio's", () => {
  // The instant 40 samples before the end of the gap in sent-time: the grid cannot tell it from the resume.
  const inside = 40;
  ok(inside < NOT_SENT_MARGIN * HOP);
  const gap: TargetGap = { at: AT * HOP + inside + 8, len: 15 * HOP };
  const l = layout((j) => AT + j, (j) => j < 4);
  const r = verifyAt(l, AT, knowing([gap]));
  strictEqual(r.match?.frame, AT);
  strictEqual(r.match.instantNotSent, undefined, "left to the fine alignment");
  // Two hops inside: not sent.
  const deep: TargetGap = { at: AT * HOP + 2 * HOP + 8, len: 15 * HOP };
  const d = verifyAt(layout((j) => AT + j, (j) => j < 4), AT, knowing([deep]));
  strictEqual(d.match?.instantNotSent, true);
});

Deno.test("frame placement: a frame whose window reaches into the resumed audio is compared at the later shift", () => {
  // Gap of 15 frames at target frame AT + 20; frames are placed by the point FRAME_PLACE into their window.
  const gap: TargetGap = { at: (AT + 20) * HOP, len: 15 * HOP };
  const l = layout((j) => (j < 20 ? AT + j : j >= 35 ? AT + j - 15 : undefined), () => false);
  const p = new PartScorer();
  p.setGaps([gap]);
  const s = p.score(l.sig, AT * HOP, l.store, HOP);
  // Frames whose point lies in the gap are left out: 15 frames, starting FRAME_PLACE·1024 samples before it.
  const lead = Math.ceil((FRAME_PLACE * FP_PARAMS.frame) / HOP);
  strictEqual(lead, 6);
  strictEqual(s.used, N - 15);
  // Frames 14..28 are left out (14..19 start before the gap); frames 29..34 start inside it but are ruled by
  // what follows it, and count at the later shift.
  const perFrame = (j: number) => {
    const one = p.score(
      { ...l.sig, fingerprint: l.sig.fingerprint.subarray(0, j + 1) },
      AT * HOP,
      l.store,
      HOP,
    );
    return one.used;
  };
  deepStrictEqual([perFrame(13), perFrame(14), perFrame(28), perFrame(29)], [14, 14, 14, 15]);
});

Deno.test("parts gate: no parts are tried for a block far below a quarter of the significance it needs", () => {
  const l = pause();
  const asked: [number, number][] = [];
  const ctx: Partial<VerifyContext> = {
    gapsIn: (from, to) => {
      asked.push([from, to]);
      return [PAUSE_GAP];
    },
  };
  verifyAt(l, AT - 15, ctx);
  strictEqual(asked.length, 1, "asked at a candidate that scores well as a whole");
  // Random target frames: whole z near 0.
  const noise = layout(() => undefined, () => false);
  const t = verifyAt(noise, AT, ctx);
  strictEqual(asked.length, 1, "not asked");
  strictEqual(t.match, undefined);
  ok(
    requiredZ(DEFAULT_THRESHOLDS, N) * PARTS_MIN_FRACTION > 1,
    "the gate is above chance agreement of unrelated frames",
  );
});

/**
 * A block of random frames over 1 or 2 gaps of random, fractional length (5–25 frames) at random places, in half
 * of them the first gap over the instant; frames whose FRAME_PLACE point lies in a gap masked, the rest at the
 * target frame nearest to their sent-time less the gaps before them, 2–5 bit errors each. Returns the layout, its
 * gaps, and the target frame of frame 0 under each part (where a vote finds the block through that part).
 */
function dtxLayout(seed: number): { l: Layout; gaps: TargetGap[]; votes: number[] } {
  const r = xorshift32(seed * 7919);
  const n = 1 + (r() % 2);
  const cuts = Array.from({ length: n }, () => 5 + (r() % 110)).sort((a, b) => a - b);
  const lens = cuts.map(() => 5 + (r() % 200) / 10);
  if (seed % 2 === 0) cuts[0] = -((r() % 100) / 100) * lens[0]!;
  const fp = Uint32Array.from({ length: N }, () => r());
  const mask = new Uint8Array(N / 8);
  const target = Uint32Array.from({ length: 600 }, () => r());
  const gaps: TargetGap[] = [];
  let cum = 0;
  for (let k = 0; k < n; k++) {
    const len = Math.round(lens[k]! * HOP);
    gaps.push({ at: Math.round((AT + cuts[k]!) * HOP - cum), len });
    cum += len;
  }
  const reach = FP_PARAMS.frame * FRAME_PLACE;
  for (let j = 0; j < N; j++) {
    const v = (AT + j) * HOP;
    let before = 0, inGap = false;
    for (const g of gaps) {
      if (v + reach >= g.at + before + g.len) before += g.len;
      else {
        inGap = v + reach >= g.at + before;
        break;
      }
    }
    if (inGap) mask[j >> 3] = mask[j >> 3]! | (1 << (j & 7));
    else target[Math.round((v - before) / HOP)] = flipBits(fp[j]!, 2 + (r() % 4), r);
  }
  const { sig, store } = stored(fp, mask, target);
  const votes = [AT];
  for (let k = 0, c = 0; k < n; k++) votes.push(AT - Math.round((c += gaps[k]!.len) / HOP));
  return { l: { sig, store }, gaps, votes };
}

Deno.test("parts verdict: the same block found through any of its parts, ±1 frame, gets the same match", () => {
  // The forward search finds a block through the part whose votes come first, the backward one through the part
  // with the most votes: a live sensor and `analyze` of its capture must agree on frame, score and 'not sent'.
  let found = 0, throughSeveral = 0, notSent = 0;
  const differ: string[] = [];
  for (let seed = 1; seed <= 200; seed++) {
    const { l, gaps, votes } = dtxLayout(seed);
    const seen = new Map<string, number>();
    for (const v of votes) {
      for (const s of [v - 1, v, v + 1]) {
        const m = verifyAt(l, s, knowing(gaps)).match;
        if (!m) continue;
        const key = `frame ${m.frame} ber ${m.ber} z ${m.z} parts ${m.parts} notSent ${m.instantNotSent}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (m.instantNotSent) notSent++;
      }
    }
    if (seen.size > 0) found++;
    if ([...seen.values()].reduce((a, b) => a + b, 0) > 3) throughSeveral++;
    if (seen.size > 1) differ.push(`seed ${seed}: ${[...seen.keys()].join(" | ")}`);
  }
  deepStrictEqual(differ, []);
  // Not vacuous: most blocks are found, through more than one part, some with their instant not sent.
  ok(found >= 180 && throughSeveral >= 100 && notSent > 0, `${found} ${throughSeveral} ${notSent}`);
});

Deno.test("lone part: an instant in a message alone between two longer gaps is comfort noise, not the call's", () => {
  // A DTX sender in a pause: 140 ms left out, one 20 ms comfort-noise message, 100 ms left out, speech again.
  const msg = 160, cn = 10_000;
  const pauseGaps: TargetGap[] = [{ at: cn, len: 1120 }, { at: cn + msg, len: 800 }];
  strictEqual(inLonePart(cn + 100, pauseGaps), true);
  // The speech after the pause, and before it, is the call's.
  strictEqual(inLonePart(cn + msg + 10, pauseGaps), false);
  strictEqual(inLonePart(cn - 10, pauseGaps), false);
  // Two lost 20 ms messages around one that arrived (1% loss): the gaps are no longer than it.
  strictEqual(inLonePart(cn + 100, [{ at: cn, len: msg }, { at: cn + msg, len: msg }]), false);
  // A comfort-noise message just before the speech resumes has no gap after it: not this rule's.
  strictEqual(inLonePart(cn + 100, [{ at: cn, len: 1120 }]), false);
});

/** A {@link PartScorer} that notes every hypothesis (sent-time of frame 0) it scores. */
class NotingScorer extends PartScorer {
  readonly scored: number[] = [];
  override score(sig: Signature, v0: number, store: FrameStore, hop: number, out?: PartsScore): PartsScore {
    this.scored.push(v0);
    return super.score(sig, v0, store, hop, out);
  }
}

/**
 * A DTX pause inside the block with one comfort-noise message in it: speech up to sent-time frame AT + 40, then
 * 1,100 samples left out, a 20 ms (160-sample) message of comfort noise, 830 samples left out, speech again. The
 * gaps' lengths are not whole hops, so each part puts its own hypotheses on the grid.
 */
const LONE_GAPS: TargetGap[] = [{ at: (AT + 40) * HOP, len: 1100 }, { at: (AT + 40) * HOP + 160, len: 830 }];
/**
 * The block across {@link LONE_GAPS}: frames whose FRAME_PLACE point lies in the pause are masked (quiet at the
 * source); the others sit at the target frame nearest to their sent-time less the audio left out before them, 2 bit
 * errors each.
 */
function lonePause(): Layout {
  const pauseFrom = (AT + 40) * HOP, pauseTo = pauseFrom + 1100 + 160 + 830, left = 1100 + 830;
  const point = (j: number) => (AT + j) * HOP + FP_PARAMS.frame * FRAME_PLACE;
  return layout(
    (j) => (point(j) < pauseFrom ? AT + j : Math.round(((AT + j) * HOP - left) / HOP)),
    (j) => point(j) >= pauseFrom && point(j) < pauseTo,
  );
}

Deno.test("climb parts: a lone comfort-noise message in a pause gives the climb no hypotheses of its own", () => {
  // A CPU rule: the message's phase decides a frame or two at most, and its hypotheses cost scorings (here 12
  // distinct hypotheses a search with the rule; 17 and 22 without it, the same frame and significance).
  const l = lonePause();
  // Audio left out before each part: the speech before the pause, the message, the speech after it.
  const cum = [0, 1100, 1100 + 830];
  const onGrid = (v: number, part: number) => (v - cum[part]!) % HOP === 0;
  const p = new NotingScorer();
  p.setGaps(LONE_GAPS);
  // Found through the speech before the pause or through that after it.
  for (const s of [AT, AT - Math.round(cum[2]! / HOP)]) {
    p.scored.length = 0;
    const best = p.best(l.sig, s, l.store, HOP);
    strictEqual(best?.frame, AT, `found at ${s}`);
    // Its sent-time puts speech on the grid (the message's hypotheses, were they scored, would take the tie: the
    // climb keeps the earlier of equal ones).
    ok(onGrid(best.v0, 0) || onGrid(best.v0, 2), `the verdict rests on the speech: v0 ${best.v0}`);
    // Past the coarse hypotheses (each part's at s), every one scored puts speech on the grid: none only the
    // message (1.25 hops between two gaps).
    const coarse = cum.map((c) => s * HOP + c);
    const messageOnly = p.scored.filter((v) => !coarse.includes(v) && !onGrid(v, 0) && !onGrid(v, 2));
    deepStrictEqual(messageOnly, [], `found at ${s}`);
  }
});
