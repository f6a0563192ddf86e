/**
 * CPU per fingerprint frame of the FFT stage (audio/fingerprint/fft.ts, fft_simd.ts): the whole-frame kernel
 * (RealFft.bandPowers with the production band table: ring copy, window, FFT, split, band sums), the same with
 * the sub-fingerprint (FrameAnalyzer.fingerprint, one WebAssembly call in float32) and the Fingerprinter alone
 * on speech, in µs per frame and x real time per core.
 *
 * `deno run -A bench/fft_kernel_speed.ts [--frames 200000]` (`FSMPX_FFT_F32=0`: the float64 kernel, see fft.ts)
 * @module
 */

import { Fingerprinter, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { speech } from "./fingerprint_speed.ts";

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

/** CPU seconds of this process (user + system). */
function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main(): Promise<void> {
  const frames = arg("--frames", 200_000);
  const audio = await speech(120, 1);
  const ring = new SampleRing(8000 * 4);
  ring.write(0, audio.subarray(0, 8000 * 4), 0);
  const analyzer = new FrameAnalyzer();
  const out = new Float64Array(33);
  // Every start in the ring in hops of 128, wrapping frames included (the ring holds 4 s).
  const starts = Math.floor((8000 * 4) / 128);
  let sink = 0;
  for (let r = 0; r < 3; r++) {
    const c0 = cpu();
    for (let f = 0; f < frames; f++) sink += analyzer.analyze(ring, ring.start + (f % starts) * 128, out);
    const s = cpu() - c0;
    console.log(`analyze frame: ${((s / frames) * 1e6).toFixed(3)} µs per frame`);
  }
  // Consecutive frames (the signs and minima of real band differences: what the sub-fingerprint's branches met).
  const prev = new Float64Array(33), res = new Uint32Array(3);
  for (let r = 0; r < 3; r++) {
    const c0 = cpu();
    for (let f = 0; f < frames; f++) {
      sink += analyzer.fingerprint(ring, ring.start + (f % starts) * 128, prev, res);
    }
    const s = cpu() - c0;
    console.log(
      `fingerprint frame (with its sub-fingerprint): ${((s / frames) * 1e6).toFixed(3)} µs per frame`,
    );
  }
  for (let r = 0; r < 3; r++) {
    const r2 = new SampleRing(8000 * 4);
    const store = new FrameStore(4096);
    const fp = new Fingerprinter(r2, store, analyzer);
    const c0 = cpu();
    for (let at = 0; at + 160 <= audio.length; at += 160) {
      r2.write(at, audio.subarray(at, at + 160), 0);
      fp.advance();
    }
    console.log(`fingerprint: ${(audio.length / 8000 / (cpu() - c0)).toFixed(0)}x real time`);
  }
  if (sink === 0.5) console.log(sink);
}

if (import.meta.main) await main();
