/**
 * What the WebSocket parser loses is counted under the right reason: a frame cut off by the connection's end (FIN
 * or RST mid-frame, or the end of a capture file) is `ws_bad_frame` (it vanished uncounted), and a compressed
 * message that inflates past the size bound is `message_too_large`, as an uncompressed one is (it was counted as
 * a deflate error). And a capture that begins inside a permessage-deflate connection finds its frames (the scan
 * for a frame refused RSV1 without a handshake seen: the whole connection was silent, nothing counted).
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, node:zlib.
 */
import assert from "node:assert/strict";
import { deflateRawSync } from "node:zlib";
import { TcpSource } from "../packets/tcp_source.ts";
import type { AppMessage } from "../packets/types.ts";
import { TcpFlag } from "../packets/types.ts";
import { Conn } from "./support/tcp_segments.ts";
import { frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const enc = new TextEncoder();
const MASK: [number, number, number, number] = [0x37, 0xfa, 0x21, 0x3d];

/** A WebSocket connection after its handshake, with the client's next sequence number. */
function opened(extensions?: string) {
  const out: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: () => "websocket",
    emit: (m) => out.push(m),
    maxMessageBytes: 1 << 20,
  });
  const c = new Conn();
  src.push(c.syn(0, 0n));
  src.push(c.back(0, "", 0n, TcpFlag.SYN | TcpFlag.ACK));
  const req = enc.encode(upgradeRequest());
  const res = enc.encode(upgradeResponse(extensions));
  src.push(c.seg(1, req, 1n));
  src.push(c.back(1, res, 2n));
  return { src, out, c, seq: 1 + req.length };
}

/** A permessage-deflate payload of `data` (sync flush, its 4-byte tail removed as RFC 7692 says). */
function deflated(data: Uint8Array): Uint8Array {
  const z = deflateRawSync(data, { finishFlush: 2 });
  return z.subarray(0, z.length - 4);
}

for (const end of ["FIN", "RST", "end of capture"] as const) {
  Deno.test(`WebSocket: a frame cut off by ${end} is counted as lost`, () => {
    const { src, out, c, seq } = opened();
    const whole = frame({ op: 2, payload: new Uint8Array(100).fill(1), mask: MASK });
    src.push(c.seg(seq, whole, 3n));
    const cut = frame({ op: 2, payload: new Uint8Array(3000).fill(2), mask: MASK });
    src.push(c.seg(seq + whole.length, cut.subarray(0, 1000), 4n));
    const at = seq + whole.length + 1000;
    if (end === "FIN") src.push(c.seg(at, "", 5n, TcpFlag.FIN | TcpFlag.ACK));
    if (end === "RST") src.push(c.seg(at, "", 5n, TcpFlag.RST));
    src.finish(10n);
    assert.equal(out.length, 1, "the whole frame's message");
    assert.equal(src.skips.counts.get("ws_bad_frame"), 1, "the cut frame's message");
  });
}

Deno.test("WebSocket: a compressed message inflating past the bound is message_too_large; the next one is kept", () => {
  const { src, out, c, seq } = opened("permessage-deflate");
  // 4 MiB of zeros deflate to a few KiB; the bound is 1 MiB.
  const bomb = frame({ op: 2, payload: deflated(new Uint8Array(4 << 20)), mask: MASK, rsv1: true });
  src.push(c.seg(seq, bomb, 3n));
  const next = frame({ op: 1, payload: deflated(enc.encode("hello")), mask: MASK, rsv1: true });
  src.push(c.seg(seq + bomb.length, next, 4n));
  assert.deepEqual(out.map((m) => new TextDecoder().decode(m.payload)), ["hello"]);
  assert.equal(src.skips.counts.get("message_too_large"), 1);
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});

Deno.test("WebSocket: a capture that begins inside a compressed connection finds its frames (RSV1 set)", () => {
  const out: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "websocket", emit: (m) => out.push(m) });
  // No SYN, no handshake: the sensor (or its restarted tcpdump) came in while the connection was open. Each
  // message is compressed on its own (as with client_no_context_takeover), so every whole one can be read.
  const texts = Array.from(
    { length: 20 },
    (_, i) => `{"event":"media","seq":${i},"payload":"${"AAAA".repeat(40)}"}`,
  );
  const frames = texts.map((t) => frame({ op: 1, payload: deflated(enc.encode(t)), mask: MASK, rsv1: true }));
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (bytes.set(f, at), at + f.length), 0);
  // The capture starts 7 bytes into the first frame; segments of 100 bytes.
  const c = new Conn();
  for (let at = 7; at < bytes.length; at += 100) {
    src.push(c.seg(5000 + at, bytes.subarray(at, Math.min(bytes.length, at + 100)), BigInt(at)));
  }
  src.finish();
  assert.deepEqual(out.map((m) => new TextDecoder().decode(m.payload)), texts.slice(1));
  assert.ok(out.every((m) => m.text === true));
});
