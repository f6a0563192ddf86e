import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { type Codec, decodeSamples, encodeSamples } from "../audio/decode/codecs.ts";
import { interleave } from "../audio/decode/channels.ts";
import { encodeBase64, encodeHex } from "../audio/decode/encoding.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { StreamKeyer } from "../audio/decode/stream_key.ts";
import { Resampler } from "../audio/decode/resample.ts";
import {
  checkAudioFormat,
  type DecodeOutcome,
  type SampleBlock,
  StreamDecoder,
} from "../audio/decode/stream_decoder.ts";
import type { AudioFormat } from "../audio/types.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";
import { rng } from "./support/rng.ts";

const enc = new TextEncoder();
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

/** The default audio format (Twilio-style JSON, base64 μ-law at 8 kHz) with `over` changed. */
function fmt(over: Partial<AudioFormat> = {}): AudioFormat {
  return { ...DEFAULT_AUDIO, ...over };
}

function twilio(audio: Uint8Array, seq = 1): Uint8Array {
  return enc.encode(JSON.stringify({
    event: "media",
    sequenceNumber: String(seq),
    media: {
      track: "inbound",
      chunk: String(seq),
      timestamp: String(seq * 20),
      payload: encodeBase64(audio),
    },
    streamSid: "MZ18ad3ab5a668481ce02b83e7395059f0",
  }));
}

function speechLike(rate: number, n: number, seed = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / rate;
    return 0.3 * Math.sin(2 * Math.PI * 220 * t) + 0.2 * Math.sin(2 * Math.PI * 1375 * t) +
      0.05 * (r() - 0.5);
  });
}

/** All samples a decoder produced, in order, checking that blocks are contiguous. */
class Collector {
  parts: Float32Array[] = [];
  next = 0;
  add(o: DecodeOutcome | SampleBlock): void {
    if ("kind" in o && o.kind === "error") return;
    equal(o.start, this.next, "blocks must be contiguous");
    this.parts.push(o.samples.slice());
    this.next += o.samples.length;
  }
  all(): Float32Array {
    const out = new Float32Array(this.next);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

Deno.test("stream decoder: Twilio-style mu-law JSON decodes to the codec's samples at 8 kHz", () => {
  const audio = encodeSamples("mulaw", speechLike(8000, 1600));
  const d = new StreamDecoder(fmt());
  const c = new Collector();
  for (let i = 0; i < 10; i++) {
    const o = d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: twilio(audio.subarray(i * 160, i * 160 + 160), i),
    });
    equal(o.kind, "audio");
    if (o.kind === "audio") {
      deepEqual([o.messageIndex, o.frames, o.start, o.samples.length], [i, 160, i * 160, 160]);
    }
    c.add(o);
  }
  c.add(d.finish());
  const want = decodeSamples("mulaw", audio);
  ok(want.ok);
  deepEqual(Array.from(c.all()), Array.from(want.samples));
  deepEqual(d.timeline.locate(1234), {
    timeNs: T0 + 7n * 20n * MS,
    offsetMs: (1234 - 1120) / 8,
    messageIndex: 7,
    gap: false,
  });
  const s = d.stats();
  deepEqual([s.messages, s.decoded, s.outOfOrder], [10, 10, 0]);
});

Deno.test("stream decoder: every failure is counted by reason and skipped", () => {
  const d = new StreamDecoder(fmt());
  const c = new Collector();
  const good = twilio(new Uint8Array(160).fill(0xff));
  const bad: [string | Uint8Array, string][] = [
    ['{"media":{"payload":"AAAA"}', "bad_json"],
    ['{"event":"start","start":{}}', "missing_path"],
    ['{"media":{"payload":42}}', "not_a_string"],
    ['{"media":{"payload":"A*AA"}}', "bad_base64"],
    [new Uint8Array([0xff, 0xfe, 0x00]), "bad_json"],
  ];
  c.add(d.push({ timeNs: T0, payload: good }));
  bad.forEach(([p, reason], i) => {
    const o = d.push({ timeNs: T0 + BigInt(i + 1), payload: typeof p === "string" ? enc.encode(p) : p });
    deepEqual(o, { kind: "error", messageIndex: i + 1, reason });
  });
  c.add(d.push({ timeNs: T0 + 10n, payload: good }));
  equal(c.next, 320);
  // The skipped messages own no samples: the two good messages are adjacent on the timeline.
  equal(d.timeline.locate(160)!.messageIndex, 6);
  const s = d.stats();
  deepEqual([s.messages, s.decoded], [7, 2]);
  equal(s.errors.bad_json, 2);
  equal(s.errors.missing_path, 1);
  equal(s.errors.not_a_string, 1);
  equal(s.errors.bad_base64, 1);
  equal(s.errors.odd_byte_count, 0);
});

Deno.test("stream decoder: odd byte counts, bad hex, regex misses, short raw payloads, bad binary", () => {
  const pcm = new StreamDecoder(fmt({ codec: "pcm16le" }));
  deepEqual(pcm.push({ timeNs: T0, payload: twilio(new Uint8Array(3)) }), {
    kind: "error",
    messageIndex: 0,
    reason: "odd_byte_count",
  });
  const hex = new StreamDecoder(fmt({ envelope: "regex", path: "audio=(\\w+)", encoding: "hex" }));
  equal(hex.push({ timeNs: T0, payload: enc.encode("audio=zz") }).kind, "error");
  equal(hex.push({ timeNs: T0, payload: enc.encode("nothing") }).kind, "error");
  const ok1 = hex.push({ timeNs: T0, payload: enc.encode("audio=ff80") });
  ok(ok1.kind === "audio" && ok1.frames === 2);
  deepEqual([hex.stats().errors.bad_hex, hex.stats().errors.no_regex_match], [1, 1]);
  const raw = new StreamDecoder(fmt({ envelope: "raw", path: "", encoding: "binary", skip_bytes: 12 }));
  equal(raw.push({ timeNs: T0, payload: new Uint8Array(5) }).kind, "error");
  equal(raw.stats().errors.short_payload, 1);
  const bin = new StreamDecoder(fmt({ encoding: "binary" }));
  equal(bin.push({ timeNs: T0, payload: enc.encode('{"media":{"payload":"\u2603"}}') }).kind, "error");
  equal(bin.stats().errors.bad_binary, 1);
});

Deno.test("stream decoder: a truncated body becomes a flagged gap sized from its original size", () => {
  const d = new StreamDecoder(fmt());
  const chunk = new Uint8Array(160).fill(0x80);
  const good = twilio(chunk);
  d.push({ timeNs: T0, payload: good });
  // Pixie kept a prefix; the original body had the same envelope around 320 audio bytes.
  const lost = twilio(new Uint8Array(320));
  const cutBody = enc.encode(new TextDecoder().decode(lost).slice(0, 100) + "... [TRUNCATED]");
  const o = d.push({ timeNs: T0 + 20n * MS, payload: cutBody, bodySize: lost.length });
  ok(o.kind === "marker");
  equal(o.marker, "truncated");
  // Base64 padding (216 characters for 160 bytes, 428 for 320) leaves the estimate within a frame.
  ok(Math.abs(o.gapFrames - 320) <= 1, `${o.gapFrames}`);
  ok(o.samples.every((v) => v === 0));
  // A lost body of the usual size is sized exactly.
  const same = d.push({ timeNs: T0 + 40n * MS, payload: cutBody, bodySize: good.length });
  ok(same.kind === "marker" && same.gapFrames === 160);
  d.push({ timeNs: T0 + 40n * MS, payload: cutBody, bodySize: 3 });
  equal(d.stats().markers.truncated, 3);
  // A body smaller than the envelope gives no gap rather than a negative one.
  equal(d.stats().gapFrames, o.gapFrames + 160);
});

Deno.test("stream decoder: gap samples map to the marker message and are flagged", () => {
  const d = new StreamDecoder(fmt());
  const good = twilio(new Uint8Array(160).fill(0x80));
  d.push({ timeNs: T0, payload: good });
  const o = d.push({
    timeNs: T0 + 20n * MS,
    payload: enc.encode("{... [TRUNCATED]"),
    bodySize: good.length * 2,
  });
  ok(o.kind === "marker");
  const frames = o.gapFrames;
  ok(frames > 300);
  const after = d.push({ timeNs: T0 + 60n * MS, payload: good });
  ok(after.kind === "audio");
  equal(after.start, 160 + frames);
  equal(d.timeline.isGap(200), true);
  equal(d.timeline.isGap(160 + frames), false);
  deepEqual(d.timeline.gaps(0, 10_000), [{ start: 160, end: 160 + frames }]);
  deepEqual(d.timeline.locate(300), { timeNs: T0 + 20n * MS, offsetMs: 17.5, messageIndex: 1, gap: true });
  equal(d.stats().markers.truncated, 1);
  equal(d.stats().gapFrames, frames);
});

Deno.test("stream decoder: a removed raw body's gap is (size - header) / frame size", () => {
  const d = new StreamDecoder(
    fmt({ envelope: "raw", path: "", encoding: "binary", codec: "pcm16be", skip_bytes: 12 }),
  );
  d.push({ timeNs: T0, payload: new Uint8Array(12 + 320) });
  const o = d.push({ timeNs: T0 + 1n, payload: enc.encode("<removed: binary>"), bodySize: 12 + 640 });
  ok(o.kind === "marker" && o.marker === "removed");
  equal(o.gapFrames, 320);
  equal(d.stats().markers.removed, 1);
});

Deno.test("stream decoder: without a body size the gap is the median recent message", () => {
  const d = new StreamDecoder(fmt());
  const cut = enc.encode("xx... [TRUNCATED]");
  const first = d.push({ timeNs: T0, payload: cut });
  ok(first.kind === "marker" && first.gapFrames === 0);
  equal(d.stats().unsizedGaps, 1);
  for (const n of [160, 160, 80, 160, 400]) d.push({ timeNs: T0, payload: twilio(new Uint8Array(n)) });
  const o = d.push({ timeNs: T0, payload: cut });
  ok(o.kind === "marker" && o.gapFrames === 160);
});

Deno.test("stream decoder: the median is over the latest 15 good messages, oldest forgotten first", () => {
  // Median of the window as it slides: 20 long messages, then short ones one by one; the median turns short
  // when 8 of the latest 15 are, and the older long ones count no more once 15 short ones came after them.
  const d = new StreamDecoder(fmt());
  const cut = enc.encode("xx... [TRUNCATED]");
  for (let i = 0; i < 20; i++) d.push({ timeNs: T0, payload: twilio(new Uint8Array(400 + i)) });
  const medians: number[] = [];
  for (let i = 0; i < 16; i++) {
    d.push({ timeNs: T0, payload: twilio(new Uint8Array(100 + i)) });
    const o = d.push({ timeNs: T0, payload: cut });
    ok(o.kind === "marker");
    medians.push(o.gapFrames);
  }
  // After k short ones (k = 1..16): the latest 15 are the long ones 400+k+4.. and the k short ones 100..;
  // their median is the 8th smallest.
  const want = Array.from({ length: 16 }, (_, j) => {
    const k = j + 1;
    const window = [
      ...Array.from({ length: Math.max(0, 15 - k) }, (_, i) => 400 + 20 - (15 - k) + i),
      ...Array.from({ length: Math.min(k, 15) }, (_, i) => 100 + k - Math.min(k, 15) + i),
    ].sort((a, b) => a - b);
    return window[7]!;
  });
  deepEqual(medians, want);
});

Deno.test("stream decoder: runs of one message length, however long, count in the median as each message", () => {
  // The decoder writes a run of equal lengths into its window only when the length changes or the median is
  // wanted: the median must be the one of the latest 15 messages all the same, queried anywhere in a run.
  const r = rng(5);
  const d = new StreamDecoder(fmt());
  const cut = enc.encode("xx... [TRUNCATED]");
  const lengths: number[] = [];
  for (let run = 0; run < 60; run++) {
    const n = [80, 160, 240, 400][Math.floor(r() * 4)]!;
    const repeats = 1 + Math.floor(r() * (r() < 0.3 ? 40 : 6));
    for (let i = 0; i < repeats; i++) {
      d.push({ timeNs: T0, payload: twilio(new Uint8Array(n)) });
      lengths.push(n);
      if (r() < 0.15) {
        const o = d.push({ timeNs: T0, payload: cut });
        ok(o.kind === "marker");
        const window = lengths.slice(-15).sort((a, b) => a - b);
        equal(o.gapFrames, window[(window.length - 1) >> 1]);
      }
    }
  }
});

Deno.test("stream decoder: a bogus body size is capped at maxGapSeconds", () => {
  const d = new StreamDecoder(fmt({ envelope: "raw", path: "", encoding: "binary" }), { maxGapSeconds: 2 });
  const o = d.push({ timeNs: T0, payload: enc.encode("<removed: x>"), bodySize: 1e12 });
  ok(o.kind === "marker" && o.gapFrames === 16000);
});

Deno.test("stream decoder: a truncated chunk does not shift the audio after it", () => {
  // The same stream decoded whole, and with message 3 lost to truncation: later audio lands on the same
  // analysis samples and maps to the same messages.
  const rate = 16000;
  const audio = encodeSamples("pcm16le", speechLike(rate, 320 * 10));
  const msgs = Array.from({ length: 10 }, (_, i) => twilio(audio.subarray(i * 640, i * 640 + 640), i));
  const f = fmt({ codec: "pcm16le", sample_rate: rate });
  const whole = new StreamDecoder(f);
  const cut = new StreamDecoder(f);
  const cw = new Collector();
  const cc = new Collector();
  msgs.forEach((m, i) => {
    const t = T0 + BigInt(i) * 20n * MS;
    cw.add(whole.push({ timeNs: t, payload: m }));
    const p = i === 3 ? enc.encode(new TextDecoder().decode(m).slice(0, 200) + "... [TRUNCATED]") : m;
    cc.add(cut.push({ timeNs: t, payload: p, bodySize: m.length }));
  });
  cw.add(whole.finish());
  cc.add(cut.finish());
  const a = cw.all();
  const b = cc.all();
  equal(a.length, b.length);
  for (let k = 0; k < a.length; k++) {
    deepEqual(cut.timeline.locate(k), { ...whole.timeline.locate(k)!, gap: k >= 480 && k < 640 });
  }
  // Beyond the filter's reach of the gap, the samples are identical.
  const reach = new Resampler(rate).design.halfTaps;
  for (let k = 640 + reach; k < a.length; k++) equal(b[k], a[k]);
});

/** Splits `n` frames into random message sizes, some empty or tiny, some large. */
function randomChunks(r: () => number, n: number): number[] {
  const out: number[] = [];
  for (let left = n; left > 0;) {
    const c = Math.min(left, [0, 1, 3, 80, 160, 441, 1600, 4000][Math.floor(r() * 8)]!);
    out.push(c);
    left -= c;
  }
  return out;
}

Deno.test("stream decoder: random chunkings give bit-identical 8 kHz output and the same instant map", () => {
  const r = rng(17);
  const cases: [Codec, number][] = [["mulaw", 8000], ["pcm16le", 16000], ["float32le", 44100], [
    "alaw",
    11025,
  ]];
  for (const [codec, rate] of cases) {
    const bps = codec === "float32le" ? 4 : codec === "pcm16le" ? 2 : 1;
    const frames = rate; // one second
    const audio = encodeSamples(codec, speechLike(rate, frames, rate));
    const f = fmt({ codec, sample_rate: rate });
    let reference: Float32Array | undefined;
    let referenceTimes: bigint[] | undefined;
    for (let trial = 0; trial < 5; trial++) {
      const d = new StreamDecoder(f);
      const c = new Collector();
      let n0 = 0;
      randomChunks(r, frames).forEach((size, i) => {
        // Each message is captured when its first sample was: time_ = t0 + n0 / rate.
        const timeNs = T0 + BigInt(Math.round((n0 * 1e9) / rate));
        c.add(d.push({ timeNs, payload: twilio(audio.subarray(n0 * bps, (n0 + size) * bps), i) }));
        n0 += size;
      });
      c.add(d.finish());
      const out = c.all();
      // Absolute instant of every analysis sample: message time + offset, in ns.
      const times = Array.from({ length: out.length }, (_, k) => {
        const loc = d.timeline.locate(k)!;
        return loc.timeNs + BigInt(Math.round(loc.offsetMs * 1e6));
      });
      if (!reference) {
        reference = out;
        referenceTimes = times;
        equal(out.length, 8000);
        // The map is also right in absolute terms: sample k is at t0 + k/8000 s (message times are rounded
        // to the ns, so allow 1 ns).
        times.forEach((t, k) =>
          ok(t - (T0 + BigInt(k) * 125_000n) <= 1n && (T0 + BigInt(k) * 125_000n) - t <= 1n)
        );
      } else {
        deepEqual(
          new Uint8Array(out.buffer),
          new Uint8Array(reference.buffer),
          `${codec}@${rate} trial ${trial}`,
        );
        times.forEach((t, k) => {
          const diff = t - referenceTimes![k]!;
          ok(diff <= 1n && diff >= -1n, `${codec}@${rate} k=${k}`);
        });
      }
    }
  }
});

Deno.test("stream decoder: out-of-order capture times are counted and kept in arrival order", () => {
  const d = new StreamDecoder(fmt());
  const p = twilio(new Uint8Array(8));
  d.push({ timeNs: T0 + 100n, payload: p });
  d.push({ timeNs: T0, payload: p });
  d.push({ timeNs: T0 + 50n, payload: p });
  equal(d.stats().outOfOrder, 1);
  equal(d.timeline.locate(8)!.timeNs, T0);
});

Deno.test("stream decoder: finish flushes the lookahead; later pushes are counted, not decoded", () => {
  const d = new StreamDecoder(fmt({ codec: "pcm16le", sample_rate: 48000 }));
  const o = d.push({ timeNs: T0, payload: twilio(new Uint8Array(960 * 2)) });
  ok(o.kind === "audio" && o.samples.length < 160);
  const rest = d.finish();
  equal(rest.start + rest.samples.length, 160);
  equal(d.finish().samples.length, 0);
  deepEqual(d.push({ timeNs: T0, payload: twilio(new Uint8Array(2)) }), {
    kind: "error",
    messageIndex: 1,
    reason: "finished",
  });
  equal(d.stats().errors.finished, 1);
});

Deno.test("stream decoder: multi-channel payloads pick a channel or mix", () => {
  const left = Float32Array.from({ length: 80 }, (_, i) => (i % 7) / 8);
  const right = Float32Array.from({ length: 80 }, (_, i) => -(i % 5) / 8);
  const payload = twilio(encodeSamples("pcm16le", interleave([left, right])));
  const pick = new StreamDecoder(fmt({ codec: "pcm16le", channels: 2, channel: 1 }));
  const a = pick.push({ timeNs: T0, payload });
  ok(a.kind === "audio");
  deepEqual(Array.from(a.samples), Array.from(right));
  const mix = new StreamDecoder(fmt({ codec: "pcm16le", channels: 2, channel: "mix" }));
  const b = mix.push({ timeNs: T0, payload });
  ok(b.kind === "audio");
  deepEqual(Array.from(b.samples), Array.from(left, (v, i) => Math.fround((v + right[i]!) / 2)));
});

Deno.test("stream decoder: reuses the envelope already used for the stream key", () => {
  const env = new PayloadEnvelope(twilio(new Uint8Array(16).fill(0xff)));
  env.json();
  const d = new StreamDecoder(fmt());
  const o = d.push({ timeNs: T0, payload: env });
  ok(o.kind === "audio" && o.frames === 16);
});

Deno.test("stream decoder: hex in a regex envelope, raw binary with a header", () => {
  const samples = Float32Array.from({ length: 32 }, (_, i) => (i - 16) / 32);
  const bytes = encodeSamples("alaw", samples);
  const hex = new StreamDecoder(
    fmt({ envelope: "regex", path: '"data":"([0-9a-f]*)"', encoding: "hex", codec: "alaw" }),
  );
  const a = hex.push({ timeNs: T0, payload: enc.encode(`{"data":"${encodeHex(bytes)}"}`) });
  const raw = new StreamDecoder(
    fmt({ envelope: "raw", path: "", encoding: "binary", codec: "alaw", skip_bytes: 4 }),
  );
  const b = raw.push({ timeNs: T0, payload: new Uint8Array([1, 2, 3, 4, ...bytes]) });
  ok(a.kind === "audio" && b.kind === "audio");
  deepEqual(Array.from(a.samples), Array.from(b.samples));
  equal(a.samples.length, 32);
});

Deno.test("checkAudioFormat reports every problem; the decoder refuses an invalid format", () => {
  deepEqual(checkAudioFormat(fmt()), []);
  equal(checkAudioFormat(fmt({ path: " " })).length, 1);
  equal(checkAudioFormat(fmt({ envelope: "regex", path: "(" })).length, 1);
  equal(checkAudioFormat(fmt({ envelope: "regex", path: "no group" })).length, 1);
  equal(checkAudioFormat(fmt({ sample_rate: 96000, skip_bytes: -1, channels: 2, channel: 2 })).length, 3);
  equal(checkAudioFormat(fmt({ channels: 0 })).length, 1);
  throws(() => new StreamDecoder(fmt({ sample_rate: 4000 })), RangeError);
});

Deno.test("stream decoder: a field the stream key's scan found is decoded from the body, as an unread body's", () => {
  const key = new StreamKeyer(["pod", "$.streamSid"]);
  const r = rng(9);
  const opts = { keepTimeline: true, reuseSamples: true, ringValues: true };
  const scanned = new StreamDecoder(fmt(), opts), fresh = new StreamDecoder(fmt(), opts);
  for (let i = 0; i < 200; i++) {
    const k = r();
    const body = k < 0.05
      ? enc.encode('{"media":{"payload":"' + "A".repeat(60) + '*AA"},"streamSid":"MZ1"}')
      : k < 0.1
      ? enc.encode('{"media":{"payload":"AQ\\u0041A"},"streamSid":"MZ1"}')
      : twilio(encodeSamples("mulaw", speechLike(8000, 1 + Math.floor(r() * 500), i)), i);
    const env = new PayloadEnvelope(body);
    key.keyOf({ pod: "p" }, env);
    ok(env.scanned);
    const msg = { timeNs: T0 + BigInt(i) * 20n * MS };
    const a = fresh.push({ ...msg, payload: body });
    const b = scanned.push({ ...msg, payload: env });
    deepEqual(
      {
        ...b,
        samples: Array.from(b.kind === "error" ? [] : b.samples),
        ring: b.kind === "audio" && b.ring ? [...b.ring] : [],
      },
      {
        ...a,
        samples: Array.from(a.kind === "error" ? [] : a.samples),
        ring: a.kind === "audio" && a.ring ? [...a.ring] : [],
      },
    );
  }
  deepEqual(scanned.stats(), fresh.stats());
  ok(scanned.stats().errors.bad_base64 > 0, "a field that does not decode is counted as before");
});
