/**
 * permessage-deflate through the decompressor a direction keeps from message to message (packets/ws_inflate.ts),
 * where each message used to be inflated afresh behind its 32 KiB history: what it must carry over, and what it
 * must not.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments; senders are node:zlib and pako
 * compressors.
 */
import assert from "node:assert/strict";
import { Deflate, deflateRaw, Z_FINISH } from "pako";
import { concat, deflater, frame, noise } from "./support/ws_frames.ts";
import { wsConnection } from "./support/ws_connection.ts";
import { SCRATCH_KEEP, scratchBytes, StreamInflater } from "../packets/ws_inflate.ts";

const MASK: [number, number, number, number] = [0x11, 0x22, 0x33, 0x44];
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A raw deflate stream of `data` ending in a final block, compressed after `dictionary` (copies may reach it). */
function finalBlock(data: Uint8Array, dictionary: Uint8Array): Uint8Array {
  const d = new Deflate({ raw: true, dictionary });
  const chunks: Uint8Array[] = [];
  d.onData = (c: Uint8Array) => chunks.push(c);
  d.push(data, Z_FINISH);
  return concat(...chunks);
}

Deno.test("deflate, context takeover: once a loss is behind, messages go on copying from what was inflated before", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  // Each message is 1,000 fresh bytes and the previous one's fresh bytes again. Message 5 is lost, message 6
  // copies from it; from message 7 on every copy is of bytes seen, and after ~17 messages the last 32 KiB are all
  // known: the direction's kept decompressor starts there, from that history, and the next message copies from
  // the one before it.
  const fresh = Array.from({ length: 40 }, (_, i) => noise(1000, i + 1));
  const msgs = fresh.map((f, i) => concat(f, i > 0 ? fresh[i - 1]! : new Uint8Array(0)));
  for (const [i, m] of msgs.entries()) {
    client(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }), i === 5);
  }
  src.finish();
  const want = msgs.map(hex);
  assert.deepEqual(out.map((m) => hex(m.payload)), [...want.slice(0, 5), ...want.slice(7)]);
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), 1, "message 6");
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});

Deno.test("deflate, context takeover: a message ending in a final block leaves the window to the next one", () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  // RFC 7692 7.2.3.4: a sender may end a message with BFINAL set and begin the next as a new deflate stream; with
  // context takeover that stream may still copy from the earlier messages' bytes.
  const a = noise(800, 1), b = concat(noise(300, 2), a.subarray(100, 600)), c = concat(b.subarray(0, 400), a);
  client(frame({ op: 2, payload: deflateRaw(a), mask: MASK, rsv1: true }));
  client(frame({ op: 2, payload: finalBlock(b, a), mask: MASK, rsv1: true }));
  client(frame({ op: 2, payload: finalBlock(c, concat(a, b)), mask: MASK, rsv1: true }));
  src.finish();
  assert.deepEqual(out.map((m) => hex(m.payload)), [a, b, c].map(hex));
  assert.deepEqual(src.skips.toJSON(), {});
});

Deno.test("deflate, no_context_takeover: a corrupt message of one connection leaves nothing behind for another's", async () => {
  const one = wsConnection("permessage-deflate; client_no_context_takeover");
  const two = wsConnection("permessage-deflate; client_no_context_takeover");
  const a = noise(500, 3), b = noise(500, 4);
  // Cut inside its first block: the decompressor is left mid-block, expecting more.
  const cut = (await deflater()(a)).subarray(0, 200);
  one.client(frame({ op: 2, payload: cut, mask: MASK, rsv1: true }));
  one.client(frame({ op: 2, payload: concat(new Uint8Array([0xff, 0xff]), cut), mask: MASK, rsv1: true }));
  two.client(frame({ op: 2, payload: await deflater()(b), mask: MASK, rsv1: true }));
  one.src.finish();
  two.src.finish();
  assert.deepEqual(two.out.map((m) => hex(m.payload)), [hex(b)]);
  assert.deepEqual(two.src.skips.toJSON(), {});
  assert.equal(one.out.length, 0);
});

Deno.test("deflate, context takeover: a message cut inside a block is counted ws_deflate_error, never handed on in part", async () => {
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  const a = noise(500, 5), b = noise(500, 6);
  client(frame({ op: 2, payload: await z(a), mask: MASK, rsv1: true }));
  // A sender's bug: the message's compressed bytes cut short. What inflates of them is not the message.
  client(frame({ op: 2, payload: (await z(b)).subarray(0, 200), mask: MASK, rsv1: true }));
  src.finish();
  assert.deepEqual(out.map((m) => hex(m.payload)), [hex(a)]);
  assert.equal(src.skips.counts.get("ws_deflate_error"), 1);
});

Deno.test("deflate: a message whose output exactly fills the decompressor's output buffer is handed on (64 KiB, 128 KiB, 256 KiB)", async () => {
  // The shared output buffer starts at 64 KiB and doubles: a message of a power of two bytes from 64 KiB fills it
  // to its last byte with the message done (a 16,384-sample float32 or a 32,768-sample PCM16 chunk is 64 KiB).
  const same = (got: Uint8Array[], want: Uint8Array[]) =>
    got.length === want.length && got.every((g, i) => hex(g) === hex(want[i]!));
  const { src, out, client } = wsConnection("permessage-deflate");
  const z = deflater();
  const a = noise(65536, 11), b = noise(65537, 12), c = noise(131072, 13);
  // Copies from the end of c: the history is still the direction's own.
  const d = concat(noise(100, 14), c.subarray(c.length - 20000));
  for (const m of [a, b, c, d]) client(frame({ op: 2, payload: await z(m), mask: MASK, rsv1: true }));
  src.finish();
  assert.deepEqual(src.skips.toJSON(), {});
  assert.deepEqual(out.map((m) => m.payload.length), [65536, 65537, 131072, 20100]);
  assert.ok(same(out.map((m) => m.payload), [a, b, c, d]));

  // A sender without context takeover: the decompressor all such directions share.
  const nct = wsConnection("permessage-deflate; server_no_context_takeover");
  const sizes = [65536, 131072, 262144];
  const msgs = sizes.map((n, i) => noise(n, 20 + i));
  for (const m of msgs) nct.server(frame({ op: 2, payload: await deflater()(m), rsv1: true }));
  nct.src.finish();
  assert.deepEqual(nct.src.skips.toJSON(), {});
  assert.deepEqual(nct.out.map((m) => m.payload.length), sizes);
  assert.ok(same(nct.out.map((m) => m.payload), msgs));
});

Deno.test("deflate: one huge message leaves the shared buffers at their bound, not its size", () => {
  // A 4 MiB decompression bomb (4 KiB of deflate) and a 2 MiB message that does not compress: each is inflated,
  // but what the shared buffers keep afterwards, outside the parsers' budget and for the process's life, stays at
  // SCRATCH_KEEP each (it was 4 MiB of output and 2 MiB of input here; 16 MiB and up to 32 MiB at the default bound).
  const zeros = new Uint8Array(4 << 20);
  const big = noise(2 << 20, 31);
  const inf = new StreamInflater();
  for (const m of [zeros, big, noise(1000, 32)]) {
    const z = deflateRaw(m, { level: 1 });
    const r = inf.inflate(concat(z, new Uint8Array([0])), 16 << 20);
    assert.ok(
      typeof r !== "string" && r.length === m.length && hex(r.subarray(-64)) === hex(m.subarray(-64)),
    );
  }
  inf.end();
  assert.ok(scratchBytes() <= 2 * SCRATCH_KEEP, `${scratchBytes()} bytes kept`);
});
