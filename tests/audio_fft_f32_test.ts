import { ok as assert } from "node:assert/strict";
import { type BandTable, FFT_F32, RealFft } from "../audio/fingerprint/fft.ts";
import { SimdFrame32 } from "../audio/fingerprint/fft_simd32.ts";
import { subFingerprint } from "../audio/fingerprint/fingerprint.ts";
import { centeredRng } from "./support/rng.ts";

const f = Math.fround;

/** RealFft's tables for `n` real points (float64, as fft.ts builds them). */
function tables(n: number) {
  const half = n / 2, bits = Math.log2(half);
  const rev = new Uint32Array(half).map((_, i) => {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    return r;
  });
  const cos = new Float64Array(half / 2).map((_, k) => Math.cos((-2 * Math.PI * k) / half));
  const sin = new Float64Array(half / 2).map((_, k) => Math.sin((-2 * Math.PI * k) / half));
  const splitCos = new Float64Array(half + 1).map((_, k) => Math.cos((-2 * Math.PI * k) / n));
  const splitSin = new Float64Array(half + 1).map((_, k) => Math.sin((-2 * Math.PI * k) / n));
  return { half, rev, cos, sin, splitCos, splitSin };
}

/**
 * fft.ts's JS transform (input pass, radix-2² passes, last pass, split) with every operation rounded to float32
 * (Math.fround of a float64 sum or product of two float32 values is the float32 operation), then the band sums
 * in float64: what the float32 kernel computes, bit for bit.
 */
function reference32(
  n: number,
  data: Int16Array,
  start: number,
  mask: number,
  window: Float64Array,
  table: BandTable,
): number[] {
  const { half, rev, cos, sin, splitCos, splitSin } = tables(n);
  const re = new Float64Array(half), im = new Float64Array(half);
  const x = (k: number) => f(data[(start + k) & mask]! * f(window[k]!));
  for (let i = 0; i < half; i += 4) {
    const [a, b, c, d] = [rev[i]! << 1, rev[i + 1]! << 1, rev[i + 2]! << 1, rev[i + 3]! << 1];
    const [ar, ai, br, bi, cr, ci, dr, di] = [x(a), x(a + 1), x(b), x(b + 1), x(c), x(c + 1), x(d), x(d + 1)];
    const s0r = f(ar + br), s0i = f(ai + bi), d0r = f(ar - br), d0i = f(ai - bi);
    const s1r = f(cr + dr), s1i = f(ci + di), d1r = f(cr - dr), d1i = f(ci - di);
    re[i] = f(s0r + s1r), im[i] = f(s0i + s1i), re[i + 2] = f(s0r - s1r), im[i + 2] = f(s0i - s1i);
    re[i + 1] = f(d0r + d1i), im[i + 1] = f(d0i - d1r), re[i + 3] = f(d0r - d1i), im[i + 3] = f(d0i + d1r);
  }
  const cmul = (ar: number, ai: number, wr: number, wi: number) =>
    [f(f(ar * wr) - f(ai * wi)), f(f(ar * wi) + f(ai * wr))] as const;
  let len = 8;
  for (; len * 2 <= half; len <<= 2) {
    const q = len >> 1, step1 = half / len, step2 = step1 >> 1;
    for (let j = 0; j < q; j++) {
      const w1r = f(cos[j * step1]!),
        w1i = f(sin[j * step1]!),
        w2r = f(cos[j * step2]!),
        w2i = f(sin[j * step2]!);
      for (let p0 = j; p0 < half; p0 += len << 1) {
        const p1 = p0 + q, p2 = p1 + q, p3 = p2 + q;
        const [br, bi] = cmul(re[p1]!, im[p1]!, w1r, w1i);
        const [dr, di] = cmul(re[p3]!, im[p3]!, w1r, w1i);
        const a2r = f(re[p0]! + br), a2i = f(im[p0]! + bi), b2r = f(re[p0]! - br), b2i = f(im[p0]! - bi);
        const [c2r, c2i] = cmul(f(re[p2]! + dr), f(im[p2]! + di), w2r, w2i);
        const [d2r, d2i] = cmul(f(re[p2]! - dr), f(im[p2]! - di), w2r, w2i);
        re[p0] = f(a2r + c2r), im[p0] = f(a2i + c2i), re[p2] = f(a2r - c2r), im[p2] = f(a2i - c2i);
        re[p1] = f(b2r + d2i), im[p1] = f(b2i - d2r), re[p3] = f(b2r - d2i), im[p3] = f(b2i + d2r);
      }
    }
  }
  for (; len <= half; len <<= 1) {
    const h = len >> 1, step = half / len;
    for (let s = 0; s < half; s += len) {
      for (let j = 0; j < h; j++) {
        const p = s + j, q = p + h;
        const [xr, xi] = cmul(re[q]!, im[q]!, f(cos[j * step]!), f(sin[j * step]!));
        const pr = re[p]!, pi = im[p]!;
        re[p] = f(pr + xr), im[p] = f(pi + xi), re[q] = f(pr - xr), im[q] = f(pi - xi);
      }
    }
  }
  const power = (k: number) => {
    const k1 = k === half ? 0 : k, k2 = k === 0 ? 0 : half - k;
    const zr = re[k1]!, zi = im[k1]!, yr = re[k2]!, yi = -im[k2]!;
    const er = f(0.5 * f(zr + yr)),
      ei = f(0.5 * f(zi + yi)),
      or = f(0.5 * f(zr - yr)),
      oi = f(0.5 * f(zi - yi));
    const c = f(splitCos[k]!), s = f(splitSin[k]!);
    const xr = f(er + f(f(oi * c) + f(or * s))), xi = f(ei + f(f(oi * s) - f(or * c)));
    return f(f(xr * xr) + f(xi * xi));
  };
  const out: number[] = [];
  let total = 0;
  for (let b = 0; b + 1 < table.start.length; b++) {
    let e = 0;
    for (let i = table.start[b]!; i < table.start[b + 1]!; i++) e += power(table.bin[i]!) * table.weight[i]!;
    out.push(e);
    total += e;
  }
  out.push(total);
  return out;
}

function kernel(n: number): SimdFrame32 {
  const t = tables(n);
  return new SimdFrame32(t.half, t.cos, t.sin, t.rev, t.splitCos, t.splitSin);
}

Deno.test("the float32 kernel computes fft.ts's transform in float32 bit for bit, windowed frames wrapping a ring", () => {
  const rnd = centeredRng(41);
  const data = new Int16Array(4096).map((_, i) =>
    Math.max(-32768, Math.min(32767, Math.round(9000 * Math.sin(i * 0.07) + 15000 * rnd())))
  );
  data.fill(-32768, 700, 800);
  for (const n of [64, 256, 1024]) {
    const half = n / 2;
    const hann = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    // Uneven bands over [3, half − 6], a shared bin, weights not 1.
    const bin: number[] = [], weight: number[] = [], start = [0];
    for (let k = 3, b = 0; k <= half - 6; b++) {
      const w = 1 + (b % 3) + (n >> 6);
      for (let j = 0; j <= w && k + j <= half - 6; j++) {
        bin.push(k + j);
        weight.push(0.3 + 0.6 * rnd() + 0.3);
      }
      k += w;
      start.push(bin.length);
    }
    const table: BandTable = {
      bin: Int32Array.from(bin),
      weight: Float64Array.from(weight),
      start: Int32Array.from(start),
    };
    const k = kernel(n);
    const quads = (half - 6 - 3 + 4) >> 2;
    assert(k.fits(table, 3, quads));
    for (const s0 of [0, 128, 640, 4096 - half, 4095]) {
      for (let i = 0; i < n; i++) k.samples[i] = data[(s0 + i) & 4095]!;
      k.frame(hann, 3, quads, table);
      const want = reference32(n, data, s0, 4095, hann, table);
      for (let b = 0; b < want.length; b++) {
        assert(
          Object.is(k.bandOut[b], want[b]),
          `n=${n} start ${s0} band ${b}: ${k.bandOut[b]} vs ${want[b]}`,
        );
      }
    }
  }
});

Deno.test("the float32 kernel declines bins outside its split range and bands it cannot hold", () => {
  const k = kernel(256);
  const t = (bins: number[]): BandTable => ({
    bin: Int32Array.from(bins),
    weight: new Float64Array(bins.length).fill(1),
    start: Int32Array.of(0, bins.length),
  });
  assert(k.fits(t([5, 6, 8]), 5, 1));
  assert(!k.fits(t([5, 9]), 5, 1)); // bin 9 is past k0 + 4·quads − 1
  assert(!k.fits(t([5]), 0, 2)); // bin 0 is left to JS
  assert(!k.fits(t([126]), 125, 1)); // k0 + 4·quads > half
});

Deno.test("float32 band powers are the default unless FSMPX_FFT_F32=0", () => {
  assert(FFT_F32 === (Deno.env.get("FSMPX_FFT_F32") !== "0"));
  assert(new RealFft(1024).float32 === FFT_F32);
  assert(new RealFft(1024, { float32: true }).float32 && !new RealFft(1024, { float32: false }).float32);
});

Deno.test("RealFft.bandPowers in float32 gives the kernel's values bit for bit in JS too (no SIMD, or a table the kernel declines)", () => {
  const rnd = centeredRng(43);
  const data = new Int16Array(2048).map(() => Math.round(20000 * rnd()));
  for (const n of [64, 1024]) {
    const half = n / 2;
    const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    const inner: BandTable = {
      bin: Int32Array.of(2, 3, 3, 4, 5, 9, half - 4),
      weight: Float64Array.of(0.5, 0.7, 0.3, 1, 1, 0.9, 0.4),
      start: Int32Array.of(0, 2, 5, 7),
    };
    // Bins 0 and half: outside the kernel's split, so the JS path even with SIMD.
    const edges: BandTable = {
      bin: Int32Array.of(0, 1, half - 1, half),
      weight: Float64Array.of(1, 0.5, 0.5, 1),
      start: Int32Array.of(0, 2, 4),
    };
    const kernel = new RealFft(n, { float32: true });
    const js = new RealFft(n, { float32: true, simd: false });
    for (const start of [0, 300, 2048 - half]) {
      const a = kernel.bandPowers(data, start, 2047, win, inner, 2, half - 4)!.slice(0, 4);
      const b = js.bandPowers(data, start, 2047, win, inner, 2, half - 4)!.slice(0, 4);
      const want = reference32(n, data, start, 2047, win, inner);
      for (let i = 0; i < 4; i++) {
        assert(Object.is(a[i], want[i]) && Object.is(b[i], want[i]), `n=${n} start ${start} band ${i}`);
      }
      const e = kernel.bandPowers(data, start, 2047, win, edges, 0, half)!.slice(0, 3);
      const wantE = reference32(n, data, start, 2047, win, edges);
      for (let i = 0; i < 3; i++) assert(Object.is(e[i], wantE[i]), `n=${n} start ${start} edge band ${i}`);
    }
  }
});

Deno.test("RealFft.bandBits: the float32 kernel's sub-fingerprint is subFingerprint's, with ties and flat frames", () => {
  const rnd = centeredRng(47);
  const data = new Int16Array(4096).map(() => Math.round(12000 * rnd()));
  // Two frames of digital silence and a stretch of period 32, whose frames 128 samples apart are the same.
  data.fill(0, 1024, 3072 - 1024);
  for (let i = 3072 - 1024; i < 4096; i++) data[i] = Math.round(8000 * Math.sin((2 * Math.PI * i) / 32));
  const n = 256, half = n / 2;
  const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const table = (binOf: (b: number, j: number) => number, per: number): BandTable => {
    const bin: number[] = [], weight: number[] = [], start = [0];
    for (let b = 0; b < 33; b++) {
      for (let j = 0; j < per; j++) {
        bin.push(binOf(b, j));
        weight.push(0.5 + 0.25 * (j % 3));
      }
      start.push(bin.length);
    }
    return { bin: Int32Array.from(bin), weight: Float64Array.from(weight), start: Int32Array.from(start) };
  };
  // Spread bands, and bands repeating five bin sets (equal energies: ties among the differences).
  const tables = [table((b, j) => 4 + ((3 * b + j) % 110), 3), table((b, j) => 10 + (b % 5) + j, 2)];
  const fft = new RealFft(n, { float32: true });
  const res = new Uint32Array(3), want = new Uint32Array(3), diff = new Float64Array(32);
  let fused = 0;
  for (const t of tables) {
    for (const alpha of [1, 0.5]) {
      const prev = new Float64Array(33), prevJs = new Float64Array(33);
      for (let start = 0; start < 4096; start += 128) {
        const got = fft.bandBits(data, start, 4095, win, t, 4, half - 8, prev, res, alpha);
        const cur = fft.bandPowers(data, start, 4095, win, t, 4, half - 8)!.slice(0, 34);
        subFingerprint(cur, prevJs, want, diff, alpha);
        prevJs.set(cur.subarray(0, 33));
        if (got === undefined) continue;
        fused++;
        assert(Object.is(got[33], cur[33]), `start ${start}: total`);
        assert(prev.every((v, b) => Object.is(v, cur[b])), `start ${start}: prev gets this frame's energies`);
        assert(
          res.every((v, i) => v === want[i]),
          `start ${start} alpha ${alpha}: ${[...res]} vs ${[...want]}`,
        );
      }
    }
  }
  assert(fused > 0 || !new RealFft(n).simd, "the kernel ran");
  // Without the kernel (no SIMD) or in float64, nothing fused: the caller computes it (FrameAnalyzer.fingerprint).
  const prev = new Float64Array(33);
  assert(
    new RealFft(n, { float32: true, simd: false }).bandBits(
      data,
      0,
      4095,
      win,
      tables[0]!,
      4,
      120,
      prev,
      res,
      1,
    ) === undefined,
  );
  assert(
    new RealFft(n, { float32: false }).bandBits(data, 0, 4095, win, tables[0]!, 4, 120, prev, res, 1) ===
      undefined,
  );
});

Deno.test("RealFft.bandBitsRun: a run of frames is bandBits frame after frame, across the ring's wrap and the kernel's room", () => {
  const rnd = centeredRng(53);
  const data = new Int16Array(4096).map(() => Math.round(12000 * rnd()));
  const n = 256, half = n / 2;
  const win = new Float64Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
  const bin: number[] = [], weight: number[] = [], start = [0];
  for (let b = 0; b < 33; b++) {
    for (let j = 0; j < 3; j++) {
      bin.push(4 + ((3 * b + j) % 110));
      weight.push(0.5 + 0.25 * j);
    }
    start.push(bin.length);
  }
  const t = { bin: Int32Array.from(bin), weight: Float64Array.from(weight), start: Int32Array.from(start) };
  const fft = new RealFft(n, { float32: true });
  const res = new Uint32Array(3);
  let runs = 0;
  // Hops that do and do not divide the ring; runs from one frame to more than the kernel takes in one call.
  for (
    const [hop, first, count] of [[32, 4000, 1], [32, 3900, 7], [96, 1000, 200], [256, 3000, 17], [
      1,
      4090,
      300,
    ]]
  ) {
    const prev = new Float64Array(33).map(() => 1e6 * (rnd() + 1)), prevOne = prev.slice();
    const want: number[][] = [];
    for (let f = 0; f < count!; f++) {
      const e = fft.bandBits(data, (first! + f * hop!) & 4095, 4095, win, t, 4, half - 8, prevOne, res, 1);
      if (e === undefined) return assert(!fft.simd, "the kernel ran");
      want.push([res[0]!, res[1]! & 0xffff, res[2]!, e[33]!]);
    }
    const got: number[][] = [];
    for (let f = 0; f < count!;) {
      const run = fft.bandBitsRun(
        data,
        (first! + f * hop!) & 4095,
        4095,
        hop!,
        count! - f,
        win,
        t,
        4,
        half - 8,
        prev,
        1,
      )!;
      assert(run.frames >= 1 && run.frames <= count! - f);
      for (let k = 0; k < run.frames; k++) {
        got.push([run.bits[k]!, run.weak[k]!, run.strong[k]!, run.total[k]!]);
      }
      f += run.frames;
      runs++;
    }
    assert(got.every((g, f) => g.every((v, i) => Object.is(v, want[f]![i]))), `hop ${hop} from ${first}`);
    assert(prev.every((v, b) => Object.is(v, prevOne[b])), `hop ${hop}: prev gets the last frame's energies`);
  }
  assert(runs > 5, `${runs} runs`);
  const prev = new Float64Array(33);
  assert(
    new RealFft(n, { float32: false }).bandBitsRun(data, 0, 4095, 32, 4, win, t, 4, 120, prev, 1) ===
      undefined,
  );
});
