/**
 * In-process interleaved A/B of the fine alignment stage (FineAligner.align: the level envelope search, the
 * waveform signs, the aligned grid's BER): another checkout's audio/align (a base) against this one's. Speech
 * goes to the rings of several target streams (each with its own lead and a -40 dB noise floor, rings tiered as a
 * target pipeline's) one second at a time, and after each second every signature whose block has completed in a
 * stream is aligned there from a coarse frame up to a hop off (every 25th with the wide envelope range, as a
 * split block's); one aligner for all streams, as a process has. Only the align calls are timed (CPU time of the
 * process). Rounds alternate base and this checkout (which goes first alternates too); prints CPU µs per
 * alignment, median of rounds with the quartiles, and checks that both give the same alignments.
 *
 * `deno run -A bench/align_ab.ts BASE_CHECKOUT [--rounds 11] [--seconds 40] [--streams 6]`
 * @module
 */

import * as alignMine from "../audio/align/align.ts";
import * as envMine from "../audio/align/level_envelope.ts";
import * as waveMine from "../audio/align/wave_signs.ts";
import * as fpMine from "../audio/fingerprint/fingerprint.ts";
import * as ringMine from "../audio/decode/sample_ring.ts";
import { TARGET_HOT_SAMPLES, TARGET_WARM_SAMPLES } from "../audio/pipeline.ts";
import { speech } from "./fingerprint_speed.ts";
import { Rng } from "../fixtures/gen/prng.ts";
import { cpuSeconds } from "./accuracy.ts";

interface Modules {
  align: typeof alignMine;
  env: typeof envMine;
  wave: typeof waveMine;
  fp: typeof fpMine;
  ring: typeof ringMine;
}

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

/** A signature as the aligner takes it: source frame, sub-fingerprints, envelope and waveform signs. */
interface Sig {
  frame: number;
  fp: Uint32Array;
  envelope: Uint8Array;
  waveSigns: waveMine.WaveSigns | undefined;
}

const BLOCK = 128;

/** Signatures of `audio` every ~0.4 s at a loud frame (the source side, computed once with this checkout). */
function signatures(audio: Float32Array): Sig[] {
  const ring = new ringMine.SampleRing(audio.length + 2048);
  const store = new fpMine.FrameStore(Math.ceil(audio.length / 128) + 16);
  ring.write(0, audio, 0);
  const fpr = new fpMine.Fingerprinter(ring, store);
  while (fpr.advance() > 0);
  const hop = fpMine.FP_PARAMS.hop;
  const out: Sig[] = [];
  for (let n = 16; n + BLOCK < store.end - 8; n += 25) {
    if (store.energy[n & store.mask]! < -35) continue;
    const k = n * hop + alignMine.INSTANT_OFFSET;
    const envelope = envMine.sourceEnvelope(ring, k);
    if (!envelope) continue;
    const fp = new Uint32Array(BLOCK);
    for (let j = 0; j < BLOCK; j++) fp[j] = store.bits[(n + j) & store.mask]!;
    out.push({ frame: n, fp, envelope, waveSigns: waveMine.sourceWaveSigns(ring, k) });
  }
  return out;
}

/** CPU µs per alignment of every signature in every stream, and the alignments (for the digest). */
function run(m: Modules, audio: Float32Array, sigs: Sig[], leads: number[], noise: Float32Array): {
  us: number;
  results: string[];
} {
  const hop = fpMine.FP_PARAMS.hop;
  const streams = leads.map((lead) => {
    const ring = new m.ring.SampleRing(30 * 8000 + 17 * 1024, {
      hotSamples: TARGET_HOT_SAMPLES,
      warmSamples: TARGET_WARM_SAMPLES,
    });
    const store = new m.fp.FrameStore(Math.ceil((30 * 8000) / hop));
    const x = new Float32Array(audio.length + lead);
    x.set(audio, lead);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + noise[i % noise.length]!;
    return { ring, store, fpr: new m.fp.Fingerprinter(ring, store), x, lead, next: 0 };
  });
  const aligner = new m.align.FineAligner(new m.fp.FrameAnalyzer());
  const results: string[] = [];
  let ms = 0, calls = 0;
  const second = 8000;
  for (let at = 0; at < audio.length + 4000; at += second) {
    for (const s of streams) {
      if (at < s.x.length) {
        s.ring.write(at, s.x.subarray(at, Math.min(at + second, s.x.length)), 0);
        while (s.fpr.advance() > 0);
      }
    }
    // The alignments this second made possible, then all of them timed at once (CPU time reads are not free).
    const jobs: { s: (typeof streams)[number]; sig: Sig; coarse: number; wide: boolean }[] = [];
    for (let si = 0; si < streams.length; si++) {
      const s = streams[si]!;
      const written = Math.min(at + second, s.x.length);
      while (s.next < sigs.length) {
        const sig = sigs[s.next]!;
        const truth = sig.frame * hop + s.lead;
        if (truth + (BLOCK + 9) * hop + 1024 > written) break;
        const j = s.next + si;
        jobs.push({ s, sig, coarse: Math.round(truth / hop) + ((j % 3) - 1), wide: j % 25 === 0 });
        s.next++;
      }
    }
    const got: (alignMine.Alignment | undefined)[] = [];
    const t0 = cpuSeconds() * 1e3;
    for (const { s, sig, coarse, wide } of jobs) {
      got.push(aligner.align(
        s.ring,
        s.store,
        sig.fp,
        undefined,
        sig.envelope,
        coarse,
        alignMine.ALIGN_RANGE,
        wide ? alignMine.ENVELOPE_RANGE : alignMine.ALIGN_RANGE,
        [],
        sig.waveSigns,
      ));
    }
    ms += cpuSeconds() * 1e3 - t0;
    calls += jobs.length;
    for (const al of got) results.push(al ? `${al.sample} ${al.by} ${al.shift} ${al.ber}` : "-");
  }
  return { us: (ms * 1e3) / calls, results };
}

async function main(): Promise<void> {
  const baseDir = Deno.args[0];
  if (!baseDir || baseDir.startsWith("--")) throw new Error("usage: align_ab.ts BASE_CHECKOUT");
  const root = Deno.realPathSync(baseDir);
  const base: Modules = {
    align: await import(`${root}/audio/align/align.ts`),
    env: await import(`${root}/audio/align/level_envelope.ts`),
    wave: await import(`${root}/audio/align/wave_signs.ts`),
    fp: await import(`${root}/audio/fingerprint/fingerprint.ts`),
    ring: await import(`${root}/audio/decode/sample_ring.ts`),
  };
  const mine: Modules = { align: alignMine, env: envMine, wave: waveMine, fp: fpMine, ring: ringMine };
  const rounds = arg("--rounds", 11), nStreams = arg("--streams", 6);
  const audio = await speech(arg("--seconds", 40), 1);
  const sigs = signatures(audio);
  const rng = new Rng(7);
  const rnd = () => rng.next();
  const leads = Array.from({ length: nStreams }, () => Math.floor(rnd() * 2000));
  // A -40 dB white noise floor (relative to full scale), so pauses are not digital silence.
  const noise = Float32Array.from({ length: 1 << 16 }, () => (rnd() - 0.5) * 0.02);
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;
  const show = (xs: number[]) =>
    `${q(xs, 0.5).toFixed(1)} (${q(xs, 0.25).toFixed(1)}–${q(xs, 0.75).toFixed(1)})`;
  const a: number[] = [], b: number[] = [];
  let digestA = "", digestB = "", n = 0;
  // Round 0 warms both up (compiles) and is not counted.
  for (let r = 0; r <= rounds; r++) {
    for (const m of r % 2 === 0 ? [base, mine] : [mine, base]) {
      const got = run(m, audio, sigs, leads, noise);
      if (r > 0) (m === base ? a : b).push(got.us);
      const d = got.results.join("\n");
      if (m === base) digestA = d;
      else digestB = d;
      n = got.results.length;
    }
  }
  console.log(`${n} alignments per round, ${rounds} rounds`);
  console.log(`base  µs/align ${show(a)}`);
  console.log(`this  µs/align ${show(b)}`);
  console.log(`ratio this/base ${(q(b, 0.5) / q(a, 0.5)).toFixed(3)}`);
  const hash = async (s: string) =>
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s))))
      .slice(0, 8).map((x) => x.toString(16).padStart(2, "0")).join("");
  console.log(
    `digest base ${await hash(digestA)} this ${await hash(digestB)} ${
      digestA === digestB ? "same" : "DIFFERENT"
    }`,
  );
}

if (import.meta.main) await main();
