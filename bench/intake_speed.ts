/**
 * The intake path of `analyze` in isolation (issue 16): capture files read and parsed into rows (pixie/capture.ts),
 * then each row routed as the sensor's tap intake does (actors/tap_intake.ts: stream key, stream table, per-stream
 * dedupe) to a stand-in pipeline that finds the audio field and decodes it as the stream decoder does
 * (`extractAudioFieldView`, `decodeField`), and nothing more: no codec, no ring, no fingerprint. Figures are
 * process CPU microseconds per row, the best of `--rounds` rounds, for the read alone and read + route (each batch
 * released once routed, as analyze releases it: its slabs are reused, capture_slabs.ts); a digest of
 * every decoded field (and the rows' keys and times) shows that a change decodes the same bytes for the same
 * streams.
 *
 * `deno run -A bench/intake_speed.ts [--config FILE] [--rounds 3] [--mode read|route|both] CAPTURE...`
 * (default: the analyze bench's corpus in /tmp/abfull, as `bench/analyze_speed.ts --keep /tmp/abfull` writes it)
 * @module
 */
import process from "node:process";
import { loadConfig } from "../config/load.ts";
import type { TapRule } from "../actors/tap_message.ts";
import { sourceTap, stageTaps, type Tap, TapIntake, type TapPipeline } from "../actors/tap_intake.ts";
import { openCapture } from "../pixie/capture.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import { extractAudioFieldView } from "../audio/decode/payload.ts";
import { decodeField } from "../audio/decode/encoding.ts";
import type { AudioFormat } from "../audio/types.ts";
import type { DecodeCounters } from "../actors/decode_reporter.ts";
import { setLogLevel } from "../util/log.ts";

const args = Deno.args;
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const valued = new Set(["--config", "--rounds", "--mode"]);
const files = args.filter((a, i) => !a.startsWith("--") && !valued.has(args[i - 1] ?? ""));
const captures = files.length > 0 ? files : ["/tmp/abfull/node-a.jsonl", "/tmp/abfull/node-b.jsonl"];
const rounds = Number(opt("--rounds", "3"));
const mode = opt("--mode", "both");
setLogLevel("error");
const { config } = await loadConfig(opt("--config", "/tmp/abfull/config.yaml"));

/** FNV-1a over every decoded field, with its stream's key and time: the same digest means the same decodes. */
let digest = 0x811c9dc5;
const mixText = (s: string) => {
  for (let i = 0; i < s.length; i++) digest = Math.imul(digest ^ s.charCodeAt(i), 0x01000193);
};
let decoded = 0;
let failed = 0;

/** What the stream decoder does with a message before its codec: the field found and decoded (a scratch view). */
class FieldPipeline implements TapPipeline<never> {
  constructor(readonly stream: string, readonly fmt: AudioFormat, readonly check: boolean) {}
  push(msg: MessageIn): never[] {
    const env = msg.payload;
    if (env === undefined) {
      failed++;
      return [];
    }
    const field = extractAudioFieldView(env, this.fmt);
    if (!field.ok) {
      failed++;
      return [];
    }
    const raw = decodeField(field.data, this.fmt.encoding, true);
    if (!raw.ok) {
      failed++;
      return [];
    }
    decoded++;
    if (this.check) {
      mixText(this.stream);
      mixText(String(msg.timeNs));
      const b = raw.bytes;
      for (let i = 0; i < b.length; i++) digest = Math.imul(digest ^ b[i]!, 0x01000193);
    }
    return [];
  }
  finish(): never[] {
    return [];
  }
  stats(): DecodeCounters {
    return { markers: {}, errors: {} };
  }
}

function intakeOf(check: boolean): TapIntake<TapRule, FieldPipeline, never> {
  const taps: Tap<TapRule>[] = [];
  for (const m of config.measurements) taps.push(sourceTap(m), ...stageTaps([m]));
  return new TapIntake<TapRule, FieldPipeline, never>({
    taps,
    idleNs: 60_000_000_000n,
    maxStreams: config.engine.max_streams,
    clockWindowNs: BigInt(Math.round(config.engine.clock_window_seconds * 1e9)),
    tickNs: 1_000_000_000n,
    open: (s) => new FieldPipeline(s.stream, s.format, check),
    emit: () => Promise.resolve(),
    report: () => Promise.resolve(),
  });
}

/** One pass over the captures: rows read, and routed unless `route` is false. CPU seconds and rows. */
async function pass(route: boolean, check: boolean): Promise<{ cpuS: number; rows: number }> {
  const intake = route ? intakeOf(check) : undefined;
  let rows = 0;
  const c0 = process.cpuUsage();
  for (const file of captures) {
    const r = await openCapture(file);
    for await (const batch of r.batches()) {
      rows += batch.length;
      if (intake) {
        const p = intake.pushAll(batch);
        if (p !== undefined) await p;
      }
      // Done with: its cells' slabs are reused, as analyze's merge hands its batches back.
      r.release(batch);
    }
  }
  const c = process.cpuUsage(c0);
  return { cpuS: (c.user + c.system) / 1e6, rows };
}

const us = (s: number, rows: number) => ((s * 1e6) / rows).toFixed(3);
let readBest = Infinity, routeBest = Infinity, rows = 0;
for (let k = 0; k < rounds; k++) {
  if (mode !== "route") {
    const r = await pass(false, false);
    readBest = Math.min(readBest, r.cpuS);
    rows = r.rows;
  }
  if (mode !== "read") {
    const r = await pass(true, false);
    routeBest = Math.min(routeBest, r.cpuS);
    rows = r.rows;
  }
}
decoded = failed = 0;
if (mode !== "read") await pass(true, true);
console.log(
  `intake: ${rows} rows; read ${mode === "route" ? "-" : us(readBest, rows)} us/row, read+route+field ${
    mode === "read" ? "-" : us(routeBest, rows)
  } us/row (best of ${rounds}); decoded ${decoded}, failed ${failed}, digest ${(digest >>> 0).toString(16)}`,
);
