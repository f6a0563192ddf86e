/**
 * Quick speed figures of the fingerprint engine on real speech (the asterisk prompts), per core:
 * - fingerprint: Fingerprinter alone (frames + sub-fingerprints) on 8 kHz samples;
 * - detector: SourcePipeline (decode μ-law 20 ms messages → VAD/onsets → fingerprint → signatures);
 * - matcher: TargetPipeline (decode → fingerprint → lookups → verification → alignment) with N active
 *   signatures, on audio unrelated to them (lookups only) and on audio that contains them (with matches);
 * - searchSignature: backward search of one signature in a 30 s lookback;
 * - against issue 16's targets: the matcher stage alone on the unrelated audio (the pipeline minus the same audio
 *   against an empty index), and the CPU per match of verification (with the near-miss re-scoring) and fine
 *   alignment on the audio with matches, timed inside those calls.
 *
 * `deno run --allow-read --allow-run bench/fingerprint_speed.ts [--active 10000] [--seconds 120]`
 * @module
 */

import { FineAligner, INSTANT_OFFSET } from "../audio/align/align.ts";
import { Rephaser } from "../audio/align/rephase.ts";
import { Verifier } from "../audio/match/verify.ts";
import { MATCHER_TARGET_X } from "./speed.ts";
import { sourceEnvelope } from "../audio/align/level_envelope.ts";
import { Fingerprinter, FP_PARAMS, FrameAnalyzer, FrameStore } from "../audio/fingerprint/fingerprint.ts";
import { initAudioEngine, SignatureIndex, SourcePipeline, TargetPipeline } from "../audio/pipeline.ts";
import { SampleRing } from "../audio/decode/sample_ring.ts";
import { buildSignature } from "../audio/fingerprint/signature.ts";
import type { AudioFormat, Signature } from "../audio/types.ts";
import { rawFormat } from "../tests/support/formats.ts";

const SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison";

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

/** CPU seconds of this process (user + system). */
function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Issue 16's target for the CPU per match (verification with the near-miss re-scoring, and fine alignment), ms:
 * halved from the 1–2 ms the README gave before (half of the middle).
 */
const PER_MATCH_TARGET_MS = 0.75;

/** CPU seconds and calls spent inside one method, while {@link timeInside} is on. */
export interface Inside {
  cpuS: number;
  calls: number;
}

/**
 * Times every call of `proto[name]` (CPU, the call's own thread) into the returned counters; undo with the
 * returned `restore`. For the per-match figures: what a match costs is spread over a few calls that run inside
 * the pipeline's push, so they are timed where they run.
 */
export function timeInside(proto: object, name: string): Inside & { restore(): void } {
  const obj = proto as Record<string, (...a: unknown[]) => unknown>;
  const orig = obj[name]!;
  const acc = {
    cpuS: 0,
    calls: 0,
    restore: () => {
      obj[name] = orig;
    },
  };
  obj[name] = function (this: unknown, ...a: unknown[]) {
    const c0 = cpu();
    try {
      return orig.apply(this, a);
    } finally {
      acc.cpuS += cpu() - c0;
      acc.calls++;
    }
  };
  return acc;
}

/** Reads a 16-bit mono WAV's samples (the prompts' format); undefined for anything else. */
async function readPcm16(path: string): Promise<Float32Array | undefined> {
  const b = await Deno.readFile(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 12;
  while (at + 8 <= b.length) {
    const id = String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
    const len = dv.getUint32(at + 4, true);
    if (id === "data") {
      const n = Math.floor(Math.min(len, b.length - at - 8) / 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(at + 8 + 2 * i, true) / 32768;
      return out;
    }
    at += 8 + len + (len & 1);
  }
  return undefined;
}

/** Prompts concatenated with 0.5 s pauses, from the `part`-th half of the sorted list (0 or 1). */
export async function speech(seconds: number, part: 0 | 1): Promise<Float32Array> {
  const names: string[] = [];
  for await (const e of Deno.readDir(SOUNDS)) if (e.isFile && e.name.endsWith(".wav")) names.push(e.name);
  names.sort();
  const half = names.filter((_, i) => i % 2 === part);
  const parts: Float32Array[] = [];
  let total = 0;
  for (const n of half) {
    if (total >= seconds * 8000) break;
    const s = await readPcm16(`${SOUNDS}/${n}`);
    if (!s) continue;
    parts.push(s, new Float32Array(4000));
    total += s.length + 4000;
  }
  const out = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function mulaw(x: number): number {
  const BIAS = 0x84;
  let pcm = Math.max(-32635, Math.min(32635, Math.round(x * 32768)));
  const sign = pcm < 0 ? 0x80 : 0;
  if (pcm < 0) pcm = -pcm;
  pcm += BIAS;
  let exp = 7;
  for (let m = 0x4000; (pcm & m) === 0 && exp > 0; m >>= 1) exp--;
  const mant = (pcm >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

/** 20 ms raw μ-law messages. */
export function messages(audio: Float32Array): { timeNs: bigint; payload: Uint8Array }[] {
  const out: { timeNs: bigint; payload: Uint8Array }[] = [];
  for (let at = 0, i = 0; at + 160 <= audio.length; at += 160, i++) {
    const p = new Uint8Array(160);
    for (let k = 0; k < 160; k++) p[k] = mulaw(audio[at + k]!);
    out.push({ timeNs: 1_700_000_000_000_000_000n + BigInt(i) * 20_000_000n, payload: p });
  }
  return out;
}

/** The format of {@link messages}: raw μ-law at 8 kHz, mono. */
export const FORMAT: AudioFormat = rawFormat();

/**
 * `count` signatures of distinct audio: each from two random 2.3 s segments of `audio` mixed (the second 0–6 dB
 * lower), played at a random speed in [0.75, 1.33]. 10,000 real active signatures stand for hours of distinct
 * speech; blocks cut from the same few minutes (or from a few pitch-shifted copies of them) repeat each other's
 * sub-fingerprints, crowd the same index buckets and make lookups look far more expensive than they are.
 */
export function signaturesFrom(audio: Float32Array, count: number, seed: number): Signature[] {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const seg = 2.3 * 8000;
  const first = 5; // frame 0 of the block: the envelope needs 64 ms of audio before the instant
  const analyzer = new FrameAnalyzer();
  const sigs: Signature[] = [];
  for (let k = 0; sigs.length < count && k < count * 20; k++) {
    const rate = 0.75 + rnd() * 0.58;
    const start = Math.floor(rnd() * (audio.length - seg * 1.4));
    const other = Math.floor(rnd() * (audio.length - seg * 1.4));
    const g = Math.pow(10, (-6 * rnd()) / 20);
    const x = new Float32Array(seg);
    for (let i = 0; i < seg; i++) {
      const p = i * rate;
      const i0 = Math.floor(p);
      const f = p - i0;
      const a = audio[start + i0]! * (1 - f) + audio[start + i0 + 1]! * f;
      const b = audio[other + i0]! * (1 - f) + audio[other + i0 + 1]! * f;
      x[i] = 0.7 * (a + g * b);
    }
    const ring = new SampleRing(seg);
    const store = new FrameStore(256);
    const fp = new Fingerprinter(ring, store, analyzer);
    ring.write(0, x, 0);
    fp.advance();
    if (store.end < first + 128 || store.energy[first]! < -40) continue;
    // Mask as the source pipeline does: frames 25 dB under the block's peak or under -55 dB.
    let peak = -Infinity;
    for (let j = 0; j < 128; j++) peak = Math.max(peak, store.energy[first + j]!);
    const mask = new Uint8Array(16);
    let used = 0;
    for (let j = 0; j < 128; j++) {
      if (store.energy[first + j]! < Math.max(peak - 25, -55)) mask[j >> 3] = mask[j >> 3]! | (1 << (j & 7));
      else used++;
    }
    if (used < 24) continue;
    sigs.push(buildSignature({
      measurement: "speed",
      node: "a",
      pod: "p",
      stream: `s${k}`,
      timeNs: 1_700_000_000_000_000_000n + BigInt(k) * 1_000_000n,
      offsetMs: 0,
      fingerprint: store.bits.slice(first, first + 128),
      mask,
      levelEnvelope: sourceEnvelope(ring, first * FP_PARAMS.hop + INSTANT_OFFSET),
      ids: {},
    }));
  }
  return sigs;
}

async function main(): Promise<void> {
  await initAudioEngine();
  const active = arg("--active", 10_000);
  const seconds = arg("--seconds", 120);
  const a = await speech(Math.max(seconds, 400), 0);
  const b = await speech(seconds, 1);
  const audioS = b.length / 8000;
  console.log(
    `speech: ${(a.length / 8000).toFixed(0)} s for signatures, ${audioS.toFixed(0)} s of other speech`,
  );

  // Fingerprinter alone, in 20 ms pushes.
  {
    const ring = new SampleRing(8000 * 4);
    const store = new FrameStore(4096);
    const fp = new Fingerprinter(ring, store, new FrameAnalyzer());
    const c0 = cpu();
    for (let at = 0; at + 160 <= b.length; at += 160) {
      ring.write(at, b.subarray(at, at + 160), 0);
      fp.advance();
    }
    console.log(`fingerprint:   ${(audioS / (cpu() - c0)).toFixed(0)}x real time`);
  }

  const msgs = messages(b);
  // Detector.
  {
    const sp = new SourcePipeline({
      measurement: "speed",
      node: "a",
      pod: "p",
      stream: "s",
      format: FORMAT,
      criteria: {
        vad_mode: "energy",
        vad_aggressiveness: 2,
        energy_threshold: 0.3,
        min_duration_ms: 500,
        min_silence_ms: 300,
        reanchor_ms: 3000,
      },
    });
    const c0 = cpu();
    let n = 0;
    for (const m of msgs) n += sp.push(m).length;
    n += sp.finish().length;
    console.log(`detector:      ${(audioS / (cpu() - c0)).toFixed(0)}x real time (${n} signatures)`);
  }

  const sigs = signaturesFrom(a, active, 1);
  const index = new SignatureIndex({ maxActive: active + 10 });
  for (const s of sigs) index.add(s);
  const st = index.stats();
  console.log(`index: ${index.size} active signatures, ${st.entries} entries, ${st.bucketFull} over-full`);

  const target = (
    name: string,
    audio: { timeNs: bigint; payload: Uint8Array }[],
    seconds: number,
    against = index,
  ) => {
    const tp = new TargetPipeline({
      measurement: "speed",
      stage: "t",
      node: "b",
      pod: "q",
      stream: name,
      format: FORMAT,
      index: against,
    });
    const c0 = cpu();
    let matches = 0;
    for (const m of audio) matches += tp.push(m).length;
    matches += tp.finish().length;
    const cs = cpu() - c0;
    const ms = tp.stats().matcher;
    if (against === index) {
      console.log(
        `matcher (${name}): ${(seconds / cs).toFixed(0)}x real time, ${matches} matches, ` +
          `${(ms.hits / (seconds * 62.5)).toFixed(1)} hits/frame, ${ms.verified} verified`,
      );
    }
    return { tp, cpuS: cs, matches };
  };
  const unrelated = target("unrelated", msgs, audioS);
  const tp = unrelated.tp;
  // The same audio against an empty index: decode and fingerprint only, so that the matcher stage's own cost
  // shows.
  const bare = target("unrelated, empty index", msgs, audioS, new SignatureIndex({ maxActive: 1 }));
  const stageX = audioS / (unrelated.cpuS - bare.cpuS);
  const met = (ok: boolean) => (ok ? "met" : "not met");
  console.log(
    `  target (issue 16): matcher >= ${MATCHER_TARGET_X}x per core with ${index.size} active signatures on ` +
      `non-matching audio; measured: pipeline ${(audioS / unrelated.cpuS).toFixed(0)}x, ` +
      `${met(audioS / unrelated.cpuS >= MATCHER_TARGET_X)}; matcher stage alone ${stageX.toFixed(0)}x, ` +
      `${met(stageX >= MATCHER_TARGET_X)} (decode and fingerprint alone ${(audioS / bare.cpuS).toFixed(0)}x)`,
  );
  const related = messages(a.subarray(0, b.length));
  // Timed on a warm engine: the first pass's ~200 matches are the first verifications and alignments of the
  // process, and JIT compilation doubles their CPU (1.6 against 0.77 ms a match), which a sensor pays once, not
  // per match. The first pass is printed too.
  const coldVerify = timeInside(Verifier.prototype, "verify");
  const coldAlign = timeInside(FineAligner.prototype, "align");
  const cold = target("same speaker, unshifted", related, audioS);
  for (const t of [coldVerify, coldAlign]) t.restore();
  const coldMs = ((coldVerify.cpuS + coldAlign.cpuS) / cold.matches) * 1e3;
  const verify = timeInside(Verifier.prototype, "verify");
  const rephase = timeInside(Rephaser.prototype, "run");
  const align = timeInside(FineAligner.prototype, "align");
  const rel = target("same speaker, unshifted", related, audioS);
  for (const t of [verify, rephase, align]) t.restore();
  const perMatch = (x: Inside) => ((x.cpuS / rel.matches) * 1e3).toFixed(2);
  const perMatchMs = ((verify.cpuS + align.cpuS) / rel.matches) * 1e3;
  console.log(
    `  per match: ${perMatchMs.toFixed(2)} ms CPU (verification ${perMatch(verify)} ms in ${verify.calls} ` +
      `calls, of which near-miss re-scoring ${perMatch(rephase)} ms in ${rephase.calls}; alignment ` +
      `${
        perMatch(align)
      } ms in ${align.calls}) over ${rel.matches} matches, the second pass (the first, JIT-cold: ` +
      `${coldMs.toFixed(2)} ms)`,
  );
  console.log(
    `  target (issue 16): per match <= ${PER_MATCH_TARGET_MS} ms (half of 1–2 ms before); measured ` +
      `${perMatchMs.toFixed(2)} ms, ${met(perMatchMs <= PER_MATCH_TARGET_MS)}`,
  );

  // Backward search in a full lookback.
  const probes = signaturesFrom(a, 200, 7);
  const c0 = cpu();
  let found = 0;
  for (const s of probes) found += tp.searchSignature(s).length;
  console.log(
    `searchSignature: ${(((cpu() - c0) / probes.length) * 1e6).toFixed(0)} µs per (signature, stream)`,
  );
  void found;
  console.log(
    `memory per target stream (lookback ring + frames): ${(tp.memoryBytes() / 1024).toFixed(0)} KiB`,
  );
}

if (import.meta.main) await main();
