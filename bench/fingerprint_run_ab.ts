/**
 * In-process interleaved A/B of Fingerprinter.advance: another checkout's fingerprint.ts (a base) against this
 * one's. Speech is written to the rings of many streams (as in a sensor: each stream's ring and store are cold in
 * the caches when its turn comes) in chunks of 128 samples (one frame per advance), 160 (a 20 ms packet: one or
 * two) and 1,024 (analyze's pieces: eight), and every stream advanced after each chunk; only the advances are
 * timed (CPU time of the process: less noisy than wall time on a loaded host). Rounds alternate base and this
 * checkout (which goes first alternates too); prints CPU ns per frame, median of rounds with the quartiles, and
 * checks that both stores hold the same frames.
 *
 * `deno run -A bench/fingerprint_run_ab.ts BASE_CHECKOUT [--rounds 15] [--seconds 10] [--streams 50] [--chunks 160,1024]`
 * @module
 */

import * as mine from "../audio/fingerprint/fingerprint.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { speech } from "./fingerprint_speed.ts";

type FpModule = typeof mine;

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

/** CPU milliseconds of this process (user + system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}

/** CPU ns per frame of the advances of `streams` streams fed `audio` in `chunk`s; the last stream's frames. */
function feed(
  m: FpModule,
  audio: Float32Array,
  chunk: number,
  streams: number,
): { ns: number; frames: number[] } {
  const rings: SampleRing[] = [], fps: mine.Fingerprinter[] = [];
  for (let s = 0; s < streams; s++) {
    const ring = new SampleRing(8000 * 2, { hotSamples: 4096 });
    rings.push(ring);
    fps.push(new m.Fingerprinter(ring, new m.FrameStore(1 << 14)));
  }
  let ms = 0, frames = 0;
  for (let at = 0; at + chunk <= audio.length; at += chunk) {
    const piece = audio.subarray(at, at + chunk);
    for (const ring of rings) ring.write(at, piece, 0);
    const t0 = cpuMs();
    for (const fp of fps) frames += fp.advance();
    ms += cpuMs() - t0;
  }
  const store = fps[streams - 1]!.store,
    energyBits = new Uint32Array(store.energy.buffer),
    out: number[] = [];
  for (let n = store.start; n < store.end; n++) {
    const i = n & store.mask;
    out.push(store.bits[i]!, store.weak[i]!, energyBits[i]!, store.strong[i]!);
  }
  return { ns: (ms * 1e6) / frames, frames: out };
}

async function main(): Promise<void> {
  const baseDir = Deno.args[0];
  if (!baseDir || baseDir.startsWith("--")) throw new Error("usage: fingerprint_run_ab.ts BASE_CHECKOUT");
  const base = (await import(`${Deno.realPathSync(baseDir)}/audio/fingerprint/fingerprint.ts`)) as FpModule;
  const rounds = arg("--rounds", 15), streams = arg("--streams", 50);
  const audio = await speech(arg("--seconds", 10), 1);
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;
  const show = (xs: number[]) =>
    `${q(xs, 0.5).toFixed(0)} (${q(xs, 0.25).toFixed(0)}–${q(xs, 0.75).toFixed(0)})`;
  const chunks = (Deno.args[Deno.args.indexOf("--chunks") + 1] ?? "").split(",").map(Number).filter((c) =>
    c > 0
  );
  for (const chunk of Deno.args.includes("--chunks") ? chunks : [128, 160, 1024]) {
    const a: number[] = [], b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [base, mine] : [mine, base];
      for (const m of order) {
        const got = feed(m, audio, chunk, streams);
        (m === base ? a : b).push(got.ns);
        if (r === 0 && m === mine) {
          const want = feed(base, audio, chunk, 1).frames, mineFrames = feed(mine, audio, chunk, 1).frames;
          if (want.length !== mineFrames.length || want.some((v, i) => v !== mineFrames[i])) {
            throw new Error(`chunk ${chunk}: the stores differ`);
          }
        }
      }
    }
    const change = ((q(b, 0.5) - q(a, 0.5)) / q(a, 0.5)) * 100;
    console.log(`chunk ${chunk}: base ${show(a)} ns/frame, this ${show(b)}, ${change.toFixed(1)}%`);
  }
}

if (import.meta.main) await main();
