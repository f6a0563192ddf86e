/**
 * A WebSocket direction quiet for longer than TCP's generic idle timeout (120 s of capture time) is kept, up to an
 * hour: its parser holds what later packets cannot rebuild (with permessage-deflate and context takeover, the inflate
 * history every later message may copy from; the handshake's outcome; where frames begin). Before, a call on hold
 * or muted whose sender stopped sending for more than 120 s was closed as idle; its next message started a new
 * direction mid-connection with the history unknown, and every later message that copied from earlier ones was lost
 * (`ws_deflate_history_lost`): the connection was silent to its end. The longer keep is bounded: quiet past the hour
 * the direction is closed as idle as before, and at the flow bound a quiet WebSocket is evicted like any other
 * quiet direction.
 * Real parts: TcpSource with the WebSocket parser over hand-built segments, node:zlib; TcpReassembler with recording
 * sinks.
 */
import assert from "node:assert/strict";
import { TcpReassembler, type TcpStreamSink } from "../packets/tcp_reassembly.ts";
import { type AppMessage, SkipCounter } from "../packets/types.ts";
import { Conn, MS, RecordingSink } from "./support/tcp_segments.ts";
import { concat, deflater, frame, mulawB64, noise, twilioMedia } from "./support/ws_frames.ts";
import { wsConnection } from "./support/ws_connection.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MASK: [number, number, number, number] = [0x5a, 0x13, 0xc4, 0x7e];
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const SECOND = 1000n * MS;
const MINUTE = 60n * SECOND;
/** The client's port in `wsConnection` (its frames come from it). */
const CLIENT_PORT = 40000;
const fromClient = (out: AppMessage[]) => out.filter((m) => m.flow.srcPort === CLIENT_PORT);
const fromServer = (out: AppMessage[]) => out.filter((m) => m.flow.srcPort !== CLIENT_PORT);

/** Twilio-style JSON media events in, each copying its keys from the one before. */
const inbound = Array.from({ length: 20 }, (_, i) => twilioMedia(i, mulawB64(i)));
/** The bot's binary audio back: each message 320 fresh bytes, then the previous message's fresh bytes again. */
const fresh = Array.from({ length: 20 }, (_, i) => noise(320, 100 + i));
const outbound = fresh.map((f, i) => concat(f, i > 0 ? fresh[i - 1]! : new Uint8Array(0)));

Deno.test("WebSocket idle: a permessage-deflate connection quiet for 10 minutes decodes on from its history", async () => {
  const { src, out, client, server, quiet } = wsConnection("permessage-deflate");
  const zc = deflater();
  const zs = deflater();
  for (let i = 0; i < 20; i++) {
    // A call on hold: neither side sends anything (no pings) for 10 minutes; other flows go on.
    if (i === 10) quiet(10n * MINUTE);
    client(frame({ op: 1, payload: await zc(enc.encode(inbound[i]!)), mask: MASK, rsv1: true }));
    server(frame({ op: 2, payload: await zs(outbound[i]!), rsv1: true }));
  }
  src.finish();
  assert.deepEqual(fromClient(out).map((m) => dec.decode(m.payload)), inbound);
  assert.deepEqual(fromServer(out).map((m) => hex(m.payload)), outbound.map(hex));
  assert.equal(src.skips.counts.get("ws_deflate_history_lost"), undefined);
  assert.equal(src.skips.counts.get("ws_deflate_error"), undefined);
});

/** A sink whose consumer holds state later bytes cannot rebuild while `keep` is set. */
class KeepingSink extends RecordingSink implements TcpStreamSink {
  keep = true;
  holdsState(): boolean {
    return this.keep;
  }
}

Deno.test("WebSocket idle: a direction holding state is kept up to an hour, then closed as idle; others still at 120 s", () => {
  const T = 1_700_000_000_000_000_000n;
  const sinks = new Map<number, RecordingSink>();
  const r = new TcpReassembler((info) => {
    const s = info.flow.srcPort === 9000 ? new RecordingSink(info) : new KeepingSink(info);
    sinks.set(info.flow.srcPort, s);
    return s;
  }, new SkipCounter());
  const kept = new Conn("10.0.0.1", 40001);
  const released = new Conn("10.0.0.1", 40002);
  const plain = new Conn("10.0.0.1", 9000);
  const busy = new Conn("10.0.0.3", 40003);
  for (const c of [kept, released, plain]) r.push(c.seg(1, "x", T));
  // Another connection sends every second for an hour and a bit: the sweeps run all along.
  const letGo = T + 10n * MINUTE;
  for (let s = 1n; s <= 3610n; s++) {
    const t = T + s * SECOND;
    if (t === letGo) (sinks.get(40002) as KeepingSink).keep = false;
    r.push(busy.seg(Number(s), ".", t));
  }
  const closedAt = (port: number) => {
    const e = sinks.get(port)!.events.find((e) => e.kind === "close");
    return e?.kind === "close" ? { reason: e.reason, s: (e.timeNs - T) / SECOND } : undefined;
  };
  assert.deepEqual(closedAt(9000), { reason: "idle", s: 120n }, "holding nothing: closed at 120 s as before");
  assert.deepEqual(
    closedAt(40001),
    { reason: "idle", s: 3600n },
    "holding state: kept for an hour, then idle",
  );
  // Its consumer let go of its state after 10 minutes: the generic timeout applies from that sweep on.
  assert.deepEqual(closedAt(40002), { reason: "idle", s: 600n });
  assert.equal(closedAt(40003), undefined, "the busy connection goes on");
});

Deno.test("WebSocket idle: quiet for more than the hour, the direction is closed as idle and later messages are counted, never wrong", async () => {
  const { src, out, client, quiet } = wsConnection("permessage-deflate");
  const z = deflater();
  for (let i = 0; i < 20; i++) {
    if (i === 10) quiet(61n * MINUTE);
    client(frame({ op: 1, payload: await z(enc.encode(inbound[i]!)), mask: MASK, rsv1: true }));
  }
  src.finish();
  const got = fromClient(out).map((m) => dec.decode(m.payload));
  assert.deepEqual(got.slice(0, 10), inbound.slice(0, 10));
  for (const g of got.slice(10)) assert.ok(inbound.includes(g), `decoded wrong: ${g.slice(0, 60)}`);
  // The message after the pause copies its keys from the one before it: the history went with the direction.
  assert.ok(!got.includes(inbound[10]!));
  assert.equal(got.length - 10 + (src.skips.counts.get("ws_deflate_history_lost") ?? 0), 10);
});

Deno.test("WebSocket idle: at the flow bound a quiet WebSocket is still evicted for new connections", async () => {
  // The connection's two directions, the flow keeping the clock moving and one more.
  const { src, out, client, quiet, now } = wsConnection("permessage-deflate", {
    reassembly: { maxFlows: 4 },
  });
  const z = deflater();
  for (let i = 0; i < 20; i++) {
    if (i === 10) {
      quiet(10n * MINUTE);
      // New connections, one segment each: the quiet directions make room.
      for (let k = 0; k < 4; k++) {
        src.push(new Conn(`10.0.2.${k + 1}`, 41000).seg(1, "x", now() + BigInt(k) * MS));
      }
    }
    client(frame({ op: 1, payload: await z(enc.encode(inbound[i]!)), mask: MASK, rsv1: true }));
  }
  src.finish();
  assert.ok((src.skips.counts.get("tcp_flow_evicted") ?? 0) >= 2, "the WebSocket's directions were evicted");
  const got = fromClient(out).map((m) => dec.decode(m.payload));
  assert.deepEqual(got.slice(0, 10), inbound.slice(0, 10));
  assert.ok(!got.includes(inbound[10]!), "reopened mid-connection: its history is unknown");
  assert.ok((src.skips.counts.get("ws_deflate_history_lost") ?? 0) >= 1);
});

Deno.test("WebSocket idle: an uncompressed WebSocket is kept too; another protocol on its port (a health check) still closes at 120 s", () => {
  // Opened again mid-stream, an uncompressed WebSocket would find its frames by the resync scan's heuristic and
  // forget its handshake: it is kept as a compressed one is.
  const { src, out, client, quiet } = wsConnection("");
  const check = new Conn("10.0.0.5", 40005);
  src.push(check.syn(0, 3n * MS));
  src.push(check.seg(1, "GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n", 4n * MS));
  client(frame({ op: 2, payload: fresh[0]!, mask: MASK }));
  quiet(10n * MINUTE);
  assert.equal(src.skips.counts.get("not_audio_protocol"), 1, "the health check was read as such");
  // The WebSocket's two directions and the flow that kept the clock moving; the health check was closed.
  assert.equal(src.flowCount, 3);
  client(frame({ op: 2, payload: fresh[1]!, mask: MASK }));
  assert.deepEqual(out.map((m) => hex(m.payload)), [hex(fresh[0]!), hex(fresh[1]!)]);
});
