/**
 * ITU-T G.722 decoder, 64 kbit/s (mode 1): each byte carries a 6-bit lower sub-band code (bits 5..0) and a
 * 2-bit higher sub-band code (bits 7..6); the two SB-ADPCM decoders each give one 8 kHz sample per byte and the
 * receive QMF turns the pair into two 16 kHz samples.
 *
 * Written from the recommendation's block descriptions (block names in the comments: INVQAL, LOGSCL, SCALEL,
 * RECONS, PARREC, UPPOL1/2, UPZERO, DELAYA, FILTEP, FILTEZ, PREDIC, LIMIT and their higher-band twins), in
 * 32-bit integer arithmetic with the recommendation's 16-bit saturations, so the output is bit-exact with other
 * conforming decoders (tests compare it with ffmpeg's). RTP (RFC 3551) carries exactly these bytes; its
 * timestamp clock is 8000 Hz although the audio is 16 kHz.
 * @module
 */

/** Output rate of G.722, Hz. */
export const G722_RATE = 16000;

/** 6-bit lower-band inverse quantiser outputs (mode 1), indexed by the code. */
const QQ6 = Int32Array.from([
  -136,
  -136,
  -136,
  -136,
  -24808,
  -21904,
  -19008,
  -16704,
  -14984,
  -13512,
  -12280,
  -11192,
  -10232,
  -9360,
  -8576,
  -7856,
  -7192,
  -6576,
  -6000,
  -5456,
  -4944,
  -4464,
  -4008,
  -3576,
  -3168,
  -2776,
  -2400,
  -2032,
  -1688,
  -1360,
  -1040,
  -728,
  24808,
  21904,
  19008,
  16704,
  14984,
  13512,
  12280,
  11192,
  10232,
  9360,
  8576,
  7856,
  7192,
  6576,
  6000,
  5456,
  4944,
  4464,
  4008,
  3576,
  3168,
  2776,
  2400,
  2032,
  1688,
  1360,
  1040,
  728,
  432,
  136,
  -432,
  -136,
]);
/** 4-bit (code >> 2) inverse quantiser outputs: the embedded core that drives the lower-band adaptation. */
const QQ4 = Int32Array.from([
  0,
  -20456,
  -12896,
  -8968,
  -6288,
  -4240,
  -2584,
  -1200,
  20456,
  12896,
  8968,
  6288,
  4240,
  2584,
  1200,
  0,
]);
/** Lower-band log scale factor multipliers, by the magnitude index of the 4-bit code. */
const WL = Int32Array.from([-60, -30, 58, 172, 334, 538, 1198, 3042]);
const RL42 = Int32Array.from([0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0]);
/** Higher-band inverse quantiser, log scale factor multipliers and their index. */
const QQ2 = Int32Array.from([-7408, -1616, 7408, 1616]);
const WH = Int32Array.from([0, -214, 798]);
const RH2 = Int32Array.from([2, 1, 2, 1]);
/** ILB: 2048·2^(i/32), the mantissa of the scale factor's antilog (block SCALEL). */
const ILB = Int32Array.from([
  2048,
  2093,
  2139,
  2186,
  2233,
  2282,
  2332,
  2383,
  2435,
  2489,
  2543,
  2599,
  2656,
  2714,
  2774,
  2834,
  2896,
  2960,
  3025,
  3091,
  3158,
  3228,
  3298,
  3371,
  3444,
  3520,
  3597,
  3676,
  3756,
  3838,
  3922,
  4008,
]);
/** Receive QMF: the even coefficients h(2i); the odd ones are the same values reversed (h(2i+1) = h(22-2i)). */
const QMF = Int32Array.from([3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11]);

function sat16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/** One sub-band's adaptive predictor (block 4) and scale factor state. */
class Band {
  /** Log scale factor (NBL / NBH) and the linear one (DETL / DETH). */
  nb = 0;
  det: number;
  /** Predicted signal, its pole and zero parts. */
  s = 0;
  sp = 0;
  sz = 0;
  /** Pole coefficients a1, a2 (index 0 unused) and reconstructed signal history r0..r2. */
  readonly a = new Int32Array(3);
  readonly r = new Int32Array(3);
  /** Partially reconstructed signal p0..p2. */
  readonly p = new Int32Array(3);
  /** Zero coefficients b1..b6 and quantised difference history d0..d6. */
  readonly b = new Int32Array(7);
  readonly d = new Int32Array(7);

  constructor(det: number) {
    this.det = det;
  }

  /** Block 4 for one quantised difference `dq`: reconstruction, predictor adaptation, next prediction. */
  update(dq: number): void {
    const a = this.a, r = this.r, p = this.p, b = this.b, d = this.d;
    // RECONS and PARREC.
    d[0] = dq;
    r[0] = sat16(this.s + dq);
    p[0] = sat16(this.sz + dq);
    // UPPOL2: second pole coefficient from the signs of p0, p1, p2 (sign = bit 15 of the 16-bit value).
    const s0 = p[0]! >> 15, s1 = p[1]! >> 15, s2 = p[2]! >> 15;
    let wd1 = sat16(a[1]! << 2);
    let wd2 = s0 === s1 ? -wd1 : wd1;
    if (wd2 > 32767) wd2 = 32767;
    let wd3 = (wd2 >> 7) + (s0 === s2 ? 128 : -128);
    wd3 += (a[2]! * 32512) >> 15;
    const ap2 = wd3 > 12288 ? 12288 : wd3 < -12288 ? -12288 : wd3;
    // UPPOL1: first pole coefficient, bounded so the pole pair stays stable.
    wd1 = s0 === s1 ? 192 : -192;
    wd2 = (a[1]! * 32640) >> 15;
    let ap1 = sat16(wd1 + wd2);
    wd3 = sat16(15360 - ap2);
    if (ap1 > wd3) ap1 = wd3;
    else if (ap1 < -wd3) ap1 = -wd3;
    // UPZERO and DELAYA for the zero section.
    const step = dq === 0 ? 0 : 128;
    const sd = dq >> 15;
    for (let i = 6; i > 0; i--) {
      const w = (d[i]! >> 15) === sd ? step : -step;
      b[i] = sat16(w + ((b[i]! * 32640) >> 15));
      d[i] = d[i - 1]!;
    }
    // DELAYA for the pole section.
    r[2] = r[1]!;
    r[1] = r[0]!;
    p[2] = p[1]!;
    p[1] = p[0]!;
    a[2] = ap2;
    a[1] = ap1;
    // FILTEP, FILTEZ, PREDIC.
    const sp = sat16(((a[1]! * sat16(r[1]! + r[1]!)) >> 15) + ((a[2]! * sat16(r[2]! + r[2]!)) >> 15));
    let sz = 0;
    for (let i = 6; i > 0; i--) sz += (b[i]! * sat16(d[i]! + d[i]!)) >> 15;
    this.sp = sp;
    this.sz = sat16(sz);
    this.s = sat16(sp + this.sz);
  }

  /** LOGSCL/SCALEL (lower band: limit 18432, shift base 8) and LOGSCH/SCALEH (22528, 10). */
  scale(w: number, limit: number, base: number): void {
    let nb = ((this.nb * 127) >> 7) + w;
    nb = nb < 0 ? 0 : nb > limit ? limit : nb;
    this.nb = nb;
    const shift = base - (nb >> 11);
    const m = ILB[(nb >> 6) & 31]!;
    this.det = (shift < 0 ? m << -shift : m >> shift) << 2;
  }
}

/**
 * A G.722 64 kbit/s decoder for one stream (the ADPCM predictors and the QMF carry state from byte to byte, so
 * a stream's packets must go through one instance in order).
 */
export class G722Decoder {
  #low = new Band(32);
  #high = new Band(8);
  /** QMF delay line: 12 (sum, difference) pairs, newest last. */
  #x = new Int32Array(24);

  /** Decodes `bytes` into 2·length 16 kHz samples as 16-bit integers, written to `out` (new when absent). */
  decodeInt16(bytes: Uint8Array, out: Int16Array = new Int16Array(bytes.length * 2)): Int16Array {
    const low = this.#low, high = this.#high, x = this.#x;
    for (let n = 0, o = 0; n < bytes.length; n++, o += 2) {
      const code = bytes[n]!;
      const il = code & 0x3f;
      const ih = code >> 6;
      // Lower band: output from the 6-bit code, adaptation from its 4-bit core (INVQAL, LOGSCL, SCALEL).
      let rl = low.s + ((low.det * QQ6[il]!) >> 15);
      rl = rl > 16383 ? 16383 : rl < -16384 ? -16384 : rl;
      const il4 = il >> 2;
      const dlt = (low.det * QQ4[il4]!) >> 15;
      low.scale(WL[RL42[il4]!]!, 18432, 8);
      low.update(dlt);
      // Higher band (INVQAH, LOGSCH, SCALEH).
      const dh = (high.det * QQ2[ih]!) >> 15;
      let rh = dh + high.s;
      rh = rh > 16383 ? 16383 : rh < -16384 ? -16384 : rh;
      high.scale(WH[RH2[ih]!]!, 22528, 10);
      high.update(dh);
      // Receive QMF: shift in (rl + rh, rl - rh), two outputs per input pair.
      x.copyWithin(0, 2);
      x[22] = rl + rh;
      x[23] = rl - rh;
      let y1 = 0, y2 = 0;
      for (let i = 0; i < 12; i++) {
        y2 += x[2 * i]! * QMF[i]!;
        y1 += x[2 * i + 1]! * QMF[11 - i]!;
      }
      out[o] = sat16(y1 >> 11);
      out[o + 1] = sat16(y2 >> 11);
    }
    return out;
  }

  /** Decodes `bytes` into 2·length 16 kHz samples in [-1, 1), written to `out` (its first 2·length entries). */
  decode(bytes: Uint8Array, out: Float32Array): Float32Array {
    const n = bytes.length * 2;
    if (this.#tmp.length < n) this.#tmp = new Int16Array(Math.max(n, this.#tmp.length * 2));
    const pcm = this.decodeInt16(bytes, this.#tmp);
    for (let i = 0; i < n; i++) out[i] = pcm[i]! / 32768;
    return out.length === n ? out : out.subarray(0, n);
  }

  #tmp = new Int16Array(0);

  /** Back to the initial state (a new stream). */
  reset(): void {
    this.#low = new Band(32);
    this.#high = new Band(8);
    this.#x.fill(0);
  }
}
