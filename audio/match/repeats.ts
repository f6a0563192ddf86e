/**
 * Repeated audio: the same sound at several source instants (a recorded prompt played into every call, a load
 * test replaying one file, hold music looping) is found by each of their signatures in every target stream that
 * carries it. All but one of those matches carry the time between the repeats as latency: a call started 40 s
 * after another showed the relay's p90 at 40 s. A target instant was made from one source instant, and under
 * causality the nearest earlier one is the one that made it: of two matches in one target stream that cover the
 * same target audio, whose signatures are the same sound, and whose latencies differ by more than any pipeline's
 * delay changes over a signature's span, the one with the larger latency is a repeat and is dropped. A latency below
 * the clocks' tolerance (a source instant after the target instant: a later repeat found within the search before
 * the source) is no cause at all, and loses to any that is: calls replaying one file 1.5 s apart had every target
 * instant of the earlier call credited to the later call's signatures, at -1.4 s.
 *
 * The nearer twin can be found after the farther one: its signature is made a span after its instant, later
 * still when it comes from another node, while the farther one was waiting in the registry when the target audio
 * came. So every match is held until event time has passed its target instant by {@link RepeatGuard}'s hold,
 * then released (Prometheus cannot take an observation back). A nearer twin that comes after its farther one was
 * released is still emitted, and counted as found too late to drop the other.
 *
 * What it cannot tell: a repeat whose nearer twin never became a signature (the Detector found no onset there)
 * stays; a target stream that really lags more than the time between two repeats is credited to the later one.
 * @module
 */

import type { Match } from "../types.ts";
import { isMasked } from "../fingerprint/signature.ts";
import { FP_PARAMS, SUBFP_BITS } from "../fingerprint/fingerprint.ts";
import { popcount32 } from "./signature_index.ts";
import { MIN_USED_FRAMES } from "./thresholds.ts";

/** A signature's sub-fingerprints as the guard compares them. */
export interface RepeatPrint {
  fingerprint: Uint32Array;
  mask: Uint8Array | undefined;
}

/**
 * Least difference of latency (ns) for two matches of the same target audio to be a repeat: two signatures of one
 * call a span apart never differ by this much (the demo's ASR stage, whose delay grows 1.8 s over a 24 s call,
 * moves ~0.2 s between neighbours); repeats of a recording are seconds apart.
 */
export const REPEAT_MIN_LATENCY_GAP_NS = 1_000_000_000n;
/**
 * Highest plain bit error rate of two signatures over the frames they share at the shift their matches put
 * between them, for them to be the same sound: copies on frame grids half a hop apart measure ≤ 0.2, and two
 * different stretches of speech ~0.5.
 */
export const REPEAT_MAX_BER = 0.3;
/** Frames either side of the shift the matches' target times put between two signatures that are tried. */
export const REPEAT_SHIFT_SLACK = 2;
/**
 * How far below 0 a latency may be and still be a cause (ns), beyond the skew the nodes measure: clocks kept by NTP
 * disagree by milliseconds, and a later repeat at least {@link REPEAT_MIN_LATENCY_GAP_NS} after a nearby cause
 * falls below it.
 */
export const REPEAT_CAUSAL_SLACK_NS = 500_000_000n;

const HOP_NS = BigInt(Math.round((FP_PARAMS.hop / FP_PARAMS.sampleRate) * 1e9));

/**
 * The plain BER of `a` and `b` over the frames they share when `b`'s frame 0 is `a`'s frame `shift`, masks of
 * both applied; NaN with fewer than {@link MIN_USED_FRAMES} such frames (too little to say).
 */
export function sharedBer(a: RepeatPrint, b: RepeatPrint, shift: number): number {
  const from = Math.max(0, shift), to = Math.min(a.fingerprint.length, shift + b.fingerprint.length);
  let errors = 0, frames = 0;
  for (let i = from; i < to; i++) {
    if (isMasked(a.mask, i) || isMasked(b.mask, i - shift)) continue;
    errors += popcount32((a.fingerprint[i]! ^ b.fingerprint[i - shift]!) >>> 0);
    frames++;
  }
  return frames >= MIN_USED_FRAMES ? errors / (frames * SUBFP_BITS) : NaN;
}

/**
 * Whether `a` and `b`, matched at target instants `b` − `a` = `deltaNs` apart, are the same sound: the best
 * {@link sharedBer} within {@link REPEAT_SHIFT_SLACK} frames of that shift is at most {@link REPEAT_MAX_BER}.
 */
export function sameSound(a: RepeatPrint, b: RepeatPrint, deltaNs: bigint): boolean {
  const shift = Math.round(Number(deltaNs) / Number(HOP_NS));
  for (let k = shift - REPEAT_SHIFT_SLACK; k <= shift + REPEAT_SHIFT_SLACK; k++) {
    if (sharedBer(a, b, k) <= REPEAT_MAX_BER) return true;
  }
  return false;
}

/** What became of a match that met a repeat of it (the `outcome` of `fsmpx_matches_repeated_total`). */
export type RepeatOutcome = "dropped" | "released_before_twin";
/** Every {@link RepeatOutcome}, for series that must exist at 0. */
export const REPEAT_OUTCOMES: readonly RepeatOutcome[] = ["dropped", "released_before_twin"];

/** The guard's settings. */
export interface RepeatGuardOptions {
  /**
   * Event time a match is held past its target instant, ns, for a nearer twin to be found (see the Matcher:
   * the search before the source instant plus the time signatures take to arrive).
   */
  holdNs: () => bigint;
  /** Event time a released match is remembered past its release, ns, against a farther twin found later. */
  keepNs: bigint;
  /** Each match dropped as a repeat, or released before its nearer twin came. */
  onRepeat?: (match: Match, outcome: RepeatOutcome) => void;
  /**
   * How far other nodes' clocks are measured ahead, ns (a latency that far below 0 may still be a cause, see
   * {@link REPEAT_CAUSAL_SLACK_NS}); absent: 0.
   */
  aheadNs?: () => bigint;
}

interface Entry {
  /** Held: the match; undefined once released. */
  match: Match | undefined;
  print: RepeatPrint;
  /** Target instant (message time + offset), ns. */
  atNs: bigint;
  latencyNs: bigint;
  releaseNs: bigint;
  /** Dropped as a repeat while held. */
  dropped: boolean;
}

/**
 * Holds matches for a nearer twin (see the module's text). Offer each match as it is found, then take what is
 * released as event time goes on ({@link advance}), and everything at the end ({@link flush}).
 */
export class RepeatGuard {
  readonly #o: RepeatGuardOptions;
  /** Entries by target stream and stage, oldest first; released ones stay for {@link RepeatGuardOptions.keepNs}. */
  readonly #byTarget = new Map<string, Entry[]>();
  /** Held entries in order of offer (released in order of release time by {@link advance}). */
  #held: Entry[] = [];
  #nowNs: bigint | undefined;
  #forgetNs = 0n;
  /** The earliest release time of the held entries (a call before it has nothing to scan). */
  #nextNs: bigint | undefined;

  /** A guard holding nothing. */
  constructor(opts: RepeatGuardOptions) {
    this.#o = opts;
  }

  /** Matches held now. */
  get held(): number {
    return this.#held.length;
  }

  /**
   * Takes a match found at event time `nowNs` (its signature's sub-fingerprints with it). Dropped at once if a
   * nearer twin was found already; a farther twin still held is dropped instead.
   */
  offer(match: Match, print: RepeatPrint, nowNs: bigint): void {
    const t = match.target;
    const key = `${match.measurement}\u0000${match.stage}\u0000${t.node}\u0000${t.pod}\u0000${t.stream}`;
    const atNs = t.timeNs + BigInt(Math.round(t.offsetMs * 1e6));
    const latencyNs = t.timeNs - match.source.timeNs;
    let list = this.#byTarget.get(key);
    if (list === undefined) this.#byTarget.set(key, list = []);
    const spanNs = BigInt(print.fingerprint.length) * HOP_NS;
    for (const e of list) {
      if (e.dropped) continue;
      const delta = e.atNs - atNs;
      const eSpanNs = BigInt(e.print.fingerprint.length) * HOP_NS;
      // The target audio they cover overlaps; their latencies differ as only repeats do.
      if (delta >= spanNs || -delta >= eSpanNs) continue;
      const gap = e.latencyNs - latencyNs;
      if (gap < REPEAT_MIN_LATENCY_GAP_NS && -gap < REPEAT_MIN_LATENCY_GAP_NS) continue;
      if (!sameSound(print, e.print, delta)) continue;
      if (this.#nearer(e.latencyNs, latencyNs)) {
        // The one found before is nearer: this is the repeat.
        this.#o.onRepeat?.(match, "dropped");
        return;
      }
      if (e.match !== undefined) {
        this.#o.onRepeat?.(e.match, "dropped");
        e.match = undefined;
        e.dropped = true;
      } else this.#o.onRepeat?.(match, "released_before_twin");
    }
    const entry: Entry = {
      match,
      print,
      atNs,
      latencyNs,
      // From its instant, or from now if that is later than now (a row from a clock far ahead).
      releaseNs: (atNs < nowNs ? atNs : nowNs) + this.#o.holdNs(),
      dropped: false,
    };
    list.push(entry);
    this.#held.push(entry);
    if (this.#nextNs === undefined || entry.releaseNs < this.#nextNs) this.#nextNs = entry.releaseNs;
  }

  /**
   * Event time is `nowNs`: the matches held long enough, in order of release time. A clock that stepped back
   * (a replay started over) releases everything held.
   */
  advance(nowNs: bigint): Match[] {
    const stepped = this.#nowNs !== undefined && nowNs < this.#nowNs;
    if (this.#nowNs === undefined || nowNs > this.#nowNs || stepped) this.#nowNs = nowNs;
    const due = stepped || (this.#nextNs !== undefined && this.#nextNs <= nowNs);
    const out = due ? this.#release((e) => stepped || e.releaseNs <= nowNs) : [];
    if (nowNs >= this.#forgetNs) this.#forget(nowNs);
    return out;
  }

  /** Everything held, in order of release time (the end of a capture). */
  flush(): Match[] {
    return this.#release(() => true);
  }

  #release(due: (e: Entry) => boolean): Match[] {
    if (this.#held.length === 0) return [];
    const ready: Entry[] = [];
    const kept: Entry[] = [];
    let next: bigint | undefined;
    for (const e of this.#held) {
      if (e.match === undefined) continue;
      if (due(e)) ready.push(e);
      else {
        kept.push(e);
        if (next === undefined || e.releaseNs < next) next = e.releaseNs;
      }
    }
    this.#held = kept;
    this.#nextNs = next;
    ready.sort((a, b) => (a.releaseNs < b.releaseNs ? -1 : a.releaseNs > b.releaseNs ? 1 : 0));
    const out: Match[] = [];
    for (const e of ready) {
      out.push(e.match!);
      e.match = undefined;
    }
    return out;
  }

  /**
   * Whether latency `a` is the nearer earlier source instant than `b`: a cause (at least the clocks' tolerance
   * below 0) before one that is not, then the smaller cause, or the one less far below the tolerance.
   */
  #nearer(a: bigint, b: bigint): boolean {
    const floor = -(REPEAT_CAUSAL_SLACK_NS + (this.#o.aheadNs?.() ?? 0n));
    const aCause = a >= floor, bCause = b >= floor;
    if (aCause !== bCause) return aCause;
    return aCause ? a < b : a > b;
  }

  /** Forgets released entries older than the keep, and target streams with none left (once a keep). */
  #forget(nowNs: bigint): void {
    this.#forgetNs = nowNs + this.#o.keepNs;
    const before = nowNs - this.#o.keepNs;
    for (const [key, list] of this.#byTarget) {
      const kept = list.filter((e) => e.match !== undefined || e.releaseNs > before);
      if (kept.length === 0) this.#byTarget.delete(key);
      else if (kept.length !== list.length) this.#byTarget.set(key, kept);
    }
  }
}
