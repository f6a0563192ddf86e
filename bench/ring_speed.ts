/**
 * The target ring's write path alone (sample_ring.ts: Int16 tier, ageing to 8-bit codes and to 4-bit blocks), as
 * `analyze` drives it: `--streams` target rings configured as TargetPipeline configures them (30 s lookback,
 * TARGET_HOT_SAMPLES, TARGET_WARM_SAMPLES), each fed the bench corpus's audio as ring values in 20 ms messages
 * through feedRing, round-robin. Three kinds of stream: μ-law codes at their own level (the usual tap), A-law
 * codes, and lossy values (PCM16 / resampled audio). Prints ns per sample written (CPU of this process), and a
 * digest of every value the ring held (each held range decoded with `has` whenever a quarter of the lookback has
 * been written), so two implementations can be compared bit for bit:
 *
 * `deno run -A bench/ring_speed.ts [--ring PATH_TO/sample_ring.ts] [--rounds N] [--streams N] [--wav FILE]`
 *
 * `--base CHECKOUT`: an in-process A/B (of either mode) of that checkout's sample_ring.ts against this one's (rounds alternated,
 * which goes first too; CPU medians and the change), failing if the values any reader sees differ.
 *
 * `--live SECONDS`: the live sensor's decode and ring path instead, as a thousand calls run it: `--streams`
 * (default 1,000) μ-law streams of raw 20 ms messages, each through its StreamDecoder (G.711 to ring values, as
 * TargetPipeline decodes) and feedRing into its own target ring, round-robin for SECONDS of audio. Every stream's
 * state is out of the CPU's cache by its next message, as in the sensor: what it costs per message is mostly
 * memory traffic, which the few streams above do not show. Prints CPU ns per message (this process).
 * @module
 */

import process from "node:process";
import { ALAW_TO_LINEAR, encodeSamples, MULAW_TO_LINEAR } from "../audio/decode/codecs.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { readWav } from "../fixtures/gen/wav.ts";

const args: Record<string, string> = {
  ring: new URL("../audio/decode/sample_ring.ts", import.meta.url).pathname,
  rounds: "3",
  wav: "/tmp/abfull/source-1.wav",
};
for (let i = 0; i + 1 < Deno.args.length; i += 2) args[Deno.args[i]!.replace(/^--/, "")] = Deno.args[i + 1]!;
const mod = await import(args.ring!) as typeof import("../audio/decode/sample_ring.ts");
const RATE = 8000;
// As TargetPipeline: 30 s lookback plus a signature block, hot 4,096, warm 10 s.
const KEEP = 30 * RATE + 3000;
const HOT = 1 << 12;
const WARM = 10 * RATE;
const MESSAGE = 160;

const audio = (await readWav(args.wav!)).samples;

/** Ring values of `law`'s codes, each sample to its nearest code (the stream a G.711 tap decodes to). */
function lawValues(linear: Int16Array): Int16Array {
  const values = Int16Array.from(linear, (v) => v / 4);
  const sorted = Array.from(values).sort((a, b) => a - b);
  const out = new Int16Array(audio.length);
  for (let i = 0; i < audio.length; i++) {
    const x = audio[i]! * 8192;
    let lo = 0, hi = sorted.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! <= x) lo = mid;
      else hi = mid;
    }
    out[i] = Math.abs(sorted[lo]! - x) <= Math.abs(sorted[hi]! - x) ? sorted[lo]! : sorted[hi]!;
  }
  return out;
}
const kinds: [string, Int16Array][] = [
  ["mulaw", lawValues(MULAW_TO_LINEAR)],
  ["alaw", lawValues(ALAW_TO_LINEAR)],
  ["lossy", Int16Array.from(audio, (x) => Math.round(x * 8192 * 0.9))],
];

async function sha(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const rounds = Number(args.rounds);
if (args.live !== undefined) {
  const streams = Number(args.streams ?? 1000), messages = Number(args.live) * 50;
  const codes = encodeSamples("mulaw", audio);
  const pool: Uint8Array[] = [];
  for (let at = 0; at + MESSAGE <= codes.length; at += MESSAGE) pool.push(codes.slice(at, at + MESSAGE));
  const format = {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec: "mulaw",
    sample_rate: RATE,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  } as const;
  /** CPU ns per message of `m`'s rings (a round of all the streams' messages). */
  const liveRound = (m: typeof mod): number => {
    const decoders = Array.from(
      { length: streams },
      () => new StreamDecoder(format, { keepTimeline: true, reuseSamples: true, ringValues: true }),
    );
    const rings = Array.from(
      { length: streams },
      () => new m.SampleRing(KEEP, { hotSamples: HOT, warmSamples: WARM }),
    );
    let t = 1_700_000_000_000_000_000n;
    const t0 = cpuMs();
    for (let i = 0; i < messages; i++) {
      t += 20_000_000n;
      for (let s = 0; s < streams; s++) {
        const out = decoders[s]!.push({ timeNs: t, payload: pool[(i + s * 37) % pool.length]! });
        if (out.kind === "audio") m.feedRing(rings[s]!, out.start, out.ring ?? out.samples, () => {});
      }
    }
    return (cpuMs() - t0) * 1e6 / (streams * messages);
  };
  if (args.base !== undefined) {
    const base = await import(`${Deno.realPathSync(args.base)}/audio/decode/sample_ring.ts`) as typeof mod;
    const a: number[] = [], b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const m of r % 2 === 0 ? [base, mod] : [mod, base]) (m === base ? a : b).push(liveRound(m));
    }
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    console.log(
      `live, ${streams} streams: base ${med(a).toFixed(0)} ns/message, this ${med(b).toFixed(0)} (${
        ((med(b) - med(a)) / med(a) * 100).toFixed(1)
      }%)`,
    );
    Deno.exit(0);
  }
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) times.push(liveRound(mod));
  times.sort((a, b) => a - b);
  console.log(`live, ${streams} streams: ${times.map((t) => t.toFixed(0)).join(" ")} ns/message`);
  Deno.exit(0);
}
const streams = Number(args.streams ?? 24);
type RingModule = typeof mod;

/** CPU ns per sample written to `streams` rings of `m` fed `values`; with `withDigest`, what a reader saw. */
async function runKind(
  m: RingModule,
  values: Int16Array,
  withDigest: boolean,
): Promise<{ ns: number; digest: string }> {
  const rings = Array.from(
    { length: streams },
    () => new m.SampleRing(KEEP, { hotSamples: HOT, warmSamples: WARM }),
  );
  // Each stream starts at its own place in the audio, and the audio runs twice (a lookback's worth ages out).
  const total = 2 * values.length;
  const t0 = cpuMs();
  for (let at = 0; at < total; at += MESSAGE) {
    for (let s = 0; s < streams; s++) {
      const from = (at + s * 7919) % values.length;
      const n = Math.min(MESSAGE, values.length - from);
      m.feedRing(rings[s]!, at, values.subarray(from, from + n), () => {});
    }
  }
  const ns = (cpuMs() - t0) * 1e6 / (streams * total);
  if (!withDigest) return { ns, digest: "" };
  // What every reader would see: a second pass over the same writes, decoding the whole ring at intervals.
  const ring = new m.SampleRing(KEEP, { hotSamples: HOT, warmSamples: WARM });
  const seen: number[] = [];
  for (let at = 0; at < total; at += MESSAGE) {
    const from = at % values.length;
    const n = Math.min(MESSAGE, values.length - from);
    m.feedRing(ring, at, values.subarray(from, from + n), () => {});
    if ((at + MESSAGE) % (KEEP >> 2) < MESSAGE) {
      const s = ring.start, e = ring.end;
      if (ring.has(s, e - s)) {
        const d = ring.data, mask = ring.mask;
        for (let i = s; i < e; i++) seen.push(d[i & mask]!);
      }
    }
  }
  return { ns, digest: await sha(new Uint8Array(Int16Array.from(seen).buffer)) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
if (args.base !== undefined) {
  // In-process A/B: another checkout's sample_ring.ts against this one's (or --ring's), rounds alternated.
  const base = await import(`${Deno.realPathSync(args.base)}/audio/decode/sample_ring.ts`) as RingModule;
  for (const [name, values] of kinds) {
    const a: number[] = [], b: number[] = [];
    let digests = "";
    for (let r = 0; r < rounds; r++) {
      for (const m of r % 2 === 0 ? [base, mod] : [mod, base]) {
        const got = await runKind(m, values, r === 0);
        (m === base ? a : b).push(got.ns);
        if (r === 0) digests += got.digest + " ";
      }
    }
    const [da, db] = digests.trim().split(" ");
    if (da !== db) throw new Error(`${name}: the values differ (${da} vs ${db})`);
    const change = (median(b) - median(a)) / median(a) * 100;
    console.log(
      `${name}: base ${median(a).toFixed(2)} ns/sample, this ${median(b).toFixed(2)} (${
        change.toFixed(1)
      }%), values ${da}`,
    );
  }
  Deno.exit(0);
}
for (const [name, values] of kinds) {
  const times: number[] = [];
  let digest = "";
  for (let r = 0; r < rounds; r++) {
    const got = await runKind(mod, values, r === 0);
    times.push(got.ns);
    if (r === 0) digest = got.digest;
  }
  times.sort((a, b) => a - b);
  console.log(
    `${name}: ${times.map((t) => t.toFixed(2)).join(" ")} ns/sample (median ${
      times[times.length >> 1]!.toFixed(2)
    }), values ${digest}`,
  );
}
