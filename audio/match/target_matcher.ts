/**
 * Finding signatures in one target stream's sub-fingerprints, in both orders:
 * - forward: each new target frame (not silent) is looked up in the SignatureIndex by both 16-bit
 *   halves, plus each half with its weakest bit toggled (lookup.ts); hits within Hamming distance 4 vote for an
 *   alignment (signature, target frame of its frame 0; vote_table.ts). Two votes (a near-exact hit counts two;
 *   the neighbouring alignments' votes count, the grids differ by up to half a hop) queue a pre-check on 32
 *   frames once 64 are there (weighted BER ≤ 0.36; precheck.ts, scheduler.ts), and a passing alignment is
 *   verified when the whole block is there (verify.ts);
 * - backward: a signature that just arrived is looked up in the target frames already held (the lookback, from
 *   its source time minus the clock skew allowance on): its hits come from the measurement's recent frames
 *   (recent_frames.ts, one walk for all its streams) when they hold those frames, else from a scan of the frames
 *   through a small table of its own half-values, and vote alike; what is complete is verified at once, the rest
 *   when its frames arrive.
 * @module
 */

import {
  FRAME_POSITIONS_AT,
  FRAME_RANKS_AT,
  FRAME_WORDS,
  frameSlotOf,
  HitBuffer,
  popcount32,
} from "./signature_index.ts";
import type { Signature } from "../types.ts";
import { HIT_MAX_DIST, hitVotes, PROBE_WORDS, probes, SILENT_FRAME_DB, tablesOf } from "./lookup.ts";
import { precheck, PRECHECK_AFTER, PRECHECK_BER, precheckKernel, touchPrechecks } from "./precheck.ts";
import { RING_FRAMES, SLOTS_AT } from "./ber_kernel.ts";
import type { SignatureIndex } from "./signature_index.ts";
import { CLOCK_SKEW_NS, MARGIN_SPAN } from "./thresholds.ts";
import { type CheckRunner, CheckScheduler, type Pending } from "./scheduler.ts";
import { type CoarseMatch, emptyMatcherStats, type MatcherContext, type MatcherStats } from "./types.ts";
import { Verifier } from "./verify.ts";
import { MAX_LAG, VoteTable } from "./vote_table.ts";
import { HIT_KEY_FRAME, type RecentFrames, recentFramesOf, RecentOwner } from "./recent_frames.ts";

/**
 * Scratch of every matcher in the process: one stream's frames are searched at a time (the engine is synchronous
 * per message), and none of these outlives a call.
 */
const hitScratch = new HitBuffer();
const probeScratch = new Int32Array(PROBE_WORDS);
let hitScratchKeys = new Float64Array(256);
/** Gives a collected matcher's ring slot back to its index. */
const rings = new FinalizationRegistry<{ index: SignatureIndex; slot: number }>((r) =>
  r.index.releaseRing(r.slot)
);
/**
 * How much earlier a stream's last backward search may have been for than a signature's time for its answer to
 * bound this one's first frame (see {@link TargetMatcher.searchBackward}): a stream's timeline is searched about
 * twice a second per measurement rather than for every signature, and the walk of the recent frames goes that much
 * further back (~10% of the ~4.1 s a signature asks for).
 */
export const BOUND_SLACK_NS = 500_000_000n;
/** Bits of a matcher's filter of the slots matched in its stream (a power of two, at least 32). */
const MATCHED_BITS = 1024;
/** The word of `slot`'s bit in a matcher's filter of matched slots ({@link MATCHED_BITS} bits). */
const matchedWord = (slot: number): number => (slot >> 5) & (MATCHED_BITS / 32 - 1);
/** `slot`'s bit in its word of that filter. */
const matchedBit = (slot: number): number => 1 << (slot & 31);

/** Forward and backward search of one target stream. */
export class TargetMatcher {
  /**
   * What each matcher's scheduler runs its checks with: one class for all of them, so that every call the
   * scheduler makes into it has one target (a closure per matcher was a target each, and V8 deoptimised
   * CheckScheduler.runDue for the "wrong call target" whenever a stream with a new one ran its checks).
   */
  static readonly #Runner = class implements CheckRunner<CoarseMatch[]> {
    readonly m: TargetMatcher;
    constructor(m: TargetMatcher) {
      this.m = m;
    }
    check(p: Pending, out: CoarseMatch[]): boolean {
      return this.m.#check(p, out);
    }
    precheck(slot: number, gen: number, s: number, out: CoarseMatch[], final: boolean): void {
      this.m.#precheckDue(slot, gen, s, out, final);
    }
    touch(slots: Int32Array, from: number, to: number): void {
      const m = this.m;
      m.#sink = touchPrechecks(slots, from, to, m.#ctx.index.frames);
    }
  };
  readonly #ctx: MatcherContext;
  readonly #votes = new VoteTable();
  readonly #checks: CheckScheduler<CoarseMatch[]>;
  readonly #verifier: Verifier;
  /** Signature ids already matched here, with the frame when they were, for pruning. */
  readonly #matched = new Map<string, number>();
  /**
   * Per index slot of a signature matched here: its generation + 1 (a quick check in the hit loop; a map, as a
   * table over every slot cost 4 bytes per active signature in each stream that ever matched).
   */
  readonly #slotMatched = new Map<number, number>();
  /**
   * A bit per slot modulo {@link MATCHED_BITS} set for every slot in {@link #slotMatched}: a hit whose bit is clear
   * (nearly all: a stream holds a few dozen matched slots) is not of one, without a lookup in the map.
   */
  readonly #matchedBits = new Int32Array(MATCHED_BITS >> 5);
  #lastSweep = 0;
  /** What the scheduler's touch loaded, kept so that the loads are not optimised away. */
  #sink = 0;
  readonly #stats: MatcherStats = emptyMatcherStats();
  /** The measurement's recent frames (shared with its other streams), and this stream's frames in it. */
  readonly #recent: RecentFrames;
  #owner: RecentOwner | undefined;
  /**
   * The index slot holding a copy of this stream's last RING_FRAMES frames for the pre-check kernel (-1: none
   * yet; -2: the index has no kernel), and the frames copied since one grid: [#ringFrom, #ringEnd).
   */
  #ring = -1;
  #ringFrom = 0;
  #ringEnd = 0;

  /**
   * A matcher over `ctx.store`, looking up `ctx.index`; its frames go into `ctx.recent` (by default the recent
   * frames of every matcher of `ctx.index`).
   */
  constructor(ctx: MatcherContext) {
    this.#ctx = ctx;
    this.#recent = ctx.recent ?? recentFramesOf(ctx.index);
    this.#verifier = new Verifier(ctx, this.#stats);
    this.#checks = new CheckScheduler<CoarseMatch[]>(new TargetMatcher.#Runner(this));
  }

  /** Counters. */
  stats(): MatcherStats {
    return { ...this.#stats };
  }

  /** Alignments waiting for frames (for memory accounting and tests). */
  get pending(): number {
    return this.#checks.pending;
  }

  /** Bytes of the vote table (the matcher's largest structure) and the pending checks. */
  get bytes(): number {
    return this.#votes.bytes + this.#checks.bytes;
  }

  /** True if the signature was already matched in this stream. */
  matched(id: string): boolean {
    return this.#matched.has(id);
  }

  /**
   * Forward search over frames [from, to) that were just computed, then runs the checks that became due; the
   * frames go into the measurement's recent frames for the backward search (which scans the store instead while
   * frames were written there that did not come through here). `final`: the stream ended, verify everything
   * pending with the frames there are. The matches accepted are appended to `out` (by default a new array), which
   * is returned: a caller that gathers them passes its own, as TargetPipeline does (an array per call, nearly
   * always empty, was ~20 MB of a bench/sensor_path.ts run's allocation, and the copy from it an iterator each).
   */
  onFrames(from: number, to: number, final = false, out: CoarseMatch[] = []): CoarseMatch[] {
    const { index, store } = this.#ctx;
    const hits = hitScratch;
    const pr = probeScratch;
    const checks = this.#checks;
    const recent = this.#recent;
    const first = Math.max(from, store.start);
    // Frames not following the last ones indexed (the grid restarted, or a caller went back): a new owner, so
    // that the frames indexed before are not taken for these.
    let owner = this.#owner;
    if (owner === undefined || owner.end !== from) {
      owner = this.#owner = new RecentOwner(first, this.#ctx.tag);
    }
    checks.start(from);
    if (this.#ring === -1 && index.size > 0) this.#reserveRing();
    // The pre-check kernel's copy of the frames (bits and strong bits of each, in the index's memory), all of
    // them first: the checks run in the loop read every frame there is.
    if (this.#ring >= 0 && to > first) {
      const ring = index.frames, at = this.#ring * FRAME_WORDS;
      if (first !== this.#ringEnd) this.#ringFrom = first;
      for (let t = Math.max(first, to - RING_FRAMES); t < to; t++) {
        const i = t & store.mask, r = at + 2 * (t & (RING_FRAMES - 1));
        ring[r] = store.bits[i]!;
        ring[r + 1] = store.strong[i]!;
      }
      this.#ringEnd = to;
    }
    for (let t = first; t < to; t++) {
      this.#votes.advance(t);
      const i = t & store.mask;
      // Silent frames carry no pattern (digital silence is all zeros, a hot bucket).
      if (store.energy[i]! >= SILENT_FRAME_DB) {
        const v = store.bits[i]!;
        const np = probes(v, store.weak[i]!, pr);
        recent.add(owner, t, v, pr, np);
        if (index.size > 0) {
          hits.count = 0;
          index.lookupProbes(pr, np, v, HIT_MAX_DIST, hits);
          this.#stats.lookups += np;
          this.#stats.hits += hits.count;
          // Hits that cast no vote (alignments before the frames held, or of a signature matched here) out first.
          const n = t - MAX_LAG < store.start || this.#slotMatched.size > 0
            ? this.#voting(hits, t)
            : hits.count;
          const nc = this.#votes.voteFrame(hits.slot, hits.pos, hits.dist, n, t);
          if (nc > 1) this.#touchCandidates(hits.slot, hits.pos, nc, t);
          for (let c = 0; c < nc; c++) this.#candidate(hits.slot[c]!, t - hits.pos[c]!, t);
        }
      }
      checks.runDue(t, out);
    }
    owner.end = Math.max(first, to);
    if (final) checks.runAll(out);
    if (to - this.#lastSweep >= 1024) this.#sweep(to);
    return out;
  }

  /**
   * Moves the hits of frame `t` that vote to the front of `hits` (in order), and returns how many: not those for an
   * alignment before the first frame held, nor those of a signature matched here (while its slot holds it).
   */
  #voting(hits: HitBuffer, t: number): number {
    const { index, store } = this.#ctx;
    const slots = hits.slot, pos = hits.pos, dist = hits.dist, bits = this.#matchedBits;
    let n = 0;
    for (let h = 0; h < hits.count; h++) {
      const slot = slots[h]!, p = pos[h]!;
      if (t - p < store.start) continue;
      // Nothing matched in this slot (the common case): its generation is not needed until a candidate is queued.
      if ((bits[matchedWord(slot)]! & matchedBit(slot)) !== 0) {
        const matched = this.#slotMatched.get(slot) ?? 0;
        if (matched !== 0 && matched === index.generation(slot) + 1) continue;
      }
      slots[n] = slot;
      pos[n] = p;
      dist[n++] = dist[h]!;
    }
    return n;
  }

  /**
   * Loads what the candidates of frame `t` (`slots[c]` at t − `pos[c]`, c < n) read first, before any is handled:
   * their slots' block length and, for one whose frames are all here (pre-checked at once, over the frames below
   * its limit), its slot's line of rank bytes there and its first positions.
   */
  #touchCandidates(slots: Int32Array, pos: Int32Array, n: number, t: number): void {
    const { index, store } = this.#ctx;
    const frames = index.frames;
    let acc = 0;
    for (let c = 0; c < n; c++) {
      const slot = slots[c]!, limit = store.end - (t - pos[c]!) - 1;
      acc ^= index.blockLength(slot);
      if (limit >= PRECHECK_AFTER) {
        const at = slot * FRAME_WORDS;
        acc ^= frames[at + FRAME_RANKS_AT + (Math.min(limit, MAX_LAG) >> 2)]! ^
          frames[at + FRAME_POSITIONS_AT]!;
      }
    }
    this.#sink ^= acc;
  }

  /** Alignment `s` of `slot` became a candidate at frame `t`: pre-checked now when its frames are all here, or queued. */
  #candidate(slot: number, s: number, t: number): void {
    const { index, store } = this.#ctx;
    // The block length from the index: the signature object is read only if the pre-check passes.
    const due = Math.max(t, s + Math.min(PRECHECK_AFTER, index.blockLength(slot)));
    // Due within these frames (about half the candidates): the frames it reads are those it would read when
    // due, so a failing one (most) ends here, never queued. (A passing one is queued, and checked again when
    // due, so that its verification keeps its place among the checks.)
    if (due < store.end && this.#precheck(slot, s) > PRECHECK_BER) {
      this.#stats.prechecked++;
      this.#stats.rejected++;
      return;
    }
    this.#checks.precheck(slot, index.generation(slot), s, due);
  }

  /**
   * Runs the pre-check of `slot` (of generation `gen`) at `s`, and when it passes the verification (now, if the
   * block's frames are there or the stream ended, else when they are).
   */
  #precheckDue(slot: number, gen: number, s: number, out: CoarseMatch[], final: boolean): void {
    const { index, store } = this.#ctx;
    // A slot's signature changes only with its generation. Its object, id and fingerprint (a cache miss each)
    // are read only when the pre-check passes (a candidate of a signature matched here already is pre-checked,
    // not verified).
    if (index.generation(slot) !== gen) return;
    this.#stats.prechecked++;
    if (this.#precheck(slot, s) > PRECHECK_BER) {
      this.#stats.rejected++;
      return;
    }
    const sig = index.signatureAt(slot);
    if (sig === undefined || (this.#matched.size > 0 && this.#matched.has(sig.id))) return;
    const due = s + sig.fingerprint.length + MARGIN_SPAN;
    if (!final && due > store.end - 1) {
      this.#checks.schedule(this.#checks.verification(sig, slot, gen, s, due));
    } else this.#verify(sig, slot, gen, s, out);
  }

  /** Runs a verification; true if `p` was scheduled again (still in use). */
  #check(p: Pending, out: CoarseMatch[]): boolean {
    const index = this.#ctx.index;
    if (p.slot >= 0 && (index.generation(p.slot) !== p.gen || index.signatureAt(p.slot) !== p.sig)) {
      return false;
    }
    if (this.#matched.size > 0 && this.#matched.has(p.sig.id)) return false;
    this.#verify(p.sig, p.slot, p.gen, p.s, out);
    return false;
  }

  /** Verifies `sig` at `s` with the frames there are (an accepted match goes to `out`). */
  #verify(sig: Signature, slot: number, gen: number, s: number, out: CoarseMatch[]): void {
    const m = this.#verifier.verify(sig, s);
    if (m) {
      this.#accept(m, slot, gen);
      out.push(m);
    }
  }

  /** The pre-check of `slot` at `s`: in the index's kernel when the ring holds every frame it reads. */
  #precheck(slot: number, s: number): number {
    const { index, store } = this.#ctx;
    const start = store.start, end = store.end;
    if (
      this.#ring >= 0 && this.#ringEnd === end &&
      Math.max(s - 1, start) >= Math.max(this.#ringFrom, end - RING_FRAMES)
    ) {
      const ber = index.kernel!.ber;
      return precheckKernel(
        ber,
        index.frames,
        slot * FRAME_WORDS,
        s,
        SLOTS_AT + 4 * this.#ring * FRAME_WORDS,
        start,
        end,
      );
    }
    return precheck(store, index.frames, slot * FRAME_WORDS, s);
  }

  /** Takes a slot of the index for the ring (none without a kernel). */
  #reserveRing(): void {
    const index = this.#ctx.index;
    const slot = index.reserveRing();
    if (slot < 0) {
      this.#ring = -2;
      return;
    }
    this.#ring = slot;
    rings.register(this, { index, slot });
  }

  /** Backward search: `sig` against the target frames already held. */
  searchBackward(sig: Signature): CoarseMatch[] {
    if (this.#matched.has(sig.id)) return [];
    const ctx = this.#ctx, { store, index } = ctx;
    const hop = ctx.hop;
    const since = sig.source.timeNs - CLOCK_SKEW_NS;
    // The measurement's recent frames give this stream's hits at once (one walk per signature for all streams):
    // the votes the scan of the frames since `from` would cast, in the same order.
    const owner = this.#owner;
    const covered = owner !== undefined && owner.end === store.end;
    let from = -1;
    if (covered && ctx.sampleAtOrBefore && this.#recent.indexing) {
      // A stream the walk under way found hits in (nearly every one searched after ownersWithHits) mostly has one
      // from its exact first frame on: that frame first, which answers the bound below (taken from a frame at or
      // before it) without its own time search.
      if (this.#recent.walkFound(sig, owner)) from = this.#firstFrame(since);
      if (from < 0 || !this.#recent.hitSince(sig, owner, from)) {
        // Most streams hold no hit: known from a frame at or before `from` (the last search's, when its time was
        // close), so that their timelines are not searched for the exact one. (Not while frames are not indexed:
        // a replay's rare signatures find each stream's frames not indexed, and the bound would be a search more.)
        const lo = Math.max(store.start, Math.floor(ctx.sampleAtOrBefore(since, BOUND_SLACK_NS) / hop));
        if (this.#recent.noHitsFrom(sig, owner, lo)) {
          this.#stats.lookups += store.end - lo;
          return [];
        }
      }
    }
    if (from < 0) from = this.#firstFrame(since);
    const hits = covered ? this.#recent.hitsOf(sig, owner, from, since) : undefined;
    const votes = backwardVotes.reset(from, store.end);
    if (hits !== undefined) votesOfHits(hits, from, votes);
    else this.#scanBackward(sig, from, votes);
    this.#stats.lookups += store.end - from;
    // Most streams: no vote at all.
    if (votes.size === 0) return [];
    const fp = sig.fingerprint;
    const slot = index.slotOf(sig.id);
    const gen = slot >= 0 ? index.generation(slot) : 0;
    let best: CoarseMatch | undefined;
    for (let k = 0; k < votes.size; k++) {
      const s = votes.alignment(k), n = votes.get(s), before = votes.get(s - 1), after = votes.get(s + 1);
      if (n + Math.max(before, after) < 2 || before > n || after > n) continue;
      this.#stats.prechecked++;
      // The index's slot of the signature when it has one (the same words as its own copy, and just written).
      const ber = slot >= 0 ? this.#precheck(slot, s) : precheck(store, frameSlotOf(sig), 0, s);
      if (ber > PRECHECK_BER) continue;
      if (s + fp.length + MARGIN_SPAN <= store.end) {
        const m = this.#verifier.verify(sig, s);
        if (m && (!best || m.z > best.z)) best = m;
      } else if (slot >= 0) {
        // Not all of the block is here yet: verify when it is (the forward search adds its own votes).
        this.#checks.schedule({
          sig,
          slot,
          gen,
          s,
          due: s + fp.length + MARGIN_SPAN,
          seq: 0,
          next: undefined,
        });
      }
    }
    if (best) {
      this.#accept(best, slot, gen);
      return [best];
    }
    return [];
  }

  /** The first frame held whose samples were captured at or after `since`. */
  #firstFrame(since: bigint): number {
    const store = this.#ctx.store;
    return Math.max(store.start, Math.floor(this.#ctx.firstSampleAtOrAfter(since) / this.#ctx.hop));
  }

  /** The votes of `sig`'s lookup hits in frames [from, end), frame by frame through its own half-value tables. */
  #scanBackward(sig: Signature, from: number, votes: AlignmentVotes): void {
    const store = this.#ctx.store;
    const [hiT, loT] = tablesOf(sig);
    const fp = sig.fingerprint;
    const pr = probeScratch;
    for (let t = from; t < store.end; t++) {
      const i = t & store.mask;
      if (store.energy[i]! < SILENT_FRAME_DB) continue;
      const v = store.bits[i]!;
      const np = probes(v, store.weak[i]!, pr);
      // A target frame votes at most once per alignment even when several probes find the same frame.
      let seen0 = -1, seen1 = -1, seen2 = -1;
      for (let p = 0; p < np; p++) {
        const table = pr[2 * p] === 0 ? hiT : loT;
        for (let j = table.first(pr[2 * p + 1]!); j !== -1; j = table.next[j]!) {
          const d = popcount32((fp[j]! ^ v) >>> 0);
          if (d > HIT_MAX_DIST || j === seen0 || j === seen1 || j === seen2) continue;
          seen2 = seen1, seen1 = seen0, seen0 = j;
          votes.add(t - j, hitVotes(d));
        }
      }
    }
  }

  #accept(m: CoarseMatch, slot: number, gen: number): void {
    this.#stats.accepted++;
    this.#matched.set(m.sig.id, m.frame);
    if (slot >= 0) {
      this.#slotMatched.set(slot, gen + 1);
      this.#markMatched(slot);
    }
  }

  /** Forgets matched ids whose signature left the index and whose frame left the lookback. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    const { store, index } = this.#ctx;
    for (const [id, frame] of this.#matched) {
      if (!index.has(id) && frame < store.start) this.#matched.delete(id);
    }
    // A slot whose generation moved on holds another signature now: its entry no longer says anything.
    this.#matchedBits.fill(0);
    for (const [slot, gen1] of this.#slotMatched) {
      if (index.generation(slot) + 1 !== gen1) this.#slotMatched.delete(slot);
      else this.#markMatched(slot);
    }
  }

  /** Sets `slot`'s bit in {@link #matchedBits}. */
  #markMatched(slot: number): void {
    this.#matchedBits[matchedWord(slot)]! |= matchedBit(slot);
  }
}

/**
 * A backward search's votes per alignment, in the order each was first voted for (the order its candidates are
 * taken in): counts in an array over the alignments the search can vote for, not a map (scratch of the process:
 * one search at a time, and none outlives it).
 */
class AlignmentVotes {
  #count = new Int32Array(1024);
  #order = new Int32Array(256);
  #base = 0;
  /** Alignments voted for. */
  size = 0;

  /**
   * Empties it for a search of frames [from, end): alignments from − 256 (a hit's signature frame is a byte) to
   * end, and one either side.
   */
  reset(from: number, end: number): AlignmentVotes {
    for (let k = 0; k < this.size; k++) this.#count[this.#order[k]! - this.#base] = 0;
    this.size = 0;
    this.#base = from - 257;
    const span = end - this.#base + 1;
    if (this.#count.length < span) this.#count = new Int32Array(2 * span);
    return this;
  }

  /** Adds `n` (> 0) votes to alignment `s`. */
  add(s: number, n: number): void {
    const i = s - this.#base, c = this.#count[i]!;
    if (c === 0) {
      if (this.size === this.#order.length) {
        const o = new Int32Array(2 * this.size);
        o.set(this.#order);
        this.#order = o;
      }
      this.#order[this.size++] = s;
    }
    this.#count[i] = c + n;
  }

  /** The `k`th alignment voted for. */
  alignment(k: number): number {
    return this.#order[k]!;
  }

  /** Votes of alignment `s` (0 outside the range). */
  get(s: number): number {
    const i = s - this.#base;
    return i >= 0 && i < this.#count.length ? this.#count[i]! : 0;
  }
}

const backwardVotes = new AlignmentVotes();

/**
 * The votes of hits (recent_frames.ts's hit keys) from frame `from` on, cast as {@link TargetMatcher}'s scan casts
 * them: frame by frame, probe by probe, each probe's signature frames from the last, a signature frame at most
 * once a target frame (of the last three met).
 */
function votesOfHits(hits: readonly number[], from: number, votes: AlignmentVotes): void {
  const min = from * HIT_KEY_FRAME;
  if (hitScratchKeys.length < hits.length) hitScratchKeys = new Float64Array(hits.length * 2);
  let n = 0;
  for (let h = 0; h < hits.length; h++) if (hits[h]! >= min) hitScratchKeys[n++] = hits[h]!;
  if (n === 0) return;
  const keys = hitScratchKeys.subarray(0, n).sort();
  let frame = -1, seen0 = -1, seen1 = -1, seen2 = -1;
  for (let h = 0; h < n; h++) {
    const k = keys[h]!;
    const t = Math.floor(k / HIT_KEY_FRAME);
    const low = k - t * HIT_KEY_FRAME;
    const j = 255 - ((low >> 3) & 255);
    if (t !== frame) {
      frame = t;
      seen0 = seen1 = seen2 = -1;
    }
    if (j === seen0 || j === seen1 || j === seen2) continue;
    seen2 = seen1, seen1 = seen0, seen0 = j;
    votes.add(t - j, hitVotes(low & 7));
  }
}
