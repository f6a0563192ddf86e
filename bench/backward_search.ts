/**
 * The backward search as a live sensor runs it: N target streams of distinct speech (20 ms μ-law messages on one
 * clock, 10 s lookback) are fed tick by tick; signatures from the streams' own audio arrive as they do live,
 * 2.1–2.6 s after their instant (their block complete, plus the trip), each added to the measurement's index and
 * searched in every stream (what actors/matcher.ts does on `activate`), so that one stream in N holds it. The
 * signatures arriving in the first `--warmup` seconds are searched but not timed.
 *
 * Prints per stream count the CPU of those searches per (signature, stream) and per signature, the matches they
 * found with a digest of them (stream, signature, target time: to compare two builds), and the CPU of feeding the
 * streams (decode, fingerprint, forward search) in x real time.
 *
 * `deno run -A bench/backward_search.ts [--streams 500,2000] [--signatures 40] [--seconds 30] [--warmup 16]
 * [--rounds 3]`
 * @module
 */

import {
  initAudioEngine,
  RecentFrames,
  SignatureIndex,
  SourcePipeline,
  TargetPipeline,
} from "../audio/pipeline.ts";
import type { Signature } from "../audio/types.ts";
import { FORMAT, messages, speech } from "./fingerprint_speed.ts";
import { DEFAULT_AUDIO_CRITERIA } from "../config/defaults.ts";

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1]! : def;
}

/** CPU seconds of this process (user + system). */
function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const T0 = 1_700_000_000_000_000_000n;
const NS = 1_000_000_000;

/** 64-bit FNV-1a of the text, hex. */
function digest(lines: string[]): string {
  let h = 0xcbf29ce484222325n;
  for (const l of lines) {
    for (let i = 0; i < l.length; i++) {
      h = ((h ^ BigInt(l.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, "0");
}

/**
 * `n` samples unlike any other clip's: two random stretches of `audio` mixed (the second 0-6 dB lower), played at a
 * random speed in [0.75, 1.33] (as bench/fingerprint_speed.ts's signatures; clips cut from the same minutes of
 * speech would share their frames and match one another's signatures).
 */
function distinctClip(audio: Float32Array, n: number, rnd: () => number): Float32Array {
  const rate = 0.75 + rnd() * 0.58;
  const a0 = Math.floor(rnd() * (audio.length - n * 1.4)), b0 = Math.floor(rnd() * (audio.length - n * 1.4));
  const g = Math.pow(10, (-6 * rnd()) / 20);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * rate, i0 = Math.floor(p), f = p - i0;
    const a = audio[a0 + i0]! * (1 - f) + audio[a0 + i0 + 1]! * f;
    const b = audio[b0 + i0]! * (1 - f) + audio[b0 + i0 + 1]! * f;
    x[i] = 0.7 * (a + g * b);
  }
  return x;
}

/** One level's figures. */
interface Level {
  streams: number;
  usPerPair: number;
  msPerSignature: number;
  matches: number;
  digest: string;
  feedX: number;
  /** The recent frames' searches answered and not covered, walk steps per signature. */
  recent: string;
}

function level(
  audio: Float32Array,
  streams: number,
  signatures: number,
  seconds: number,
  warmup: number,
): Level {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const clips = Array.from({ length: streams }, () => distinctClip(audio, seconds * 8000, rnd));
  const msgs = clips.map((c) => messages(c));
  const index = new SignatureIndex({ maxActive: 10_000 });
  const recent = new RecentFrames();
  const pipelines = clips.map((_, i) =>
    new TargetPipeline({
      measurement: "m",
      stage: "relay",
      node: "n",
      pod: "p",
      stream: `t${i}`,
      format: FORMAT,
      index,
      recent,
      lookbackSeconds: 10,
    })
  );
  // Signatures from streams spread over the level, each to arrive 2.1-2.6 s after its instant: the measured ones
  // with instants from `warmup` s on, and before them a few to warm up (the lookback filled, the recent frames
  // grown to what signatures ask for).
  const arrivals: { at: bigint; sig: Signature; measured: boolean }[] = [];
  const pick = (fromS: number, toS: number, count: number, measured: boolean) => {
    const lo = T0 + BigInt(Math.round(fromS * NS)), hi = T0 + BigInt(Math.round(toS * NS));
    for (let k = 0, n = 0; n < count && k < streams * 4; k++) {
      const i = Math.floor(((k * 0.618034 + (measured ? 0.5 : 0)) % 1) * streams);
      const sp = new SourcePipeline({
        measurement: "m",
        node: "src",
        pod: "p",
        stream: `s${i}`,
        format: FORMAT,
        // The detector as the fingerprint bench runs it: shorter utterances and re-anchors than the defaults.
        criteria: { ...DEFAULT_AUDIO_CRITERIA, min_duration_ms: 200, reanchor_ms: 1000 },
      });
      const found: Signature[] = [];
      for (const m of msgs[i]!) found.push(...sp.push(m));
      const inRange = found.filter((s) => s.source.timeNs >= lo && s.source.timeNs <= hi);
      const sig = inRange[Math.floor(rnd() * inRange.length)];
      if (!sig || arrivals.some((a) => a.sig.id === sig.id)) continue;
      arrivals.push({ at: sig.source.timeNs + BigInt(Math.round((2.1 + 0.5 * rnd()) * NS)), sig, measured });
      n++;
    }
  };
  pick(4, warmup - 2.6, Math.ceil(signatures / 2), false);
  pick(warmup, seconds - 2.6, signatures, true);
  arrivals.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));

  // Live order: every stream's message of a 20 ms tick, tick after tick, and the signatures due by then.
  const lines: string[] = [];
  let feedS = 0, searchS = 0, next = 0, measured = 0;
  for (let k = 0; k < msgs[0]!.length; k++) {
    const c0 = cpu();
    for (let i = 0; i < streams; i++) pipelines[i]!.push(msgs[i]![k]!);
    feedS += cpu() - c0;
    const now = msgs[0]![k]!.timeNs;
    for (; next < arrivals.length && arrivals[next]!.at <= now; next++) {
      const { sig, measured: timed } = arrivals[next]!;
      const c1 = cpu();
      index.add(sig);
      for (const tp of pipelines) {
        for (const m of tp.searchSignature(sig)) {
          lines.push(`${tp.stream} ${m.signatureId} ${m.target.timeNs}`);
        }
      }
      if (timed) {
        searchS += cpu() - c1;
        measured++;
      }
    }
  }
  const feedX = (streams * seconds) / feedS;
  const rs = recent.stats();
  const cpuS = searchS;
  return {
    streams,
    usPerPair: (cpuS / (measured * streams)) * 1e6,
    msPerSignature: (cpuS / measured) * 1e3,
    matches: lines.length,
    digest: `${measured} signatures timed of ${next}, ${digest(lines)}`,
    feedX,
    recent: `${rs.searched} searches from the recent frames, ${rs.uncovered} scanned, ` +
      `${(rs.steps / Math.max(1, rs.walks)).toFixed(0)} steps a walk`,
  };
}

async function main(): Promise<void> {
  await initAudioEngine();
  const levels = arg("--streams", "500,2000").split(",").map(Number);
  const signatures = Number(arg("--signatures", "40"));
  const seconds = Number(arg("--seconds", "30"));
  const warmup = Number(arg("--warmup", "16"));
  const rounds = Number(arg("--rounds", "3"));
  const audio = await speech(400, 0);
  for (let r = 0; r < rounds; r++) {
    for (const n of levels) {
      const l = level(audio, n, signatures, seconds, warmup);
      console.log(
        `streams ${l.streams}: backward search ${l.usPerPair.toFixed(2)} µs per (signature, stream), ` +
          `${l.msPerSignature.toFixed(2)} ms per signature; ${l.matches} matches (${l.digest}); ` +
          `feeding ${l.feedX.toFixed(0)}x real time; ${l.recent}`,
      );
    }
  }
}

if (import.meta.main) await main();
