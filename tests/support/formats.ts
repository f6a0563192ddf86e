/** Audio formats the tests build streams in. */
import type { AudioFormat } from "../../audio/types.ts";

/** A raw binary format, by default 8 kHz μ-law, one channel (an RTP PCMU payload), with `over` laid on top. */
export function rawFormat(over: Partial<AudioFormat> = {}): AudioFormat {
  return {
    envelope: "raw",
    path: "",
    encoding: "binary",
    codec: "mulaw",
    sample_rate: 8000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
    ...over,
  };
}
