/**
 * User regexes (`metadata_extraction.id_patterns`, `envelope: regex`) run on every captured message. This
 * measures three engines on that workload, to choose one that cannot be made to backtrack:
 *
 * - `RegExp`: V8's backtracking engine (irregexp), what the sensor used before issue 15;
 * - `re2js`: RE2 ported to JavaScript (linear time, no lookarounds or backreferences);
 * - `re2-wasm`: Google's RE2 compiled to WebAssembly (linear time; input copied into WASM memory as UTF-8);
 * - `fsm-px`: what the sensor runs (util/linear_regex.ts): its `scan` engine for `literal(class{m,n})literal`
 *   patterns, re2js for the rest.
 *
 * Workloads: the id pattern `interval_id":"([a-f0-9-]{36})` over Twilio media messages (20 ms μ-law, ~400 B)
 * and ASR messages (100 ms PCM16 16 kHz, ~4.4 KB), with the id present and absent (a full scan); the envelope
 * pattern `"payload":"([^"]*)"` capturing the audio; and `(a+)+$` on a 32-byte body (the issue's freeze), where
 * RegExp is timed on shorter bodies only. Timings are printed, never asserted.
 *
 *   deno run --allow-read bench/regex_speed.ts [messages=20000]
 * @module
 */

import { RE2JS } from "re2js";
import { RE2 } from "re2-wasm";
import { compileLinearRegex } from "../util/linear_regex.ts";

/** A compiled matcher under test: the first capture group of the first match, or undefined. */
type Capture = (text: string) => string | undefined;

/** Figures for one engine on one workload. */
export interface RegexFigure {
  workload: string;
  engine: string;
  /** Mean time per message, microseconds. */
  usPerMessage: number;
  /** Input scanned, MB/s. */
  mbPerSecond: number;
}

/** The whole result of {@link measureRegexSpeed}. */
export interface RegexSpeed {
  figures: RegexFigure[];
  /** `(a+)+$` on `a`×n + `!`: milliseconds per engine and body length (RegExp stops where it gets slow). */
  catastrophic: { engine: string; bodyBytes: number; ms: number }[];
}

const ID_PATTERN = 'interval_id":"([a-f0-9-]{36})';
const ENVELOPE_PATTERN = '"payload":"([^"]*)"';

function engines(pattern: string): { engine: string; capture: Capture }[] {
  const js = new RegExp(pattern);
  const re2js = RE2JS.compile(pattern);
  const wasm = new RE2(pattern, "u");
  const linear = compileLinearRegex(pattern);
  if ("error" in linear) throw new Error(linear.error);
  return [
    { engine: "RegExp", capture: (t) => js.exec(t)?.[1] },
    {
      engine: "re2js",
      capture: (t) => {
        const m = re2js.matcher(t);
        return m.find() ? m.group(1) ?? undefined : undefined;
      },
    },
    { engine: "re2-wasm", capture: (t) => wasm.exec(t)?.[1] },
    { engine: `fsm-px (${linear.engine})`, capture: (t) => linear.capture(t) },
  ];
}

function base64Of(bytes: number, seed: number): string {
  const b = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return btoa(String.fromCharCode(...b));
}

function uuid(i: number): string {
  const h = (i * 2654435761 >>> 0).toString(16).padStart(8, "0");
  return `${h}-0000-4000-8000-${h}${h.slice(0, 4)}`;
}

function twilio(i: number, withId: boolean): string {
  return JSON.stringify({
    event: "media",
    sequenceNumber: String(i + 2),
    media: { track: "inbound", chunk: String(i + 1), timestamp: String(i * 20), payload: base64Of(160, i) },
    streamSid: "MZ18ad3ab5a668481ce02b83e7395059f0",
    ...(withId ? { interval_id: uuid(i) } : {}),
  });
}

function asr(i: number, withId: boolean): string {
  return JSON.stringify({
    session: "s-42",
    ...(withId ? { interval_id: uuid(i) } : {}),
    seq: i,
    payload: base64Of(3200, i),
  });
}

function time(capture: Capture, inputs: readonly string[], expectHit: boolean): number {
  let hits = 0;
  const t0 = performance.now();
  for (const t of inputs) if (capture(t) !== undefined) hits++;
  const ms = performance.now() - t0;
  // A wrong answer would make the timing meaningless.
  if ((hits === inputs.length) !== expectHit || (!expectHit && hits !== 0)) {
    throw new Error(`unexpected matches: ${hits} of ${inputs.length}`);
  }
  return ms;
}

/** Runs the comparison over `messages` messages per workload. */
export function measureRegexSpeed(messages = 20_000): Promise<RegexSpeed> {
  const workloads: { workload: string; pattern: string; inputs: string[]; hit: boolean }[] = [
    ["id, Twilio 20 ms, present", ID_PATTERN, (i: number) => twilio(i, true), true],
    ["id, Twilio 20 ms, absent", ID_PATTERN, (i: number) => twilio(i, false), false],
    ["id, ASR 100 ms, present", ID_PATTERN, (i: number) => asr(i, true), true],
    ["id, ASR 100 ms, absent", ID_PATTERN, (i: number) => asr(i, false), false],
    ["envelope, Twilio 20 ms", ENVELOPE_PATTERN, (i: number) => twilio(i, true), true],
    ["envelope, ASR 100 ms", ENVELOPE_PATTERN, (i: number) => asr(i, true), true],
  ].map(([workload, pattern, make, hit]) => ({
    workload: workload as string,
    pattern: pattern as string,
    inputs: Array.from({ length: messages }, (_, i) => (make as (i: number) => string)(i)),
    hit: hit as boolean,
  }));

  const figures: RegexFigure[] = [];
  for (const w of workloads) {
    const bytes = w.inputs.reduce((n, t) => n + t.length, 0);
    for (const { engine, capture } of engines(w.pattern)) {
      time(capture, w.inputs.slice(0, Math.min(2000, messages)), w.hit); // warm-up
      const ms = time(capture, w.inputs, w.hit);
      figures.push({
        workload: w.workload,
        engine,
        usPerMessage: ms * 1000 / messages,
        mbPerSecond: bytes / 1e6 / (ms / 1000),
      });
    }
  }

  const catastrophic: RegexSpeed["catastrophic"] = [];
  for (const { engine, capture } of engines("(a+)+$")) {
    // RegExp doubles its time per extra byte: 24 bytes is already about a second on this machine.
    const lengths = engine === "RegExp" ? [16, 20, 22, 24] : [32, 1024, 65_536];
    for (const n of lengths) {
      const body = "a".repeat(n) + "!";
      const t0 = performance.now();
      capture(body);
      catastrophic.push({ engine, bodyBytes: body.length, ms: performance.now() - t0 });
    }
  }
  return Promise.resolve({ figures, catastrophic });
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 20_000);
  const r = await measureRegexSpeed(n);
  console.log(`user regex engines, ${n} messages per workload (mean per message; input MB/s)`);
  for (const f of r.figures) {
    console.log(
      `  ${f.workload.padEnd(28)} ${f.engine.padEnd(18)} ${f.usPerMessage.toFixed(2).padStart(8)} us  ${
        f.mbPerSecond.toFixed(0).padStart(6)
      } MB/s`,
    );
  }
  console.log("(a+)+$ on a×n + '!':");
  for (const c of r.catastrophic) {
    console.log(
      `  ${c.engine.padEnd(18)} ${String(c.bodyBytes).padStart(6)} B  ${c.ms.toFixed(2).padStart(9)} ms`,
    );
  }
}
