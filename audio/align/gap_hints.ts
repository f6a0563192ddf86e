/**
 * Where capture times say a message is missing from a target stream: a hint for the fine alignment, never a
 * change to the stream's timeline.
 *
 * A tap on a real-time audio stream captures each message about when its last sample was produced, so
 * consecutive capture times are about one message's duration apart; a lost message shows as a spacing longer by
 * its duration. Stages that buffer or burst (an ASR front end that stalls and then sends a backlog) break that
 * rule, which is why the timeline does not insert silence on such evidence; the envelope alignment tries the
 * hinted gap as one more hypothesis and keeps it only where the audio agrees (level_envelope.ts).
 * @module
 */

/** A likely lost stretch of audio just before analysis sample `at`. */
export interface GapHint {
  /** First analysis sample after the gap (the start of the message that followed it). */
  at: number;
  /** Likely length of the missing audio, analysis samples. */
  len: number;
}

/** Spacing beyond the message's own duration that counts as a gap: at least this much, ms ... */
const MIN_GAP_MS = 5;
/**
 * ... and at least this fraction of the shorter of the two messages around it (a message's capture time wanders
 * by a fraction of its length). Low on purpose: a wrong hint only costs one more hypothesis the audio rejects.
 */
const MIN_GAP_FRACTION = 0.25;
/** Longer excesses are stalls, not a lost message or two. */
const MAX_GAP_MS = 500;

/**
 * A stream's messages in arrival order, by index: where each one's audio starts (analysis samples, in stream order)
 * and when it was captured (ns from a base fixed for the stream: integers below 2^53, so their differences are
 * exact). CaptureTimes (decode/capture_times.ts) is one.
 */
export interface CaptureEntries {
  readonly length: number;
  startAt(i: number): number;
  timeOffsetAt(i: number): number;
}

/**
 * Gap hints between messages whose analysis samples start at `starts[k]` and were captured at `times[k]` (in
 * stream order; `end` is the sample after the last message), for gaps whose `at` lies in [from, to).
 * `rate`: analysis samples per second.
 */
export function gapHints(
  times: readonly bigint[],
  starts: readonly number[],
  end: number,
  rate: number,
  from: number,
  to: number,
): GapHint[] {
  const t0 = times[0] ?? 0n;
  const entries: CaptureEntries = {
    length: starts.length,
    startAt: (i) => starts[i]!,
    timeOffsetAt: (i) => Number(times[i]! - t0),
  };
  return gapHintsOf(entries, end, rate, from, to);
}

/**
 * The hint of a message that starts at `start` (`samples` long) and was captured `spacingNs` after the one before
 * it, which started `before` samples earlier; undefined when there is none.
 */
function hintOf(
  start: number,
  samples: number,
  before: number,
  spacingNs: number,
  rate: number,
): GapHint | undefined {
  if (samples <= 0 || before <= 0) return undefined;
  const durMs = (samples / rate) * 1000;
  const spacingMs = spacingNs / 1e6;
  const excessMs = spacingMs - durMs;
  // Relative to the shorter neighbour: a short message lost next to a long one is still a gap.
  const shorterMs = (Math.min(samples, before) / rate) * 1000;
  if (excessMs < Math.max(MIN_GAP_MS, MIN_GAP_FRACTION * shorterMs) || excessMs > MAX_GAP_MS) {
    return undefined;
  }
  return { at: start, len: Math.round((excessMs / 1000) * rate) };
}

/** The first entry k ≥ 1 whose start is at or after `from` (`entries.length` when none): messages are in sample order. */
function firstAtOrAfter(entries: CaptureEntries, from: number): number {
  let lo = 1, hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries.startAt(mid) < from) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The hints of a stream's entries worked out so far, for {@link gapHintsOf}: a message's hint depends only on it
 * and its two neighbours, and entries are only ever appended (and the oldest dropped), so the hint of a message
 * that has a successor is final. The verification asks for the hints of each candidate's span (~150 messages,
 * 40,000 times over the bench's analyze corpus, most of the spans overlapping the last one's): each message is
 * worked out once rather than on every ask (reading an entry's start and capture time out of the timeline took
 * ~2.5% of analyze's CPU). One per stream's entries.
 */
export class GapHintMemo {
  /**
   * Final hints, by `at`, of the entries held that start before `done` (every one since the first ask is worked
   * out, whether asked for or not: each once); those before `head` belong to entries no longer held.
   */
  #hints: GapHint[] = [];
  #head = 0;
  #done = -Infinity;
  /**
   * Where the first entry at or after `done` was when it was set: it is there again unless old entries were
   * dropped since (every so many messages), so the ask after new messages arrive finds it in two reads instead
   * of a binary search over the ~2,000 entries held (a read of an entry's start goes through the timeline).
   */
  #doneAt = 1;
  #rate = NaN;

  /** {@link gapHintsOf} of `entries` (always the same entries, appended to). */
  hints(entries: CaptureEntries, end: number, rate: number, from: number, to: number): GapHint[] {
    const n = entries.length;
    const out: GapHint[] = [];
    if (n < 2) return out;
    // A hint's message is never the oldest held (it has no predecessor).
    const second = entries.startAt(1);
    const low = Math.max(from, second);
    if (rate !== this.#rate) {
      this.#hints.length = 0;
      this.#head = 0;
      this.#done = -Infinity;
      this.#doneAt = 1;
      this.#rate = rate;
    }
    let live: GapHint | undefined;
    if (to > this.#done) {
      const done = this.#done;
      let k0 = this.#doneAt;
      // firstAtOrAfter(entries, done), checked where it was (starts never decrease: that entry is the first).
      if (
        !(k0 <= n && (k0 === 1 || entries.startAt(k0 - 1) < done) &&
          (k0 === n || entries.startAt(k0) >= done))
      ) {
        k0 = firstAtOrAfter(entries, done);
      }
      if (k0 < n) {
        let prevStart = entries.startAt(k0 - 1), prevTime = entries.timeOffsetAt(k0 - 1);
        let start = entries.startAt(k0);
        for (let k = k0; k < n && start < to; k++) {
          const time = entries.timeOffsetAt(k);
          const last = k + 1 >= n;
          const next = last ? end : entries.startAt(k + 1);
          const h = hintOf(start, next - start, start - prevStart, time - prevTime, rate);
          if (last) live = h;
          else {
            if (h) this.#hints.push(h);
            this.#done = next;
            this.#doneAt = k + 1;
          }
          prevStart = start;
          prevTime = time;
          start = next;
        }
      }
    }
    const hints = this.#hints;
    // Hints of messages no longer held, or before every span asked for since, are dropped now and then.
    while (this.#head < hints.length && hints[this.#head]!.at < second) this.#head++;
    if (this.#head > 256) {
      hints.splice(0, this.#head);
      this.#head = 0;
    }
    let i = this.#head, j = hints.length;
    while (i < j) {
      const mid = (i + j) >> 1;
      if (hints[mid]!.at < low) i = mid + 1;
      else j = mid;
    }
    for (; i < hints.length && hints[i]!.at < to; i++) out.push({ at: hints[i]!.at, len: hints[i]!.len });
    if (live && live.at >= low && live.at < to) out.push(live);
    return out;
  }
}

/**
 * {@link gapHints} read from `entries` where they are held: no copies of the entries, no bigint per entry (the
 * verification asks for the hints of each candidate's block, and copying ~150 entries as bigints each time took
 * about a tenth of a match's CPU). With `memo` (the same one for every call on the same entries), each message's
 * hint is worked out once (see {@link GapHintMemo}): the same hints.
 */
export function gapHintsOf(
  entries: CaptureEntries,
  end: number,
  rate: number,
  from: number,
  to: number,
  memo?: GapHintMemo,
): GapHint[] {
  if (memo) return memo.hints(entries, end, rate, from, to);
  const out: GapHint[] = [];
  const n = entries.length;
  const lo = firstAtOrAfter(entries, from);
  if (lo >= n) return out;
  let prevStart = entries.startAt(lo - 1), prevTime = entries.timeOffsetAt(lo - 1);
  for (let k = lo; k < n; k++) {
    const start = entries.startAt(k);
    if (start >= to) break;
    const time = entries.timeOffsetAt(k);
    const next = k + 1 < n ? entries.startAt(k + 1) : end;
    const h = hintOf(start, next - start, start - prevStart, time - prevTime, rate);
    prevStart = start;
    prevTime = time;
    if (h) out.push(h);
  }
  return out;
}

/**
 * An instant aligned at most this many analysis samples (one hop, 16 ms) before a gap ... (5 ms until the block
 * was scored in parts across the pause, match/parts.ts: those instants, now found at the resume, were aligned
 * 40–116 samples before it on the bench's DTX chain, in a comfort-noise message 40–140 ms early in call time;
 * every correct match there sat after its gap or more than a hop before it).
 */
export const SUPPRESSED_BEFORE_GAP = 128;
/** ... where the audio just after the gap is at least this much louder (dB) than just before it ... */
export const SUPPRESSED_LOUDER_DB = 10;
/** ... (levels over this many analysis samples, 10 ms, on either side) lies in audio that was not sent. */
const LEVEL_SPAN = 80;

/**
 * Whether an instant aligned at analysis sample `k` lies in audio a silence-suppressing sender never sent.
 *
 * A DTX sender stops sending in pauses (sparse comfort noise only) and resumes at a speech onset once its own
 * VAD calls it speech: the message after the gap starts loud, the one before is quiet noise, and the soft start
 * of the onset was never sent. An instant in that soft start has no target message; the envelope then puts it a
 * few ms before the boundary, in comfort noise that is hundreds of ms earlier in the call (measured on the
 * bench's DTX chain: reported 40–340 ms early, 1–3 ms before the boundary; moving them onto the boundary instead
 * made every one of them a match of audio that was not sent, so they are dropped). The level condition keeps
 * instants before an ordinary lost message inside speech (loud on both sides) where the envelope put them.
 * `levelDb(from, to)`: level of analysis samples [from, to).
 */
export function inSuppressedOnset(
  k: number,
  gaps: readonly GapHint[],
  levelDb: (from: number, to: number) => number,
): boolean {
  for (const g of gaps) {
    if (k >= g.at || k < g.at - SUPPRESSED_BEFORE_GAP) continue;
    if (levelDb(g.at, g.at + LEVEL_SPAN) - levelDb(g.at - LEVEL_SPAN, g.at) >= SUPPRESSED_LOUDER_DB) {
      return true;
    }
  }
  return false;
}
