/**
 * The source side's lazy frames (a source stream fingerprints only its anchors' blocks): the live bench's synthetic
 * calls (bench/live_load.ts: 20 ms μ-law Twilio JSON rows, the default audio criteria) through `SourcePipeline`s,
 * every frame fingerprinted (`eagerFrames`, as before) and only the blocks' frames, alternating in one process:
 * CPU µs per source row, frames analysed, the signatures (the same ids both ways, or it throws), and with
 * `--v8-flags=--expose-gc` the heap (V8 + external, after GC) per 1,000 source streams fed that long.
 *
 * `deno run -A --v8-flags=--expose-gc bench/source_frames.ts [--calls 50] [--seconds 60] [--rounds 5]`
 * @module
 */

import { SyntheticCalls } from "../tests/support/live_calls.ts";
import { initAudioEngine, SourcePipeline } from "../audio/pipeline.ts";
import { DEFAULT_AUDIO_CRITERIA } from "../config/defaults.ts";
import type { AudioFormat } from "../audio/types.ts";
import { cpuSeconds } from "./accuracy.ts";
import { DEFAULT_AUDIO } from "../config/defaults.ts";

/** The live bench's calls: the default audio (Twilio-style JSON, base64 μ-law at 8 kHz). */
const FORMAT: AudioFormat = { ...DEFAULT_AUDIO };
const T0 = 1_763_900_000_000_000_000n;
const TICK_NS = 20_000_000n;

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
}

function heap(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  gc();
  gc();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

interface Round {
  usPerRow: number;
  frames: number;
  ids: string[];
  bytesPerStream?: number;
}

function round(rows: readonly Uint8Array[][], calls: number, eagerFrames: boolean): Round {
  const h0 = heap();
  const sps = Array.from({ length: calls }, (_, i) =>
    new SourcePipeline({
      measurement: "m",
      node: "node-a",
      pod: "telephony-0",
      stream: `call-${i}`,
      format: FORMAT,
      criteria: DEFAULT_AUDIO_CRITERIA,
      eagerFrames,
    }));
  const ids: string[] = [];
  const c0 = cpuSeconds();
  rows.forEach((tick, t) => {
    const timeNs = T0 + BigInt(t + 1) * TICK_NS;
    for (let c = 0; c < calls; c++) {
      for (const s of sps[c]!.push({ timeNs, payload: tick[c]! })) ids.push(s.id);
    }
  });
  const usPerRow = ((cpuSeconds() - c0) * 1e6) / (rows.length * calls);
  const h1 = heap();
  return {
    usPerRow,
    frames: sps.reduce((n, p) => n + p.framesAnalyzed, 0),
    ids,
    bytesPerStream: h0 === undefined || h1 === undefined ? undefined : (h1 - h0) / calls,
  };
}

if (import.meta.main) {
  await initAudioEngine({ webrtcVad: false });
  const calls = arg("--calls", 50);
  const ticks = Math.round(arg("--seconds", 60) * 50);
  const rounds = arg("--rounds", 5);
  const gen = new SyntheticCalls(calls, 1);
  const rows: Uint8Array[][] = [];
  for (let t = 0; t < ticks; t++) {
    gen.advance(t, calls);
    rows.push(Array.from({ length: calls }, (_, c) => gen.message("source", c)!.slice()));
  }
  const eager: Round[] = [], lazy: Round[] = [];
  for (let r = 0; r < rounds; r++) {
    eager.push(round(rows, calls, true));
    lazy.push(round(rows, calls, false));
    if (lazy[r]!.ids.join() !== eager[r]!.ids.join()) throw new Error("lazy frames changed the signatures");
  }
  const median = (rs: Round[], f: (r: Round) => number | undefined) => {
    const xs = rs.map(f).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    return xs.length > 0 ? xs[xs.length >> 1]! : NaN;
  };
  const allFrames = calls * (Math.floor((ticks * 160 - 1024) / 128) + 1);
  console.log(
    `${calls} source streams x ${ticks / 50} s of the live bench's calls, ${
      lazy[0]!.ids.length
    } signatures ` +
      `(the same both ways), median of ${rounds} rounds:`,
  );
  for (const [name, rs] of [["every frame", eager], ["anchors' blocks", lazy]] as const) {
    const mb = median(rs, (r) => r.bytesPerStream) / 1e3;
    console.log(
      `  ${name.padEnd(16)} ${median(rs, (r) => r.usPerRow).toFixed(2)} µs CPU per row, frames analysed ` +
        `${(median(rs, (r) => r.frames) / allFrames * 100).toFixed(0)}%` +
        (Number.isFinite(mb) ? `, ${mb.toFixed(0)} MB per 1,000 streams` : ""),
    );
  }
}
