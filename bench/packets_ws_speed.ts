/**
 * TCP segments to WebSocket messages, per core: 1,000 concurrent Twilio-style calls (a 20 ms μ-law media frame per
 * segment, masked from Twilio, unmasked back from the bot), through reassembly and the frame parser into
 * `AppMessage`s. Packets are built before timing; only `TcpSource.push` is measured.
 * With `--deflate` the 101 accepts permessage-deflate and every message is compressed with context takeover (each
 * direction's compressor kept across its messages, as browsers', Python's `websockets` and Node's `ws` clients do),
 * its μ-law payload changing from frame to frame as speech does.
 *   deno run --allow-all bench/packets_ws_speed.ts [--deflate]
 * @module
 */

import { TcpSource } from "../packets/tcp_source.ts";
import type { Packet } from "../packets/types.ts";
import { TcpFlag } from "../packets/types.ts";
import { Deflate, Z_SYNC_FLUSH } from "pako";

/** Figures of one run. */
export interface WsSpeed {
  connections: number;
  packets: number;
  messages: number;
  /** TCP segments (both directions, handshakes included) per second on one core. */
  packetsPerSec: number;
  messagesPerSec: number;
}

const enc = new TextEncoder();

function frame(payload: Uint8Array, mask: number | undefined, compressed = false): Uint8Array {
  const len = payload.length;
  const ext = len >= 126 ? 2 : 0;
  const out = new Uint8Array(2 + ext + (mask === undefined ? 0 : 4) + len);
  out[0] = compressed ? 0xc1 : 0x81;
  out[1] = (mask === undefined ? 0 : 0x80) | (ext ? 126 : len);
  if (ext) {
    out[2] = len >> 8;
    out[3] = len & 255;
  }
  let o = 2 + ext;
  if (mask !== undefined) {
    const m = [mask >>> 24, (mask >>> 16) & 255, (mask >>> 8) & 255, mask & 255];
    out.set(m, o);
    o += 4;
    for (let i = 0; i < len; i++) out[o + i] = payload[i]! ^ m[i & 3]!;
  } else out.set(payload, o);
  return out;
}

/**
 * A permessage-deflate sender's compressor with context takeover: each message sync-flushed, its tail removed
 * (RFC 7692 7.2.1).
 */
function compressor(): (b: Uint8Array) => Uint8Array {
  const d = new Deflate({ raw: true });
  let chunks: Uint8Array[] = [];
  d.onData = (c: Uint8Array) => chunks.push(c);
  return (b) => {
    chunks = [];
    d.push(b, Z_SYNC_FLUSH);
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      all.set(c, o);
      o += c.length;
    }
    return all.subarray(0, all.length - 4);
  };
}

/** 160 μ-law bytes of frame `f` of call `c`, base64: a tone whose pitch drifts, with noise (as speech compresses). */
function mulawFrame(c: number, f: number): string {
  let x = (c * 2654435761 + f * 40503) >>> 0, s = "";
  for (let i = 0; i < 160; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const v = 40 * Math.sin((f * 160 + i) * (0.05 + 0.01 * Math.sin(f / 7 + c))) + (x >>> 28);
    s += String.fromCharCode((0x80 | Math.round(v)) & 255);
  }
  return btoa(s);
}

/**
 * Builds the packets of `connections` calls of `frames` media frames each, interleaved in time order; `deflate`:
 * permessage-deflate with context takeover both ways.
 */
export function buildTraffic(connections: number, frames: number, deflate = false): Packet[] {
  const out: Packet[] = [];
  const mulaw = btoa(String.fromCharCode(...new Uint8Array(160).map((_, i) => (i * 37) & 255)));
  // Compressed messages, a connection at a time (a compressor holds ~300 KB while it is in use).
  const zipped: Uint8Array[][] = [];
  if (deflate) {
    for (let c = 0; c < connections; c++) {
      const up = compressor(), down = compressor(), msgs: Uint8Array[] = [];
      for (let f = 0; f < frames; f++) {
        const m = mulawFrame(c, f);
        msgs.push(up(enc.encode(
          `{"event":"media","sequenceNumber":"${f + 2}","media":{"track":"inbound","chunk":"${f + 1}",` +
            `"timestamp":"${f * 20}","payload":"${m}"},"streamSid":"MZ${c}"}`,
        )));
        msgs.push(down(enc.encode(`{"event":"media","streamSid":"MZ${c}","media":{"payload":"${m}"}}`)));
      }
      zipped.push(msgs);
    }
  }
  const seqC: number[] = [];
  const seqS: number[] = [];
  const pkt = (
    c: number,
    toServer: boolean,
    seq: number,
    payload: Uint8Array,
    t: bigint,
    flags: number,
  ): Packet => ({
    timeNs: t,
    transport: "tcp",
    src: toServer ? `10.1.${c >> 8}.${c & 255}` : "10.0.0.1",
    srcPort: toServer ? 40000 + (c % 20000) : 8080,
    dst: toServer ? "10.0.0.1" : `10.1.${c >> 8}.${c & 255}`,
    dstPort: toServer ? 8080 : 40000 + (c % 20000),
    payload,
    tcp: { seq: seq >>> 0, ack: 0, flags },
    truncated: false,
  });
  for (let c = 0; c < connections; c++) {
    const isnC = (c * 2654435761) >>> 0;
    const isnS = (c * 40503 + 7) >>> 0;
    const req = enc.encode(
      "GET /media HTTP/1.1\r\nHost: bot\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    const res = enc.encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
        (deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n",
    );
    const t = BigInt(c) * 1000n;
    out.push(pkt(c, true, isnC, new Uint8Array(0), t, TcpFlag.SYN));
    out.push(pkt(c, false, isnS, new Uint8Array(0), t, TcpFlag.SYN | TcpFlag.ACK));
    out.push(pkt(c, true, isnC + 1, req, t, TcpFlag.ACK | TcpFlag.PSH));
    out.push(pkt(c, false, isnS + 1, res, t, TcpFlag.ACK | TcpFlag.PSH));
    seqC.push(isnC + 1 + req.length);
    seqS.push(isnS + 1 + res.length);
  }
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < connections; c++) {
      const t = 1_000_000_000n + BigInt(f) * 20_000_000n + BigInt(c) * 1000n;
      const json = deflate ? zipped[c]![2 * f]! : enc.encode(
        `{"event":"media","sequenceNumber":"${f + 2}","media":{"track":"inbound","chunk":"${f + 1}",` +
          `"timestamp":"${f * 20}","payload":"${mulaw}"},"streamSid":"MZ${c}"}`,
      );
      const fc = frame(json, (c * 7919 + f) >>> 0, deflate);
      out.push(pkt(c, true, seqC[c]!, fc, t, TcpFlag.ACK | TcpFlag.PSH));
      seqC[c] = (seqC[c]! + fc.length) >>> 0;
      const back = deflate
        ? zipped[c]![2 * f + 1]!
        : enc.encode(`{"event":"media","streamSid":"MZ${c}","media":{"payload":"${mulaw}"}}`);
      const fs = frame(back, undefined, deflate);
      out.push(pkt(c, false, seqS[c]!, fs, t + 500n, TcpFlag.ACK | TcpFlag.PSH));
      seqS[c] = (seqS[c]! + fs.length) >>> 0;
    }
  }
  return out;
}

/** Runs the benchmark: best of `rounds` passes over the same prebuilt traffic (`deflate`: compressed messages). */
export async function runWsSpeed(
  connections = 1000,
  frames = 50,
  rounds = 5,
  deflate = false,
): Promise<WsSpeed> {
  const traffic = buildTraffic(connections, frames, deflate);
  let best = Infinity;
  let messages = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const src = new TcpSource({
      protocolFor: (f) => (f.dstPort === 8080 || f.srcPort === 8080 ? "websocket" : undefined),
      emit: () => n++,
    });
    const t0 = performance.now();
    for (const p of traffic) src.push(p);
    const ms = performance.now() - t0;
    src.finish();
    if (ms < best) best = ms;
    messages = n;
    // Let timers and GC breathe between rounds.
    await new Promise((res) => setTimeout(res, 10));
  }
  return {
    connections,
    packets: traffic.length,
    messages,
    packetsPerSec: Math.round(traffic.length / (best / 1000)),
    messagesPerSec: Math.round(messages / (best / 1000)),
  };
}

if (import.meta.main) {
  const deflate = Deno.args.includes("--deflate");
  // Compressed: 5 s of 200 calls, so that each direction's history reaches its full 32 KiB (after ~90 messages)
  // as in any call longer than a few seconds.
  const r = deflate ? await runWsSpeed(200, 250, 5, true) : await runWsSpeed();
  console.log(
    `WebSocket over TCP${
      deflate ? " (permessage-deflate, context takeover)" : ""
    }: ${r.connections} connections, ` +
      `${r.packets} segments -> ${r.messages} messages; ` +
      `${r.packetsPerSec.toLocaleString("en")} packets/s per core (${
        r.messagesPerSec.toLocaleString("en")
      } msgs/s)`,
  );
}
