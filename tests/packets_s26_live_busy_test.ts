/**
 * The live source gives up RTP gaps and TCP holes by capture time when the capture has been quiet (no packet for
 * longer than the kernel's block timeout). Time the sensor spends handing rows on (its emit waiting: the reader's
 * mailbox full, the actors behind) is no quiet capture: the frames after the current one are already read, or
 * waiting in tcpdump's pipe. Before, a hand-on that took longer than the block timeout let the pause timer tick
 * capture time on: a packet held behind a reordered one was released with its predecessor counted lost, and the
 * predecessor, the very next frame read, was thrown away as late.
 * Real parts: LivePacketSource, LiveCapture and the pcap reader, with a child process standing in for tcpdump.
 */
import assert from "node:assert/strict";
import { LivePacketSource } from "../packets/live_source.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { fakeTcpdump } from "./support/fake_tcpdump.ts";
import { classicPcap, pcmuRecord, rtpTap } from "./support/packet_build.ts";

const SEC = 1_700_000_000;

/** A 20 ms PCMU packet of stream `src` (a source port) with sequence number `seq`, captured at `ms`. */
const rec = (srcPort: number, ssrc: number, seq: number, ms: number) =>
  pcmuRecord(srcPort, ssrc, seq, ms, SEC);

Deno.test("live source: a slow hand-on of rows is no quiet capture: a reordered packet read meanwhile is kept", async () => {
  // Stream A (port 30001) sends 1 2 3 5 4 6: 4 comes right after 5. Stream B (port 30002) comes in between; its
  // rows take the sensor 1.5 s each to hand on (a reader behind), while A's 5 waits for 4 in the reorder window.
  const A = 30001, B = 30002;
  const pcap = classicPcap({ nanosecond: true, littleEndian: true, linkType: 1 }, [
    rec(A, 0xa, 1, 0),
    rec(A, 0xa, 2, 20),
    rec(A, 0xa, 3, 40),
    rec(B, 0xb, 1, 50),
    rec(A, 0xa, 5, 80),
    rec(B, 0xb, 2, 70),
    rec(A, 0xa, 4, 81),
    rec(A, 0xa, 6, 100),
  ]);
  const prev = setLogSink(() => {});
  const { path, dir } = await fakeTcpdump(pcap, "stay");
  const src = new LivePacketSource({
    capture: { tcpdump: path, iface: "lo", filter: "", snaplen: 2048, bufferMib: 1, startTimeoutMs: 20_000 },
    taps: [rtpTap({ ports: [40000] })],
    node: "n1",
    reportEveryMs: 100,
  });
  const rows: Row[] = [];
  const ac = new AbortController();
  const running = src.run(async (r) => {
    if (String(r.columns["stream"]).includes(`:${B}>`)) await new Promise((res) => setTimeout(res, 1500));
    rows.push(r);
  }, ac.signal).catch(() => {});
  try {
    const t0 = Date.now();
    const ofA = () => rows.filter((r) => String(r.columns["stream"]).includes(`:${A}>`));
    while (ofA().length < 6 && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(ofA().map((r) => r.columns["rtp_seq"]), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(ofA().map((r) => r.columns["rtp_lost"]), [0, 0, 0, 0, 0, 0]);
    assert.equal(src.source?.skipReport()["rtp_late"], undefined);
  } finally {
    ac.abort();
    await running;
    await Deno.remove(dir, { recursive: true });
    setLogSink(prev);
  }
});
