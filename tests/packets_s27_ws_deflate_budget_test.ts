/**
 * The inflate history of a permessage-deflate WebSocket direction (the last 32 KiB of its output, which a message
 * with context takeover may copy from) is charged to the parsers' shared budget, as their other buffers are. It
 * was not: 32 KiB a direction held outside the bound (3 GiB at the 100,000-direction flow bound). With no room for
 * it, the history is not kept, counted `tcp_buffer_overflow`, and the messages that needed it are counted too,
 * never decoded wrong.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, node:zlib.
 */
import assert from "node:assert/strict";
import { concat, deflater, frame, noise } from "./support/ws_frames.ts";
import { wsConnection } from "./support/ws_connection.ts";

const MASK: [number, number, number, number] = [0x11, 0x22, 0x33, 0x44];
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("deflate: the inflate history is charged to the parsers' budget", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  for (let i = 0; i < 40; i++) {
    client(frame({ op: 2, payload: await z(noise(1000, i)), mask: MASK, rsv1: true }));
  }
  assert.equal(out.length, 40);
  // The last 32 KiB of the client's output are kept for the next message to refer to.
  assert.ok(src.bufferedBytes >= 32 * 1024, `buffered ${src.bufferedBytes}`);
  src.finish();
  assert.equal(src.bufferedBytes, 0, "given back at the end");
});

Deno.test("deflate: with no room in the budget for the history, later messages that need it are counted, never wrong", async () => {
  const { src, out, client } = wsConnection("permessage-deflate", { maxParserBytes: 20 * 1024 });
  const z = deflater();
  // Each message copies 200 bytes of the one before.
  const fresh = Array.from({ length: 30 }, (_, i) => noise(1000, i + 1));
  const msgs = fresh.map((f, i) => concat(f, i > 0 ? fresh[i - 1]!.subarray(0, 200) : new Uint8Array(0)));
  for (const m of msgs) client(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }));
  src.finish();
  const want = new Set(msgs.map(hex));
  for (const m of out) assert.ok(want.has(hex(m.payload)), "decoded wrong");
  // The history of the first ~17 messages (1,200 bytes each) fits in 20 KiB.
  assert.ok(out.length >= 15, `decoded while the history fit: ${out.length}`);
  assert.ok((src.skips.counts.get("tcp_buffer_overflow") ?? 0) >= 1);
  const failed = Object.entries(src.skips.toJSON())
    .filter(([k]) => k.startsWith("ws_deflate"))
    .reduce((n, [, v]) => n + v, 0);
  assert.equal(out.length + failed, msgs.length, "every message decoded or counted");
  assert.equal(src.bufferedBytes, 0);
});
