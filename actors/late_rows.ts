/**
 * Late rows on a live node (issue 16): rows read so long after their `time_` that the sensor has fallen behind
 * are dropped where they enter the actors, counted, so an overloaded sensor catches up with its input instead of
 * analysing ever older rows. Mailbox drop-oldest covers a sensor that reads ahead of its pipelines; this covers
 * one whose reading falls behind (the backlog then waits in the peer, and no mailbox ever fills).
 *
 * A row's event lag is the local clock minus its `time_`, which carries the offset between Pixie's clock and this
 * node's. Only the lag in excess of a baseline counts: the lowest lag of the last minute (the freshest rows the
 * sensor got; held while the sensor sheds rows, which keeps it from ever reading as fresh again), so a constant
 * offset, in either direction, cancels out. The local clock is monotonic, so a step of
 * this node's wall clock changes nothing.
 *
 * What a baseline cannot cancel at once is a step of the rows' clock backwards (Pixie's host corrected by NTP), or
 * rows of several PEMs whose clocks differ by more than the bound: all or part of the rows then look late for good.
 * Shedding has a hysteresis: once it starts (a row past the bound while saturated) it drops every row until the
 * reader is back within a fifth of the bound of the baseline, or has caught up with a source that got slower
 * (RESUME_FRACTION, DRY_MS), and then keeps every row until one passes the bound again. What is kept is then the
 * same stretches of seconds in every stream, which sign and match; a cutoff that only trimmed the rows past the
 * bound kept 100 ms here and there in each stream, and found a fifth of the matches per row analysed.
 *
 * A backlog being shed shows itself by the excess of the freshest late rows falling from one period to the next:
 * the reader, dropping, reads faster than real time. When it does not fall (a clock step; or a reader so starved
 * that it cannot even read in step, where dropping everything would only trade a trickle of analysed rows for
 * none), a slack is raised that admits the rows (they flow again after 2–3 periods, 10–15 s), and the slack falls
 * back as the rows that needed it age out of the window. So no clock, offset or step, and no lack of CPU, silences
 * the sensor for longer than that.
 *
 * With a source that can skip ahead (a live Pixie query, re-run from a later `time_`), a reader that does not
 * catch up even dropping is first skipped to its freshest rows instead: the backlog it cannot even read stays in
 * Pixie (whose tables drop the oldest rows), its rows counted as dropped (an estimate: rows per second of event
 * time, times the seconds skipped), and the lag and what the sensor holds stay bounded under any overload (before,
 * bench/live_load.ts --calls 1000 --pod let the lag grow past 60 s). The skip is repeated while skipping helps;
 * a skip that does not lower the excess is a clock step or offset, not a backlog, and the slack takes over. A step
 * of the rows' clock back large enough to tell from a backlog (their lag jumps) is never skipped: the re-run would
 * start past rows not made yet (LateRows.#stepped).
 *
 * Whether the sensor is saturated is a guess from meters (its actors' busy time, how often its input was waiting
 * for it), and a sensor starved of CPU can read as not saturated: while it waits for a CPU, time is charged to
 * whatever state it was in, and a reader bound by its gRPC and protobuf work is "waiting for input" much of the
 * time (tests/live_overload_test.ts at nice 10 beside a busy loop: input busy 0.3–0.47, actors idle, the lag
 * growing by ~1.2 s a second for minutes, nothing shed). So a reader whose freshest rows fall ever further behind
 * (PROBE_GROWTH, over two periods, beyond the bound) while the meters say it has time to spare probes with a
 * skip: if the rows at the skipped-to time come fresh, the backlog was this sensor's and the skip
 * did what shedding would; if not, the peer is late, not this sensor, and the rows are kept, with no further
 * probe for PROBE_BACKOFF_MS unless the lag first comes back within the bound.
 * @module
 */
import type { Row } from "../pixie/row.ts";

/** Options of {@link LateRows}. */
export interface LateRowsOptions {
  /** Event lag beyond the baseline past which a row is late, ms (engine.late_row_seconds). */
  boundMs: number;
  /** The local clock, ms since the epoch, monotonic (default: the process's time origin plus performance.now). */
  nowMs?: () => number;
  /**
   * Whether the sensor is saturated now (default: always). Rows are late for two reasons: the sensor fell behind,
   * or its source delivered them late (a slow Pixie). Only the first is shed: a sensor with time to spare
   * analyses late rows (they still match within the lookback) rather than throw them away.
   */
  saturated?: () => boolean;
  /**
   * Skips the source ahead to a `time_` (ns): the rows before it that wait in the source are never read (a live
   * Pixie query re-run from there, PixieQueryStream.skipTo). Absent: a reader that cannot catch up even dropping
   * is let through with a slack (see the module doc).
   */
  skip?: (toNs: bigint) => void;
  /** Rows a skip left unread, estimated from the rows' rate in event time; counted with the dropped ones. */
  onSkipped?: (rows: number) => void;
  /**
   * The latest plausible `time_` now, ns (the reader's event clock: the wall clock plus the clock window on a live
   * node; undefined: no bound). A row beyond it is not taken for the freshest of its batch: it sets no baseline.
   */
  horizonNs?: () => bigint | undefined;
}

/** The baseline is the lowest lag over BUCKETS × BUCKET_MS. */
const BUCKET_MS = 10_000;
const BUCKETS = 6;
/** How often the excess of the late rows is compared with the previous period's, ms. */
export const PERIOD_MS = 5_000;
/**
 * How fast the excess of the late rows (its mean over a period) must fall, per ms, for dropping to go on: slower,
 * the rows are not a backlog the reader is catching up with.
 */
const STEADY = 0.2;
/**
 * Once shedding, rows are dropped until the reader is back within this fraction of the bound of the baseline
 * (while it stays saturated), then kept until rows pass the bound again: a hysteresis. Without it the shedder
 * dropped just the rows past a cutoff that moves with the clock, so the reader flipped between dropping (fast) and
 * keeping (slow) every few batches: every stream got gaps of 20–900 ms between runs of 100 ms of audio (median),
 * too short to sign or to match (bench/live_load.ts --calls 1000 --pod: 460 matches in 78 s, 0.2% of the kept
 * audio in runs of 2 s or more). With it the kept audio comes in runs of seconds, the same stretch in every stream.
 */
export const RESUME_FRACTION = 0.2;
/**
 * A drop that reads this long (local ms), and at least DRY_BATCHES batches, without its freshest rows getting any
 * fresher, and no longer saturated (the reader waits for its input), has caught up with its source: what is left
 * is the source's own delay (a Pixie, or a feeder, that delivers rows later than it did when the baseline was
 * set), not a backlog of this sensor's. The drop ends, and that delay raises the baseline, by the bound at most
 * (see LateRows.#raise): otherwise a sensor whose source got slower cycled within the last second below the bound
 * (bench/live_load.ts --calls 1000 --pod on a loaded host: runs of 100 ms again). At most the bound: a reader
 * starved of CPU by its neighbours also finds its input waiting less than it is, and without a cap its baseline
 * rose by the bound a drop, 71 ms to 19 s in 60 s.
 */
const DRY_MS = 1_000;
const DRY_BATCHES = 20;
/**
 * A reader not read as saturated whose freshest rows' lag grows by this much a period (ms; falling behind by a
 * tenth of real time or more), two periods in a row, and is beyond the bound, probes with a skip (see the module
 * doc). A peer whose delay jitters, or stepped once, does not grow two periods running by this much.
 */
const PROBE_GROWTH = 0.1 * PERIOD_MS;
/** After a probe that did not bring fresher rows (the peer is late), the next probe waits this long, ms. */
const PROBE_BACKOFF_MS = 60_000;

function monotonicMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Drops late rows of a live source; see the module doc. */
export class LateRows {
  readonly #boundMs: number;
  readonly #nowMs: () => number;
  readonly #saturated: () => boolean;
  /**
   * Per bucket: the two lowest lags of a batch's freshest row (ms), and the largest excess of a row let through
   * (ms). The baseline is the second lowest lag of the window: one row with a bad `time_` from the future must not
   * make every later row look late.
   */
  readonly #minLag = new Float64Array(BUCKETS).fill(Infinity);
  readonly #minLag2 = new Float64Array(BUCKETS).fill(Infinity);
  readonly #maxExcess = new Float64Array(BUCKETS).fill(0);
  #bucket = -1;
  #baseline = Infinity;
  #slackMs = 0;
  #shedding = false;
  /** In a drop (see RESUME_FRACTION): the lowest lag of a batch's freshest row so far, when, and batches since. */
  #dropLow = Infinity;
  #dropLowAt = 0;
  #dropBatches = 0;
  /**
   * Added to the baseline after a drop that caught up with a slower source (see DRY_MS), 0..bound ms; falls as
   * soon as rows come fresher.
   */
  #raise = 0;
  /** When rows were last dropped (local ms). */
  #shedAt = -Infinity;
  #periodStart = -Infinity;
  /** Sum and count of the excess lag of the freshest late row of each batch this period. */
  #lateSum = 0;
  #lateN = 0;
  #prevLate = NaN;
  /** The excess of the last late batch's freshest row. */
  #lastLate = 0;
  readonly #skip: ((toNs: bigint) => void) | undefined;
  readonly #onSkipped: (rows: number) => void;
  readonly #horizonNs: (() => bigint | undefined) | undefined;
  /** The period mean excess when the source was last skipped (NaN: no skip since the slack last took over). */
  #skipExcess = NaN;
  /** The lowest period mean excess since that skip (0 for a period without late rows). */
  #minSinceSkip = Infinity;
  /** Rows seen and the freshest `time_` at the start of this period and now: the rows' rate in event time. */
  #periodRows = 0;
  #periodFrom = -1n;
  #freshest = -1n;
  #rowsPerNs = 0;
  /**
   * Sum and count of the lag of each batch's freshest row this period, and the previous period's mean. The lag,
   * not its excess: the baseline follows a lag that keeps growing, a minute behind, so the excess of a reader
   * falling behind steadily is flat.
   */
  #freshSum = 0;
  #freshN = 0;
  #prevFresh = NaN;
  /** Periods in a row whose freshest rows fell behind by PROBE_GROWTH or more. */
  #growing = 0;
  /** The period mean lag of the freshest rows when a probe skipped (NaN: none pending), the lowest since. */
  #probeLag = NaN;
  #probeMin = Infinity;
  #probePeriods = 0;
  /** No probe before this local time (ms): the last one found the peer late. */
  #probeAfter = -Infinity;
  /**
   * The rows' clock stepped back (NTP on Pixie's host) since they were last within the bound: no skip, which would
   * re-run the source from where its rows would be without the step, past rows not made yet, silent until their
   * clock got there (a minute's step: 75 s without a row); the slack admits them. A reader falling behind reads
   * ever older rows, but not older than those it read last: the period mean lag of its freshest rows grows by at
   * most the time that passed plus a period (one period's rows all at its start, the next one's all at its end),
   * plus the bound for rows that reach Pixie's table out of order. A greater jump is a step.
   */
  #stepped = false;
  /** The last period mean lag of the freshest rows (NaN: none yet), and when (local ms). */
  #lastFresh = NaN;
  #lastFreshAt = 0;
  /** Rows dropped as late so far. */
  dropped = 0;
  /** Event time of the earliest row dropped (or left unread by a skip) since {@link takeGapFrom}. */
  #gapFromNs: bigint | undefined;

  /** A shedder with no baseline yet: nothing is late before the first rows set one. */
  constructor(opts: LateRowsOptions) {
    if (!(opts.boundMs > 0)) throw new RangeError(`boundMs must be > 0, got ${opts.boundMs}`);
    this.#boundMs = opts.boundMs;
    this.#nowMs = opts.nowMs ?? monotonicMs;
    this.#saturated = opts.saturated ?? (() => true);
    this.#skip = opts.skip;
    this.#onSkipped = opts.onSkipped ?? (() => {});
    this.#horizonNs = opts.horizonNs;
  }

  /** The lowest event lag of the window, ms (Infinity before the first row). */
  get baselineMs(): number {
    return this.#baseline + this.#raise;
  }

  /** Extra lag admitted after a clock step (see the module doc), ms. */
  get slackMs(): number {
    return this.#slackMs;
  }

  /** The rows of `rows` that are not late, in order (`rows` itself when none is); counts the others. */
  filter(rows: readonly Row[]): readonly Row[] {
    const now = this.#nowMs();
    this.#roll(now);
    const nowNs = BigInt(Math.round(now * 1e6));
    const limitMs = this.#baseline + this.#raise + this.#boundMs + this.#slackMs;
    // Before any baseline nothing is late; with one, a row older than the cutoff is.
    let cutoff = limitMs === Infinity ? -1n : nowNs - BigInt(Math.round(limitMs * 1e6));
    let freshest = -1n;
    // Rows from beyond the horizon (a `time_` from the future) are not the freshest: the baseline is the second
    // lowest lag of a minute's batches, so two such rows in a minute made it hugely negative, every later row
    // late (a saturated sensor dropped every row for ~9 s), and then a slack of their excess (an hour's) let
    // every late row through for as long as such rows kept coming.
    const horizon = this.#horizonNs?.();
    for (let i = 0; i < rows.length; i++) {
      const t = rows[i]!.time;
      if (t > freshest && (horizon === undefined || t <= horizon)) freshest = t;
    }
    // While shedding, and saturated still, the cutoff is the resume level (see RESUME_FRACTION) until a batch
    // reaches it: the reader drops until it is nearly as fresh as the baseline, then keeps a long stretch.
    if (this.#shedding && cutoff >= 0n) {
      const resumeMs = limitMs - this.#boundMs * (1 - RESUME_FRACTION);
      const resume = nowNs - BigInt(Math.round(resumeMs * 1e6));
      const lag = Number(nowNs - freshest) / 1e6;
      if (lag < this.#dropLow) {
        this.#dropLow = lag;
        this.#dropLowAt = now;
        this.#dropBatches = 0;
      } else this.#dropBatches++;
      if (freshest >= resume) {
        this.#shedding = false;
      } else if (now - this.#dropLowAt >= DRY_MS && this.#dropBatches >= DRY_BATCHES) {
        // Dropping no longer gets the reader any fresher: the drop ends (dropping on would only silence it). Not
        // saturated, it caught up with a slower source (see DRY_MS): that delay raises the baseline.
        this.#shedding = false;
        if (!this.#saturated()) this.#rebase(this.#dropLow);
        cutoff = nowNs -
          BigInt(Math.round((this.#baseline + this.#raise + this.#boundMs + this.#slackMs) * 1e6));
      } else cutoff = resume;
    }
    let oldestKept = -1n, freshestLate = -1n, oldestLate = -1n, late = 0;
    for (let i = 0; i < rows.length; i++) {
      const t = rows[i]!.time;
      if (t < cutoff) {
        late++;
        if (t > freshestLate) freshestLate = t;
        if (oldestLate < 0n || t < oldestLate) oldestLate = t;
      } else if (oldestKept < 0n || t < oldestKept) oldestKept = t;
    }
    const b = this.#bucket % BUCKETS;
    this.#periodRows += rows.length;
    if (freshest >= 0n) {
      const lag = Number(nowNs - freshest) / 1e6;
      if (lag < this.#minLag2[b]!) {
        if (lag < this.#minLag[b]!) {
          this.#minLag2[b] = this.#minLag[b]!;
          this.#minLag[b] = lag;
        } else this.#minLag2[b] = lag;
        this.#baseline = Math.min(this.#baseline, this.#windowBaseline());
      }
      // Not a row fresher than the baseline by more than the bound: one with a bad `time_` from the far future would
      // stay the freshest row read for good, and no skip would count the rows it leaves unread (see #skipAhead). A
      // step of the rows' clock forward is followed at its next batch, once the baseline has followed it.
      if (freshest > this.#freshest && lag >= this.#baseline - this.#boundMs) this.#freshest = freshest;
      if (lag < this.#baseline + this.#raise) this.#raise = Math.max(0, lag - this.#baseline);
      this.#freshSum += lag;
      this.#freshN++;
    }
    if (oldestKept >= 0n && this.#baseline !== Infinity) {
      const excess = Number(nowNs - oldestKept) / 1e6 - this.#baseline - this.#raise;
      if (excess > this.#maxExcess[b]!) this.#maxExcess[b] = excess;
    }
    if (late === 0) {
      this.#shedding = false;
      return rows;
    }
    // Shedding starts while the sensor is saturated and goes on until a batch has no late row: dropping is cheap,
    // so the actors idle while the reader drops a backlog, and that must not stop the dropping half-way.
    if (!this.#shedding) {
      if (!this.#saturated()) return rows;
      this.#dropLow = Infinity;
      this.#dropLowAt = now;
      this.#dropBatches = 0;
    }
    this.#shedding = true;
    this.#shedAt = now;
    this.dropped += late;
    this.#gapFrom(oldestLate);
    const lateExcess = Number(nowNs - freshestLate) / 1e6 - this.#baseline - this.#raise;
    this.#lateSum += lateExcess;
    this.#lastLate = lateExcess;
    this.#lateN++;
    if (late === rows.length) return [];
    const kept: Row[] = [];
    for (const r of rows) if (r.time >= cutoff) kept.push(r);
    return kept;
  }

  /** Notes that rows from `t` on were dropped (see {@link takeGapFrom}). */
  #gapFrom(t: bigint): void {
    if (this.#gapFromNs === undefined || t < this.#gapFromNs) this.#gapFromNs = t;
  }

  /**
   * The event time of the earliest row dropped as late, or left unread by a skip, since the last call (undefined:
   * none): where the gap the reader announces began.
   */
  takeGapFrom(): bigint | undefined {
    const t = this.#gapFromNs;
    this.#gapFromNs = undefined;
    return t;
  }

  /**
   * Skips the source to its freshest rows, unless a skip since the slack last took over did not lower the excess
   * (then it is no backlog). True when it skipped.
   */
  #trySkip(now: number, m: number): boolean {
    if (!this.#skip || this.#baseline === Infinity || this.#stepped || !this.#saturated()) return false;
    if (!Number.isNaN(this.#skipExcess) && !(this.#minSinceSkip < this.#skipExcess - this.#boundMs / 2)) {
      this.#skipExcess = NaN;
      return false;
    }
    this.#skipExcess = m;
    this.#minSinceSkip = Infinity;
    this.#skipAhead(now);
    return true;
  }

  /** Skips the source to the freshest rows it has (the baseline's lag), the rows left unread counted. */
  #skipAhead(now: number): void {
    // To the baseline's lag: the most rows analysed before the next skip.
    const toNs = BigInt(Math.round((now - this.#baseline - this.#raise) * 1e6));
    if (this.#freshest >= 0n && toNs > this.#freshest) {
      const n = Math.round(this.#rowsPerNs * Number(toNs - this.#freshest));
      if (n > 0) {
        this.dropped += n;
        // The rows left unread come after the freshest read.
        this.#gapFrom(this.#freshest);
        this.#onSkipped(n);
      }
    }
    this.#skip!(toNs);
  }

  /**
   * At a period's end: probes with a skip when the freshest rows fall ever further behind while the meters say the
   * sensor has time to spare (see the module doc). `lag` is the period's mean lag of the freshest rows (NaN: no
   * rows); `may` is false while the shedding path or a slack is at work (they decide then).
   */
  #probe(now: number, lag: number, may: boolean): void {
    if (Number.isNaN(lag)) {
      this.#growing = 0;
      this.#prevFresh = NaN;
      return;
    }
    this.#growing = lag - this.#prevFresh >= PROBE_GROWTH ? this.#growing + 1 : 0;
    this.#prevFresh = lag;
    const excess = lag - this.#baseline - this.#raise;
    if (excess < this.#boundMs) this.#probeAfter = -Infinity;
    if (!Number.isNaN(this.#probeLag)) {
      this.#probeMin = Math.min(this.#probeMin, lag);
      if (this.#probeMin < this.#probeLag - this.#boundMs / 2) this.#probeLag = NaN; // fresh rows came
      else if (++this.#probePeriods >= 2) {
        this.#probeLag = NaN;
        this.#probeAfter = now + PROBE_BACKOFF_MS;
      }
      return;
    }
    if (
      !may || !this.#skip || this.#stepped || this.#growing < 2 || !(excess > this.#boundMs) ||
      now < this.#probeAfter
    ) {
      return;
    }
    if (this.#saturated()) return; // the shedding path decides: it drops what is late, then skips
    this.#probeLag = lag;
    this.#probeMin = Infinity;
    this.#probePeriods = 0;
    this.#growing = 0;
    this.#skipAhead(now);
  }

  /** Raises the baseline to a slower source's lag `lagMs`, by the bound at most (see DRY_MS). */
  #rebase(lagMs: number): void {
    this.#raise = Math.max(this.#raise, Math.min(this.#boundMs, lagMs - this.#baseline));
  }

  /** The second lowest lag of the window's batches (Infinity with fewer than two). */
  #windowBaseline(): number {
    let a = Infinity, b = Infinity;
    for (let i = 0; i < BUCKETS; i++) {
      for (const v of [this.#minLag[i]!, this.#minLag2[i]!]) {
        if (v < a) {
          b = a;
          a = v;
        } else if (v < b) b = v;
      }
    }
    return b;
  }

  /** Moves the window and the period to `now`. */
  #roll(now: number): void {
    const bucket = Math.floor(now / BUCKET_MS);
    if (bucket !== this.#bucket) {
      // Buckets the clock stepped over (or all, after a long pause or a first row) start empty.
      const from = this.#bucket < 0 ? bucket - BUCKETS + 1 : Math.max(this.#bucket + 1, bucket - BUCKETS + 1);
      for (let k = from; k <= bucket; k++) {
        const i = ((k % BUCKETS) + BUCKETS) % BUCKETS;
        this.#minLag[i] = this.#minLag2[i] = Infinity;
        this.#maxExcess[i] = 0;
      }
      this.#bucket = bucket;
      // A window with fewer than two batches keeps the last baseline (a quiet minute is no reason to forget it);
      // so does a sensor that dropped rows within the window: shedding just enough, it never reads as fresh as
      // usual again, and a baseline risen to its lag would let the lag creep up by the bound every window.
      const base = this.#windowBaseline();
      if (base !== Infinity && (base < this.#baseline || now - this.#shedAt >= BUCKET_MS * BUCKETS)) {
        this.#baseline = base;
      }
    }
    if (now - this.#periodStart < PERIOD_MS) return;
    const first = this.#periodStart === -Infinity;
    this.#periodStart = now;
    if (first) return;
    // The mean: the delay of the rows Pixie delivers jitters, and a mean over many batches hardly does.
    const m = this.#lateN > 0 ? this.#lateSum / this.#lateN : NaN;
    this.#lateSum = this.#lateN = 0;
    const freshLag = this.#freshN > 0 ? this.#freshSum / this.#freshN : NaN;
    this.#freshSum = this.#freshN = 0;
    if (!Number.isNaN(freshLag)) {
      if (freshLag - this.#lastFresh > now - this.#lastFreshAt + PERIOD_MS + this.#boundMs) {
        this.#stepped = true;
      } else if (freshLag - this.#baseline - this.#raise < this.#boundMs) this.#stepped = false;
      this.#lastFresh = freshLag;
      this.#lastFreshAt = now;
    }
    this.#probe(now, freshLag, Number.isNaN(m) && this.#slackMs === 0 && this.#baseline !== Infinity);
    if (this.#periodFrom >= 0n && this.#freshest > this.#periodFrom) {
      this.#rowsPerNs = this.#periodRows / Number(this.#freshest - this.#periodFrom);
    }
    this.#periodRows = 0;
    this.#periodFrom = this.#freshest;
    if (!Number.isNaN(this.#skipExcess)) {
      this.#minSinceSkip = Math.min(this.#minSinceSkip, Number.isNaN(m) ? 0 : m);
    }
    if (Number.isNaN(m)) {
      this.#prevLate = NaN;
    } else if (m - this.#prevLate > -STEADY * PERIOD_MS) {
      // Not catching up over two periods.
      this.#prevLate = NaN;
      // Near the bound this is a sensor shedding just enough (it catches up, falls behind, catches up: the rows
      // straddle the bound, or its hysteresis cycles between them and the resume level): dropping goes on while
      // the sensor is saturated (stopping half-way through a drop would keep a short stretch next, see
      // RESUME_FRACTION). Well beyond it, not a backlog being read (see the module doc): dropping stops, and a
      // slack admits the rows, half the bound above the last ones so the jitter of their delay does not drop
      // them again.
      if (m < this.#boundMs * 1.5) {
        if (!this.#saturated()) this.#shedding = false;
        return;
      }
      // Dropping stops; it starts again only while the sensor is saturated.
      this.#shedding = false;
      if (this.#trySkip(now, m)) return;
      this.#slackMs = Math.max(this.#slackMs, this.#lastLate - this.#boundMs + this.#boundMs / 2);
      // The window has not seen the rows the slack lets through yet: no shrinking before it has.
      return;
    } else {
      this.#prevLate = m;
    }
    let maxExcess = 0;
    for (const v of this.#maxExcess) if (v > maxExcess) maxExcess = v;
    // The slack shrinks to what the rows let through in the window still need.
    this.#slackMs = Math.min(this.#slackMs, Math.max(0, maxExcess - this.#boundMs / 2));
  }
}
