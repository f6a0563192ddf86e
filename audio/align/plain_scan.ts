/**
 * The envelope search's plain correlations (level_envelope.ts) of many shifts at once, approximately, so the
 * coarse pass scores exactly only the shifts that can be among its best few.
 *
 * Why: the coarse pass scored every 4th (far: 8th) shift, 129–321 detrended correlations of 256 values each,
 * about half of a match's alignment CPU and a third of its verification's (the near-miss re-scoring searches
 * too), and all but a handful only to be beaten. Shifts a multiple of ENV_HOP apart read the same target
 * values one value further on, so within one residue of the shift modulo ENV_HOP and one target clamp the
 * target side is one series: its running-mean residual and the prefix sums of it and of its square are
 * computed once, which give each shift's target sums of the values away from the edges; only the 2·span values
 * at the edges, whose running mean the placement truncates, and the cross term with the source's residual are
 * computed per shift, in any order and without a division. The answer differs from the exact one only by
 * rounding (≲ 1e-9 where both variances exceed 1, see {@link SCAN_TOLERANCE}); the caller scores exactly every
 * shift whose approximation comes within twice that of the best few, so its choice is the exact search's.
 *
 * The cross terms were one FFT correlation per run of shifts with the same clamps (session 6), the rest left to
 * the exact formula; where the loudest value in reach changes often, so do the clamps, and a third of the
 * coarse shifts (up to all) fell in runs too short for a transform. Summed directly (224 products a shift,
 * in WebAssembly SIMD: dot_simd.ts, a run of shifts with one source clamp per call), every run costs less than
 * its transforms did (session 9).
 * @module
 */

import { DOT_MAX_OUT, DOT_MAX_SERIES, DOT_MAX_X, type DotKernel, dotKernel } from "./dot_simd.ts";

/**
 * Bound on |approximate − exact| correlation the caller relies on. The approximations' rounding (prefix sums of
 * a few hundred dB levels, sums of a few hundred products in another order, reciprocals for quotients) stays
 * below 1e-9 of the cross term and the variances, each at least 1 where an approximation is given; 1e-6 leaves
 * three orders of magnitude.
 */
export const SCAN_TOLERANCE = 1e-6;
/** Variances below this get no approximation (the exact formula calls a flat side -1 below 1e-9). */
const MIN_VARIANCE = 1;

/** The source side of a correlation for one clamp (see level_envelope.ts SourceSide). */
export interface SourceResidual {
  /** The clamped source levels less their running mean (length: values). */
  x: Float64Array;
  sSum: number;
  sSq: number;
}

/** One residue and target clamp: the target series and its sums. */
class Series {
  t = new Float64Array(0);
  /** Prefix sums of t. */
  s = new Float64Array(0);
  /** Residual of t less its full-window running mean (0 where the window does not fit). */
  u = new Float64Array(0);
  pu = new Float64Array(0);
  pu2 = new Float64Array(0);

  /** The residual into `into` when given (the dot kernel's series, long enough), else into `u`. */
  fill(
    db: Float64Array,
    first: number,
    hop: number,
    len: number,
    floor: number,
    span: number,
    into?: Float64Array,
  ): void {
    if (this.t.length < len) {
      this.t = new Float64Array(len);
      this.s = new Float64Array(len + 1);
      this.u = new Float64Array(len);
      this.pu = new Float64Array(len + 1);
      this.pu2 = new Float64Array(len + 1);
    }
    const u = into ?? this.u;
    const t = this.t, s = this.s, pu = this.pu, pu2 = this.pu2;
    let acc = 0;
    s[0] = 0;
    for (let j = 0, k = first; j < len; j++, k += hop) {
      const v = db[k]!;
      const c = Math.max(v, floor);
      t[j] = c;
      acc += c;
      s[j + 1] = acc;
    }
    const inv = 1 / (2 * span + 1);
    let a = 0, a2 = 0;
    pu[0] = 0;
    pu2[0] = 0;
    for (let j = 0; j < len; j++) {
      const r = j >= span && j + span < len ? t[j]! - (s[j + span + 1]! - s[j - span]!) * inv : 0;
      u[j] = r;
      a += r;
      a2 += r * r;
      pu[j + 1] = a;
      pu2[j + 1] = a2;
    }
  }
}

/** Approximate plain correlations (reusable scratch; not re-entrant). */
export class PlainScan {
  readonly #m: number;
  readonly #hop: number;
  readonly #span: number;
  readonly #series = new Series();
  /** 1 / w for the window sizes w of the edges (≤ 2·span + 1). */
  readonly #inv: Float64Array;
  /** The cross terms' kernel (undefined: JS loops). */
  readonly #dot: DotKernel | undefined;

  /**
   * For placements of `values` values `hop` apart, each less its running mean over ±`span` values. `simd: false`
   * keeps the cross terms in JS (the reference; by default they run in WebAssembly SIMD where available).
   */
  constructor(values: number, hop: number, span: number, opts: { simd?: boolean } = {}) {
    this.#dot = opts.simd === false ? undefined : dotKernel();
    this.#m = values;
    this.#hop = hop;
    this.#span = span;
    this.#inv = Float64Array.from({ length: 2 * span + 2 }, (_, w) => 1 / w);
  }

  /**
   * Into `out[j]`, the correlation of shift `ds[j]` (its values at `db[ds[j] + i·hop]`, clamped at `floors[j]`,
   * the source at `rels[j]`) within {@link SCAN_TOLERANCE} of placedCorrelation's, or NaN where this gives
   * none (a near-flat side): the caller scores those exactly. `source(rel)` gives the source side for a clamp
   * (read at once: it may be reused by the next call).
   */
  scan(
    db: Float64Array,
    ds: Int32Array,
    count: number,
    floors: Float64Array,
    rels: Float64Array,
    source: (rel: number) => SourceResidual,
    out: Float64Array,
  ): void {
    const hop = this.#hop;
    // Groups: runs of shifts of one residue (each `hop` after the last) with the same target clamp.
    const runs: (number[] | undefined)[] = new Array(hop);
    for (let j = 0; j < count; j++) {
      const d = ds[j]!, r = d % hop;
      const g = runs[r];
      const last = g ? g[g.length - 1]! : -1;
      if (g && ds[last]! + hop === d && Object.is(floors[last], floors[j])) g.push(j);
      else {
        if (g) this.#group(db, g, ds, floors, rels, source, out);
        runs[r] = [j];
      }
    }
    for (const g of runs) if (g) this.#group(db, g, ds, floors, rels, source, out);
  }

  /** The shifts of group `g` (one residue and target clamp): one target series, each shift's terms from it. */
  #group(
    db: Float64Array,
    g: number[],
    ds: Int32Array,
    floors: Float64Array,
    rels: Float64Array,
    source: (rel: number) => SourceResidual,
    out: Float64Array,
  ): void {
    const m = this.#m, span = this.#span, hop = this.#hop, inv = this.#inv;
    const base = ds[g[0]!]!;
    const ser = this.#series;
    const len = (ds[g[g.length - 1]!]! - base) / hop + m;
    // The kernel's products run four at a time; the rest (none for 256 values and a span of 16) stay in JS.
    const end = m - span, end4 = span + ((end - span) & ~3);
    const dot = this.#dot && len <= DOT_MAX_SERIES && end4 > span && end4 - span <= DOT_MAX_X &&
        g.length <= DOT_MAX_OUT
      ? this.#dot
      : undefined;
    ser.fill(db, base, hop, len, floors[g[0]!]!, span, dot?.series);
    const u = dot ? dot.series : ser.u;
    const t = ser.t, s = ser.s, pu = ser.pu, pu2 = ser.pu2;
    let rel = NaN, src: SourceResidual | undefined, runStart = 0;
    for (let q = 0; q < g.length; q++) {
      const j = g[q]!;
      const j0 = (ds[j]! - base) / hop;
      // Runs of shifts share a source clamp too: the kernel's cross terms of a run in one call.
      if (!src || !Object.is(rel, rels[j])) {
        src = source(rel = rels[j]!);
        runStart = q;
        if (dot) {
          let r = q + 1;
          while (r < g.length && Object.is(rels[g[r]!], rel)) r++;
          dot.x.set(src.x.subarray(span, end4));
          dot.dot(j0 + span, end4 - span, r - q);
        }
      }
      const x = src.x;
      // The full-window values: the cross term directly, the target's sums from the prefix sums.
      let i = span, cross: number;
      if (dot) {
        cross = dot.out[q - runStart]!;
        i = end4;
      } else {
        let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (let o = j0 + span; i < end4; i += 4, o += 4) {
          c0 += u[o]! * x[i]!;
          c1 += u[o + 1]! * x[i + 1]!;
          c2 += u[o + 2]! * x[i + 2]!;
          c3 += u[o + 3]! * x[i + 3]!;
        }
        cross = (c0 + c1) + (c2 + c3);
      }
      for (; i < end; i++) cross += u[j0 + i]! * x[i]!;
      let tSum = pu[j0 + end]! - pu[j0 + span]!;
      let tSq = pu2[j0 + end]! - pu2[j0 + span]!;
      // The edges, whose running mean the placement truncates: windows [0, i + span] and [i - span, m).
      const s0 = s[j0]!, sm = s[j0 + m]!;
      for (i = 0; i < span; i++) {
        const v = t[j0 + i]! - (s[j0 + i + span + 1]! - s0) * inv[i + span + 1]!;
        tSum += v;
        tSq += v * v;
        cross += v * x[i]!;
      }
      for (i = end; i < m; i++) {
        const v = t[j0 + i]! - (sm - s[j0 + i - span]!) * inv[m - i + span]!;
        tSum += v;
        tSq += v * v;
        cross += v * x[i]!;
      }
      const tVar = tSq - (tSum * tSum) / m;
      const sVar = src.sSq - (src.sSum * src.sSum) / m;
      out[j] = tVar > MIN_VARIANCE && sVar > MIN_VARIANCE
        ? (cross - (tSum * src.sSum) / m) / Math.sqrt(tVar * sVar)
        : NaN;
    }
  }
}
