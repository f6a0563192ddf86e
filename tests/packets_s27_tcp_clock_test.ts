/**
 * TCP reassembly judges idleness and hole age by how much capture time it saw pass, not by the difference of two
 * timestamps: a step of the packet clock (NTP stepping the host's clock, a VM resumed) is no elapsed time. Before,
 * a step forward of 120 s or more closed every direction at the next packet as idle (a permessage-deflate
 * WebSocket then lost its inflate history and stayed silent for the rest of the connection), and a step back held
 * a hole opened before it for as long as the step.
 * Real parts: TcpReassembler with recording sinks; TcpSource with the WebSocket parser and node:zlib.
 */
import assert from "node:assert/strict";
import { TcpSource } from "../packets/tcp_source.ts";
import { type AppMessage, TcpFlag } from "../packets/types.ts";
import { Conn, MS, recorder } from "./support/tcp_segments.ts";
import {
  deflater,
  frame,
  mulawB64,
  twilioMedia,
  upgradeRequest,
  upgradeResponse,
} from "./support/ws_frames.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MASK: [number, number, number, number] = [0x37, 0xfa, 0x21, 0x3d];
const T = 1_700_000_000_000_000_000n;
const HOUR = 3_600_000n * MS;

Deno.test("TCP clock: a step forward of an hour closes no direction; the streams go on as one", () => {
  const { r, sinks } = recorder();
  const a = new Conn("10.0.0.1", 40001);
  const b = new Conn("10.0.0.2", 40002);
  r.push(a.syn(0, T));
  r.push(b.syn(0, T));
  r.push(a.seg(1, "a1;", T + 10n * MS));
  r.push(b.seg(1, "b1;", T + 20n * MS));
  // The host's clock steps an hour ahead; both connections go on.
  r.push(a.seg(4, "a2;", T + HOUR + 30n * MS));
  r.push(b.seg(4, "b2;", T + HOUR + 40n * MS));
  assert.equal(sinks.length, 2, "no direction was reopened mid-stream");
  assert.equal(sinks[0]!.text(), "a1;a2;");
  assert.equal(sinks[1]!.text(), "b1;b2;");
  assert.ok(!sinks.some((s) => s.events.some((e) => e.kind === "close")), "nothing closed as idle");
});

Deno.test("TCP clock: a hole opened before a step back is given up after 1 s of capture time, not the step's hour", () => {
  const { r, sinks } = recorder();
  const q = new Conn("10.0.0.4", 40004);
  const busy = new Conn("10.0.0.3", 40003);
  r.push(busy.syn(0, T));
  r.push(q.syn(0, T));
  r.push(q.seg(1, "hello ", T + 10n * MS));
  r.push(q.seg(12, "world", T + 20n * MS)); // 5 bytes at 7 never captured
  // The clock steps back an hour; the busy connection goes on for 3 s at the new time.
  for (let i = 0; i < 300; i++) r.push(busy.seg(1 + i, "b", T - HOUR + BigInt(i) * 10n * MS));
  assert.equal(sinks[1]!.text(), "hello [gap 5]world");
});

Deno.test("TCP clock: a quiet capture still closes idle directions as its ticks advance time", () => {
  const { r, sinks } = recorder();
  const a = new Conn();
  r.push(a.syn(0, T));
  r.push(a.seg(1, "x", T + MS));
  // A live source ticks about once a second while no packet comes.
  for (let s = 1n; s <= 121n; s++) r.tick(T + s * 1000n * MS);
  assert.equal(sinks[0]!.events.at(-1)?.kind, "close");
  assert.equal(r.flowCount, 0);
});

Deno.test("TCP clock: a permessage-deflate WebSocket with context takeover decodes on across a clock step", async () => {
  const out: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "websocket", emit: (m) => out.push(m) });
  const c = new Conn();
  src.push(c.syn(0, T));
  src.push(c.back(0, "", T, TcpFlag.SYN | TcpFlag.ACK));
  const req = enc.encode(upgradeRequest());
  src.push(c.seg(1, req, T + 1n));
  src.push(c.back(1, enc.encode(upgradeResponse("permessage-deflate")), T + 2n));
  const z = deflater();
  const msgs = Array.from({ length: 20 }, (_, i) => twilioMedia(i, mulawB64(i)));
  let seq = 1 + req.length;
  for (const [i, m] of msgs.entries()) {
    const f = frame({ op: 1, payload: await z(enc.encode(m)), mask: MASK, rsv1: true });
    // Twilio's 20 ms media frames; the clock steps 10 minutes ahead after the tenth.
    const t = T + BigInt(i) * 20n * MS + (i >= 10 ? 600_000n * MS : 0n);
    src.push(c.seg(seq, f, t));
    seq += f.length;
  }
  src.finish();
  assert.deepEqual(out.map((m) => dec.decode(m.payload)), msgs);
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});
