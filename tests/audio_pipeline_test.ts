import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { encodeSamples, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import {
  initAudioEngine,
  type MessageIn,
  SignatureIndex,
  SourcePipeline,
  TargetPipeline,
} from "../audio/pipeline.ts";
import { decodeSignature, encodeSignature } from "../audio/fingerprint/signature.ts";
import type { AudioCriteria, AudioFormat, Match, Signature } from "../audio/types.ts";
import { rng } from "./support/rng.ts";

await initAudioEngine();

const FIXTURES = new URL("../fixtures/audio_fp/", import.meta.url);
const T0 = 1_763_900_000_000_000_000n;
/** Target audio is delayed by this (a stage's latency) and shifted by a lead-in of silence. */
const LATENCY_NS = 250_000_000n;
const LEAD_IN = 1234;
const CRITERIA: AudioCriteria = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 200,
  min_silence_ms: 300,
  reanchor_ms: 1000,
};

function fixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, FIXTURES));
}

function toFloat(mulaw: Uint8Array): Float32Array {
  return Float32Array.from(mulaw, (b) => MULAW_TO_LINEAR[b]! / 32768);
}

function format(codec: AudioFormat["codec"], rate = 8000): AudioFormat {
  return {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec,
    sample_rate: rate,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  };
}

/** A captured stream: messages plus where each one's samples start (native samples). */
interface Stream {
  msgs: MessageIn[];
  starts: number[];
  rate: number;
}

/**
 * Cuts `bytes` (`bps` bytes per sample at `rate`) into messages of random 10–120 ms (or fixed `fixedMs`), each
 * captured at `t0` + the end of its audio.
 */
function cut(
  bytes: Uint8Array,
  rate: number,
  bps: number,
  t0: bigint,
  rnd?: () => number,
  fixedMs = 20,
): Stream {
  const msgs: MessageIn[] = [];
  const starts: number[] = [];
  for (let at = 0; at < bytes.length / bps;) {
    const ms = rnd ? 10 + Math.floor(rnd() * 111) : fixedMs;
    const n = Math.min(bytes.length / bps - at, Math.round((ms * rate) / 1000));
    starts.push(at);
    msgs.push({
      timeNs: t0 + BigInt(Math.round(((at + n) / rate) * 1e9)),
      payload: bytes.subarray(at * bps, (at + n) * bps),
    });
    at += n;
  }
  return { msgs, starts, rate };
}

/** Native sample of a tap on `stream`. */
function sampleOf(stream: Stream, timeNs: bigint, offsetMs: number): number {
  const i = stream.msgs.findIndex((m) => m.timeNs === timeNs);
  ok(i >= 0, `no message at ${timeNs}`);
  return stream.starts[i]! + (offsetMs * stream.rate) / 1000;
}

function source(): { stream: Stream; sigs: Signature[] } {
  const stream = cut(fixture("speech_8k.ul"), 8000, 1, T0);
  const sp = new SourcePipeline({
    measurement: "m",
    node: "node-a",
    pod: "voice/gw-0",
    stream: "call-1",
    format: format("mulaw"),
    criteria: CRITERIA,
  });
  const sigs: Signature[] = [];
  stream.msgs.forEach((m, i) => sigs.push(...sp.push(m, i === 0 ? { interval_id: "iv-1" } : undefined)));
  sigs.push(...sp.finish());
  return { stream, sigs };
}

const SRC = source();

/** Runs a target stream forward (index filled first); returns the matches. */
function forward(sigs: Signature[], stream: Stream, fmt: AudioFormat, stage = "t"): Match[] {
  const index = new SignatureIndex();
  for (const s of sigs) index.add(s);
  const tp = new TargetPipeline({
    measurement: "m",
    stage,
    node: "node-b",
    pod: "voice/asr-0",
    stream: "x",
    format: fmt,
    index,
  });
  const out: Match[] = [];
  for (const m of stream.msgs) out.push(...tp.push(m));
  out.push(...tp.finish());
  return out;
}

/** Expected target native sample of a signature's instant when the target is the source shifted by `lead`. */
function expectedSample(sig: Signature, lead: number, ratio = 1): number {
  return (sampleOf(SRC.stream, sig.source.timeNs, sig.source.offsetMs) + lead) * ratio;
}

/** Asserts every match is its signature's instant within `tolMs`, and that at least `min` signatures matched. */
function checkMatches(matches: Match[], stream: Stream, lead: number, tolMs: number, min: number, ratio = 1) {
  const bySig = new Map(SRC.sigs.map((s) => [s.id, s]));
  const seen = new Set<string>();
  for (const m of matches) {
    ok(!seen.has(m.signatureId), "one match per signature and stream");
    seen.add(m.signatureId);
    const sig = bySig.get(m.signatureId)!;
    const got = sampleOf(stream, m.target.timeNs, m.target.offsetMs);
    const want = expectedSample(sig, lead, ratio);
    ok(
      Math.abs(got - want) <= (tolMs * stream.rate) / 1000,
      `off by ${((got - want) * 1000) / stream.rate} ms`,
    );
    strictEqual(m.latencyS, Number(m.target.timeNs - m.source.timeNs) / 1e9);
    deepStrictEqual(m.source, sig.source);
  }
  ok(seen.size >= min, `${seen.size} of ${SRC.sigs.length} signatures matched`);
}

function withLead(bytes: Uint8Array, lead: number, silence = 0xff): Uint8Array {
  const out = new Uint8Array(lead + bytes.length).fill(silence);
  out.set(bytes, lead);
  return out;
}

Deno.test("source: signatures from the speech fixture, each under 1 KB on the wire, with the message's ids", () => {
  const { sigs } = SRC;
  ok(sigs.length >= 5, `${sigs.length} signatures in 7.4 s`);
  for (const s of sigs) {
    const bytes = encodeSignature(s);
    ok(bytes.length < 1024);
    deepStrictEqual(decodeSignature(bytes), s);
    deepStrictEqual(s.ids, { interval_id: "iv-1" });
    ok(s.levelEnvelope !== undefined);
  }
  // Instants are on the 16 ms grid plus 1 ms, in the source's own message timing.
  for (const s of sigs) strictEqual((sampleOf(SRC.stream, s.source.timeNs, s.source.offsetMs) - 8) % 128, 0);
});

Deno.test("target: the same audio re-chunked (10-120 ms) is matched to the exact sample", () => {
  const stream = cut(withLead(fixture("speech_8k.ul"), LEAD_IN), 8000, 1, T0 + LATENCY_NS, rng(1));
  const matches = forward(SRC.sigs, stream, format("mulaw"));
  checkMatches(matches, stream, LEAD_IN, 0.125, SRC.sigs.length);
  for (const m of matches) ok(m.ber < 0.02, `ber ${m.ber}`);
});

Deno.test("target: random chunkings give identical matches (property)", () => {
  const bytes = withLead(fixture("speech_8k.ul"), LEAD_IN);
  let first: string[] | undefined;
  for (let seed = 1; seed <= 4; seed++) {
    const stream = cut(bytes, 8000, 1, T0 + LATENCY_NS, rng(seed * 7919));
    const got = forward(SRC.sigs, stream, format("mulaw"))
      .map((m) => `${m.signatureId}@${sampleOf(stream, m.target.timeNs, m.target.offsetMs)}:${m.ber}`)
      .sort();
    if (first) deepStrictEqual(got, first, `chunking ${seed}`);
    else first = got;
  }
  ok(first!.length >= 5);
});

Deno.test("target: A-law at -6 dB, 16 kHz and GSM 06.10 are matched within 1 ms, 20 dB SNR within 20 ms", () => {
  const x = toFloat(fixture("speech_8k.ul"));
  // A-law, -6 dB.
  const alaw = encodeSamples("alaw", x.map((v) => v * 0.5));
  const s1 = cut(withLead(alaw, LEAD_IN, 0xd5), 8000, 1, T0 + LATENCY_NS, rng(2));
  checkMatches(forward(SRC.sigs, s1, format("alaw")), s1, LEAD_IN, 1, SRC.sigs.length);
  // 16 kHz (sox), first 4 s: the blocks that fit.
  const s2 = cut(withLead(fixture("speech_16k.ul"), 2 * LEAD_IN), 16000, 1, T0 + LATENCY_NS, rng(3));
  checkMatches(forward(SRC.sigs, s2, format("mulaw", 16000)), s2, LEAD_IN, 1, 1, 2);
  // GSM round trip (sox), first 5 s.
  const s3 = cut(withLead(fixture("speech_gsm_8k.ul"), LEAD_IN), 8000, 1, T0 + LATENCY_NS, rng(4));
  checkMatches(forward(SRC.sigs, s3, format("mulaw")), s3, LEAD_IN, 1, 2);
  // White noise 20 dB below the speech's RMS (over the talking part), PCM16.
  const rnd = rng(5);
  let p = 0, n = 0;
  for (const v of x) if (Math.abs(v) > 0.01) (p += v * v), n++;
  const sigma = Math.sqrt(p / n / 100);
  const noisy = x.map((v) =>
    v + sigma * Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd())
  );
  const pcm = encodeSamples("pcm16le", noisy);
  const s4 = cut(withLead(pcm, 2 * LEAD_IN, 0), 8000, 2, T0 + LATENCY_NS, rng(6));
  // In noise the envelope can lock on a neighbouring pitch pulse: correct (the bench's 20 ms), not always exact.
  checkMatches(forward(SRC.sigs, s4, format("pcm16le")), s4, LEAD_IN, 20, SRC.sigs.length - 1);
});

Deno.test("target: unrelated speech matches nothing", () => {
  const stream = cut(fixture("other_8k.ul"), 8000, 1, T0 + LATENCY_NS, rng(9));
  deepStrictEqual(forward(SRC.sigs, stream, format("mulaw")), []);
});

Deno.test("both orders: signatures arriving after the target audio find the same instants", () => {
  const stream = cut(withLead(fixture("speech_8k.ul"), LEAD_IN), 8000, 1, T0 + LATENCY_NS, rng(11));
  const fwd = forward(SRC.sigs, stream, format("mulaw"));
  const index = new SignatureIndex();
  const tp = new TargetPipeline({
    measurement: "m",
    stage: "t",
    node: "node-b",
    pod: "voice/asr-0",
    stream: "x",
    format: format("mulaw"),
    index,
  });
  for (const m of stream.msgs) deepStrictEqual(tp.push(m), []);
  const back: Match[] = [];
  for (const s of SRC.sigs) {
    index.add(s);
    back.push(...tp.searchSignature(s));
  }
  // Asking again, or finishing, reports nothing more: one match per (signature, stage, stream).
  for (const s of SRC.sigs) deepStrictEqual(tp.searchSignature(s), []);
  deepStrictEqual(tp.finish(), []);
  const key = (m: Match) => `${m.signatureId}@${sampleOf(stream, m.target.timeNs, m.target.offsetMs)}`;
  deepStrictEqual(back.map(key).sort(), fwd.map(key).sort());
  strictEqual(tp.stats().matches, SRC.sigs.length);
});

Deno.test("only the first match per signature: audio repeated later in the stream is not reported again", () => {
  const once = withLead(fixture("speech_8k.ul"), LEAD_IN);
  const twice = new Uint8Array(2 * once.length);
  twice.set(once);
  twice.set(once, once.length);
  const stream = cut(twice, 8000, 1, T0 + LATENCY_NS, rng(12));
  const matches = forward(SRC.sigs, stream, format("mulaw"));
  strictEqual(matches.length, SRC.sigs.length);
  checkMatches(matches, stream, LEAD_IN, 0.125, SRC.sigs.length);
});

Deno.test("a signature removed from the index is no longer found going forward", () => {
  const stream = cut(withLead(fixture("speech_8k.ul"), LEAD_IN), 8000, 1, T0 + LATENCY_NS, rng(13));
  const index = new SignatureIndex();
  for (const s of SRC.sigs) index.add(s);
  index.remove(SRC.sigs[0]!.id);
  const tp = new TargetPipeline({
    measurement: "m",
    stage: "t",
    node: "n",
    pod: "p",
    stream: "x",
    format: format("mulaw"),
    index,
  });
  const out: Match[] = [];
  for (const m of stream.msgs) out.push(...tp.push(m));
  out.push(...tp.finish());
  strictEqual(out.length, SRC.sigs.length - 1);
  ok(!out.some((m) => m.signatureId === SRC.sigs[0]!.id));
});

Deno.test("pipelines: a stream of messages whose bodies were all cut holds bounded state", () => {
  // JSON bodies that Pixie truncated before any came whole: no size to give their gaps, each message an entry
  // owning no sample. Both timelines held every one (~8 bytes a message, for as long as the stream lasted).
  const fmt: AudioFormat = {
    ...format("mulaw"),
    envelope: "json",
    path: "media.payload",
    encoding: "base64",
  };
  const cutBody = new TextEncoder().encode('{"event":"media","media":{"payload":"AAAA');
  const index = new SignatureIndex();
  const sp = new SourcePipeline({
    measurement: "m",
    node: "a",
    pod: "p/a",
    stream: "s",
    format: fmt,
    criteria: CRITERIA,
  });
  const tp = new TargetPipeline({
    measurement: "m",
    stage: "t",
    node: "b",
    pod: "p/b",
    stream: "x",
    format: fmt,
    index,
  });
  const before = tp.memoryBreakdown().timeline;
  for (let i = 0; i < 60_000; i++) {
    const msg = { timeNs: T0 + BigInt(i) * 20_000_000n, payload: cutBody, bodySize: 400 };
    sp.push(msg);
    tp.push(msg);
  }
  strictEqual(tp.stats().markers.truncated, 60_000);
  strictEqual(tp.decoder.timeline.length, 0);
  ok(
    tp.memoryBreakdown().timeline - before < 8_000,
    `target timeline ${tp.memoryBreakdown().timeline} bytes`,
  );
  ok(sp.decoder.timeline.bytes < 8_000, `source timeline ${sp.decoder.timeline.bytes} bytes`);
});

Deno.test("source: ids given with every message are held once per change, not once per message", () => {
  // A call's ids stick to its stream (tap_intake.ts): every message is pushed with them, 30 s of 20 ms messages.
  const speech = fixture("speech_8k.ul");
  const sp = new SourcePipeline({
    measurement: "m",
    node: "node-a",
    pod: "voice/gw-0",
    stream: "call-1",
    format: format("mulaw"),
    criteria: CRITERIA,
  });
  const call = { call_sid: "CA01", stream_sid: "MZ01" };
  const sigs: Signature[] = [];
  for (let k = 0; k < 1500; k++) {
    const at = (k * 160) % (speech.length - 160);
    const ids = k < 1000 ? call : { ...call, interval_id: "iv-2" };
    sigs.push(
      ...sp.push({ timeNs: T0 + BigInt(k) * 20_000_000n, payload: speech.subarray(at, at + 160) }, ids),
    );
  }
  sigs.push(...sp.finish());
  strictEqual(sp.idSpans, 2, "the call's ids, then with the interval's");
  // Each signature carries the ids of its instant's message.
  const change = T0 + 1000n * 20_000_000n;
  ok(sigs.some((s) => s.source.timeNs < change) && sigs.some((s) => s.source.timeNs >= change));
  for (const s of sigs) {
    deepStrictEqual(s.ids, s.source.timeNs < change ? call : { ...call, interval_id: "iv-2" });
  }
});
