/**
 * Documented defaults, in one place so the schema, example-config.yaml and the tests agree, and the derivation of
 * a measurement's default match rule from its source query.
 * @module
 */

/** `audio` when absent (a Twilio-style media stream: JSON with base64 mu-law at 8 kHz). */
export const DEFAULT_AUDIO = {
  envelope: "json",
  path: "media.payload",
  encoding: "base64",
  codec: "mulaw",
  sample_rate: 8000,
  channels: 1,
  channel: 0,
  skip_bytes: 0,
} as const;

/** `audio_criteria` when absent. */
export const DEFAULT_AUDIO_CRITERIA = {
  vad_mode: "energy",
  vad_aggressiveness: 2,
  energy_threshold: 0.3,
  min_duration_ms: 500,
  min_silence_ms: 300,
  reanchor_ms: 3000,
} as const;

/**
 * `columns` when absent; a partial `columns` is merged over these. `payload` is the column of packet taps' rows;
 * a Pixie tap (`stream_filter`) that names no payload column reads its table's body column instead (req_body
 * for http_events, body for nats_events.beta, req_args for redis_events: `defaultPayloadColumn` in
 * pixie/pxl_check.ts), filled in at load by config/checks.ts `fillPayloadDefaults`. `pod` is not a
 * Pixie column: fsm-px adds it to the query from `df.ctx['pod']`.
 */
export const DEFAULT_COLUMNS = { time: "time_", pod: "pod", payload: "payload" } as const;

/**
 * `engine.match_threshold_ber` and `engine.match_margin` when absent: what a sensor and `analyze` match with, so
 * what the accuracy bench (bench/accuracy.ts) measures. (The pipeline's own rule, DEFAULT_THRESHOLDS of
 * audio/match/thresholds.ts, 0.4 and 0.04, applies where no config is given; on the bench both gave identical
 * figures on every chain measured, session 27.)
 */
export const DEFAULT_MATCH_THRESHOLDS = { match_threshold_ber: 0.35, match_margin: 0.08 } as const;

/** `stream_key` when absent. */
export const DEFAULT_STREAM_KEY: readonly string[] = ["pod"];

/** Stage name of the match rule added when a measurement has no `match_rules`. */
export const DEFAULT_STAGE = "downstream";

/** Config files tried, in order, when `--config` is not given. */
export const DEFAULT_CONFIG_FILES = ["config.yaml", "example-config.yaml"] as const;

/**
 * The first `px.DataFrame(...)` call of a PxL script as a one-line query `df = px.DataFrame(...)`: the whole
 * source table, without the filters that follow it. Undefined when the script has no such call.
 */
export function wholeTableQuery(pxl: string): string | undefined {
  const start = pxl.indexOf("px.DataFrame(");
  if (start < 0) return undefined;
  let depth = 0;
  let quote = "";
  for (let i = start + "px.DataFrame".length; i < pxl.length; i++) {
    const ch = pxl[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === "(") {
      depth++;
    } else if (ch === ")" && --depth === 0) {
      return `df = ${pxl.slice(start, i + 1)}`;
    }
  }
  return undefined;
}

/** Column of a packet row that names its stream: one flow direction (and SSRC for RTP). */
export { PACKET_STREAM_COLUMN } from "../packets/rows.ts";
