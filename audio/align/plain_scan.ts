/**
 * The envelope search's plain correlations (level_envelope.ts) of many shifts at once, approximately, so the
 * coarse pass scores exactly only the shifts that can be among its best few.
 *
 * Why: the coarse pass scored every 4th (far: 8th) shift, 129–321 detrended correlations of 256 values each,
 * about half of a match's alignment CPU and a third of its verification's (the near-miss re-scoring searches
 * too), and all but a handful only to be beaten. Shifts a multiple of ENV_HOP apart read the same target
 * values one value further on, so within one residue of the shift modulo ENV_HOP (and one clamp) the target
 * side is one series: its running-mean residual is computed once, the cross term of all shifts at once is a
 * correlation with the source's residual (one FFT pair), and the target's sum and sum of squares of the values
 * away from the edges are differences of prefix sums; only the 2·span values at the edges, whose running mean
 * the placement truncates, are computed per shift. The answer differs from the exact one only by rounding
 * (≲ 1e-9 where both variances exceed 1, see {@link SCAN_TOLERANCE}); the caller scores exactly every shift
 * whose approximation comes within twice that of the best few, so its choice is the exact search's.
 * @module
 */

/**
 * Bound on |approximate − exact| correlation the caller relies on. The approximations' rounding (prefix sums of
 * a few hundred dB levels, a 512-point FFT) stays below 1e-9 of the cross term and the variances, each at least
 * 1 where an approximation is given; 1e-6 leaves three orders of magnitude.
 */
export const SCAN_TOLERANCE = 1e-6;
/** Shifts of one residue and clamp below this are left to the exact formula (an FFT pair would cost more). */
const MIN_GROUP = 8;
/** Variances below this get no approximation (the exact formula calls a flat side -1 below 1e-9). */
const MIN_VARIANCE = 1;
/** Kernels kept for one source (beyond, all are dropped). */
const MAX_KERNELS = 64;

/** The source side of a correlation for one clamp (see level_envelope.ts SourceSide). */
export interface SourceResidual {
  /** The clamped source levels less their running mean (length: values). */
  x: Float64Array;
  sSum: number;
  sSq: number;
}

interface Kernel {
  rel: number;
  x: Float64Array;
  sSum: number;
  sSq: number;
  re: Float64Array;
  im: Float64Array;
}

/** One residue and clamp: the target series and its sums. */
class Series {
  t = new Float64Array(0);
  /** Prefix sums of t. */
  s = new Float64Array(0);
  /** Residual of t less its full-window running mean (0 where the window does not fit). */
  u = new Float64Array(0);
  pu = new Float64Array(0);
  pu2 = new Float64Array(0);
  len = 0;

  fill(db: Float64Array, first: number, hop: number, len: number, floor: number, span: number): void {
    if (this.t.length < len) {
      this.t = new Float64Array(len);
      this.s = new Float64Array(len + 1);
      this.u = new Float64Array(len);
      this.pu = new Float64Array(len + 1);
      this.pu2 = new Float64Array(len + 1);
    }
    this.len = len;
    const t = this.t, s = this.s, u = this.u, pu = this.pu, pu2 = this.pu2;
    let acc = 0;
    s[0] = 0;
    for (let j = 0, k = first; j < len; j++, k += hop) {
      const v = db[k]!;
      const c = v < floor ? floor : v;
      t[j] = c;
      acc += c;
      s[j + 1] = acc;
    }
    const w = 2 * span + 1;
    let a = 0, a2 = 0;
    pu[0] = 0;
    pu2[0] = 0;
    for (let j = 0; j < len; j++) {
      const r = j >= span && j + span < len ? t[j]! - (s[j + span + 1]! - s[j - span]!) / w : 0;
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
  readonly #series = [new Series(), new Series()];
  /** Kernels by clamp and size, kept while the source stays the same (`sourceGeneration` of {@link scan}). */
  readonly #kernels = new Map<number, Kernel>();
  /** Kernels dropped with their source, whose arrays the next ones take (no allocation per signature). */
  readonly #free: Kernel[] = [];
  #generation = NaN;
  #n = 0;
  #cos = new Float64Array(0);
  #sin = new Float64Array(0);
  #rev = new Int32Array(0);
  #zr = new Float64Array(0);
  #zi = new Float64Array(0);
  #wr = new Float64Array(0);
  #wi = new Float64Array(0);

  /** For placements of `values` values `hop` apart, each less its running mean over ±`span` values. */
  constructor(values: number, hop: number, span: number) {
    this.#m = values;
    this.#hop = hop;
    this.#span = span;
  }

  /**
   * Into `out[j]`, the correlation of shift `ds[j]` (its values at `db[ds[j] + i·hop]`, clamped at `floors[j]`,
   * the source at `rels[j]`) within {@link SCAN_TOLERANCE} of placedCorrelation's, or NaN where this gives
   * none (a small group, a near-flat side): the caller scores those exactly. `source(rel)` gives the source
   * side for a clamp (read at once: it may be reused by the next call); `sourceGeneration` names the source:
   * the kernels derived from it are kept for the next scan of the same generation (NaN: none kept).
   */
  scan(
    db: Float64Array,
    ds: Int32Array,
    count: number,
    floors: Float64Array,
    rels: Float64Array,
    source: (rel: number) => SourceResidual,
    out: Float64Array,
    sourceGeneration = NaN,
  ): void {
    if (!(sourceGeneration === this.#generation) || this.#kernels.size > MAX_KERNELS) {
      for (const k of this.#kernels.values()) if (this.#free.length <= MAX_KERNELS) this.#free.push(k);
      this.#kernels.clear();
      this.#generation = sourceGeneration;
    }
    const hop = this.#hop;
    // Groups: runs of shifts of one residue (each `hop` after the last) with the same clamps.
    const big: number[][] = [];
    const close = (g: number[] | undefined) => {
      if (!g) return;
      if (g.length >= MIN_GROUP) big.push(g);
      else for (const j of g) out[j] = NaN;
    };
    const runs: (number[] | undefined)[] = new Array(hop);
    for (let j = 0; j < count; j++) {
      const d = ds[j]!, r = d % hop;
      const g = runs[r];
      const last = g ? g[g.length - 1]! : -1;
      if (
        g && ds[last]! + hop === d && Object.is(floors[last], floors[j]) && Object.is(rels[last], rels[j])
      ) {
        g.push(j);
      } else {
        close(g);
        runs[r] = [j];
      }
    }
    for (const g of runs) close(g);
    for (let p = 0; p < big.length; p += 2) {
      const pair = big.slice(p, p + 2);
      const lens = pair.map((g) => ds[g[g.length - 1]!]! - ds[g[0]!]!).map((d) => d / hop + this.#m);
      let n = 1;
      while (n < Math.max(...lens)) n <<= 1;
      this.#ensure(n);
      pair.forEach((g, q) => {
        const j0 = g[0]!;
        this.#series[q]!.fill(db, ds[j0]!, hop, lens[q]!, floors[j0]!, this.#span);
      });
      const ks = this.#kernelPair(rels[pair[0]![0]!]!, pair[1] ? rels[pair[1][0]!]! : undefined, n, source);
      this.#correlate(ks[0]!, ks[1]);
      pair.forEach((g, q) => this.#finish(g, ds, q, ks[q]!, out));
    }
  }

  /** Per shift of group `g` (series `q`), the edges computed directly and the rest from the sums. */
  #finish(g: number[], ds: Int32Array, q: number, k: Kernel, out: Float64Array): void {
    const m = this.#m, span = this.#span, hop = this.#hop;
    const ser = this.#series[q]!;
    const t = ser.t, s = ser.s, pu = ser.pu, pu2 = ser.pu2;
    const c = q === 0 ? this.#zr : this.#zi;
    const x = k.x;
    const base = ds[g[0]!]!;
    for (const j of g) {
      const j0 = (ds[j]! - base) / hop;
      let tSum = pu[j0 + m - span]! - pu[j0 + span]!;
      let tSq = pu2[j0 + m - span]! - pu2[j0 + span]!;
      let cross = c[j0 + span]!;
      for (let i = 0; i < m; i++) {
        if (i === span) i = m - span;
        const lo = i > span ? i - span : 0;
        const hi = i + span + 1 < m ? i + span + 1 : m;
        const v = t[j0 + i]! - (s[j0 + hi]! - s[j0 + lo]!) / (hi - lo);
        tSum += v;
        tSq += v * v;
        cross += v * x[i]!;
      }
      const tVar = tSq - (tSum * tSum) / m;
      const sVar = k.sSq - (k.sSum * k.sSum) / m;
      out[j] = tVar > MIN_VARIANCE && sVar > MIN_VARIANCE
        ? (cross - (tSum * k.sSum) / m) / Math.sqrt(tVar * sVar)
        : NaN;
    }
  }

  /** The kernel for clamp `rel` and size `n`, if kept. */
  #kept(rel: number, n: number): Kernel | undefined {
    const k = this.#kernels.get(rel * 4096 + n);
    return k && Object.is(k.rel, rel) && k.re.length === n ? k : undefined;
  }

  /**
   * A kernel for clamp `rel`, size `n`, with the source side copied and its middle values (the full-window
   * ones) in `re` (im zeroed), not yet transformed; kept under its key.
   */
  #start(rel: number, n: number, source: (rel: number) => SourceResidual): Kernel {
    const m = this.#m, span = this.#span;
    let k = this.#free.pop();
    if (!k || k.re.length !== n) {
      k = { rel, x: new Float64Array(m), sSum: 0, sSq: 0, re: new Float64Array(n), im: new Float64Array(n) };
    }
    const src = source(rel);
    k.rel = rel;
    k.x.set(src.x);
    k.sSum = src.sSum;
    k.sSq = src.sSq;
    k.re.fill(0);
    k.im.fill(0);
    for (let i = span; i < m - span; i++) k.re[i - span] = src.x[i]!;
    this.#kernels.set(rel * 4096 + n, k);
    return k;
  }

  /**
   * The spectra of the source residual's middle values for clamps `a` and `b` (none: one kernel), size `n`:
   * kept ones as they are; two new ones by one complex FFT of both (a real and b imaginary), separated by
   * symmetry as in {@link #correlate}; the rounding differs from one FFT each by far less than SCAN_TOLERANCE.
   */
  #kernelPair(
    a: number,
    b: number | undefined,
    n: number,
    source: (rel: number) => SourceResidual,
  ): [Kernel, Kernel | undefined] {
    let ka = this.#kept(a, n);
    let kb = b === undefined ? undefined : Object.is(a, b) ? ka : this.#kept(b, n);
    if (!ka && b !== undefined && !kb && !Object.is(a, b)) {
      ka = this.#start(a, n, source);
      kb = this.#start(b, n, source);
      const zr = this.#wr, zi = this.#wi;
      zr.set(ka.re);
      zi.set(kb.re);
      this.#fft(zr, zi);
      for (let k = 0; k < n; k++) {
        const nk = (n - k) & (n - 1);
        ka.re[k] = (zr[k]! + zr[nk]!) / 2;
        ka.im[k] = (zi[k]! - zi[nk]!) / 2;
        kb.re[k] = (zi[k]! + zi[nk]!) / 2;
        kb.im[k] = -(zr[k]! - zr[nk]!) / 2;
      }
      return [ka, kb];
    }
    if (!ka) {
      ka = this.#start(a, n, source);
      this.#fft(ka.re, ka.im);
    }
    if (b !== undefined && !kb) {
      kb = Object.is(a, b) ? ka : this.#start(b, n, source);
      if (kb !== ka) this.#fft(kb.re, kb.im);
    }
    return [ka, kb];
  }

  /**
   * Correlations c[l] = Σᵢ u[l + i]·x[span + i] of series 0 with kernel `a` into #zr and of series 1 with `b`
   * into #zi: both series in one complex FFT, separated by symmetry, multiplied by their kernels' conjugates,
   * and transformed back together (each product is the spectrum of a real sequence).
   */
  #correlate(a: Kernel, b: Kernel | undefined): void {
    const n = this.#n, zr = this.#zr, zi = this.#zi, wr = this.#wr, wi = this.#wi;
    zr.fill(0);
    zi.fill(0);
    const s0 = this.#series[0]!;
    zr.set(s0.u.subarray(0, s0.len));
    if (b) {
      const s1 = this.#series[1]!;
      zi.set(s1.u.subarray(0, s1.len));
    }
    this.#fft(zr, zi);
    for (let k = 0; k < n; k++) {
      const nk = (n - k) & (n - 1);
      // A = (Z[k] + conj Z[n-k]) / 2, B = (Z[k] - conj Z[n-k]) / 2i.
      const ar = (zr[k]! + zr[nk]!) / 2, ai = (zi[k]! - zi[nk]!) / 2;
      const br = (zi[k]! + zi[nk]!) / 2, bi = -(zr[k]! - zr[nk]!) / 2;
      // A·conj(Ka) + i·B·conj(Kb)
      const kr = a.re[k]!, ki = a.im[k]!;
      let pr = ar * kr + ai * ki, pi = ai * kr - ar * ki;
      if (b) {
        const lr = b.re[k]!, li = b.im[k]!;
        const qr = br * lr + bi * li, qi = bi * lr - br * li;
        pr -= qi;
        pi += qr;
      }
      wr[k] = pr;
      wi[k] = -pi;
    }
    // Inverse as the conjugate of the forward transform of the conjugate.
    this.#fft(wr, wi);
    for (let k = 0; k < n; k++) {
      zr[k] = wr[k]! / n;
      zi[k] = -wi[k]! / n;
    }
  }

  #ensure(n: number): void {
    if (this.#n === n) return;
    this.#n = n;
    this.#cos = new Float64Array(n / 2);
    this.#sin = new Float64Array(n / 2);
    for (let k = 0; k < n / 2; k++) {
      this.#cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.#sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    this.#rev = new Int32Array(n);
    let bits = 0;
    while (1 << bits < n) bits++;
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.#rev[i] = r;
    }
    this.#zr = new Float64Array(n);
    this.#zi = new Float64Array(n);
    this.#wr = new Float64Array(n);
    this.#wi = new Float64Array(n);
  }

  /** In-place forward complex FFT of size #n (radix 2). */
  #fft(re: Float64Array, im: Float64Array): void {
    const n = this.#n, rev = this.#rev, cos = this.#cos, sin = this.#sin;
    for (let i = 0; i < n; i++) {
      const r = rev[i]!;
      if (r > i) {
        let t = re[i]!;
        re[i] = re[r]!;
        re[r] = t;
        t = im[i]!;
        im[i] = im[r]!;
        im[r] = t;
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1, step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0, w = 0; k < half; k++, w += step) {
          const a = start + k, b = a + half;
          const cr = cos[w]!, ci = sin[w]!;
          const xr = re[b]! * cr - im[b]! * ci, xi = re[b]! * ci + im[b]! * cr;
          re[b] = re[a]! - xr;
          im[b] = im[a]! - xi;
          re[a] = re[a]! + xr;
          im[a] = im[a]! + xi;
        }
      }
    }
  }
}
