/** Audio formats the tests build streams in. */
import type { AudioFormat } from "../../audio/types.ts";

/** Raw 8 kHz μ-law, one channel (an RTP PCMU payload, a binary WebSocket frame), with `over` laid on top. */
export function rawMulaw(over: Partial<AudioFormat> = {}): AudioFormat {
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
