/**
 * RTP packets the reorder window holds behind a gap come out once capture time moves on, also when no further
 * packet arrives (a call that ends, or pauses, just after a loss) and after the capture clock stepped back.
 * Real parts: PacketSource and RtpSource over hand-built Ethernet/IPv4/UDP/RTP frames.
 */
import assert from "node:assert/strict";
import { PacketSource } from "../packets/packet_source.ts";
import { RtpSource } from "../packets/rtp_source.ts";
import type { AppMessage, Frame } from "../packets/types.ts";
import { ethernet, ipv4, rtp, rtpTap, udp } from "./support/packet_build.ts";

const MS = 1_000_000n;
const T0 = 1_700_000_000_000_000_000n;

const tap = rtpTap({ ports: [40000] });

/** A 20 ms PCMU packet of `ssrc` (from source port `srcPort`) with sequence number `seq`, captured at `timeNs`. */
function frame(seq: number, timeNs: bigint, ssrc = 0x1234, srcPort = 30000): Frame {
  const payload = new Uint8Array(160).fill(seq & 0xff);
  const data = ethernet(
    0x0800,
    ipv4("10.0.0.1", "10.0.0.2", 17, udp(srcPort, 40000, rtp({ seq, ts: seq * 160, ssrc }, payload))),
  );
  return { timeNs, linkType: 1, data, origLen: data.length, iface: 0 };
}

Deno.test("packet source: a tick releases RTP held behind a gap when no further packet comes", () => {
  const src = new PacketSource({ taps: [tap], node: "n1" });
  const seqs: number[] = [];
  const take = (rows: ReturnType<PacketSource["push"]>) => {
    for (const r of rows) seqs.push(r.columns["rtp_seq"] as number);
  };
  // Packet 4 is lost; 5 and 6 wait for it. Then the call ends: nothing else arrives.
  for (const s of [1, 2, 3, 5, 6]) take(src.push(frame(s, T0 + BigInt(s) * 20n * MS)));
  assert.deepEqual(seqs, [1, 2, 3]);
  // The live source ticks capture time on while traffic pauses: 300 ms on, the 200 ms window has passed.
  const rows = src.tick(T0 + 6n * 20n * MS + 300n * MS);
  take(rows);
  assert.deepEqual(seqs, [1, 2, 3, 5, 6], "held packets released by the tick");
  assert.equal(rows[0]!.columns["rtp_lost"], 1, "the lost packet is counted before 5");
  assert.equal(rows[0]!.time, T0 + 5n * 20n * MS, "released rows keep their capture times");
});

Deno.test("RTP source: after one frame stamped an hour ahead, other streams' gaps are still given up on time", () => {
  const out: AppMessage[] = [];
  const src = new RtpSource((m) => out.push(m));
  const seqsOf = (ssrc: number) => out.filter((m) => m.rtp!.ssrc === ssrc).map((m) => m.rtp!.seq);
  // Stream B starts; one of its frames carries a time an hour ahead (a clock stepped forward and back).
  src.pushFrame(frame(1, T0, 0xb, 30002));
  src.pushFrame(frame(2, T0 + 3_600_000n * MS, 0xb, 30002));
  // Then stream A loses packet 4 and goes quiet (a pause in speech); 5 and 6 wait for it.
  for (const s of [1, 2, 3, 5, 6]) src.pushFrame(frame(s, T0 + BigInt(s) * 20n * MS, 0xa));
  // Stream B goes on at the right time.
  for (let s = 3; s < 60; s++) src.pushFrame(frame(s, T0 + BigInt(s) * 20n * MS, 0xb, 30002));
  // Stream B's packets carry capture time a second past A's gap: A's held packets must be out by now.
  assert.deepEqual(seqsOf(0xa), [1, 2, 3, 5, 6], "stream A's held packets released");
  assert.equal(seqsOf(0xb).length, 59, "stream B whole");
});
