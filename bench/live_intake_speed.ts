/**
 * The live sensor's row intake in isolation (issue 16): recorded ExecuteScript responses of concurrent synthetic
 * calls (bench/pixie_read_path.ts's recording: a source and two target taps each, 20 ms μ-law Twilio JSON keyed
 * by `[pod, "$.streamSid"]`, 250 rows a batch) decoded and streamed by {@link PixieRowSource} (rows, re-run
 * dedupe), then routed by a {@link TapIntake} (stream key, stream table, per-stream dedupe) to a stand-in
 * pipeline that finds the audio field, decodes its base64 and appends the message to a {@link Timeline}, as the
 * stream decoder does before its codec; no codec, ring, fingerprint or matcher. Figures are process CPU
 * microseconds per row, the best of `--rounds` rounds; a digest of every stream key, time and decoded field shows
 * that a change routes and decodes the same bytes for the same streams.
 *
 * `deno run -A bench/live_intake_speed.ts [--calls 400] [--ticks 100] [--rounds 5]`
 * @module
 */
import process from "node:process";
import { record, type Recording } from "./pixie_read_path.ts";
import { liveCallsConfig } from "../tests/support/live_calls.ts";
import { parseConfigText } from "../config/load.ts";
import { queriesFromConfig } from "../cli/pixie_queries.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import type { PixieExecutor } from "../pixie/stream.ts";
import { decodeExecuteScriptResponse } from "../pixie/messages.ts";
import type { ExecuteScriptRequest, ExecuteScriptResponse } from "../pixie/messages.ts";
import type { Row } from "../pixie/row.ts";
import type { TapRule } from "../actors/tap_message.ts";
import { sourceTap, stageTaps, type Tap, TapIntake, type TapPipeline } from "../actors/tap_intake.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import { extractAudioFieldView } from "../audio/decode/payload.ts";
import { decodeField } from "../audio/decode/encoding.ts";
import { Timeline } from "../audio/decode/timeline.ts";
import type { AudioFormat } from "../audio/types.ts";
import type { DecodeCounters } from "../actors/decode_reporter.ts";
import { setLogLevel } from "../util/log.ts";

const args = Deno.args;
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const calls = Number(opt("--calls", "400"));
const ticks = Number(opt("--ticks", "100"));
const rounds = Number(opt("--rounds", "5"));
setLogLevel("error");

const { config } = parseConfigText(
  liveCallsConfig({ pixieAddr: "127.0.0.1:1", metricsListen: "127.0.0.1:0", maxStreams: calls * 3 + 100 }),
  "live_intake_speed.yaml",
);

/** Replays the recording once, then waits for the abort. */
class Replay implements PixieExecutor {
  readonly cloud = false;
  constructor(readonly rec: Recording) {}
  async *execute(_req: ExecuteScriptRequest, signal?: AbortSignal): AsyncGenerator<ExecuteScriptResponse> {
    for (const b of this.rec.meta) yield decodeExecuteScriptResponse(b);
    for (const b of this.rec.data) yield decodeExecuteScriptResponse(b);
    await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
  }
}

let digest = 0x811c9dc5;
let check = false;
const mixText = (s: string) => {
  for (let i = 0; i < s.length; i++) digest = Math.imul(digest ^ s.charCodeAt(i), 0x01000193);
};

/** The stream decoder's work before its codec: the field found and decoded, the message on the timeline. */
class FieldPipeline implements TapPipeline<never> {
  readonly #timeline: Timeline;
  #messages = 0;
  constructor(readonly stream: string, readonly fmt: AudioFormat) {
    this.#timeline = new Timeline(fmt.sample_rate, { lookbackSamples: 30 * 8000 });
  }
  push(msg: MessageIn): never[] {
    const env = msg.payload;
    const field = env === undefined ? undefined : extractAudioFieldView(env, this.fmt);
    const raw = field?.ok ? decodeField(field.data, this.fmt.encoding, true) : undefined;
    const frames = raw?.ok ? raw.bytes.length : 0;
    this.#timeline.append(this.#messages++, msg.timeNs, frames);
    if (check) {
      mixText(this.stream);
      mixText(String(msg.timeNs));
      if (raw?.ok) {
        for (let i = 0; i < raw.bytes.length; i++) digest = Math.imul(digest ^ raw.bytes[i]!, 0x01000193);
      }
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

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** One round: the rows read (stream) and routed (intake), CPU ms of each. */
async function round(rec: Recording): Promise<{ streamMs: number; intakeMs: number; rows: number }> {
  const source = new PixieRowSource({
    client: new Replay(rec),
    clusterId: "",
    queries: queriesFromConfig(config, config.node),
    encryption: false,
    stream: { idleTimeoutMs: 0 },
  });
  const batches: (readonly Row[])[] = [];
  let n = 0;
  const ac = new AbortController();
  let t0 = cpuMs();
  const running = source.runBatches((rows) => {
    batches.push(rows);
    n += rows.length;
    return Promise.resolve();
  }, ac.signal);
  while (n < rec.rows) await new Promise((r) => setTimeout(r, 1));
  const streamMs = cpuMs() - t0;
  ac.abort();
  await running;
  const taps: Tap<TapRule>[] = [];
  for (const m of config.measurements) taps.push(sourceTap(m), ...stageTaps([m]));
  const intake = new TapIntake<TapRule, FieldPipeline, never>({
    taps,
    idleNs: 60_000_000_000n,
    maxStreams: config.engine.max_streams,
    clockWindowNs: BigInt(Math.round(config.engine.clock_window_seconds * 1e9)),
    tickNs: 1_000_000_000n,
    open: (s) => new FieldPipeline(s.stream, s.format),
    emit: () => Promise.resolve(),
    report: () => Promise.resolve(),
  });
  t0 = cpuMs();
  for (const b of batches) {
    const p = intake.pushAll(b);
    if (p !== undefined) await p;
  }
  return { streamMs, intakeMs: cpuMs() - t0, rows: n };
}

const rec = record(calls, ticks);
let bestStream = Infinity, bestIntake = Infinity, rows = 0;
for (let r = 0; r < rounds; r++) {
  check = r === rounds - 1;
  if (check) digest = 0x811c9dc5;
  const x = await round(rec);
  rows = x.rows;
  bestStream = Math.min(bestStream, x.streamMs);
  bestIntake = Math.min(bestIntake, x.intakeMs);
}
const us = (ms: number) => ((ms * 1000) / rows).toFixed(3);
console.log(
  `live intake (${calls} calls, ${ticks} ticks): ${rows} rows; decode + stream ${us(bestStream)} us/row, ` +
    `tap intake + field + timeline ${us(bestIntake)} us/row, total ${us(bestStream + bestIntake)} us/row ` +
    `(best of ${rounds}); digest ${(digest >>> 0).toString(16)}`,
);
