/**
 * TCP holes in a row: each is given up once it has been open for the hole timeout, counted from when the first
 * segment held after it was captured. Before, a hole left behind another's give-up was counted from that give-up,
 * so holes in a row were given up one a second: a capture that missed segments more often than once a second
 * (kernel drops under load, a snap length that cut segments) handed a direction's bytes on later and later, a
 * minute behind and at the buffer bound (`tcp_buffer_overflow`) for a WebSocket stream at 50 messages/s with 5% of
 * its segments missing. A live sensor then read its audio a minute late.
 * Real parts: TcpReassembler with recording sinks; TcpSource with the WebSocket parser over hand-built segments.
 */
import assert from "node:assert/strict";
import { TcpReassembler } from "../packets/tcp_reassembly.ts";
import { TcpSource } from "../packets/tcp_source.ts";
import { type AppMessage, SkipCounter, TcpFlag } from "../packets/types.ts";
import { Conn, MS, RecordingSink } from "./support/tcp_segments.ts";
import { frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const dataTimes = (s: RecordingSink) =>
  s.events.flatMap((e) => e.kind === "data" ? [[e.bytes, e.timeNs / MS] as const] : []);

Deno.test("TCP holes in a row captured together are given up together, a hole timeout after their bytes", () => {
  const sinks: RecordingSink[] = [];
  const r = new TcpReassembler((info) => {
    const s = new RecordingSink(info);
    sinks.push(s);
    return s;
  }, new SkipCounter());
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "aa", 10n * MS));
  // Bytes 3-4 and 7-8 never captured.
  r.push(c.seg(5, "cc", 20n * MS));
  r.push(c.seg(9, "ee", 30n * MS));
  r.tick(1100n * MS);
  assert.equal(sinks[0]!.text(), "aa[gap 2]cc[gap 2]ee");
  assert.deepEqual(dataTimes(sinks[0]!), [["aa", 10n], ["cc", 20n], ["ee", 30n]]);
});

Deno.test("TCP holes: a hole behind one given up waits only for what is left of its own timeout", () => {
  const sinks: RecordingSink[] = [];
  const r = new TcpReassembler((info) => {
    const s = new RecordingSink(info);
    sinks.push(s);
    return s;
  }, new SkipCounter());
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "aa", 0n));
  r.push(c.seg(5, "cc", 100n * MS)); // hole at 3
  r.push(c.seg(9, "ee", 600n * MS)); // hole at 7
  r.push(c.seg(11, "ff", 1150n * MS)); // the first hole times out here
  assert.equal(sinks[0]!.text(), "aa[gap 2]cc");
  r.push(c.seg(13, "gg", 1650n * MS)); // the second one here: 1 s after "ee", not 1 s after the first give-up
  assert.equal(sinks[0]!.text(), "aa[gap 2]cc[gap 2]eeffgg");
});

Deno.test("TCP holes: a WebSocket stream whose capture misses 1 segment in 20 is handed on within the hole timeout", () => {
  const out: { m: AppMessage; at: bigint }[] = [];
  let now = 0n;
  const src = new TcpSource({
    protocolFor: () => "websocket",
    emit: (m) => out.push({ m, at: now }),
  });
  const c = new Conn("10.0.0.1", 40000, "10.0.0.2", 8080);
  const enc = new TextEncoder();
  const T0 = 1_700_000_000_000n * MS;
  let cseq = 1000, sseq = 5000;
  const send = (fromClient: boolean, payload: Uint8Array, flags: number, t: bigint, captured = true) => {
    now = t;
    const p = fromClient ? c.seg(cseq, payload, t, flags) : c.back(sseq, payload, t, flags);
    const n = payload.length + ((flags & TcpFlag.SYN) ? 1 : 0);
    if (fromClient) cseq += n;
    else sseq += n;
    if (captured) src.push(p);
  };
  send(true, new Uint8Array(0), TcpFlag.SYN, T0);
  send(false, new Uint8Array(0), TcpFlag.SYN | TcpFlag.ACK, T0 + MS);
  send(true, enc.encode(upgradeRequest()), TcpFlag.ACK, T0 + 2n * MS);
  send(false, enc.encode(upgradeResponse()), TcpFlag.ACK, T0 + 3n * MS);
  // 60 s of binary audio from the server, 50 messages a second, one a segment; every 20th segment not captured.
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const payload = new Uint8Array(320).fill(i & 0xff);
    send(false, frame({ op: 2, payload }), TcpFlag.ACK, T0 + 10n * MS + BigInt(i) * 20n * MS, i % 20 !== 19);
  }
  const beforeEnd = out.length;
  now = -1n;
  src.finish();
  assert.equal(out.length, n - n / 20);
  // Everything but the last second's messages (behind the last holes) was handed on before the end.
  assert.ok(beforeEnd >= out.length - 50, `${beforeEnd} of ${out.length} handed on before the end`);
  const lateMs = out.filter((o) => o.at >= 0n).map((o) => Number((o.at - o.m.timeNs) / MS));
  assert.ok(Math.max(...lateMs) <= 1100, `handed on up to ${Math.max(...lateMs)} ms after capture`);
  assert.equal(src.skips.counts.get("tcp_gap"), n / 20 - 1);
  assert.equal(src.skips.counts.get("tcp_buffer_overflow"), undefined);
});
