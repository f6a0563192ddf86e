/**
 * A source stream fingerprints only the frames of its anchors' blocks (and the frame before each run, whose band
 * energies the first frame's bits read): its signatures must equal those of a source that fingerprints every
 * frame (`eagerFrames`), on real speech cut every way the pipeline meets it: short messages, one long message
 * (fed in pieces), gaps filled on the media clock or for missing payloads, an onset confirmed seconds late, and
 * a block cut short by the end of the stream.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { OnsetDetector } from "../audio/detect/onset.ts";
import { initAudioEngine, type MessageIn, SourcePipeline } from "../audio/pipeline.ts";
import type { AudioCriteria, Signature } from "../audio/types.ts";
import { FORMAT } from "./support/speech_signatures.ts";

await initAudioEngine();

const T0 = 1_763_900_000_000_000_000n;
const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 200,
  min_silence_ms: 300,
  reanchor_ms: 1000,
};
/** The project's defaults (config/defaults.ts): an onset confirmed after 500 ms of speech, re-anchors every 3 s. */
const DEFAULT_CRITERIA: AudioCriteria = { ...CRITERIA, min_duration_ms: 500, reanchor_ms: 3000 };
/** μ-law code of a zero sample. */
const MU_SILENCE = 0xff;

function popcount(b: number): number {
  let n = 0;
  for (; b; b &= b - 1) n++;
  return n;
}

function fixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, FIXTURES));
}

function silence(seconds: number): Uint8Array {
  return new Uint8Array(Math.round(seconds * 8000)).fill(MU_SILENCE);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Three recordings with pauses of silence between them (~40 s, a third of it speech). */
const TALK = concat(
  fixture("speech_8k.ul"),
  silence(10),
  fixture("other_8k.ul"),
  silence(8),
  fixture("speech_gsm_8k.ul"),
  silence(5),
);

/**
 * `bytes` as messages of `ms` milliseconds (or seeded random 10-120 ms when `ms` is 0), each stamped with the
 * capture time of its last sample and, with `rtp`, its RTP timestamp.
 */
function cut(bytes: Uint8Array, ms: number, opts: { seed?: number; rtp?: boolean } = {}): MessageIn[] {
  let s = opts.seed ?? 1;
  const out: MessageIn[] = [];
  for (let at = 0; at < bytes.length;) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const n = Math.min(bytes.length - at, ms > 0 ? ms * 8 : 80 + (s % 880));
    const msg: MessageIn = {
      timeNs: T0 + BigInt(Math.round(((at + n) / 8000) * 1e9)),
      payload: bytes.subarray(at, at + n),
    };
    if (opts.rtp) msg.mediaClock = { ts: (1000 + at) >>> 0, clockRate: 8000 };
    out.push(msg);
    at += n;
  }
  return out;
}

interface Run {
  sigs: Signature[];
  stats: ReturnType<SourcePipeline["stats"]>;
  frames: number;
}

function run(msgs: readonly MessageIn[], criteria: AudioCriteria, eagerFrames: boolean): Run {
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: FORMAT,
    criteria,
    eagerFrames,
  });
  const sigs: Signature[] = [];
  msgs.forEach((m, i) => sigs.push(...sp.push(m, i % 50 === 0 ? { interval_id: `iv-${i}` } : undefined)));
  sigs.push(...sp.finish());
  return { sigs, stats: sp.stats(), frames: sp.framesAnalyzed };
}

/**
 * Runs `msgs` both ways; asserts the same signatures and counters, and that the lazy run analysed no more frames
 * than its blocks have: each signature's and each skipped anchor's (a block at most) and the frame before each.
 */
function same(msgs: readonly MessageIn[], criteria: AudioCriteria = CRITERIA): { lazy: Run; eager: Run } {
  const eager = run(msgs, criteria, true);
  const lazy = run(msgs, criteria, false);
  ok(eager.sigs.length > 0, "no signatures");
  deepStrictEqual(lazy.sigs, eager.sigs);
  deepStrictEqual(lazy.stats, eager.stats);
  const skipped = Object.values(lazy.stats.skipped ?? {}).reduce((a, b) => a + b, 0);
  const bound = lazy.sigs.reduce((n, s) => n + s.fingerprint.length + 1, 0) + skipped * 129;
  ok(lazy.frames <= bound, `${lazy.frames} frames analysed, the blocks have ${bound}`);
  return { lazy, eager };
}

Deno.test("lazy source frames: 20 ms messages give the eager signatures from less than half the frames", () => {
  const { lazy, eager } = same(cut(TALK, 20));
  // Every frame complete in the stream, eagerly; lazily only the blocks' (bounded in `same`).
  strictEqual(eager.frames, Math.floor((TALK.length - 1024) / 128) + 1);
  ok(lazy.frames < 0.5 * eager.frames, `${lazy.frames} of ${eager.frames} frames analysed`);
});

Deno.test("lazy source frames: random message sizes and the default criteria", () => {
  same(cut(TALK, 0, { seed: 7 }));
  same(cut(TALK, 0, { seed: 11 }), DEFAULT_CRITERIA);
});

Deno.test("lazy source frames: one long message, fed to the ring in pieces", () => {
  for (const criteria of [CRITERIA, DEFAULT_CRITERIA]) {
    same([{ timeNs: T0 + BigInt(Math.round((TALK.length / 8000) * 1e9)), payload: TALK }], criteria);
  }
  // Two long messages meeting in the middle of an utterance.
  const half = 5 * 8000 + 3210;
  same([
    { timeNs: T0 + BigInt(Math.round((half / 8000) * 1e9)), payload: TALK.subarray(0, half) },
    { timeNs: T0 + BigInt(Math.round((TALK.length / 8000) * 1e9)), payload: TALK.subarray(half) },
  ]);
});

Deno.test("lazy source frames: anchors next to gaps on the media clock and missing payloads", () => {
  const rtp = cut(TALK, 20, { rtp: true });
  // Lost packets: 1.5 s inside the first recording's speech (filled, within an anchor's block), 0.3 s right after
  // the second recording's onset, and 8 s more in the pause after it (a gap longer than the ring's 4 s).
  const lost = new Set<number>();
  for (let i = 150; i < 225; i++) lost.add(i);
  for (let i = 905; i < 920; i++) lost.add(i);
  const withGaps = rtp.filter((_, i) => !lost.has(i));
  const long = withGaps.findIndex((m) => m.timeNs > T0 + 24_000_000_000n);
  const shifted = withGaps.map((m, i) =>
    i < long ? m : { ...m, mediaClock: { ts: (m.mediaClock!.ts + 64_000) >>> 0, clockRate: 8000 } }
  );
  const { lazy } = same(shifted);
  // The block from 1.64 s has its last 40-odd frames in the first gap, masked.
  const masked = (s: Signature) => [...(s.mask ?? [])].reduce((n, b) => n + popcount(b), 0);
  ok(lazy.sigs.some((s) => masked(s) >= 40), `masked frames: ${lazy.sigs.map(masked)}`);
  // Rows without a payload: gaps of the median message's length.
  const missing = same(
    cut(TALK, 20).map((m, i) => (i % 97 === 40 || (i >= 300 && i < 340) ? { timeNs: m.timeNs } : m)),
  );
  strictEqual(missing.lazy.stats.errors.missing_payload, 59);
});

Deno.test("lazy source frames: an onset confirmed seconds after it, beyond what the ring holds", () => {
  // A loud 10 ms of speech in every 70 ms for 7.5 s: each pause is the longest an onset's confirming speech
  // tolerates, so with min_duration_ms 1000 (100 speech frames) the onset a second in is confirmed 6.9 s later,
  // while the source ring holds 4 s: the frames its block needs are computed before the ring lets them go.
  const speech = fixture("speech_8k.ul");
  const loud = speech.subarray(34320, 34400);
  const flicker = new Uint8Array(7.5 * 8000).fill(MU_SILENCE);
  for (let at = 0; at < flicker.length; at += 560) flicker.set(loud, at);
  const audio = concat(silence(1), flicker, speech, silence(1));
  const slow: AudioCriteria = { ...CRITERIA, min_duration_ms: 1000, reanchor_ms: 0 };
  for (const msgs of [cut(audio, 20), cut(audio, 0, { seed: 3 }), cut(audio, 1000)]) {
    const { lazy } = same(msgs, slow);
    // The late onset's block starts in the flicker, a second in (stamped with its message's capture time); its
    // instant had left the ring when the block was built.
    const first = lazy.sigs[0]!;
    ok(first.source.timeNs <= T0 + 2_000_000_000n, `first signature at ${first.source.timeNs - T0} ns`);
    strictEqual(first.levelEnvelope, undefined);
    deepStrictEqual(lazy.stats.skipped, { no_envelope: 1 });
  }
});

Deno.test("lazy source frames: a block cut short by the end of the stream", () => {
  const speech = fixture("speech_8k.ul");
  for (const seconds of [3.5, 5.5, 6, 6.3]) {
    const end = Math.round(seconds * 8000);
    const { lazy } = same(cut(speech.subarray(0, end), 20));
    const last = lazy.sigs[lazy.sigs.length - 1]!;
    ok(last.fingerprint.length < 128, `last block has ${last.fingerprint.length} frames`);
  }
});

Deno.test("onset detector: the pending onset, and the longest delay before it is reported", () => {
  // 5 speech frames confirm; each after the longest pause tolerated (6 frames of 10 ms).
  const det = new OnsetDetector({ min_duration_ms: 50, min_silence_ms: 300, reanchor_ms: 0 });
  strictEqual(det.maxDelaySamples, 4 * 7 * 80);
  let k = 0;
  strictEqual(det.pendingOnset, undefined);
  for (; k < 28; k++) {
    strictEqual(det.push(k, k % 7 === 0), undefined);
    strictEqual(det.pendingOnset, 0);
  }
  deepStrictEqual(det.push(k, true), { sample: 0, kind: "onset" });
  strictEqual(k * 80, det.maxDelaySamples);
  strictEqual(det.pendingOnset, undefined);
  // A pause one frame longer drops the candidate.
  const blip = new OnsetDetector({ min_duration_ms: 50, min_silence_ms: 300, reanchor_ms: 0 });
  blip.push(0, true);
  for (k = 1; k <= 7; k++) blip.push(k, false);
  strictEqual(blip.pendingOnset, undefined);
});
