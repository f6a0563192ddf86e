import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { parseCaptureLine } from "../pixie/capture.ts";
import { BENCH_CHAINS, type Chain, formatOf, renderChain, SOURCE_CHAIN } from "../fixtures/gen/chains.ts";
import { captureFiles, generateCapture } from "../fixtures/gen/capture.ts";
import {
  alawToLinear,
  decodeSamples,
  encodeSamples,
  linearToAlaw,
  linearToMulaw,
  mulawToLinear,
} from "../fixtures/gen/codecs.ts";
import { activePower, addNoiseAtSnr, measureSnr } from "../fixtures/gen/noise.ts";
import {
  locateInstant,
  type SimStream,
  simulateStream,
  TimeIndex,
  toBase64,
} from "../fixtures/gen/pipeline_sim.ts";
import { Rng } from "../fixtures/gen/prng.ts";
import { gsmRoundTrip, haveSox, resample, runSox } from "../fixtures/gen/sox.ts";
import { CALL_RATE, composeCall, dealPrompts, type Prompt } from "../fixtures/gen/speech.ts";
import { encodeWav, parseWav } from "../fixtures/gen/wav.ts";

const soxPresent = await haveSox();

/** Synthetic "speech": tone bursts with a click (a single full-scale-ish sample) at known positions. */
function tonePrompt(name: string, seconds: number, hz: number, rate = CALL_RATE): Prompt {
  const n = Math.round(seconds * rate);
  const samples = new Float32Array(n);
  for (let i = 0; i < n; i++) samples[i] = 0.3 * Math.sin((2 * Math.PI * hz * i) / rate);
  return { name, samples };
}

async function sha(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return Array.from(d).map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function streamDigest(s: SimStream): Promise<string> {
  const parts: string[] = [];
  for (const m of s.messages) parts.push(`${m.timeNs}:${m.seq}:${await sha(m.payload)}`);
  return parts.join(",") + "|" + s.lost.map((l) => l.seq).join(",");
}

/** Extracts the audio bytes of a generated message, whatever its envelope. */
function audioBytes(chain: Chain, payload: Uint8Array): Uint8Array {
  if (chain.envelope === "raw") return payload;
  const obj = JSON.parse(new TextDecoder().decode(payload));
  const b64: string = chain.envelope === "twilio" ? obj.media.payload : obj.data;
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

Deno.test("rng: the same seed gives the same sequence; forks do not depend on draws made", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.next());
  deepEqual(Array.from({ length: 100 }, () => b.next()), xs);
  ok(xs.every((x) => x >= 0 && x < 1));
  ok(new Set(xs).size > 95);
  notSame(new Rng(43).next(), xs[0]!);
  const c = new Rng(7);
  const f1 = c.fork("x").next();
  c.next();
  c.next();
  equal(c.fork("x").next(), f1);
  notSame(c.fork("y").next(), f1);
  const ints = Array.from({ length: 1000 }, () => a.int(3, 5));
  deepEqual([...new Set(ints)].sort(), [3, 4, 5]);
});

function notSame(x: number, y: number): void {
  ok(x !== y, `${x} should differ from ${y}`);
}

Deno.test("wav: encode and parse round trip; non-PCM16 input is rejected clearly", () => {
  const samples = Float32Array.from({ length: 100 }, (_, i) => Math.round(((i - 50) / 50) * 32767) / 32768);
  const back = parseWav(encodeWav({ sampleRate: 8000, samples }));
  equal(back.sampleRate, 8000);
  deepEqual(Array.from(back.samples), Array.from(samples));
  const bytes = encodeWav({ sampleRate: 8000, samples });
  new DataView(bytes.buffer).setUint16(22, 2, true);
  throws(() => parseWav(bytes, "stereo.wav"), /stereo\.wav: only 16-bit PCM mono.*sox/);
  throws(() => parseWav(new Uint8Array(10)), /not a RIFF\/WAVE/);
});

Deno.test("codecs: G.711 decode tables invert the encoders at every code", () => {
  for (let code = 0; code < 256; code++) {
    // 0x7f and 0xff are μ-law's two zeros; everything else must round-trip exactly.
    const mu = linearToMulaw(mulawToLinear(code));
    ok(mu === code || mulawToLinear(mu) === mulawToLinear(code), `μ-law ${code}`);
    equal(linearToAlaw(alawToLinear(code)), code, `A-law ${code}`);
  }
  for (const codec of ["pcm16le", "pcm16be", "float32le"] as const) {
    const x = Float32Array.from([0, 0.5, -0.5, 32767 / 32768, -1]);
    deepEqual(Array.from(decodeSamples(encodeSamples(x, codec), codec)), Array.from(x));
  }
  equal(decodeSamples(encodeSamples(Float32Array.from([2, -2]), "pcm16le"), "pcm16le")[0], 32767 / 32768);
});

Deno.test({
  name: "codecs: G.711 encoders agree with sox for every 16-bit value",
  ignore: !soxPresent,
  fn: async () => {
    const all = new Int16Array(65536).map((_, i) => i - 32768);
    const input = new Uint8Array(all.buffer);
    for (const [name, enc] of [["u-law", linearToMulaw], ["a-law", linearToAlaw]] as const) {
      const out = await runSox(
        [
          "-D",
          "-t",
          "raw",
          "-r",
          "8000",
          "-e",
          "signed",
          "-b",
          "16",
          "-c",
          "1",
          "-L",
          "-",
          "-t",
          "raw",
          "-e",
          name,
          "-b",
          "8",
          "-",
        ],
        input,
      );
      let mismatches = 0;
      for (let i = 0; i < 65536; i++) if (out[i] !== enc(all[i]!)) mismatches++;
      equal(mismatches, 0, name);
    }
  },
});

Deno.test("speech: calls are deterministic, pauses are natural, the floor is never digital zero", () => {
  const prompts = [tonePrompt("a", 1, 440), tonePrompt("b", 0.5, 660), tonePrompt("c", 0.8, 880)];
  const c1 = composeCall("x", prompts, new Rng(5));
  const c2 = composeCall("x", prompts, new Rng(5));
  deepEqual(c1.samples, c2.samples);
  deepEqual(c1.utterances, c2.utterances);
  equal(c1.utterances.length, 3);
  for (let i = 1; i < c1.utterances.length; i++) {
    const gap = (c1.utterances[i]!.start - c1.utterances[i - 1]!.end) / CALL_RATE;
    ok(gap >= 0.3 && gap <= 2, `pause ${gap}`);
  }
  equal(c1.speechSeconds, 2.3);
  const pause = c1.samples.subarray(0, c1.utterances[0]!.start);
  const rms = Math.sqrt(pause.reduce((a, x) => a + x * x, 0) / pause.length);
  ok(rms > 0.0007 && rms < 0.0013, `floor rms ${rms} should be near -60 dBFS`);
  ok(pause.every((x) => x !== 0) || pause.filter((x) => x === 0).length < 5);
});

Deno.test("speech: dealt prompt groups are disjoint and filled in order", () => {
  const prompts = Array.from({ length: 40 }, (_, i) => tonePrompt(`p${i}`, 1 + (i % 3), 300 + i));
  const groups = dealPrompts(prompts, [10, 10, 5], new Rng(1));
  const names = groups.flat().map((p) => p.name);
  equal(new Set(names).size, names.length);
  for (const [i, want] of [10, 10, 5].entries()) {
    const s = groups[i]!.reduce((a, p) => a + p.samples.length / CALL_RATE, 0);
    ok(s >= want && s < want + 3, `group ${i}: ${s} s`);
  }
  deepEqual(dealPrompts(prompts, [10, 10, 5], new Rng(1)), groups);
});

Deno.test("noise: measured SNR on active speech is within 0.3 dB of the requested one", () => {
  const call = composeCall("n", [tonePrompt("a", 2, 500), tonePrompt("b", 2, 1200)], new Rng(9));
  for (const snr of [30, 20, 10]) {
    const noisy = addNoiseAtSnr(call.samples, CALL_RATE, snr, new Rng(snr));
    const got = measureSnr(call.samples, noisy, CALL_RATE);
    ok(Math.abs(got - snr) < 0.3, `requested ${snr} dB, measured ${got.toFixed(2)} dB`);
  }
  // Activity ignores the pauses: the active power is the tones' (0.3 amplitude sine = 0.045), not diluted.
  const p = activePower(call.samples, CALL_RATE);
  ok(Math.abs(p - 0.045) / 0.045 < 0.05, `active power ${p}`);
  deepEqual(
    addNoiseAtSnr(call.samples, CALL_RATE, 20, new Rng(1)),
    addNoiseAtSnr(call.samples, CALL_RATE, 20, new Rng(1)),
  );
});

/** A signal at `rate` with a click (0.9) at each of `clicksS`, zero elsewhere. */
function clicks(rate: number, seconds: number, clicksS: number[]): Float32Array {
  const x = new Float32Array(Math.round(rate * seconds));
  for (const t of clicksS) x[Math.round(t * rate)] = 0.9;
  return x;
}

function checkTruth(chain: Chain, rate: number, seed: number): { present: number; lost: number } {
  const clickTimes = Array.from({ length: 400 }, (_, i) => 0.0123 + i * 0.0497);
  const signal = { sampleRate: rate, samples: clicks(rate, 20.5, clickTimes) };
  const startNs = 1_700_000_000_000_000_000n;
  const sim = simulateStream(signal, chain, {
    stream: "s1",
    pod: "ns/p",
    callStartNs: startNs,
    delayMs: 150,
    jitterMs: 2,
    rng: new Rng(seed),
  });
  // Messages and lost ranges tile the signal without gaps or overlaps, in order.
  const all = [...sim.messages, ...sim.lost].sort((a, b) => a.seq - b.seq);
  equal(all[0]!.startS, 0);
  for (let i = 1; i < all.length; i++) equal(all[i]!.startS, all[i - 1]!.endS);
  ok(Math.abs(all[all.length - 1]!.endS - signal.samples.length / rate) < 1e-9);
  // Capture time = end of the message's audio + delay + jitter, strictly increasing.
  for (let i = 0; i < sim.messages.length; i++) {
    const m = sim.messages[i]!;
    const base = startNs + BigInt(Math.round(m.endS * 1e9)) + 150_000_000n;
    ok(m.timeNs >= base && m.timeNs <= base + 2_000_001n, `message ${i} time`);
    if (i > 0) ok(m.timeNs > sim.messages[i - 1]!.timeNs);
  }
  const times = new TimeIndex(sim);
  let present = 0;
  let lost = 0;
  for (const t of clickTimes) {
    const tq = Math.round(t * rate) / rate;
    const loc = locateInstant(sim, tq);
    if (loc.kind === "lost") {
      ok(sim.lost.some((l) => tq >= l.startS && tq < l.endS));
      lost++;
      continue;
    }
    equal(loc.kind, "present");
    if (loc.kind !== "present") continue;
    present++;
    const m = sim.messages[loc.message]!;
    equal(m.timeNs, loc.timeNs);
    const samples = decodeSamples(audioBytes(chain, m.payload), chain.codec);
    const at = Math.round((loc.offsetMs / 1000) * rate);
    ok(Math.abs(samples[at]! - 0.9) < 0.02, `click at ${t}s found at offset ${loc.offsetMs} ms`);
    const back = times.callTime(loc.timeNs, loc.offsetMs)!;
    ok(Math.abs(back - tq) < 1e-9);
  }
  equal(times.callTime(1n, 0), undefined);
  equal(locateInstant(sim, 99).kind, "outside");
  return { present, lost };
}

Deno.test("pipeline_sim: truth maps instants to the right message and offset (fixed 20 ms, twilio μ-law)", () => {
  const r = checkTruth(SOURCE_CHAIN, 8000, 1);
  equal(r.lost, 0);
  equal(r.present, 400);
});

Deno.test("pipeline_sim: truth under random 10-120 ms chunks and message loss, at 48 kHz float and 16 kHz", () => {
  const chunky: Chain = {
    ...SOURCE_CHAIN,
    name: "t",
    chunking: { kind: "random", minMs: 10, maxMs: 120 },
    loss: 0.1,
  };
  for (
    const [chain, rate] of [
      [{ ...chunky, codec: "float32le", sampleRate: 48000, envelope: "raw" }, 48000],
      [{ ...chunky, codec: "pcm16le", sampleRate: 16000, envelope: "data" }, 16000],
      [{ ...chunky, codec: "alaw", envelope: "twilio" }, 8000],
    ] as const
  ) {
    const r = checkTruth(chain, rate, 3);
    ok(r.lost > 10 && r.lost < 90, `${chain.codec}: ${r.lost} of 400 clicks lost at 10% loss`);
    equal(r.present + r.lost, 400);
  }
});

Deno.test("pipeline_sim: chunk sizes follow the chain and streams are byte-identical for a seed", async () => {
  const chain: Chain = {
    ...SOURCE_CHAIN,
    name: "t",
    chunking: { kind: "random", minMs: 10, maxMs: 120 },
    loss: 0.01,
  };
  const signal = { sampleRate: 8000, samples: clicks(8000, 30, [1, 2, 3]) };
  const opts = { stream: "s", pod: "p", callStartNs: 0n, delayMs: 800, jitterMs: 5 };
  const a = simulateStream(signal, chain, { ...opts, rng: new Rng(11) });
  const b = simulateStream(signal, chain, { ...opts, rng: new Rng(11) });
  const c = simulateStream(signal, chain, { ...opts, rng: new Rng(12) });
  equal(await streamDigest(a), await streamDigest(b));
  ok(await streamDigest(a) !== await streamDigest(c));
  const ms = a.messages.slice(0, -1).map((m) => Math.round((m.endS - m.startS) * 1000));
  ok(ms.every((x) => x >= 10 && x <= 120));
  ok(Math.min(...ms) < 20 && Math.max(...ms) > 100, "the whole 10-120 ms range is used");
  const fixed = simulateStream(signal, SOURCE_CHAIN, { ...opts, rng: new Rng(1) });
  ok(fixed.messages.slice(0, -1).every((m) => Math.abs(m.endS - m.startS - 0.02) < 1e-12));
  equal(fixed.lost.length, 0);
});

Deno.test("pipeline_sim: envelopes carry the audio as the chain's format says", () => {
  const samples = Float32Array.from({ length: 160 }, (_, i) => Math.sin(i / 5) * 0.5);
  for (const chain of BENCH_CHAINS) {
    const sim = simulateStream({ sampleRate: chain.sampleRate, samples }, chain, {
      stream: "MZabc",
      pod: "p",
      callStartNs: 0n,
      delayMs: 0,
      jitterMs: 0,
      rng: new Rng(1),
    });
    const fmt = formatOf(chain);
    const m = sim.messages[0]!;
    const body = audioBytes(chain, m.payload);
    const n = Math.round((m.endS - m.startS) * chain.sampleRate);
    deepEqual(body, encodeSamples(samples.subarray(0, n), chain.codec), chain.name);
    if (chain.envelope === "twilio") {
      equal(fmt.path, "media.payload");
      equal(JSON.parse(new TextDecoder().decode(m.payload)).streamSid, "MZabc");
    } else if (chain.envelope === "data") equal(fmt.path, "data");
    else equal(fmt.envelope, "raw");
  }
  equal(toBase64(Uint8Array.from([1, 2, 3, 4])), btoa("\x01\x02\x03\x04"));
  equal(toBase64(Uint8Array.from([255, 254])), btoa("\xff\xfe"));
});

Deno.test({
  name: "sox: resampling and the GSM round trip keep time aligned (no added delay)",
  ignore: !soxPresent,
  fn: async () => {
    // A windowed noise burst (broadband, so the cross-correlation has one clear peak) must stay where it was
    // after 8->48 kHz and after GSM 06.10.
    const x = new Float32Array(8000);
    const rng = new Rng(5);
    for (let i = 3000; i < 3400; i++) x[i] = 0.2 * rng.gauss() * Math.sin((Math.PI * (i - 3000)) / 400);
    const lag = (a: Float32Array, b: Float32Array, step: number) => {
      let best = -Infinity;
      let at = 0;
      for (let l = -40; l <= 40; l++) {
        let s = 0;
        for (let i = 2900; i < 3500; i++) s += a[i]! * (b[(i + l) * step] ?? 0);
        if (s > best) [best, at] = [s, l];
      }
      return at;
    };
    const up = await resample({ sampleRate: 8000, samples: x }, 48000);
    equal(up.samples.length, 48000);
    equal(lag(x, up.samples, 6), 0);
    const gsm = await gsmRoundTrip({ sampleRate: 8000, samples: x });
    equal(gsm.samples.length, x.length);
    equal(lag(x, gsm.samples, 1), 0);
    ok(measureSnr(x, gsm.samples, 8000) > 3, "GSM output resembles its input");
  },
});

Deno.test({
  name: "chains: rendering is deterministic; gain and rate do what they say",
  ignore: !soxPresent,
  fn: async () => {
    const call = composeCall("r", [tonePrompt("a", 1, 700)], new Rng(2));
    const snr = BENCH_CHAINS.find((c) => c.name === "snr20dB")!;
    const a = await renderChain(call.samples, snr, new Rng(4));
    const b = await renderChain(call.samples, snr, new Rng(4));
    deepEqual(a.samples, b.samples);
    ok(Math.abs(measureSnr(call.samples, a.samples, 8000) - 20) < 0.3);
    const g = await renderChain(call.samples, BENCH_CHAINS.find((c) => c.name === "gain-6dB")!, new Rng(4));
    ok(Math.abs(10 * Math.log10(activePower(g.samples, 8000) / activePower(call.samples, 8000)) + 6) < 0.05);
    const r = await renderChain(call.samples, BENCH_CHAINS.find((c) => c.name === "rate8k-48k")!, new Rng(4));
    equal(r.sampleRate, 48000);
    equal(r.samples.length, call.samples.length * 6);
  },
});

Deno.test({
  name: "capture: generated files parse as capture lines and keep each stream in capture order",
  ignore: !soxPresent,
  fn: async () => {
    const call = composeCall("c", [tonePrompt("a", 1, 700), tonePrompt("b", 1, 400)], new Rng(3));
    const chains = ["identity", "rate8k-16k", "loss1pct"].map((n) => BENCH_CHAINS.find((c) => c.name === n)!);
    const streams = await generateCapture({
      seed: 3,
      measurement: "voice",
      call,
      startNs: 1_763_900_000_000_000_000n,
      sourceNode: "node-a",
      chains: chains.map((chain, i) => ({
        chain,
        node: i === 0 ? "node-a" : "node-b",
        delayMs: 150 * (i + 1),
      })),
    });
    const files = captureFiles(streams);
    deepEqual([...files.keys()].sort(), ["node-a", "node-b"]);
    let rows = 0;
    for (const [node, text] of files) {
      const lines = text.trim().split("\n");
      equal(JSON.parse(lines[0]!).node, node);
      const last = new Map<string, bigint>();
      for (const line of lines.slice(1)) {
        const row = parseCaptureLine(line, node);
        ok(typeof row !== "string", String(row));
        if (typeof row === "string") continue;
        ok(row.columns["payload"] instanceof Uint8Array);
        ok((last.get(row.query) ?? -1n) < row.time);
        last.set(row.query, row.time);
        rows++;
      }
    }
    equal(rows, streams.reduce((a, s) => a + s.sim.messages.length, 0));
  },
});
