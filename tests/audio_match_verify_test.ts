// The tuned rules of verification (audio/match/verify.ts, split.ts, thresholds.ts), one test each: every test builds
// the situation its rule decides on synthetic frames (random sub-fingerprints, all bits strong, a known number of
// bit errors per frame) and checks the rule's effect, so that dropping or weakening the rule fails the test.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import {
  CONTINUITY_HEAD_BER,
  CONTINUITY_MAX_AGE_MS,
  CONTINUITY_Z_CREDIT,
  DEFAULT_THRESHOLDS,
  MIN_USED_FRAMES,
  requiredZ,
  SHORT_BLOCK_FRAMES,
} from "../audio/match/thresholds.ts";
import {
  MIN_PREFIX_FRAMES,
  SPLIT_MAX_SHIFT,
  SPLIT_MIN_FRACTION,
  SPLIT_PART_Z,
  Splitter,
} from "../audio/match/split.ts";
import { frameErrors, significance } from "../audio/match/score.ts";
import {
  type CoarseMatch,
  emptyMatcherStats,
  type MatcherStats,
  type VerifyContext,
  type VerifyTrace,
} from "../audio/match/types.ts";
import { Verifier } from "../audio/match/verify.ts";
import type { Signature } from "../audio/types.ts";
import { fpSignature } from "./support/fp_signature.ts";
import { flipBits, xorshift32 } from "./support/rng.ts";

const T0 = 1_000_000_000_000n;
/** Target frame where the blocks are placed. */
const AT = 200;

/** `total` bit errors spread evenly over `n` frames: errors of frame j. */
function spread(total: number, n: number): (j: number) => number {
  return (j) => Math.floor(((j + 1) * total) / n) - Math.floor((j * total) / n);
}

function signature(fp: Uint32Array): Signature {
  return fpSignature(fp, T0);
}

interface Block {
  sig: Signature;
  store: FrameStore;
}

/**
 * A random `n`-frame signature and 400 random target frames in which signature frame j sits at `place(j)`
 * (undefined: lost) with `errors` bit errors in all (spread evenly over the block), or `errors(j)` in frame j.
 */
function block(
  n: number,
  errors: number | ((j: number) => number),
  place: (j: number) => number | undefined,
  seed = 1,
): Block {
  const r = xorshift32(seed);
  const fp = Uint32Array.from({ length: n }, () => r());
  const target = Uint32Array.from({ length: 400 }, () => r());
  const errs = typeof errors === "number" ? spread(errors, n) : errors;
  for (let j = 0; j < n; j++) {
    const p = place(j);
    if (p !== undefined) target[p] = flipBits(fp[j]!, errs(j), r);
  }
  const store = new FrameStore(target.length);
  for (const v of target) store.push(v, 0, -20, 0xffffffff);
  return { sig: signature(fp), store };
}

/** The block whole at AT. */
function whole(n: number, errors: number): Block {
  return block(n, errors, (j) => AT + j);
}

/** The block at AT up to frame `k`, then `lost` frames missing (the rest `lost` frames earlier). */
function lossy(n: number, k: number, lost: number, errors: number | ((j: number) => number)): Block {
  return block(n, errors, (j) => (j <= k ? AT + j : j <= k + lost ? undefined : AT - lost + j));
}

interface Verified {
  match: CoarseMatch | undefined;
  traces: VerifyTrace[];
  stats: MatcherStats;
}

/** Verifies `b` at AT (target frame k captured at T0 + k·16 ms), with context fields `extra`. */
function verify(b: Block, extra: Partial<VerifyContext> = {}): Verified {
  const traces: VerifyTrace[] = [];
  const stats: MatcherStats = emptyMatcherStats();
  const v = new Verifier({
    store: b.store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    observe: (t) => traces.push(t),
    ...extra,
  }, stats);
  return { match: v.verify(b.sig, AT), traces, stats };
}

function only(traces: VerifyTrace[]): VerifyTrace {
  strictEqual(traces.length, 1, JSON.stringify(traces, (_, v) => typeof v === "bigint" ? `${v}` : v));
  return traces[0]!;
}

Deno.test("verify: a clean block is accepted at its frame, with the peak's margin", () => {
  const r = verify(whole(128, 600));
  strictEqual(r.match?.frame, AT);
  ok(r.match.second - r.match.ber >= DEFAULT_THRESHOLDS.margin);
  deepStrictEqual(r.stats, { ...r.stats, verified: 1, rejected: 0, rephased: 0 });
});

Deno.test("short-block extra significance: a 24-frame block needs more than minZ", () => {
  const used = 24;
  ok(used < SHORT_BLOCK_FRAMES && used >= MIN_USED_FRAMES);
  // 134 errors in 768 bits: z 6.66, above minZ (6.4) but below what 24 frames need (6.4 + 0.4·36/36 = 6.8).
  const weak = verify(whole(used, 134));
  const t = only(weak.traces);
  strictEqual(t.used, used);
  strictEqual(t.split, false);
  ok(t.z > DEFAULT_THRESHOLDS.minZ && t.z < 6.8, `z ${t.z}`);
  strictEqual(weak.match, undefined, "rejected on significance alone");
  // 120 errors: z 7.03, enough.
  const strong = verify(whole(used, 120));
  ok(only(strong.traces).z > 6.8);
  strictEqual(strong.match?.frame, AT);
});

Deno.test("split penalty: a split of a short block gives up significance", () => {
  // 48 frames, 2 lost after frame 23: the split scores z 6.89 before the penalty, 6.39 after; 48 frames need
  // 6.53. With 300 errors instead of 350 the split clears the bar even after the penalty.
  const used = 48;
  const need = requiredZ(DEFAULT_THRESHOLDS, used);
  const weak = verify(lossy(used, 23, 2, 350));
  const t = only(weak.traces);
  ok(t.split, "scored as a split");
  // The penalty (0.5) is what rejects it.
  ok(t.z < need && t.z + 0.5 >= need, `z ${t.z} need ${need}`);
  strictEqual(weak.match, undefined);
  const strong = verify(lossy(used, 23, 2, 300));
  ok(strong.match?.split);
  strictEqual(strong.match.frame, AT, "the instant is where the part before the loss aligns");
});

Deno.test("split gain: a split is used only when it beats the whole block by a full unit of significance", () => {
  const need = requiredZ(DEFAULT_THRESHOLDS, 128);
  // One frame lost after frame 110: the whole block scores z 6.26 (< 6.4), the split 7.13: a gain of 0.86, too
  // little to trust two parts over one.
  const b = lossy(128, 110, 1, 1250);
  const small = verify(b);
  const t = only(small.traces);
  strictEqual(t.split, false);
  ok(t.wholeZ < need, `whole z ${t.wholeZ}`);
  const split = new Splitter().best(b.sig, AT, b.store);
  ok(split && split.z >= need && split.z - t.wholeZ < 1, `split z ${split?.z}`);
  strictEqual(small.match, undefined);
  // Lost after frame 105: whole 5.95, split 7.10 (gain 1.15): the split is taken.
  const large = verify(lossy(128, 105, 1, 1250));
  const u = only(large.traces);
  ok(u.split && u.z - u.wholeZ > 1, `z ${u.z} whole ${u.wholeZ}`);
  strictEqual(large.match?.frame, AT);
});

Deno.test("capture-time agreement: a split where capture times show no gap of its size needs more significance", () => {
  // Three frames lost after frame 89: the split scores z 7.03; 6.23 without a capture-time gap there.
  const b = lossy(128, 89, 3, 1250);
  const asked: [number, number, number][] = [];
  const hinted = verify(b, {
    gapAt: (from, to, shift) => {
      asked.push([from, to, shift]);
      return true;
    },
  });
  ok(hinted.match?.split);
  strictEqual(hinted.match.frame, AT);
  // Asked about a gap of the split's shift, around where it breaks (after frame 89 or close to it).
  strictEqual(asked.length, 1);
  const [from, to, shift] = asked[0]!;
  strictEqual(shift, 3);
  ok(from <= AT + 90 && to >= AT + 90 && to - from === 8, `${from}..${to}`);
  const unhinted = verify(b, { gapAt: () => false });
  const t = only(unhinted.traces);
  ok(t.split && t.z < DEFAULT_THRESHOLDS.minZ, `z ${t.z}`);
  strictEqual(unhinted.match, undefined);
  // Without capture times at all (no gapAt), the audio's word is taken.
  ok(verify(b).match?.split);
});

/** Significance of frames 0..k of `b` at target frame `a`, of the rest at `a - shift`, and of both together. */
function twoParts(b: Block, a: number, shift: number, k: number): { first: number; rest: number; z: number } {
  const fp = b.sig.fingerprint, n = fp.length;
  const sums = (s: number, from: number, to: number): [number, number, number] => {
    const e = new Float64Array(n), w = new Float64Array(n), q = new Float64Array(n);
    frameErrors(fp, b.sig.mask, b.store, s, e, w, q);
    let se = 0, sw = 0, sq = 0;
    for (let j = from; j < to; j++) [se, sw, sq] = [se + e[j]!, sw + w[j]!, sq + q[j]!];
    return [se, sw, sq];
  };
  const [pe, pw, pq] = sums(a, 0, k + 1), [se, sw, sq] = sums(a - shift, k + 1, n);
  return {
    first: significance(pe / pw, pw, pq),
    rest: significance(se / sw, sw, sq),
    z: significance((pe + se) / (pw + sw), pw + sw, pq + sq),
  };
}

Deno.test("split parts: a split is not taken when either part is not significant on its own", () => {
  const need = requiredZ(DEFAULT_THRESHOLDS, 128);
  // 64 frames at AT (6 bit errors each), 3 frames lost, the other 61 frames 3 earlier but with 14 errors each:
  // they fit there little better than chance. The whole block scores z 5.64; the split after frame 63, 6.82, a
  // gain of 1.18 over the whole and above the 6.4 needed: its later part alone (z 1.69) is what rejects it.
  const b = lossy(128, 63, 3, (j) => (j <= 63 ? 6 : 14));
  const weak = verify(b);
  const t = only(weak.traces);
  strictEqual(t.split, false);
  ok(t.wholeZ < need, `whole z ${t.wholeZ}`);
  strictEqual(weak.match, undefined);
  const parts = twoParts(b, AT, 3, 63);
  ok(parts.first >= SPLIT_PART_Z && parts.rest < SPLIT_PART_Z, `parts z ${parts.first} ${parts.rest}`);
  ok(parts.z >= need && parts.z > t.wholeZ + 1, `split z ${parts.z}`);
  strictEqual(new Splitter().best(b.sig, AT, b.store), undefined);
  // With 13 errors a frame the later part stands on its own (z 2.55): the split is taken.
  const fits = verify(lossy(128, 63, 3, (j) => (j <= 63 ? 6 : 13)));
  ok(fits.match?.split);
  strictEqual(fits.match.frame, AT);
  // The parts swapped: the weak part first, 3 frames later than where the block aligns (AT). Whole z 5.45; the
  // split 6.61 with its first part at z 1.80: it would put the instant 3 frames late on that part's word.
  const c = block(
    128,
    (j) => (j <= 63 ? 14 : 6),
    (j) => (j <= 63 ? AT + 3 + j : j <= 66 ? undefined : AT + j),
  );
  const early = verify(c);
  const u = only(early.traces);
  strictEqual(u.split, false);
  strictEqual(early.match, undefined);
  const swapped = twoParts(c, AT + 3, 3, 63);
  ok(
    swapped.first < SPLIT_PART_Z && swapped.rest >= SPLIT_PART_Z,
    `parts z ${swapped.first} ${swapped.rest}`,
  );
  ok(swapped.z >= need && swapped.z > u.wholeZ + 1, `split z ${swapped.z} whole ${u.wholeZ}`);
});

Deno.test("split prefix: a split's first part needs 8 usable frames, so a few frames cannot move the instant", () => {
  // A 40-frame block at AT (3 bit errors a frame) whose first 5 frames are buried (random at the target: an
  // onset under noise) and whose sound repeats 6 frames later (frames 6..10 are frames 0..4): those 5 frames fit
  // at AT + 6. The whole block at AT scores z 8.72.
  const first = 5, shift = 6;
  const r = xorshift32(1);
  const fp = Uint32Array.from({ length: 40 }, () => r());
  for (let j = 0; j < first; j++) fp[shift + j] = fp[j]!;
  const target = Uint32Array.from({ length: 400 }, () => r());
  for (let j = first; j < fp.length; j++) target[AT + j] = flipBits(fp[j]!, 3, r);
  const store = new FrameStore(target.length);
  for (const v of target) store.push(v, 0, -20, 0xffffffff);
  const b: Block = { sig: signature(fp), store };
  const v = verify(b);
  const t = only(v.traces);
  strictEqual(v.match?.frame, AT);
  strictEqual(v.match.split, false);
  // Those 5 frames at AT + 6 and the rest at AT would beat the whole block by more than 1 (z 9.94), each part
  // significant on its own: only the length of the first part keeps the instant where the block aligns.
  ok(first < MIN_PREFIX_FRAMES);
  const parts = twoParts(b, AT + shift, shift, first - 1);
  ok(parts.first >= SPLIT_PART_Z && parts.rest >= SPLIT_PART_Z, `parts z ${parts.first} ${parts.rest}`);
  ok(parts.z > t.wholeZ + 1, `split z ${parts.z} whole ${t.wholeZ}`);
  const split = new Splitter().best(b.sig, AT, b.store);
  ok(split === undefined || split.k + 1 >= MIN_PREFIX_FRAMES, `split after frame ${split?.k}`);
});

/** 400 random frames with `fp` cleanly at frame `at`. */
function cleanAt(fp: Uint32Array, at: number): FrameStore {
  const r = xorshift32(7);
  const store = new FrameStore(400);
  for (let k = 0; k < 400; k++) {
    const j = k - at;
    store.push(j >= 0 && j < fp.length ? fp[j]! : r(), 0, -20, 0xffffffff);
  }
  return store;
}

Deno.test("rephase retry: a near miss is verified once more on the frames its envelope's grid gives", () => {
  const near = whole(128, 1450); // z 5.37: rejected, yet at least 0.75 of the required 6.4
  // The rephased frames carry the block cleanly at frame 300.
  const clean = cleanAt(near.sig.fingerprint, 300);
  const calls: [string, number][] = [];
  const r = verify(near, {
    rephase: (sig, frame) => {
      calls.push([sig.id, frame]);
      return { store: clean, frame: 300 };
    },
  });
  deepStrictEqual(calls, [["sig", AT]]);
  strictEqual(r.stats.rephased, 1);
  strictEqual(r.match?.frame, 300);
  strictEqual(r.match.ber, 0);
  // The first verification was the near miss.
  const first = r.traces[0]!;
  ok(!first.accepted && first.z >= 0.75 * DEFAULT_THRESHOLDS.minZ, `z ${first.z}`);
  // A rephased near miss is not rephased again.
  const again: number[] = [];
  const twice = verify(near, {
    rephase: (_, frame) => {
      again.push(frame);
      return { store: near.store, frame: AT };
    },
  });
  deepStrictEqual(again, [AT]);
  strictEqual(twice.match, undefined);
});

Deno.test("near-miss threshold: only candidates with 0.75 of the required significance are re-scored", () => {
  const need = requiredZ(DEFAULT_THRESHOLDS, 128);
  const calls: number[] = [];
  const ctx: Partial<VerifyContext> = {
    rephase: (_, frame) => {
      calls.push(frame);
      return undefined;
    },
  };
  // z 4.65: past the first cut (half the required), short of the near-miss bar (0.75 of it).
  const far = verify(whole(128, 1530), ctx);
  const t = only(far.traces);
  ok(t.z >= SPLIT_MIN_FRACTION * need && t.z < 0.75 * need, `z ${t.z}`);
  deepStrictEqual(calls, [], "not re-scored");
  strictEqual(far.stats.rephased, 0);
  // z 5.37: a near miss, re-scored (the rephaser found nothing here).
  const near = verify(whole(128, 1450), ctx);
  ok(only(near.traces).z >= 0.75 * need);
  deepStrictEqual(calls, [AT]);
  strictEqual(near.match, undefined);
});

Deno.test("observe sees every verification; observeOnly accepts nothing", () => {
  const b = whole(128, 600);
  const seen = verify(b);
  strictEqual(only(seen.traces).accepted, true);
  const tuning = verify(b, { observeOnly: true });
  strictEqual(tuning.match, undefined);
  const t = only(tuning.traces);
  strictEqual(t.accepted, false);
  strictEqual(t.frame, AT);
  // observeOnly without an observer changes nothing.
  const plain = verify(b, { observe: undefined, observeOnly: true });
  strictEqual(plain.match?.frame, AT);
});

/** A signature of source tap `tap` with its instant `ms` after T0. */
function sigAt(id: string, fp: Uint32Array, ms: number, tap = "s"): Signature {
  const s = signature(fp);
  s.id = id;
  s.source = { ...s.source, stream: tap, timeNs: T0 + BigInt(ms) * 1_000_000n };
  return s;
}

/**
 * Random 128-frame signatures placed in `len` random target frames: each at its frame `at` with bit errors
 * `errs(j)` in its frame j; their source instants 16 ms per target frame apart (a constant delay) unless `ms`
 * says otherwise.
 */
function stream(
  len: number,
  blocks: { id: string; at: number; errs: (j: number) => number; ms?: number; tap?: string }[],
): { store: FrameStore; sigs: Signature[] } {
  const r = xorshift32(3);
  const target = Uint32Array.from({ length: len }, () => r());
  const sigs = blocks.map((b) => {
    const fp = Uint32Array.from({ length: 128 }, () => r());
    for (let j = 0; j < 128; j++) target[b.at + j] = flipBits(fp[j]!, b.errs(j), r);
    return sigAt(b.id, fp, b.ms ?? b.at * 16, b.tap);
  });
  const store = new FrameStore(len);
  for (const v of target) store.push(v, 0, -20, 0xffffffff);
  return { store, sigs };
}

/** A verifier over `store` with capture times, no gaps unless `extra` says so. */
function verifier(
  store: FrameStore,
  extra: Partial<VerifyContext> = {},
  traces: VerifyTrace[] = [],
): Verifier {
  return new Verifier({
    store,
    rule: DEFAULT_THRESHOLDS,
    hop: 128,
    timeOfSample: (k) => T0 + BigInt(k) * 125_000n,
    gapsIn: () => [],
    observe: (t) => traces.push(t),
    ...extra,
  }, emptyMatcherStats());
}

/** Clean: 300 errors over 128 frames (z ~12). */
const CLEAN = spread(300, 128);
/** z 5.4 (weighted BER 0.35) with the first 16 frames agreeing (BER 0.125): short of 6.4, not of 6.4 − 1.5. */
const WEAK = (j: number) => (j < 16 ? 4 : spread(1386, 112)(j - 16));
/** As WEAK, with more errors after the first 16 frames: z 4.6. */
const FAR = (j: number) => (j < 16 ? 4 : spread(1480, 112)(j - 16));
/** As WEAK, the same errors in all, but the first 16 frames buried (BER 0.41). */
const WEAK_HEAD = (j: number) => (j < 16 ? 13 : spread(1242, 112)(j - 16));

Deno.test("continuity credit: a block where a neighbour's delay puts it needs 1.5 less significance", () => {
  const need = requiredZ(DEFAULT_THRESHOLDS, 128);
  const { store, sigs: [a, b] } = stream(600, [{ id: "a", at: 100, errs: CLEAN }, {
    id: "b",
    at: 300,
    errs: WEAK,
  }]);
  // Alone, b is short of the rule.
  const alone: VerifyTrace[] = [];
  strictEqual(verifier(store, {}, alone).verify(b!, 300), undefined);
  const t = only(alone);
  ok(t.z < need && t.z >= need - CONTINUITY_Z_CREDIT, `z ${t.z}`);
  // After a, found at the same delay: accepted.
  const v = verifier(store);
  strictEqual(v.verify(a!, 100)?.frame, 100);
  strictEqual(v.verify(b!, 300)?.frame, 300);
  // A block further short of the rule (z 4.6 < 6.4 − 1.5) is not taken on a neighbour's word.
  const far = stream(600, [{ id: "a", at: 100, errs: CLEAN }, { id: "b", at: 300, errs: FAR }]);
  const f: VerifyTrace[] = [];
  const u = verifier(far.store, {}, f);
  ok(u.verify(far.sigs[0]!, 100));
  strictEqual(u.verify(far.sigs[1]!, 300), undefined);
  ok(f[1]!.z < need - CONTINUITY_Z_CREDIT && f[1]!.z > need - CONTINUITY_Z_CREDIT - 0.5, `z ${f[1]!.z}`);
  // Not when capture times show a gap between the two (the delay may have changed).
  const gapped = verifier(store, {
    gapsIn: (from, to) => (from < 200 * 128 && to > 200 * 128 ? [{ at: 200 * 128, len: 160 }] : []),
  });
  ok(gapped.verify(a!, 100));
  strictEqual(gapped.verify(b!, 300), undefined);
  // Nor without capture times at all.
  const untimed = verifier(store, { gapsIn: undefined });
  ok(untimed.verify(a!, 100));
  strictEqual(untimed.verify(b!, 300), undefined);
});

Deno.test("continuity credit: only where the delay puts the block, and only for the same source tap", () => {
  // b's source instant 3 frames (48 ms) later than the delay would put its block: too far.
  const late = stream(600, [{ id: "a", at: 100, errs: CLEAN }, {
    id: "b",
    at: 300,
    errs: WEAK,
    ms: 303 * 16,
  }]);
  const v = verifier(late.store);
  ok(v.verify(late.sigs[0]!, 100));
  strictEqual(v.verify(late.sigs[1]!, 300), undefined);
  // 2 frames off is within the tolerance (capture times jitter).
  const near = stream(600, [{ id: "a", at: 100, errs: CLEAN }, {
    id: "b",
    at: 300,
    errs: WEAK,
    ms: 302 * 16,
  }]);
  const w = verifier(near.store);
  ok(w.verify(near.sigs[0]!, 100));
  strictEqual(w.verify(near.sigs[1]!, 300)?.frame, 300);
  // Another source tap's match says nothing about b's delay.
  const other = stream(600, [{ id: "a", at: 100, errs: CLEAN, tap: "other" }, {
    id: "b",
    at: 300,
    errs: WEAK,
  }]);
  const x = verifier(other.store);
  ok(x.verify(other.sigs[0]!, 100));
  strictEqual(x.verify(other.sigs[1]!, 300), undefined);
});

Deno.test("continuity head: no credit when the block's first frames (its instant's) disagree", () => {
  const { store, sigs: [a, b] } = stream(600, [{ id: "a", at: 100, errs: CLEAN }, {
    id: "b",
    at: 300,
    errs: WEAK_HEAD,
  }]);
  const traces: VerifyTrace[] = [];
  const v = verifier(store, {}, traces);
  ok(v.verify(a!, 100));
  strictEqual(v.verify(b!, 300), undefined);
  // As significant as WEAK as a whole: only its first frames differ.
  const t = traces[1]!;
  ok(t.z >= requiredZ(DEFAULT_THRESHOLDS, 128) - CONTINUITY_Z_CREDIT, `z ${t.z}`);
  ok(CONTINUITY_HEAD_BER < 13 / 32 && CONTINUITY_HEAD_BER >= 4 / 32);
});

Deno.test("continuity credit: a match accepted on the credit vouches for no other", () => {
  // a at 100, b 8 s later, c 4.8 s after b (12.8 s after a: beyond CONTINUITY_MAX_AGE_MS).
  ok(CONTINUITY_MAX_AGE_MS < 12_800 && CONTINUITY_MAX_AGE_MS >= 8_000);
  const blocks = (bErrs: (j: number) => number) =>
    stream(1100, [{ id: "a", at: 100, errs: CLEAN }, { id: "b", at: 600, errs: bErrs }, {
      id: "c",
      at: 900,
      errs: WEAK,
    }]);
  const weak = blocks(WEAK);
  const v = verifier(weak.store);
  ok(v.verify(weak.sigs[0]!, 100));
  strictEqual(v.verify(weak.sigs[1]!, 600)?.frame, 600, "b on a's word");
  strictEqual(v.verify(weak.sigs[2]!, 900), undefined, "c not on b's");
  // A b that stands on its own vouches for c.
  const strong = blocks(CLEAN);
  const w = verifier(strong.store);
  ok(w.verify(strong.sigs[0]!, 100));
  ok(w.verify(strong.sigs[1]!, 600));
  strictEqual(w.verify(strong.sigs[2]!, 900)?.frame, 900);
});

/** The best split as split.ts states it, each candidate's evidence summed afresh from the per-frame terms. */
function referenceSplit(
  b: Block,
  best: number,
): { a: number; b: number; k: number; ber: number; z: number } | undefined {
  const fp = b.sig.fingerprint, n = fp.length;
  const terms = (s: number) => {
    const e = new Float64Array(n), w = new Float64Array(n), q = new Float64Array(n);
    frameErrors(fp, b.sig.mask, b.store, s, e, w, q);
    return { e, w, q };
  };
  let out: { a: number; b: number; k: number; ber: number; z: number } | undefined;
  for (let d = 1; d <= SPLIT_MAX_SHIFT; d++) {
    for (const a of [best, best + d]) {
      const p = terms(a), s = terms(a - d);
      let sufEv = 0;
      for (let j = 0; j < n; j++) sufEv += 0.5 * s.w[j]! - s.e[j]!;
      let preEv = 0, preFrames = 0, bestEv = -Infinity, bestK = -1;
      for (let k = 0; k < n; k++) {
        preEv += 0.5 * p.w[k]! - p.e[k]!;
        sufEv -= 0.5 * s.w[k]! - s.e[k]!;
        if (p.w[k]! > 0) preFrames++;
        if (preFrames >= MIN_PREFIX_FRAMES && preEv + sufEv > bestEv && sufEv > 0) {
          [bestEv, bestK] = [preEv + sufEv, k];
        }
      }
      if (bestK < 0) continue;
      const sum = (x: Float64Array, from: number, to: number) =>
        x.subarray(from, to).reduce((t, v) => t + v, 0);
      const pe = sum(p.e, 0, bestK + 1), pw = sum(p.w, 0, bestK + 1), pq = sum(p.q, 0, bestK + 1);
      const se = sum(s.e, bestK + 1, n), sw = sum(s.w, bestK + 1, n), sq = sum(s.q, bestK + 1, n);
      if (pw <= 0 || sw <= 0) continue;
      if (significance(pe / pw, pw, pq) < SPLIT_PART_Z || significance(se / sw, sw, sq) < SPLIT_PART_Z) {
        continue;
      }
      const ber = (pe + se) / (pw + sw);
      const z = significance(ber, pw + sw, pq + sq);
      if (!out || z > out.z) out = { a, b: a - d, k: bestK, ber, z };
    }
  }
  return out;
}

Deno.test("split search: the best split is the one of every candidate's evidence summed afresh, to the bit", () => {
  let found = 0;
  for (let seed = 1; seed <= 12; seed++) {
    for (const [k, lost] of [[40, 1], [70, 3], [100, 6], [20, 8]] as const) {
      const b = block(
        128,
        900 + 60 * seed,
        (j) => (j <= k ? AT + j : j <= k + lost ? undefined : AT - lost + j),
        seed,
      );
      for (const best of [AT - 1, AT, AT + 2]) {
        const got = new Splitter().best(b.sig, best, b.store);
        const want = referenceSplit(b, best);
        strictEqual(got?.a, want?.a);
        strictEqual(got?.b, want?.b);
        strictEqual(got?.k, want?.k);
        strictEqual(got?.ber, want?.ber);
        strictEqual(got?.z, want?.z);
        if (want) found++;
      }
    }
  }
  ok(found >= 50, `${found} splits compared`);
});
