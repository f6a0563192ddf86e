/**
 * TCP segments that the capture's snap length cut (`packets.snaplen`, `tcpdump -s`; on the host the kernel hands
 * the capture GRO/TSO segments of up to 64 KiB): the bytes cut off are never seen, whatever comes later, so they
 * are stepped over as a gap at once and counted `snap_truncated`. Before, each cut tail was waited for as a hole:
 * every later byte of the direction was held for the hole timeout, and the loss was counted `tcp_gap`, a loss on
 * the network's side, so nothing told the user that a larger snap length would bring the audio back.
 * Real parts: a classic pcap file (hand-built frames) read by the packet source with a WebSocket tap.
 */
import assert from "node:assert/strict";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import { PacketColumn } from "../packets/rows.ts";
import { LinkType, TcpFlag } from "../packets/types.ts";
import { classicPcap, concat, ethernet, ipv4, tcp } from "./support/packet_build.ts";
import { frame, upgradeRequest, upgradeResponse } from "./support/ws_frames.ts";

const enc = new TextEncoder();
const SEC = 1_700_000_000;

/**
 * A WebSocket connection whose server sends `segments` segments 100 ms apart, each holding `perSegment` binary
 * frames of 400 bytes (frame k of segment i filled with i * perSegment + k), captured with a `snapLen`.
 */
function capture(snapLen: number, segments: number, perSegment: number): Uint8Array {
  let cseq = 1000, sseq = 5000;
  const records: { sec: number; frac: number; data: Uint8Array; origLen: number }[] = [];
  const send = (fromClient: boolean, payload: Uint8Array, flags: number, ms: number) => {
    const seg = fromClient
      ? tcp(40000, 8080, cseq, sseq, flags, payload)
      : tcp(8080, 40000, sseq, cseq, flags, payload);
    const wire = ethernet(
      0x0800,
      ipv4(fromClient ? "10.0.0.1" : "10.0.0.2", fromClient ? "10.0.0.2" : "10.0.0.1", 6, seg),
    );
    const n = payload.length + ((flags & TcpFlag.SYN) ? 1 : 0);
    if (fromClient) cseq += n;
    else sseq += n;
    records.push({
      sec: SEC + Math.floor(ms / 1000),
      frac: (ms % 1000) * 1000,
      data: wire.subarray(0, Math.min(wire.length, snapLen)),
      origLen: wire.length,
    });
  };
  send(true, new Uint8Array(0), TcpFlag.SYN, 0);
  send(false, new Uint8Array(0), TcpFlag.SYN | TcpFlag.ACK, 1);
  send(true, enc.encode(upgradeRequest()), TcpFlag.ACK | TcpFlag.PSH, 2);
  send(false, enc.encode(upgradeResponse()), TcpFlag.ACK | TcpFlag.PSH, 3);
  for (let i = 0; i < segments; i++) {
    const frames = Array.from(
      { length: perSegment },
      (_, k) => frame({ op: 2, payload: new Uint8Array(400).fill((i * perSegment + k) & 0xff) }),
    );
    send(false, concat(...frames), TcpFlag.ACK | TcpFlag.PSH, 10 + i * 100);
  }
  return classicPcap(
    { nanosecond: false, littleEndian: true, linkType: LinkType.ETHERNET, snapLen },
    records,
  );
}

function read(file: Uint8Array) {
  const src = new PacketSource({
    taps: [{
      query: "m/source",
      protocol: "websocket",
      ports: [8080],
      portRanges: [],
      direction: "any",
      payloadTypes: new Map(),
    }],
    node: "n",
  });
  const rows: { first: number; timeNs: bigint; outAt: bigint }[] = [];
  for (const f of parseFrames(file).frames) {
    for (const r of src.push(f)) {
      rows.push({
        first: (r.columns[PacketColumn.payload] as Uint8Array)[0]!,
        timeNs: r.time,
        outAt: f.timeNs,
      });
    }
  }
  const atEnd = src.finish().length;
  return { rows, atEnd, skips: src.skipReport() };
}

Deno.test("snap length: the frames a cut segment holds whole are handed on at once; the cut is snap_truncated", () => {
  // 5 frames of 404 bytes a segment (a GRO segment of 2,020 bytes), 1,514 bytes kept: 3 whole frames each.
  const { rows, atEnd, skips } = read(capture(1514, 100, 5));
  assert.equal(atEnd, 0);
  assert.equal(rows.length, 300);
  assert.deepEqual(
    rows.map((r) => r.first),
    Array.from({ length: 100 }, (_, i) => [5 * i, 5 * i + 1, 5 * i + 2].map((x) => x & 0xff)).flat(),
  );
  // Each handed on with the packet that brought it, not a hole timeout later.
  assert.ok(rows.every((r) => r.outAt === r.timeNs));
  assert.equal(skips.snap_truncated, 100);
  assert.equal(skips.tcp_gap, undefined);
});

Deno.test("snap length: a capture that keeps no segment whole counts every cut and never waits", () => {
  const { rows, atEnd, skips } = read(capture(256, 50, 1));
  assert.equal(rows.length + atEnd, 0);
  assert.equal(skips.snap_truncated, 50);
  assert.equal(skips.tcp_gap, undefined);
});

Deno.test("snap length: segments captured whole are untouched", () => {
  const { rows, skips } = read(capture(262144, 20, 5));
  assert.equal(rows.length, 100);
  assert.equal(skips.snap_truncated, undefined);
});
