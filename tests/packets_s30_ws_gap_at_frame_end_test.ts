/**
 * A TCP hole that ends exactly where the WebSocket frame in progress ends (the lost segment carried the frame's
 * tail, and the next one starts with the next frame: the usual shape when a message spans segments) keeps the
 * framing, as a hole inside the frame does: only that frame's message is lost, counted once, and the inflate
 * history of a permessage-deflate direction survives when the message was not compressed. Before, such a hole lost
 * sync: the parser scanned for frames again and took the history for unknown, so with context takeover every later
 * JSON message (its keys copied from the one before) was counted `ws_deflate_history_lost` to the connection's end.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, node:zlib.
 */
import assert from "node:assert/strict";
import { deflater, frame, mulawB64, noise, twilioMedia } from "./support/ws_frames.ts";
import { wsConnection } from "./support/ws_connection.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("WebSocket gap at a frame's end: a deflate direction's uncompressed message lost by its tail keeps the history", async () => {
  const { src, out, server } = wsConnection("permessage-deflate");
  const z = deflater();
  const json = Array.from({ length: 12 }, (_, i) => twilioMedia(i, mulawB64(i)));
  const binary = noise(3000, 7);
  for (const [i, m] of json.entries()) {
    if (i === 6) {
      // A binary message sent uncompressed (RSV1 clear, as permessage-deflate allows), in two segments: the
      // second one, its tail, is not captured.
      const f = frame({ op: 2, payload: binary });
      server(f.subarray(0, 1400));
      server(f.subarray(1400), true);
    }
    server(frame({ op: 1, payload: await z(enc.encode(m)), rsv1: true }));
  }
  src.finish();
  assert.deepEqual(out.map((m) => dec.decode(m.payload)), json);
  assert.equal(src.skips.counts.get("ws_bad_frame"), 1);
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), undefined);
});
