/**
 * permessage-deflate with context takeover: a compressed message the parser skips without inflating (over the
 * message bound, or no room in the parsers' shared budget) still went through the sender's compressor, so the
 * history the next messages refer to is unknown from then on. Before, the direction kept the history of the
 * messages before the skipped one, and a later message that referred back into the skipped one's bytes inflated
 * against the wrong history: wrong bytes handed on as its audio, with nothing counted. Now it fails cleanly
 * (`ws_deflate_history_lost` since session 27, `ws_deflate_error` before), as after a gap.
 */
import assert from "node:assert/strict";
import { TcpSource } from "../packets/tcp_source.ts";
import type { AppMessage } from "../packets/types.ts";
import { TcpFlag } from "../packets/types.ts";
import { Conn } from "./support/tcp_segments.ts";
import { deflater, frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const enc = new TextEncoder();
const MASK: [number, number, number, number] = [0x11, 0x22, 0x33, 0x44];

/** Bytes that do not compress (a fixed pseudo-random sequence). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * A WebSocket connection whose upgrade agreed permessage-deflate, on a TcpSource with `opts`: the messages it
 * hands on, and a sender of the client's next frames (one segment each, in order).
 */
function deflateConnection(opts: { maxMessageBytes?: number; maxParserBytes?: number }) {
  const out: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "websocket", emit: (m) => out.push(m), ...opts });
  const c = new Conn();
  src.push(c.syn(0, 0n));
  src.push(c.back(0, "", 0n, TcpFlag.SYN | TcpFlag.ACK));
  const req = enc.encode(upgradeRequest());
  src.push(c.seg(1, req, 1n));
  src.push(c.back(1, enc.encode(upgradeResponse("permessage-deflate")), 2n));
  let seq = 1 + req.length, t = 10n;
  const send = (f: Uint8Array) => {
    src.push(c.seg(seq, f, t++));
    seq += f.length;
  };
  return { src, out, send };
}

Deno.test("deflate: a message after a compressed one skipped over the bound never inflates against stale history", async () => {
  const { src, out, send } = deflateConnection({ maxMessageBytes: 400 });
  const z = deflater();
  const big = noise(600, 99); // compresses to more than the 400-byte bound: skipped whole
  const sent = [noise(300, 1), noise(300, 2), noise(300, 3), noise(300, 4), big, big.slice(0, 200)];
  for (const m of sent) send(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }));
  src.finish();
  const got = out.map((m) => hex(m.payload));
  assert.deepEqual(got.slice(0, 4), sent.slice(0, 4).map(hex));
  assert.equal(src.skips.counts.get("message_too_large"), 1);
  // The last message is the skipped one's first 200 bytes: a back-reference into bytes never inflated here.
  for (const g of got.slice(4)) {
    assert.ok(sent.map(hex).includes(g), `decoded wrong: ${g.slice(0, 40)}...`);
  }
  assert.equal(got.length, 4);
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), 1);
});

Deno.test("deflate: the same after a fragmented compressed message the parsers' budget had no room for", async () => {
  const { src, out, send } = deflateConnection({ maxParserBytes: 1100 });
  const z = deflater();
  const big = noise(600, 99);
  const first = [noise(300, 1), noise(300, 2)];
  for (const m of first) send(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }));
  // The big message in two fragments: the second does not fit the 1,100-byte budget beside the first and the
  // 600 bytes of inflate history (charged to it since session 27).
  const zb = await z(big);
  send(frame({ op: 2, payload: zb.subarray(0, 300), mask: MASK, rsv1: true, fin: false }));
  send(frame({ op: 0, payload: zb.subarray(300), mask: MASK }));
  send(frame({ op: 2, payload: await z(big.slice(0, 200)), mask: MASK, rsv1: true }));
  src.finish();
  const got = out.map((m) => hex(m.payload));
  // The fragment, then the two 32 KiB histories the last message is inflated against once the history is unknown.
  assert.equal(src.skips.counts.get("tcp_buffer_overflow"), 2);
  assert.deepEqual(got, first.map(hex), "nothing decoded wrong");
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), 1);
});
