/**
 * Packet-capture state of ended flows is forgotten: a sensor sees every call's RTP flows once and then never
 * again, and the RTP source's flow cache and the row builder's per-stream taps kept each one until 100,000 had
 * gathered (~1.1 KB a flow: 116 MiB of heap after 100,000 three-packet RTP flows, 46 MiB after as many
 * WebSocket connections, none of it live). Real parts: RtpSource and PacketRowBuilder over hand-built
 * IPv4/UDP/RTP frames.
 */
import assert from "node:assert/strict";
import { RtpSource } from "../packets/rtp_source.ts";
import { PacketRowBuilder } from "../packets/rows.ts";
import type { AppMessage, Frame } from "../packets/types.ts";
import { ipv4, rtp, rtpTap, udp } from "./support/packet_build.ts";

const MS = 1_000_000n;
const T0 = 1_700_000_000_000_000_000n;

/** A 20 ms PCMU packet of flow `i` (its own source address and SSRC), sequence `seq`, captured at `timeNs`. */
function packet(i: number, seq: number, timeNs: bigint): Frame {
  const payload = new Uint8Array(160).fill(0x7f);
  const src = `10.1.${(i >> 8) & 255}.${i & 255}`;
  const data = ipv4(
    src,
    "10.0.0.2",
    17,
    udp(30000, 40000, rtp({ seq, ts: seq * 160, ssrc: 0x1000 + i }, payload)),
  );
  return { timeNs, linkType: 101, data, origLen: data.length, iface: 0 };
}

/** `flows` short calls (3 packets each), a new one every 100 ms of capture time: 300 s for 3,000. */
function churn(flows: number, take: (f: Frame) => void): void {
  for (let i = 0; i < flows; i++) {
    const t = T0 + BigInt(i) * 100n * MS;
    for (let k = 0; k < 3; k++) take(packet(i, k, t + BigInt(k) * 20n * MS));
  }
}

// Without the sweep: 3,000 flows cached, 3,000 streams' taps remembered.
Deno.test("packets: flows and streams quiet for their idle time are forgotten, not kept until 100,000", () => {
  const builder = new PacketRowBuilder({ taps: [rtpTap({ ports: [40000] })], node: "n" });
  let rows = 0;
  const src = new RtpSource((m) => rows += builder.build(m).length);
  let mostFlows = 0, mostStreams = 0;
  churn(3000, (f) => {
    src.pushFrame(f);
    mostFlows = Math.max(mostFlows, src.flowCount);
    mostStreams = Math.max(mostStreams, builder.streamCount);
  });
  src.flush();
  assert.equal(rows, 9000, "every packet became a row");
  // The last 60 s of flows (600) and up to a sweep interval (10 s: 100) more; the builder keeps 120 s.
  assert.ok(mostFlows <= 700, `at most 700 flows cached at once, got ${mostFlows}`);
  assert.ok(mostStreams <= 1300, `at most 1,300 streams' taps at once, got ${mostStreams}`);
});

Deno.test("packets: a flow quiet past the idle time goes on as the same stream when it comes back", () => {
  const builder = new PacketRowBuilder({ taps: [rtpTap({ ports: [40000] })], node: "n" });
  const got: AppMessage[] = [];
  const src = new RtpSource((m) => {
    got.push(m);
    assert.equal(builder.build(m).length, 1);
  });
  // Flow 0 sends, pauses 200 s (other flows come and go meanwhile), and sends on.
  for (let k = 0; k < 3; k++) src.pushFrame(packet(0, k, T0 + BigInt(k) * 20n * MS));
  for (let i = 1; i <= 2000; i++) src.pushFrame(packet(i, 0, T0 + BigInt(i) * 100n * MS));
  assert.equal(src.flowCount < 800, true, "flow 0 was forgotten with the rest");
  const back = T0 + 201_000n * MS;
  for (let k = 3; k < 6; k++) src.pushFrame(packet(0, k, back + BigInt(k) * 20n * MS));
  src.flush();
  const flow0 = got.filter((m) => m.rtp!.ssrc === 0x1000);
  assert.deepEqual(flow0.map((m) => m.rtp!.seq), [0, 1, 2, 3, 4, 5]);
  assert.equal(new Set(flow0.map((m) => m.stream)).size, 1, "one stream name throughout");
});
