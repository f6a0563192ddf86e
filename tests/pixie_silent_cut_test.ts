/**
 * Pixie cuts an HTTP body at its parse limit without a marker (only `*_body_size` shows it): the stream counts it
 * as truncated, and the decoder keeps the timeline in place with a gap of the body's length, as for a marked cut.
 */
import assert from "node:assert/strict";
import { isTruncated } from "../pixie/stream.ts";
import { StreamDecoder } from "../audio/decode/stream_decoder.ts";
import { encodeBase64 } from "../audio/decode/encoding.ts";
import { encodeSamples } from "../audio/decode/codecs.ts";

const enc = new TextEncoder();
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

Deno.test("isTruncated: the marker, a silent cut shorter than the body size, and a whole body", () => {
  assert.ok(isTruncated(enc.encode("x".repeat(497) + "... [TRUNCATED]")));
  assert.ok(isTruncated(enc.encode('{"media":{"payload":"AAAA'), 4000), "cut at the parse limit, no marker");
  assert.ok(!isTruncated(enc.encode('{"a":1}'), 7), "whole body");
  assert.ok(!isTruncated(enc.encode('{"a":1}')), "no size known: only the marker counts");
});

Deno.test("a silently cut message is a gap of its original length: later audio keeps its place", () => {
  const fmt = {
    envelope: "json",
    path: "media.payload",
    encoding: "base64",
    codec: "mulaw",
    sample_rate: 8000,
    channels: 1,
    channel: 0,
    skip_bytes: 0,
  } as const;
  const msg = (i: number) =>
    enc.encode(
      JSON.stringify({
        event: "media",
        media: { payload: encodeBase64(encodeSamples("mulaw", new Float32Array(160).fill(0.1 * (i % 3)))) },
      }),
    );
  const d = new StreamDecoder(fmt);
  for (let i = 0; i < 6; i++) {
    const whole = msg(i);
    // Message 3 arrives cut at 100 bytes, without a marker; its original size is known.
    const cut = i === 3;
    const o = d.push({
      timeNs: T0 + BigInt(i) * 20n * MS,
      payload: cut ? whole.subarray(0, 100) : whole,
      bodySize: whole.length,
    });
    if (cut) assert.equal(o.kind, "marker", "the cut message stands as a gap");
  }
  // Every message, the cut one included, holds 160 samples: message 4 starts at 4 x 160.
  const loc = d.timeline.locate(4 * 160 + 10);
  assert.equal(loc?.messageIndex, 4);
  assert.equal(d.stats().markers.truncated, 1);
});
