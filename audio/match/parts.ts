/**
 * Many-part scoring across audio the target never carried: a silence-suppressing sender (DTX) sends nothing in
 * a pause but a sparse comfort-noise frame, and its stream's timeline joins what it did send, so a signature
 * block that spans a pause sits in the target as several parts, each earlier than the one before by the audio
 * left out in between. Capture times show each left-out stretch (see align/gap_hints.ts); this module scores a
 * block with every frame moved by the audio left out before it, and says where its instant would be.
 *
 * The target's joined timeline is re-expanded into a "sent-time" line: target analysis sample t sits at
 * t + (length of the gaps at or before t). A signature frame j of a block whose frame 0 is at sent-time v0 is
 * at v0 + j·hop; it is compared with the target frame nearest to its sent-time minus the gaps before its
 * {@link FRAME_PLACE} point, and left out when that point lies in a gap (no target audio).
 *
 * Candidates: a vote found the block at target frame s, through whichever part matched best; each hypothesis
 * "the part between gap i and gap i + 1 is the one at s" gives one v0. From the two best, a climb moves within a
 * hop (the grid error) among the v0 that put one of the block's parts exactly on the target's grid, to the best
 * there: where it ends does not depend on which part the vote found, so the forward and the backward search of
 * the same block agree. The whole-block score is the hypothesis of no gap, taken where the vote found the block
 * and where the parts put each of theirs (the same set whichever part the vote found); {@link partsWin} says when
 * the parts replace it.
 * @module
 */

import { FP_PARAMS, type FrameStore } from "../fingerprint/fingerprint.ts";
import { isMasked } from "../fingerprint/signature.ts";
import type { Signature } from "../types.ts";
import { INSTANT_OFFSET } from "../align/align.ts";
import { type BlockScore, frameErrors, scoreBlock, significance } from "./score.ts";
import { MARGIN_SPAN, MIN_USED_FRAMES } from "./thresholds.ts";
import type { TargetGap, VerifyContext } from "./types.ts";

/**
 * Where in its window (fraction of the 128 ms) a frame is placed: a frame whose window spans a gap is compared
 * at the shift of the part this point lies in, and left out when the point lies in audio never sent. Late in the
 * window because a DTX sender resumes at an onset: a window that reaches into the resumed speech is ruled by it,
 * and the target has it at the later part's shift (bench DTX chain, seed 1: recall 98.9% and exactness 99.1%
 * placing frames by their middle, 99.8% and 100% at 0.75, the same matches at 0.9 and 1).
 */
export const FRAME_PLACE = 0.75;
/**
 * An instant the grid puts less than this many hops inside a gap, from either end, counts as sent (the coarse
 * grid is off by up to half a hop, the part's rounding by another half).
 */
export const NOT_SENT_MARGIN = 1;
/**
 * The parts are tried only when the whole block reached this fraction of the significance it needs: a vote
 * found it there, but it may be a part that carries a small share of the block.
 */
export const PARTS_MIN_FRACTION = 0.25;
/** Steps a climb takes at most (each moves less than a hop; the coarse hypothesis is within a hop or two). */
const CLIMB_STEPS = 8;
/**
 * Parts shorter than this many hops give the climb no hypotheses of their own (a DTX sender's lone comfort-noise
 * message in a pause: its phase decides a frame or two at most): on the bench's DTX chain (seed 1), 202,000
 * scorings instead of 370,000 (164,000 before the climb), the same recall, exactness, off and unsent counts.
 */
const CLIMB_MIN_PART = 2;

/** A block scored in parts. */
export interface PartsScore {
  /** Sent-time (target analysis samples re-expanded by the gaps) of the signature's frame 0. */
  v0: number;
  /** Target frame of frame 0, or where the first compared frame's part puts it when the instant was not sent. */
  frame: number;
  /** Weighted BER and significance over the compared frames; frames compared. */
  ber: number;
  z: number;
  used: number;
  /** Gaps inside the block's span (between its first and last compared frame, or before the instant). */
  gapsInside: number;
  /** False when the instant lies in audio the target never carried. */
  instantSent: boolean;
}

/** Scores blocks in parts (reusable scratch; not re-entrant). */
export class PartScorer {
  readonly #one = new Uint32Array(1);
  readonly #e = new Float64Array(1);
  readonly #w = new Float64Array(1);
  readonly #q = new Float64Array(1);
  #vs = new Float64Array(16);
  #ve = new Float64Array(16);
  #cum = new Float64Array(17);
  #m = 0;
  /** Significance per hypothesis (sent-time of frame 0) scored in this {@link best}. */
  readonly #tried = new Map<number, number>();
  // NaN, not 0, in the double fields: see Verifier's #score.
  readonly #cur: PartsScore = {
    v0: 0,
    frame: 0,
    ber: 0.5,
    z: NaN,
    used: 0,
    gapsInside: 0,
    instantSent: true,
  };
  readonly #block: BlockScore = { ber: NaN, z: NaN, used: 0 };

  /** Sets the gaps (target analysis samples, in order) the next scorings use. */
  setGaps(gaps: readonly TargetGap[]): void {
    const m = gaps.length;
    if (this.#vs.length < m) {
      this.#vs = new Float64Array(m * 2);
      this.#ve = new Float64Array(m * 2);
      this.#cum = new Float64Array(m * 2 + 1);
    }
    let c = 0;
    for (let i = 0; i < m; i++) {
      const g = gaps[i]!;
      this.#cum[i] = c;
      this.#vs[i] = g.at + c;
      c += g.len;
      this.#ve[i] = g.at + c;
    }
    this.#cum[m] = c;
    this.#m = m;
  }

  /**
   * Scores `sig` with frame 0 at sent-time `v0` on the frames of `store` (hop `hop`) into `out` (a fresh object
   * when omitted).
   */
  score(sig: Signature, v0: number, store: FrameStore, hop: number, out?: PartsScore): PartsScore {
    const fp = sig.fingerprint, mask = sig.mask;
    const vs = this.#vs, ve = this.#ve, cum = this.#cum, m = this.#m;
    const reach = FP_PARAMS.frame * FRAME_PLACE;
    const one = this.#one, e1 = this.#e, w1 = this.#w, q1 = this.#q;
    let e = 0, w = 0, w2 = 0, used = 0;
    let g = 0;
    let firstGap = -1, lastGap = -1, firstFrame = NaN;
    for (let j = 0; j < fp.length; j++) {
      const v = v0 + j * hop, at = v + reach;
      while (g < m && at >= ve[g]!) g++;
      if (isMasked(mask, j) || (g < m && at >= vs[g]!)) continue;
      const tf = Math.round((v - cum[g]!) / hop);
      one[0] = fp[j]!;
      frameErrors(one, undefined, store, tf, e1, w1, q1);
      if (!(w1[0]! > 0)) continue;
      e += e1[0]!;
      w += w1[0]!;
      w2 += q1[0]!;
      used++;
      if (firstGap < 0) {
        firstGap = g;
        firstFrame = tf - j;
      }
      lastGap = g;
    }
    const inst = v0 + INSTANT_OFFSET;
    let gi = 0;
    while (gi < m && inst >= ve[gi]!) gi++;
    let instantSent = true, frame = Math.round((v0 - cum[gi]!) / hop), after = gi;
    if (gi < m && inst >= vs[gi]!) {
      // In a gap. The grid puts the instant there to within a hop: near either end, it is the sent audio's
      // (the fine alignment then places it), only well inside is it audio never sent.
      const margin = NOT_SENT_MARGIN * hop;
      if (inst >= ve[gi]! - margin) {
        frame = Math.round((vs[gi]! - cum[gi]! - INSTANT_OFFSET) / hop);
        after = gi + 1;
      } else if (inst >= vs[gi]! + margin) {
        instantSent = false;
        frame = firstFrame;
      }
    }
    const r = out ?? { v0, frame, ber: 0.5, z: NaN, used: 0, gapsInside: 0, instantSent };
    r.v0 = v0;
    r.used = used;
    r.ber = w > 0 ? e / w : 0.5;
    r.z = significance(r.ber, w, w2);
    r.instantSent = instantSent;
    r.frame = frame;
    // Gaps crossed from the instant (or the first compared frame, if earlier) to the last compared frame; an
    // instant inside a gap counts that gap (its frames come after it).
    r.gapsInside = lastGap < 0 ? 0 : lastGap - Math.min(after, firstGap);
    return r;
  }

  /**
   * The best parts hypothesis for a block found at target frame `s` (see the module comment), after
   * {@link setGaps}; undefined when no hypothesis crosses a gap. The same for every `s` at which a vote can find
   * the same block (each part's alignment, ±1 frame): the coarse hypotheses only choose where to start a climb.
   */
  best(sig: Signature, s: number, store: FrameStore, hop: number): PartsScore | undefined {
    const cur = this.#cur;
    this.#tried.clear();
    // Each hypothesis on the coarse grid first, then a climb from the two best (a wrong part agrees by chance,
    // far below the right one, so the climbs from the rest never win).
    let i1 = -1, z1 = -Infinity, i2 = -1, z2 = -Infinity;
    for (let i = 0; i <= this.#m; i++) {
      const z = this.#zAt(sig, s * hop + this.#cum[i]!, store, hop);
      if (z > z1) {
        i2 = i1, z2 = z1, i1 = i, z1 = z;
      } else if (z > z2) i2 = i, z2 = z;
    }
    let bv = NaN, bz = -Infinity;
    for (const [i, zi] of [[i1, z1], [i2, z2]] as const) {
      if (i < 0 || zi === -Infinity) continue;
      const v = this.#climb(sig, s * hop + this.#cum[i]!, store, hop);
      const z = this.#tried.get(v)!;
      if (z > bz || (z === bz && this.#key(v) < this.#key(bv))) bv = v, bz = z;
    }
    if (bz === -Infinity) return undefined;
    return { ...this.score(sig, bv, store, hop, cur) };
  }

  /**
   * Climbs from the parts hypothesis `v0` to a local best: each step moves to the best of the hypotheses within a
   * hop that put one of the block's parts ({@link placesPart}) exactly on the target's grid, until none is better
   * (ties go to the earlier). The coarse hypotheses put the part the vote found on the grid and the others where
   * that falls, so a block found through another part (the forward search sees its first part before the rest,
   * the backward one all of it) started from other sent-times, and its verdict (frame, instant not sent) differed
   * (tests/audio_match_parts_test.ts); the climb ends where both end.
   */
  #climb(sig: Signature, v0: number, store: FrameStore, hop: number): number {
    const cum = this.#cum;
    let v = v0, z = this.#zAt(sig, v, store, hop);
    for (let step = 0; step < CLIMB_STEPS; step++) {
      let nv = v, nz = z;
      for (let i = 0; i <= this.#m; i++) {
        if (!this.#placesPart(sig, v, i, hop)) continue;
        const lo = Math.ceil((v - hop - cum[i]!) / hop), hi = Math.floor((v + hop - cum[i]!) / hop);
        for (let f = lo; f <= hi; f++) {
          const c = f * hop + cum[i]!;
          if (c === v) continue;
          const cz = this.#zAt(sig, c, store, hop);
          if (cz > nz || (cz === nz && cz > -Infinity && this.#key(c) < this.#key(nv))) nv = c, nz = cz;
        }
      }
      if (nv === v) break;
      v = nv, z = nz;
    }
    return v;
  }

  /**
   * Whether part i (between gap i - 1 and gap i in sent-time) lies in the span of `sig` with frame 0 at `v0` and
   * is one whose alignment the block's verdict may rest on: not shorter than CLIMB_MIN_PART hops between two gaps
   * (a comfort-noise message alone in a pause decides a frame or two at most).
   */
  #placesPart(sig: Signature, v0: number, i: number, hop: number): boolean {
    const vs = this.#vs, ve = this.#ve, m = this.#m;
    const span = (sig.fingerprint.length - 1) * hop + FP_PARAMS.frame;
    if ((i > 0 && ve[i - 1]! >= v0 + span) || (i < m && vs[i]! <= v0)) return false;
    return i === 0 || i === m || vs[i]! - ve[i - 1]! >= CLIMB_MIN_PART * hop;
  }

  /** Significance of the parts hypothesis `v0` (-Infinity when it crosses no gap or uses too few frames), once. */
  #zAt(sig: Signature, v0: number, store: FrameStore, hop: number): number {
    const known = this.#tried.get(v0);
    if (known !== undefined) return known;
    const cur = this.score(sig, v0, store, hop, this.#cur);
    const z = cur.gapsInside === 0 || cur.used < MIN_USED_FRAMES ? -Infinity : cur.z;
    this.#tried.set(v0, z);
    return z;
  }

  /**
   * Sent-time `v` less the gaps wholly before it: the same for the same placement whichever gaps before the
   * block the context returned (the hypotheses' order for ties).
   */
  #key(v: number): number {
    if (Number.isNaN(v)) return Infinity;
    let g = 0;
    while (g < this.#m && v >= this.#ve[g]!) g++;
    return v - this.#cum[g]!;
  }

  /**
   * The parts hypothesis that replaces the whole-block score of `sig` found at target frame `s` of `ctx.store`, or
   * undefined: when the context knows no gaps, none lies near the block, the whole block is far from significant
   * there (`wholeZ`, the best of s-1..s+1 by BER; `need`: the significance the block needs), or the parts do not
   * win ({@link partsWin}) over the whole block, at `s` or where the parts put any of theirs: a vote can find the
   * block through any of its parts, and the verdict must not depend on which.
   */
  find(ctx: VerifyContext, sig: Signature, s: number, wholeZ: number, need: number): PartsScore | undefined {
    if (!ctx.gapsIn || wholeZ < PARTS_MIN_FRACTION * need) return undefined;
    const n = sig.fingerprint.length, hop = ctx.hop;
    // The part found at s may be any of the block's: gaps up to a block before it and a block after it count.
    const gaps = ctx.gapsIn((s - n - 1) * hop, (s + n + 1) * hop);
    if (gaps.length === 0) return undefined;
    this.setGaps(gaps);
    const p = this.best(sig, s, ctx.store, hop);
    if (!partsWin(p, wholeZ)) return undefined;
    return partsWin(p, this.#wholeAtParts(sig, p, ctx.store, hop)) ? p : undefined;
  }

  /**
   * The best whole-block significance where the parts `p` put one of theirs ({@link placesPart}) on the grid,
   * each taken as verify.ts takes the whole block around a vote: the best of three frames by BER.
   */
  #wholeAtParts(sig: Signature, p: PartsScore, store: FrameStore, hop: number): number {
    const sc = this.#block;
    let best = -Infinity;
    for (let i = 0; i <= this.#m; i++) {
      if (!this.#placesPart(sig, p.v0, i, hop)) continue;
      const f = Math.round((p.v0 - this.#cum[i]!) / hop);
      let ber = Infinity, z = -Infinity;
      for (let k = f - 1; k <= f + 1; k++) {
        scoreBlock(sig.fingerprint, sig.mask, store, k, sc);
        if (sc.ber < ber) ber = sc.ber, z = sc.z;
      }
      if (z > best) best = z;
    }
    return best;
  }

  /** Best weighted BER of the parts hypothesis `p` moved 2..MARGIN_SPAN frames either way (the margin's peak test). */
  second(sig: Signature, p: PartsScore, store: FrameStore, hop: number): number {
    const cur = { ...p };
    let second = Infinity;
    for (let k = -MARGIN_SPAN; k <= MARGIN_SPAN; k++) {
      if (k > -2 && k < 2) continue;
      this.score(sig, p.v0 + k * hop, store, hop, cur);
      if (cur.used >= MIN_USED_FRAMES / 2 && cur.ber < second) second = cur.ber;
    }
    return second;
  }
}

/**
 * Whether the parts `p` replace a whole-block score of significance `wholeZ`: they cross a gap the capture
 * times show, and explain the block at least as well. Ties go to the parts: where the frames that differ are
 * masked (a soft onset the sender's own activity detector left out), only the parts know that the instant was
 * not sent.
 */
export function partsWin(p: PartsScore | undefined, wholeZ: number): p is PartsScore {
  return p !== undefined && p.gapsInside > 0 && p.z >= wholeZ;
}

/**
 * Whether target analysis sample `k` lies in a stretch of audio alone between two capture-time gaps, each longer
 * than it: a silence-suppressing sender's comfort-noise message in a pause (one short message every so often),
 * which carries noise at the level of what it replaces, not the call's audio. On the bench's DTX chain (seed 1)
 * the envelope put 4 instants in such messages, each the comfort noise that replaced an onset's first 20 ms; no
 * correct match there or on 1% loss lay in one.
 */
export function inLonePart(k: number, gaps: readonly TargetGap[]): boolean {
  for (let i = 0; i + 1 < gaps.length; i++) {
    const a = gaps[i]!, b = gaps[i + 1]!;
    if (k < a.at || k >= b.at) continue;
    return b.at - a.at < Math.min(a.len, b.len);
  }
  return false;
}
