/**
 * The recent target frames of a measurement, by probe key: one index shared by all its target streams, walked
 * once per arriving signature for the lookup hits of every stream. Without it each signature scanned each
 * stream's frames from its source time on (15-20 µs a stream over the ~4.5 s a live signature asks for, 61 µs
 * over a 30 s lookback), so that a live sensor's backward search cost signatures × streams, the square of the
 * calls, in scans; the walk visits only the frames that share a half-value key with the signature.
 *
 * Each non-silent frame is kept once in a ring (its stream, frame number and value) and linked from the four
 * probes the forward search computes for it (lookup.ts): a chain per (half, key), newest first, as the hash
 * chains of an LZ77 compressor. A signature's unmasked frames walk the chains of their two half-values, as far
 * back as the streams searched so far need: an entry within {@link HIT_MAX_DIST} bits is exactly a hit the scan
 * would have met, and TargetMatcher casts the same votes from them in the scan's order. A stream whose frames
 * since the signature's time are not all there (evicted, or indexed only since a later frame) is scanned, as is
 * every stream when a walk runs over its budget (hot keys). The ring grows by a quarter (up to `maxFrames`)
 * rather than drop a frame less than `keepFrames` old of a stream still writing, or when a search found frames
 * gone that were less than `horizonFrames` old: it holds what the signatures ask for and little more, as every
 * frame held is a step of some walks.
 *
 * It indexes at all only while signatures arrive often enough to pay for it ({@link RECENT_MIN_SIGNATURES} in a
 * stream's {@link RECENT_SIGNATURE_WINDOW} frames): the ring costs every stream ~28 bytes a frame and every frame
 * its chain links whether or not a signature ever walks them, while the scan it spares costs per signature. A
 * replay of many target streams with few or no signatures (or a sensor whose sources went quiet) holds the
 * least ring and only notes each stream's frames as not indexed (its searches scan); the first window with no
 * signature at all drops what the ring held. It indexes from the start, until the first window shows too few
 * signatures: a sensor starting with many calls searches its first signatures (a burst: each call's first
 * blocks complete together) in every stream, and a scan of each was a start-up cost of signatures × streams,
 * the square of the calls, before the first window could decide to index.
 * @module
 */

import { isMasked, SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";
import type { Signature } from "../types.ts";
import { HIT_MAX_DIST, PROBE_WORDS } from "./lookup.ts";
import { popcount32 } from "./signature_index.ts";
import { truncate } from "../../util/truncate.ts";

/** Probes of a frame, each with its own chain link. */
const PROBES = PROBE_WORDS >> 1;
/** log2 of {@link PROBES} (2 exact halves and each half's toggled variants: a power of two). */
const PROBE_SHIFT = Math.log2(PROBES);
/** Words per frame slot: value, frame number, a chain link per probe, its owner's id. */
const REC = 3 + PROBES;
/** Word of a frame slot holding its owner's id (see {@link RecentFrames}). */
const OWNER = 2 + PROBES;
/** (half, 16-bit key) chains. */
const CHAINS = 2 << 16;
/**
 * Default frames of every stream the ring holds at least: 6 s at 16 ms a frame. A signature is searched from its
 * instant less the clock skew allowance (2 s) and arrives when its block (2.05 s) is complete: ~4.1 s of target
 * frames, plus the time it travels. Frames of a stream that stopped writing (a call that ended, or silent) for a
 * quarter of the ring are not kept: they would stay young for good and the ring grow with every call that ends.
 */
export const RECENT_KEEP_FRAMES = 375;
/**
 * Default frames back from a stream's newest (16 s) that a signature may ask for and make the ring grow when
 * they are gone (a late signature, a sensor whose detector lags, a search widened for clock skew); older ones are
 * scanned for.
 */
export const RECENT_HORIZON_FRAMES = 1000;
/** Default largest ring, frames (28 bytes each: 28 MiB), ~8 s of 2,000 target streams that are never silent. */
export const RECENT_MAX_FRAMES = 1 << 20;
/** Chain entries one signature's walk may visit before every stream is scanned instead. */
export const RECENT_WALK_BUDGET = 1 << 18;
const MIN_FRAMES = 1 << 10;
/**
 * Frames per position mark of an owner (0.5 s), and marks kept (a power of two: 16 s, as
 * {@link RECENT_HORIZON_FRAMES}).
 */
const MARK_FRAMES = 32;
const MARKS = 32;
/**
 * Frames of a stream's clock (4.1 s) over which the signatures searched are counted to decide whether to index:
 * each stream's frame numbers advance with real time, so any stream's frames serve as the clock.
 */
export const RECENT_SIGNATURE_WINDOW = 256;
/**
 * Default signatures searched per {@link RECENT_SIGNATURE_WINDOW} from which frames are indexed (~1 a second; a
 * live sensor sees ~0.5 a second per call speaking, and a walk spares a scan of every stream per signature).
 */
export const RECENT_MIN_SIGNATURES = 4;
/** Ring positions per clock mark (see {@link RecentFrames.noteClock}). */
const CLOCK_BLOCK = 256;
/** A clock mark not known: taken as later than any instant. */
const CLOCK_UNKNOWN = (1n << 63n) - 1n;

/**
 * One target stream's frames as the index holds them, from `firstFrame` (where its frame grid last started) to
 * `end`; a stream whose grid restarts gets a new owner, so that frames numbered again are never confused.
 */
export class RecentOwner {
  /** First frame indexed. */
  readonly firstFrame: number;
  /** Whose frames these are (the caller's: {@link RecentFrames.ownersWithHits} hands it back). */
  readonly tag: object | undefined;
  /** Frames before this one were indexed (if not silent). */
  end: number;
  /** Its id in the ring's frame slots while it has frames there (-1: none). */
  id = -1;
  /** Newest frame of this owner that left the ring (-1: none yet). */
  evictedTo = -1;
  /** Ring position of this owner's last frame. */
  lastPos = -1;
  /** Walk that found a hit here last, and its hits (see {@link hitKey}). */
  stamp = 0;
  readonly hits: number[] = [];
  /**
   * Per block of {@link MARK_FRAMES} frames (the last {@link MARKS}), the ring position of its first frame
   * indexed, and the block: where a walk for frames from some frame on may stop.
   */
  readonly #markPos = new Float64Array(MARKS);
  readonly #markBlock = new Int32Array(MARKS).fill(-1);
  #lastBlock = -1;
  /** Where this owner's signature window started: its frame, and the signatures searched by then. */
  windowFrame: number;
  windowAsked = -1;

  /** An owner whose frames from `firstFrame` on are indexed, of the stream `tag` names. */
  constructor(firstFrame: number, tag?: object) {
    this.firstFrame = firstFrame;
    this.tag = tag;
    this.end = firstFrame;
    this.windowFrame = firstFrame;
  }

  /** Notes that frame `t` went to ring position `pos` (frames in increasing order). */
  mark(t: number, pos: number): void {
    const block = (t / MARK_FRAMES) | 0;
    if (block === this.#lastBlock) return;
    this.#lastBlock = block;
    this.#markPos[block & (MARKS - 1)] = pos;
    this.#markBlock[block & (MARKS - 1)] = block;
  }

  /**
   * A ring position at or before that of every frame of this owner from `from` on (0 when not known, Infinity when
   * there is none).
   */
  positionFrom(from: number): number {
    const block = (from / MARK_FRAMES) | 0;
    // No frame indexed from there on (the stream silent since, or `from` at its end): nothing to walk for.
    if (block > this.#lastBlock) return Infinity;
    // The block's own mark, or an earlier block's (a block of silent frames has none).
    for (let b = block; b > block - MARKS && b >= 0; b--) {
      if (this.#markBlock[b & (MARKS - 1)] === b) return this.#markPos[b & (MARKS - 1)]!;
      if (b < this.#lastBlock - MARKS) break;
    }
    return 0;
  }
}

/** Counters of a {@link RecentFrames}. */
export interface RecentFramesStats {
  /** Frames the ring holds at most now. */
  capacity: number;
  /** Frames indexed. */
  frames: number;
  /** Signature walks, chain entries they visited and hits they found, walks over budget. */
  walks: number;
  steps: number;
  hits: number;
  overBudget: number;
  /** Backward searches answered from the index, and asked for but not covered (scanned). */
  searched: number;
  uncovered: number;
  /** Whether frames are indexed now (signatures arrive often enough), and how often indexing stopped. */
  indexing: boolean;
  stops: number;
}

/** Recent non-silent frames of a measurement's target streams, by probe key. */
export class RecentFrames {
  readonly keepFrames: number;
  readonly horizonFrames: number;
  readonly maxFrames: number;
  readonly walkBudget: number;
  readonly minSignatures: number;
  #cap = 0;
  /**
   * The owners of the frames held, by id (undefined: a free id, in {@link #freeIds}): a frame slot names its owner
   * by id, so that a walk's hit finds it from the slot's own line rather than a second array's.
   */
  readonly #owners: (RecentOwner | undefined)[] = [];
  readonly #freeIds: number[] = [];
  /**
   * Per frame slot {@link REC} words: its value, its frame number, per probe how many probe entries back its
   * chain goes on (0: the chain ends), and its owner's id; together, so that a step of a walk reads one place.
   */
  #rec = new Int32Array(0);
  /** Per chain its newest entry (absolute frame × PROBES + probe; -1: none). */
  readonly #head = new Float64Array(CHAINS).fill(-1);
  /** Frames written (the next frame's absolute position), and the oldest one held. */
  #written = 0;
  #first = 0;
  /** Frames left the ring for newer ones since it was last emptied. */
  #evicted = false;
  /** A search asked for frames within the horizon that had left: grow the ring at the next eviction. */
  #grow = false;
  #seq = 0;
  /** Frames are indexed (else each is only noted as not indexed); signatures searched so far, the last one. */
  #indexing: boolean;
  /** Indexing since the start, until the first signature window ends (see #decide). */
  #provisional: boolean;
  #asked = 0;
  #askedSig: Signature | undefined;
  /** The walk under way: its signature, the frames written when it started, whether it is within budget. */
  #memoSig: Signature | undefined;
  #memoAt = -1;
  #memoOk = false;
  /** Its ring position reached (entries from there on visited), and its steps. */
  #walkedTo = 0;
  #walkSteps = 0;
  /**
   * The earliest capture time that {@link ownersWithHits} walked the walk under way for (undefined: none): every
   * stream's frames of a search from then on are visited (see {@link hitsOf}).
   */
  #walkSince: bigint | undefined;
  /** Per (unmasked signature frame, half) the next chain entry to visit (-1: none), the frame and its value. */
  readonly #cursor = new Float64Array(2 * SIGNATURE_MAX_FRAMES);
  readonly #cursorValue = new Uint32Array(SIGNATURE_MAX_FRAMES);
  readonly #cursorFrame = new Int32Array(SIGNATURE_MAX_FRAMES);
  #cursors = 0;
  /** Owners with a hit in the walk under way, each once. */
  readonly #hitOwners: RecentOwner[] = [];
  /**
   * The newest capture time of the rows taken so far (undefined: none noted), the clock when each block of
   * {@link CLOCK_BLOCK} ring positions began (by absolute block, modulo its length), and the clock when indexing
   * last began: see {@link noteClock}.
   */
  #clock: bigint | undefined;
  #blockClock: BigInt64Array;
  #clockOn: bigint;
  readonly #stats: RecentFramesStats = {
    capacity: 0,
    frames: 0,
    walks: 0,
    steps: 0,
    hits: 0,
    overBudget: 0,
    searched: 0,
    uncovered: 0,
    indexing: false,
    stops: 0,
  };

  /**
   * Defaults: {@link RECENT_KEEP_FRAMES}, {@link RECENT_HORIZON_FRAMES}, {@link RECENT_MAX_FRAMES},
   * {@link RECENT_WALK_BUDGET}, {@link RECENT_MIN_SIGNATURES} (0: frames are always indexed).
   */
  constructor(
    opts: {
      keepFrames?: number;
      horizonFrames?: number;
      maxFrames?: number;
      walkBudget?: number;
      minSignatures?: number;
    } = {},
  ) {
    this.keepFrames = opts.keepFrames ?? RECENT_KEEP_FRAMES;
    this.horizonFrames = opts.horizonFrames ?? RECENT_HORIZON_FRAMES;
    this.maxFrames = opts.maxFrames ?? RECENT_MAX_FRAMES;
    this.walkBudget = opts.walkBudget ?? RECENT_WALK_BUDGET;
    this.minSignatures = opts.minSignatures ?? RECENT_MIN_SIGNATURES;
    this.#indexing = true;
    this.#provisional = this.minSignatures > 0;
    this.#clockOn = -CLOCK_UNKNOWN;
    this.#blockClock = new BigInt64Array(Math.ceil(this.maxFrames / CLOCK_BLOCK) + 2);
    this.#resize(Math.min(MIN_FRAMES, this.maxFrames));
  }

  /**
   * Notes that rows captured up to `timeNs` are being taken: called with every batch of target rows before its
   * frames are computed, it lets {@link ownersWithHits} bound by time which frames a signature can hit.
   */
  noteClock(timeNs: bigint): void {
    if (this.#clock === undefined || timeNs > this.#clock) this.#clock = timeNs;
  }

  /** Counters. */
  stats(): RecentFramesStats {
    return { ...this.#stats, capacity: this.#cap, indexing: this.#indexing };
  }

  /** Bytes of the ring and the chain heads. */
  get bytes(): number {
    return this.#cap * 4 * REC + this.#head.byteLength;
  }

  /**
   * Indexes frame `t` of `owner`, of value `v`, under its `np` probes (the (half, key) pairs of lookup.ts's
   * `probes`); frames of an owner come in increasing order.
   */
  add(owner: RecentOwner, t: number, v: number, probes: Int32Array, np: number): void {
    if (owner.windowAsked < 0) owner.windowAsked = this.#asked;
    if (t - owner.windowFrame >= RECENT_SIGNATURE_WINDOW && this.minSignatures > 0) this.#decide(owner, t);
    if (!this.#indexing) {
      // Not indexed: a search from here back scans.
      owner.evictedTo = t;
      return;
    }
    const pos = this.#written;
    let slot = pos % this.#cap;
    if (pos - this.#first === this.#cap) {
      const old = this.#owners[this.#rec[slot * REC + OWNER]!]!;
      const oldT = this.#rec[slot * REC + 1]!;
      // Grown to hold `keepFrames` of every stream still writing, and further when searches found frames gone:
      // no more, as every frame held is a step of some walks.
      const kept = old.end - oldT < this.keepFrames && pos - old.lastPos < this.#cap >> 2;
      if ((this.#grow || kept) && this.#cap < this.maxFrames) {
        this.#grow = false;
        this.#resize(Math.min(this.maxFrames, grown(this.#cap)));
        slot = pos % this.#cap;
      } else {
        old.evictedTo = oldT;
        // Its last frame held: its id is free.
        if (old.lastPos === this.#first) this.#freeId(old);
        this.#first++;
        this.#evicted = true;
      }
    }
    if (pos % CLOCK_BLOCK === 0) {
      this.#blockClock[Math.floor(pos / CLOCK_BLOCK) % this.#blockClock.length] = this.#clock ??
        CLOCK_UNKNOWN;
    }
    if (owner.id < 0) this.#takeId(owner);
    owner.mark(t, pos);
    owner.lastPos = pos;
    const rec = this.#rec, base = slot * REC;
    rec[base] = v;
    rec[base + 1] = t;
    rec[base + OWNER] = owner.id;
    const n = Math.min(np, PROBES);
    for (let p = 0; p < PROBES; p++) {
      const at = base + 2 + p;
      if (p >= n) {
        rec[at] = 0;
        continue;
      }
      const chain = (probes[2 * p]! << 16) | probes[2 * p + 1]!;
      const e = pos * PROBES + p;
      const prev = this.#head[chain]!;
      // A link to an entry the ring no longer holds would only end the walk there (and could overflow).
      rec[at] = prev < this.#first * PROBES ? 0 : e - prev;
      this.#head[chain] = e;
    }
    this.#written = pos + 1;
    this.#stats.frames++;
  }

  /** Whether frames are indexed now. */
  get indexing(): boolean {
    return this.#indexing;
  }

  /**
   * The lookup hits of `sig` in `owner`'s stream, as {@link hitKey}s in no order, from frames `from` on (and some
   * before), when every frame since `from` is indexed: each (target frame, probe, signature frame) whose probe
   * key is the signature frame's half and whose values are within {@link HIT_MAX_DIST} bits, exactly those the
   * scan of the frames would meet. Undefined when not known (then the stream is scanned). A new array or one
   * reused by the next call.
   *
   * `sinceNs`, when given, says that `from` is the first frame of a search from that capture time on (as
   * {@link ownersWithHits} takes it): if that walk of `sig` went back to then or earlier, every frame from `from` on
   * was visited (that proof), and the walk goes no further for this stream's frame marks (up to 32 frames before
   * `from`, of every stream, and a quarter more).
   */
  hitsOf(sig: Signature, owner: RecentOwner, from: number, sinceNs?: bigint): readonly number[] | undefined {
    this.#noteAsked(sig);
    if (from < owner.firstFrame || from <= owner.evictedTo) {
      this.#stats.uncovered++;
      // Frames left that a signature within the horizon asks for: the ring is too short for the load.
      if (from >= owner.firstFrame && owner.end - from <= this.horizonFrames) this.#grow = true;
      return undefined;
    }
    if (!this.#walkedSince(sig, sinceNs) && !this.#walkFor(sig, owner, from)) return undefined;
    this.#stats.searched++;
    return owner.stamp === this.#seq ? owner.hits : NO_HITS;
  }

  /**
   * True if `owner`'s stream holds no lookup hit of `sig` in frames `from` on, as {@link hitsOf} would say (an
   * empty answer from a frame at or after `from` too): then its search is over without its exact first frame,
   * and counted as searched. False when there are hits there or it is not known (the frames not all indexed, or
   * the walk over budget): nothing else is counted then, the caller asks {@link hitsOf}.
   */
  noHitsFrom(sig: Signature, owner: RecentOwner, from: number): boolean {
    this.#noteAsked(sig);
    if (from < owner.firstFrame || from <= owner.evictedTo) return false;
    // A hit from `from` on that the walk found already says it (walking further only finds more): most streams
    // asked after ownersWithHits have one, and the walk need not go back to their frame marks.
    if (this.#current(sig) && this.#hitFrom(owner, from)) return false;
    if (!this.#walkFor(sig, owner, from) || this.#hitFrom(owner, from)) return false;
    this.#stats.searched++;
    return true;
  }

  /**
   * True if `sig`'s walk under way (within its budget, no frame added since) found a hit in `owner`'s frames from
   * `from` on: then {@link noHitsFrom} is false for it from any frame at or before `from`, without a call.
   */
  hitSince(sig: Signature, owner: RecentOwner, from: number): boolean {
    return this.#current(sig) && this.#hitFrom(owner, from);
  }

  /** True if `sig`'s walk under way (as {@link hitSince}) found a hit in `owner`'s frames at all. */
  walkFound(sig: Signature, owner: RecentOwner): boolean {
    return owner.stamp === this.#seq && this.#current(sig);
  }

  /** True if the walk under way found a hit in `owner`'s frames from `from` on. */
  #hitFrom(owner: RecentOwner, from: number): boolean {
    if (owner.stamp !== this.#seq) return false;
    const min = from * HIT_KEY_FRAME, hits = owner.hits;
    for (let h = 0; h < hits.length; h++) if (hits[h]! >= min) return true;
    return false;
  }

  /** True if the walk under way is `sig`'s, within its budget, and no frame was added since it began. */
  #current(sig: Signature): boolean {
    return this.#memoSig === sig && this.#memoAt === this.#written && this.#memoOk;
  }

  /** True if the walk under way is `sig`'s and {@link ownersWithHits} took it back to `sinceNs` or earlier. */
  #walkedSince(sig: Signature, sinceNs: bigint | undefined): boolean {
    return sinceNs !== undefined && this.#walkSince !== undefined && sinceNs >= this.#walkSince &&
      this.#current(sig);
  }

  /**
   * Every owner whose frames may hold a lookup hit of `sig` in a stream's search from capture time `sinceNs` on
   * (its frames from the first sample of a message captured at or after then: TargetMatcher's backward search),
   * each once, in no order: any other owner's stream finds no hit there (and would vote for nothing). Undefined
   * when that is not known: frames not indexed since then, gone from the ring, no clock noted, or the walk over
   * its budget.
   *
   * Why a time bound holds for every stream at once: such a search's first frame ends at or after the first sample
   * of a message captured at or after `sinceNs` (a binary search's answer, in order or not), so that it and every
   * later frame of the stream were computed while that message or a later one was taken, with the clock at or
   * past `sinceNs`; the clock only grows, so those frames sit after the last ring block begun before it got there.
   */
  ownersWithHits(sig: Signature, sinceNs: bigint): readonly RecentOwner[] | undefined {
    if (!this.#indexing || this.#clock === undefined || sinceNs <= this.#clockOn) return undefined;
    this.#noteAsked(sig);
    const marks = this.#blockClock, n = marks.length;
    const newest = Math.floor((this.#written - 1) / CLOCK_BLOCK);
    const oldest = Math.floor(this.#first / CLOCK_BLOCK);
    // The last block begun with the clock before `sinceNs`: the frames before it were computed before then.
    let b = newest;
    while (b >= oldest && !(marks[b % n]! < sinceNs)) b--;
    let stop = b * CLOCK_BLOCK;
    if (b < oldest) {
      // Every block held begun at or after `sinceNs`: the frames before the oldest held may be wanted, unless there
      // are none (or they went with indexing, before it began again).
      if (this.#evicted) return undefined;
      stop = this.#first;
    } else if (stop < this.#first) return undefined; // a block begun before then, but part of it gone
    if (this.#memoSig !== sig || this.#memoAt !== this.#written) this.#startWalk(sig);
    if (!this.#memoOk) return undefined;
    if (stop < this.#walkedTo && !this.#walk(stop)) return undefined;
    if (this.#walkSince === undefined || sinceNs < this.#walkSince) this.#walkSince = sinceNs;
    return this.#hitOwners;
  }

  /** Counts `sig` among the signatures searched (once). */
  #noteAsked(sig: Signature): void {
    if (sig !== this.#askedSig) {
      this.#askedSig = sig;
      this.#asked++;
    }
  }

  /**
   * Walks `sig`'s chains as far back as `owner`'s frames from `from` on (indexed, as the caller checked); false if
   * the walk is over budget.
   */
  #walkFor(sig: Signature, owner: RecentOwner, from: number): boolean {
    // One walk per signature, again only when frames were added since (the searches of one signature in every
    // stream come together); each walk goes as far back as a stream needed so far.
    if (this.#memoSig !== sig || this.#memoAt !== this.#written) this.#startWalk(sig);
    if (!this.#memoOk) return false;
    const stop = owner.positionFrom(from);
    if (stop < this.#walkedTo) {
      // A little further than asked, so that the streams that ask a little more each do not each walk again.
      const to = Math.max(this.#first, stop - ((this.#written - stop) >> 2));
      if (!this.#walk(to)) return false;
    }
    return true;
  }

  /**
   * At the end of `owner`'s signature window (now at frame `t`): starts indexing if signatures came at
   * {@link minSignatures} a window or more, stops (dropping what the ring holds) if none came, or, at the end of
   * the first window, if fewer came.
   */
  #decide(owner: RecentOwner, t: number): void {
    const asked = this.#asked - owner.windowAsked;
    const often = asked * RECENT_SIGNATURE_WINDOW >= this.minSignatures * (t - owner.windowFrame);
    const provisional = this.#provisional;
    this.#provisional = false;
    if (!this.#indexing && often) {
      this.#indexing = true;
      this.#clockOn = this.#clock ?? CLOCK_UNKNOWN;
    } else if (this.#indexing && (asked === 0 || (provisional && !often))) {
      this.#indexing = false;
      this.#stats.stops++;
      this.#dropAll();
    }
    owner.windowFrame = t;
    owner.windowAsked = this.#asked;
  }

  /** Lets every frame go (each owner's noted as evicted) and shrinks the ring to the least. */
  #dropAll(): void {
    for (let pos = this.#first; pos < this.#written; pos++) {
      const slot = pos % this.#cap;
      const o = this.#owners[this.#rec[slot * REC + OWNER]!]!;
      o.evictedTo = Math.max(o.evictedTo, this.#rec[slot * REC + 1]!);
    }
    for (const o of this.#owners) if (o !== undefined) o.id = -1;
    truncate(this.#owners, 0);
    truncate(this.#freeIds, 0);
    this.#first = this.#written;
    this.#evicted = false;
    this.#grow = false;
    this.#memoSig = undefined;
    this.#rec = new Int32Array(0);
    this.#cap = 0;
    this.#resize(Math.min(MIN_FRAMES, this.maxFrames));
  }

  /** Starts the walk of `sig`'s chains: a new stamp, a cursor per (unmasked frame, half) at its chain's head. */
  #startWalk(sig: Signature): void {
    this.#seq++;
    this.#stats.walks++;
    this.#memoSig = sig;
    this.#memoAt = this.#written;
    this.#memoOk = true;
    this.#walkedTo = this.#written;
    this.#walkSteps = 0;
    this.#walkSince = undefined;
    truncate(this.#hitOwners, 0);
    const fp = sig.fingerprint, sigMask = sig.mask;
    let n = 0;
    for (let j = 0; j < fp.length; j++) {
      if (isMasked(sigMask, j)) continue;
      const v = fp[j]!;
      this.#cursorValue[n >> 1] = v;
      this.#cursorFrame[n >> 1] = j;
      this.#cursor[n++] = this.#head[v >>> 16]!;
      this.#cursor[n++] = this.#head[(1 << 16) | (v & 0xffff)]!;
    }
    this.#cursors = n;
  }

  /**
   * Walks the chains on to ring position `to`: every owner with a hit there gets this walk's stamp and the hit.
   * False (and the walk given up) if over the budget.
   */
  #walk(to: number): boolean {
    const stop = Math.max(to, this.#first) * PROBES;
    const cursor = this.#cursor, n = this.#cursors;
    const before = this.#walkSteps;
    // Every entry stepped on is of a frame held (at or after `stop`): from slot 0's position at or before the
    // oldest frame, a slot is a subtraction away (see #step).
    const origin = this.#first - (this.#first % this.#cap);
    // Four chains at a time, a step of each in turn: their loads do not depend on one another, so that their
    // cache misses (most steps are one) overlap.
    for (let c = 0; c < n; c += 4) {
      let e0 = cursor[c]!, e1 = c + 1 < n ? cursor[c + 1]! : -1;
      let e2 = c + 2 < n ? cursor[c + 2]! : -1, e3 = c + 3 < n ? cursor[c + 3]! : -1;
      while (e0 >= stop || e1 >= stop || e2 >= stop || e3 >= stop) {
        if (e0 >= stop) e0 = this.#step(e0, c, origin);
        if (e1 >= stop) e1 = this.#step(e1, c + 1, origin);
        if (e2 >= stop) e2 = this.#step(e2, c + 2, origin);
        if (e3 >= stop) e3 = this.#step(e3, c + 3, origin);
      }
      cursor[c] = e0;
      if (c + 1 < n) cursor[c + 1] = e1;
      if (c + 2 < n) cursor[c + 2] = e2;
      if (c + 3 < n) cursor[c + 3] = e3;
    }
    this.#walkedTo = Math.max(to, this.#first);
    this.#stats.steps += this.#walkSteps - before;
    if (this.#walkSteps > this.walkBudget) {
      this.#stats.overBudget++;
      this.#memoOk = false;
      return false;
    }
    return true;
  }

  /**
   * Visits chain entry `e` of cursor `c` (held: at or after the oldest frame's entries): its hit if any; returns
   * the next entry (-1: the chain ends). `origin` is the absolute position of the ring's slot 0 at or before the
   * oldest frame held (see {@link #walk}).
   */
  #step(e: number, c: number, origin: number): number {
    const rec = this.#rec;
    const p = e & (PROBES - 1);
    // The frame's slot: its position is within a ring's length from the oldest one's, so one wrap at most (the
    // position modulo the ring's length, a floating-point remainder, cost about a third of a step).
    let f = (e - p) / PROBES - origin;
    if (f >= this.#cap) f -= this.#cap;
    const base = f * REC;
    const v = this.#cursorValue[c >> 1]!;
    const d = popcount32((rec[base]! ^ v) >>> 0);
    if (d <= HIT_MAX_DIST) {
      const o = this.#owners[rec[base + OWNER]!]!;
      if (o.stamp !== this.#seq) {
        o.stamp = this.#seq;
        truncate(o.hits, 0);
        this.#hitOwners.push(o);
      }
      o.hits.push(hitKey(rec[base + 1]!, p, this.#cursorFrame[c >> 1]!, d));
      this.#stats.hits++;
    }
    this.#walkSteps++;
    const back = rec[base + 2 + p]!;
    return back === 0 ? -1 : e - back;
  }

  /** Gives `owner` an id (a free one first). */
  #takeId(owner: RecentOwner): void {
    const id = this.#freeIds.pop() ?? this.#owners.length;
    owner.id = id;
    this.#owners[id] = owner;
  }

  /** Frees `owner`'s id (its last frame left the ring). */
  #freeId(owner: RecentOwner): void {
    this.#owners[owner.id] = undefined;
    this.#freeIds.push(owner.id);
    owner.id = -1;
  }

  #resize(cap: number): void {
    const rec = new Int32Array(cap * REC), old = this.#rec;
    const oldCap = this.#cap;
    // The frames held, in runs of positions that wrap in neither ring (three at most): one copy each. A subarray
    // and a set per frame made ~47 MB of short-lived views in a bench/sensor_path.ts run (5% of what it
    // allocated) as the ring grew to hold its 500 streams.
    for (let pos = this.#first; pos < this.#written;) {
      const a = pos % oldCap, b = pos % cap;
      const run = Math.min(this.#written - pos, oldCap - a, cap - b);
      rec.set(old.subarray(a * REC, (a + run) * REC), b * REC);
      pos += run;
    }
    this.#rec = rec;
    this.#cap = cap;
  }
}

const NO_HITS: readonly number[] = [];

/** The next ring size: a quarter more, in whole 1,024 frames (every frame held is a step of some walks). */
function grown(cap: number): number {
  return Math.ceil((cap * 1.25) / 1024) * 1024;
}

/** A hit key's target frame unit: below it the probe, the signature frame (8 bits) and the distance (3). */
export const HIT_KEY_FRAME = 1 << (PROBE_SHIFT + 11);

/**
 * A hit as one number that orders hits as the scan meets them: by target frame `t`, then probe `p`, then
 * signature frame `j` from the last (a signature table's chain order), with the Hamming distance `d` below.
 */
export function hitKey(t: number, p: number, j: number, d: number): number {
  return t * HIT_KEY_FRAME + (((p << 8) | (255 - j)) << 3) + d;
}

const shared = new WeakMap<object, RecentFrames>();

/** The recent frames shared by every matcher of `key` (the measurement's SignatureIndex). */
export function recentFramesOf(key: object): RecentFrames {
  let r = shared.get(key);
  if (!r) {
    r = new RecentFrames();
    shared.set(key, r);
  }
  return r;
}
