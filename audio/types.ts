/**
 * Types that cross the audio engine's boundary. The option shapes mirror the config keys under `audio` and
 * `audio_criteria` (a contract), so a validated config section can be passed as it is.
 * @module
 */

/** How a payload carries audio: config key `audio`. */
export interface AudioFormat {
  /**
   * json: dotted `path` to the audio field; regex: `path` is a pattern with one group; raw: whole payload;
   * protobuf: `path` is field numbers (`2`, `1.3`) of a length-delimited field.
   */
  envelope: "json" | "regex" | "raw" | "protobuf";
  path: string;
  encoding: "base64" | "hex" | "binary";
  /**
   * Sample codecs (mulaw, alaw, pcm16le, pcm16be = RTP L16, float32le) decode each message on its own; g722
   * (64 kbit/s, 16 kHz audio) and opus (one RTP packet per message) carry decoder state from message to message.
   */
  codec: "mulaw" | "alaw" | "pcm16le" | "pcm16be" | "float32le" | "g722" | "opus";
  /** Native sample rate, 8000..48000 (g722: 16000; opus: the rate libopus decodes to, 8000/12000/16000/24000/48000). */
  sample_rate: number;
  /** Interleaved channels in the payload. */
  channels: number;
  /** Which channel to analyse (0-based), or "mix" to average all. */
  channel: number | "mix";
  /** raw: header bytes before the audio. */
  skip_bytes: number;
}

/** Onset detection options: config key `audio_criteria`. */
export interface AudioCriteria {
  vad_mode: "energy" | "webrtc";
  /** webrtc: 0 (least aggressive) .. 3. */
  vad_aggressiveness: number;
  /** energy: how far above the adaptive noise floor a frame must be to count as speech (see README). */
  energy_threshold: number;
  /** Speech that must follow an onset for it to become an anchor. */
  min_duration_ms: number;
  /** Silence that must precede an onset. */
  min_silence_ms: number;
  /** During continuous speech, a new anchor every this many ms (0 disables re-anchoring). */
  reanchor_ms: number;
}

/** Where a tap carried an audio instant: the message's capture time plus the instant's offset in its audio. */
export interface Tap {
  node: string;
  /** `namespace/pod` as Pixie reports it. */
  pod: string;
  /** Stream key, rendered as text. */
  stream: string;
  /** `time_` of the message that carries the instant, ns since the epoch. */
  timeNs: bigint;
  /** The instant's position in that message's audio, milliseconds. */
  offsetMs: number;
}

/**
 * A compact perceptual signature of one audio instant at the source. Encoded for the wire in < 1 KB. The
 * optional parts are always present as keys (undefined when absent), so every signature has one hidden class:
 * make them with audio/fingerprint/signature.ts (`buildSignature`, `decodeSignature`, `signatureOf`).
 */
export interface Signature {
  /** 64-bit key as 16 lowercase hex digits. */
  id: string;
  measurement: string;
  source: Tap;
  /** Sub-fingerprints from the anchor on, one per hop on the stream's absolute frame grid. */
  fingerprint: Uint32Array;
  /**
   * Frames too quiet at the source to trust (their bits are noise): bit j (byte j >> 3, bit j & 7) set means
   * fingerprint[j] is ignored by lookups and by the bit error rate. Undefined: every frame counts.
   */
  mask: Uint8Array | undefined;
  /**
   * Fine-timing envelope around the instant for sample-level alignment: 256 levels 0..7 (see
   * audio/align/level_envelope.ts). Undefined: alignment uses the sub-fingerprints alone (less precise).
   */
  levelEnvelope: Uint8Array | undefined;
  /**
   * Signs of the source waveform over 512 samples near the instant (see audio/align/wave_signs.ts): `offset` is
   * the window's first sample relative to the instant, `bits` 64 bytes. Undefined: the envelope alone places it.
   */
  waveSigns: { offset: number; bits: Uint8Array } | undefined;
  /** Context ids from metadata_extraction, e.g. { interval_id: "..." }. */
  ids: Record<string, string>;
}

/** The same instant found at a downstream tap. */
export interface Match {
  measurement: string;
  stage: string;
  signatureId: string;
  ids: Record<string, string>;
  source: Tap;
  target: Tap;
  /** (target.timeNs - source.timeNs) / 1e9. */
  latencyS: number;
  /** Bit error rate of the fingerprint block at the chosen alignment. */
  ber: number;
  /**
   * The target's level envelope around the matched instant, in the form of {@link Signature.levelEnvelope} (256
   * levels 0..7): what the fine alignment compared with the source's. Absent when the audio was not held.
   */
  targetEnvelope?: Uint8Array;
}
