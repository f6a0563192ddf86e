/**
 * permessage-deflate after a loss (a TCP hole given up, a message skipped, a capture begun mid-connection): what
 * can be recovered is recovered, exactly, and what cannot is counted under its own reason.
 *
 * With context takeover a message may copy bytes from earlier messages (up to 32 KiB back). After a loss the parser
 * no longer knows those bytes; it inflates each message against two histories that differ in every unknown byte,
 * and a message that comes out the same both ways depends on nothing lost: it is handed on. One that differs is
 * counted `ws_deflate_history_lost`. Before, the history restarted empty after any loss, so every later message
 * that referred back at all failed (`ws_deflate_error`), and a context-takeover connection was silent from its
 * first lost segment to its end. A direction whose sender resets its compressor each message
 * (`*_no_context_takeover`) recovers at the next message.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, node:zlib.
 */
import assert from "node:assert/strict";
import { concat, deflater, frame, mulawB64, noise, twilioMedia } from "./support/ws_frames.ts";
import { wsConnection } from "./support/ws_connection.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MASK: [number, number, number, number] = [0x11, 0x22, 0x33, 0x44];
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("deflate, context takeover: after a lost message, the messages that refer only to bytes seen since are decoded", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  // Each message is 300 fresh bytes and then the previous one's fresh bytes again: the compressor copies those from
  // the message before. Message 5 is lost: message 6 copies from it (lost too), message 7 on copy only from bytes
  // the parser has seen.
  const fresh = Array.from({ length: 12 }, (_, i) => noise(300, i + 1));
  const msgs = fresh.map((f, i) => concat(f, i > 0 ? fresh[i - 1]! : new Uint8Array(0)));
  for (const [i, m] of msgs.entries()) {
    client(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }), i === 5);
  }
  src.finish();
  const got = out.map((m) => hex(m.payload));
  const want = msgs.map(hex);
  assert.deepEqual(got, [...want.slice(0, 5), ...want.slice(7)]);
  assert.equal(src.skips.counts.get("tcp_gap"), 1);
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), 1, "message 6, counted");
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined, "nothing corrupt");
});

Deno.test("deflate, context takeover: Twilio JSON after a loss copies its keys from lost bytes: lost, counted, never wrong", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  const msgs = Array.from({ length: 12 }, (_, i) => twilioMedia(i, mulawB64(i)));
  for (const [i, m] of msgs.entries()) {
    client(frame({ op: 1, payload: await z(enc.encode(m)), mask: MASK, rsv1: true }), i === 5);
  }
  src.finish();
  const got = out.map((m) => dec.decode(m.payload));
  assert.deepEqual(got.slice(0, 5), msgs.slice(0, 5));
  for (const g of got.slice(5)) assert.ok(msgs.includes(g), `decoded wrong: ${g.slice(0, 60)}`);
  // Every message after the loss is either decoded exactly or counted under its reason.
  assert.equal(got.length - 5 + (src.skips.counts.get("ws_deflate_history_lost") ?? 0), 6);
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});

Deno.test("deflate, server_no_context_takeover: the server's direction recovers at the message after a lost one", async () => {
  const { src, out, server } = wsConnection("permessage-deflate; server_no_context_takeover");
  const msgs = Array.from({ length: 8 }, (_, i) => twilioMedia(i, mulawB64(i)));
  for (const [i, m] of msgs.entries()) {
    // The server's compressor starts afresh for each message.
    server(frame({ op: 1, payload: await deflater()(enc.encode(m)), rsv1: true }), i === 3);
  }
  src.finish();
  assert.deepEqual(out.map((m) => dec.decode(m.payload)), [...msgs.slice(0, 3), ...msgs.slice(4)]);
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), undefined);
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});

Deno.test("deflate, context takeover: a lost segment inside an uncompressed frame keeps the history", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  const a = noise(300, 1);
  client(frame({ op: 2, payload: await z(a), mask: MASK, rsv1: true }));
  // An uncompressed binary message (a sender may leave small or incompressible ones as they are) in three
  // segments, the middle one never captured: the frame's header gives its length, the framing is kept.
  const plain = frame({ op: 2, payload: noise(3000, 7), mask: MASK });
  client(plain.subarray(0, 1000));
  client(plain.subarray(1000, 2000), true);
  client(plain.subarray(2000));
  // The next compressed message copies all of the first one.
  const b = concat(noise(100, 2), a);
  client(frame({ op: 2, payload: await z(b), mask: MASK, rsv1: true }));
  src.finish();
  assert.deepEqual(out.map((m) => hex(m.payload)), [hex(a), hex(b)]);
  assert.equal(src.skips.counts.get("ws_bad_frame"), 1, "the uncompressed message with the hole");
});
