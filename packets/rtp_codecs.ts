/**
 * RTP payload types and the audio codecs behind them: the static assignments of RFC 3551 and the dynamic ones a
 * user maps (`96: opus/48000`). Names follow SDP's `rtpmap` encoding names, case-insensitive.
 * @module
 */

/** The audio a payload type carries, as the decoder needs it. */
export interface RtpCodec {
  /** Decoder codec: mulaw, alaw, pcm16be (L16), g722, opus; `event` for telephone-event (not audio). */
  codec: "mulaw" | "alaw" | "pcm16be" | "g722" | "opus" | "event";
  /** Audio sample rate of the decoded signal. */
  sampleRate: number;
  /** RTP timestamp clock rate (differs from the sample rate for G.722: 8000 vs 16000). */
  clockRate: number;
  channels: number;
}

/** Static payload types (RFC 3551) that carry audio fsm-px decodes. */
export const STATIC_PAYLOAD_TYPES: ReadonlyMap<number, RtpCodec> = new Map<number, RtpCodec>([
  [0, { codec: "mulaw", sampleRate: 8000, clockRate: 8000, channels: 1 }],
  [8, { codec: "alaw", sampleRate: 8000, clockRate: 8000, channels: 1 }],
  [9, { codec: "g722", sampleRate: 16000, clockRate: 8000, channels: 1 }],
  [10, { codec: "pcm16be", sampleRate: 44100, clockRate: 44100, channels: 2 }],
  [11, { codec: "pcm16be", sampleRate: 44100, clockRate: 44100, channels: 1 }],
]);

const NAMES: Record<string, RtpCodec["codec"]> = {
  pcmu: "mulaw",
  pcma: "alaw",
  g722: "g722",
  l16: "pcm16be",
  opus: "opus",
  "telephone-event": "event",
};

const SUPPORTED_RATES = new Set([8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]);

/**
 * Parses an `rtpmap`-style name: `opus/48000`, `opus/48000/2`, `L16/16000`, `PCMU/8000`, `G722/8000`,
 * `telephone-event/8000`. Opus is always decoded at 48 kHz (its RTP clock is 48000 whatever the bandwidth).
 */
export function parseRtpCodecName(text: string): RtpCodec | { error: string } {
  const parts = text.trim().split("/");
  const name = parts[0]?.toLowerCase() ?? "";
  const codec = NAMES[name];
  if (codec === undefined) {
    return { error: `unknown encoding name "${parts[0]}"; known: ${Object.keys(NAMES).join(", ")}` };
  }
  if (parts.length < 2 || parts.length > 3) return { error: "expected name/clock_rate[/channels]" };
  const clock = Number(parts[1]);
  const channels = parts.length === 3 ? Number(parts[2]) : 1;
  if (!Number.isInteger(clock) || clock <= 0) {
    return { error: `clock rate "${parts[1]}" is not a positive integer` };
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) {
    return { error: `channels "${parts[2]}" is not an integer from 1 to 8` };
  }
  if (codec === "opus") {
    if (clock !== 48000) return { error: "Opus's RTP clock rate is always 48000 (RFC 7587)" };
    return { codec, sampleRate: 48000, clockRate: 48000, channels: Math.min(channels, 2) };
  }
  if (codec === "g722") {
    if (clock !== 8000) return { error: "G.722's RTP clock rate is 8000 (RFC 3551), its audio 16 kHz" };
    // The decoder takes mono G.722 only (a stereo stream would fail the moment its first packet came).
    if (channels !== 1) return { error: "G.722 is decoded as mono (G722/8000) only" };
    return { codec, sampleRate: 16000, clockRate: 8000, channels };
  }
  if (codec === "event") return { codec, sampleRate: clock, clockRate: clock, channels: 1 };
  if ((codec === "mulaw" || codec === "alaw") && clock !== 8000) {
    return { error: `${parts[0]} runs at 8000 Hz` };
  }
  if (!SUPPORTED_RATES.has(clock)) {
    return { error: `clock rate ${clock} is not one of ${[...SUPPORTED_RATES].join(", ")}` };
  }
  return { codec, sampleRate: clock, clockRate: clock, channels };
}

/** The codec of a payload type: the user's map first (dynamic types may also override static ones). */
export function codecForPayloadType(
  pt: number,
  dynamic: ReadonlyMap<number, RtpCodec>,
): RtpCodec | undefined {
  return dynamic.get(pt) ?? STATIC_PAYLOAD_TYPES.get(pt);
}

/** Renders a codec as its `rtpmap` name, e.g. `opus/48000/2` (what a row's `rtp_codec` column holds). */
export function rtpCodecName(c: RtpCodec): string {
  const name = c.codec === "mulaw"
    ? "PCMU"
    : c.codec === "alaw"
    ? "PCMA"
    : c.codec === "pcm16be"
    ? "L16"
    : c.codec === "g722"
    ? "G722"
    : c.codec === "event"
    ? "telephone-event"
    : "opus";
  return `${name}/${c.clockRate}${c.channels > 1 ? `/${c.channels}` : ""}`;
}
