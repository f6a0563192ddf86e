/**
 * When the parsers' shared byte budget is spent by other directions, a direction that cannot keep the unparsed
 * part of a message loses that message as at a gap: counted, and the framing of a frame or payload of known length
 * kept, so the next message is read. (The bytes were dropped without a word and the parser went on as if it held
 * them: a NATS payload then swallowed the messages after it.) Real parts: TcpSource with the NATS and WebSocket
 * parsers over hand-built segments.
 */
import assert from "node:assert/strict";
import { TcpSource } from "../packets/tcp_source.ts";
import type { AppMessage, AppProtocol } from "../packets/types.ts";
import { Conn } from "./support/tcp_segments.ts";
import { frame, upgradeRequest } from "./support/ws_frames.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MASK: [number, number, number, number] = [1, 2, 3, 4];

/** A source whose parsers share `budget` bytes, and a sender per client port. */
function source(protocol: AppProtocol, budget: number) {
  const out: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: () => protocol,
    emit: (m) => out.push(m),
    maxParserBytes: budget,
  });
  const client = (port: number) => {
    const c = new Conn("10.0.0.1", port);
    src.push(c.syn(0, 0n));
    let seq = 1;
    return (b: Uint8Array | string) => {
      const bytes = typeof b === "string" ? enc.encode(b) : b;
      src.push(c.seg(seq, bytes, BigInt(seq)));
      seq += bytes.length;
    };
  };
  return { src, out, client };
}

Deno.test("NATS: a payload that finds the budget spent is lost and counted; the next message is read", () => {
  const { src, out, client } = source("nats", 2500);
  const a = client(1), b = client(2);
  // Direction a holds most of the budget with a payload still arriving.
  a(`PUB a 1500\r\n${"x".repeat(900)}`);
  const m = enc.encode(`PUB b 1200\r\n${"y".repeat(1200)}\r\nPUB c 5\r\nafter\r\n`);
  b(m.subarray(0, 600));
  b(m.subarray(600));
  assert.deepEqual(out.map((x) => [x.meta?.subject, dec.decode(x.payload)]), [["c", "after"]]);
  assert.equal(src.skips.counts.get("tcp_buffer_overflow"), 1);
  assert.equal(src.skips.counts.get("nats_bad_message"), 1, "b's payload");
});

Deno.test("WebSocket: a frame that finds the budget spent is lost and counted; the next frame is read", () => {
  const { src, out, client } = source("websocket", 2500);
  const a = client(1), b = client(2);
  a(upgradeRequest());
  b(upgradeRequest());
  a(frame({ op: 2, payload: new Uint8Array(1500).fill(7), mask: MASK }).subarray(0, 1000));
  const fb = frame({ op: 2, payload: new Uint8Array(1200).fill(8), mask: MASK });
  b(fb.subarray(0, 600));
  b(fb.subarray(600));
  b(frame({ op: 1, payload: "after", mask: MASK }));
  assert.deepEqual(out.map((x) => dec.decode(x.payload)), ["after"]);
  assert.equal(src.skips.counts.get("tcp_buffer_overflow"), 1);
  assert.equal(src.skips.counts.get("ws_bad_frame"), 1, "b's frame, and no frame misread after it");
});
