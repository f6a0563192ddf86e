import { equal } from "node:assert/strict";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { FORMAT as RTP_PCMU } from "./support/speech_signatures.ts";

Deno.test("stream decoder: an RTP payload that happens to read like a Pixie marker is audio, and nothing after it moves", () => {
  // 160 μ-law bytes that begin "<removed:" and end ">" (any caller's audio can): Pixie never carries RTP, and its
  // media clock already places every packet.
  const odd = new Uint8Array(160).fill(0x55);
  odd.set(new TextEncoder().encode("<removed: 160 bytes"), 0);
  odd[159] = 0x3e;
  const d = new StreamDecoder(RTP_PCMU, { keepTimeline: true });
  for (let i = 0; i < 6; i++) {
    const o = d.push({
      timeNs: 1_000_000_000n + BigInt(i) * 20_000_000n,
      payload: i === 2 ? odd : new Uint8Array(160).fill(0xd5),
      mediaClock: { ts: 5000 + i * 160, clockRate: 8000 },
      codec: { codec: "mulaw", sampleRate: 8000 },
    });
    equal(o.kind, "audio", `packet ${i}`);
  }
  // Before: a marker's gap of silence replaced it, and the clock, not told, put a second gap before packet 3.
  equal(d.timeline.nativeLength, 6 * 160);
  equal(d.timeline.locate(3 * 160)?.messageIndex, 3);
  equal(d.stats().mediaGaps, 0);
});
