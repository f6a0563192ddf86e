/**
 * Live capture through a real tcpdump child on loopback: RTP sent from a real UDP socket arrives as rows in
 * sequence with kernel timestamps; the capture's start failures say what to do; tcpdump's statistics lines parse.
 */
import assert from "node:assert/strict";
import { CaptureStartError, LiveCapture, parseStatsLine, tcpdumpArgs } from "../packets/live_capture.ts";
import { LivePacketSource } from "../packets/live_source.ts";
import { bpfFilter, parseCidr } from "../packets/taps.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import dgram from "node:dgram";
import { requireTools, toolGate } from "./support/tools.ts";
import { rtpTap } from "./support/packet_build.ts";

const gate = await toolGate(import.meta.url, ["root", "tcpdump"]);

function rtpPacket(seq: number, ts: number, ssrc: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(12 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x80;
  p[1] = 0; // PCMU
  v.setUint16(2, seq);
  v.setUint32(4, ts);
  v.setUint32(8, ssrc);
  p.set(payload, 12);
  return p;
}

Deno.test("tcpdump statistics lines parse into kernel drop counters", () => {
  const s = { captured: 0, received: 0, droppedByKernel: 0, droppedByInterface: 0 };
  for (
    const l of [
      "1234 packets captured",
      "1300 packets received by filter",
      "66 packets dropped by kernel",
      "2 packets dropped by interface",
    ]
  ) assert.ok(parseStatsLine(l, s));
  assert.deepEqual(s, { captured: 1234, received: 1300, droppedByKernel: 66, droppedByInterface: 2 });
  assert.equal(parseStatsLine("listening on lo, link-type EN10MB", s), false);
});

Deno.test("the tcpdump command line: nanosecond pcap to stdout, unbuffered, no privilege switch as root", () => {
  const args = tcpdumpArgs({
    tcpdump: "tcpdump",
    iface: "any",
    filter: "udp port 1",
    snaplen: 65535,
    bufferMib: 8,
  }, true);
  assert.deepEqual(args, [
    "-i",
    "any",
    "-U",
    "-w",
    "-",
    "-n",
    "-s",
    "65535",
    "-B",
    "8192",
    "--time-stamp-precision=nano",
    "-Z",
    "root",
    "udp port 1",
  ]);
});

/** What an RTP tap's filter adds for fragments (see tests/packets_s28_bpf_fragments_test.ts). */
const UDP_FRAGMENTS = "((ip proto 17 and ip[6:2] & 0x1fff != 0) or (ip6[6] == 44 and ip6[40] == 17))";

Deno.test("a BPF filter keeps only the taps' transports, ports and hosts (and an RTP tap's UDP fragments)", () => {
  const tap = rtpTap;
  assert.equal(
    bpfFilter([
      tap({ ports: [40000] }),
      tap({ protocol: "websocket", ports: [8080], host: parseCidr("10.0.0.0/8") }),
    ]),
    `(udp and port 40000) or ${UDP_FRAGMENTS} or (tcp and port 8080 and net 10.0.0.0/8)`,
  );
  assert.equal(
    bpfFilter([tap({ portRanges: [[40000, 40999]] })]),
    `(udp and portrange 40000-40999) or ${UDP_FRAGMENTS}`,
  );
  assert.equal(bpfFilter([tap({})]), `udp or ${UDP_FRAGMENTS}`);
});

Deno.test("a missing tcpdump is a clear start error", async () => {
  const prev = setLogSink(() => {});
  try {
    await assert.rejects(
      LiveCapture.start({
        tcpdump: "/nonexistent/tcpdump",
        iface: "lo",
        filter: "",
        snaplen: 1500,
        bufferMib: 1,
      }),
      (e: Error) => e instanceof CaptureStartError && /not found: install tcpdump/.test(e.message),
    );
  } finally {
    setLogSink(prev);
  }
});

Deno.test({
  name: "a missing interface or a filter tcpdump rejects is a clear start error, through a real tcpdump",
  ignore: gate.ignore,
  fn: async () => {
    requireTools(gate);
    const prev = setLogSink(() => {});
    try {
      await assert.rejects(
        LiveCapture.start({
          tcpdump: "tcpdump",
          iface: "nosuchif0",
          filter: "",
          snaplen: 1500,
          bufferMib: 1,
        }),
        (e: Error) => e instanceof CaptureStartError && /no interface nosuchif0/.test(e.message),
      );
      await assert.rejects(
        LiveCapture.start({
          tcpdump: "tcpdump",
          iface: "lo",
          filter: "udp port",
          snaplen: 1500,
          bufferMib: 1,
        }),
        (e: Error) => e instanceof CaptureStartError && /rejected the filter/.test(e.message),
      );
    } finally {
      setLogSink(prev);
    }
  },
});

Deno.test({
  name: "live RTP on loopback becomes rows in sequence, with kernel capture times, through a real tcpdump",
  ignore: gate.ignore,
  fn: async () => {
    requireTools(gate);
    const prev = setLogSink(() => {});
    const port = 40000 + Math.floor(Math.random() * 2000) * 2;
    const tap = rtpTap({ ports: [port] });
    const src = new LivePacketSource({
      capture: { tcpdump: "tcpdump", iface: "lo", filter: bpfFilter([tap]), snaplen: 2048, bufferMib: 4 },
      taps: [tap],
      node: "n1",
      reportEveryMs: 100,
    });
    const rows: Row[] = [];
    const ac = new AbortController();
    const running = src.run((r) => Promise.resolve(void rows.push(r)), ac.signal);
    const sock = dgram.createSocket("udp4");
    const send = (b: Uint8Array) =>
      new Promise<void>((res, rej) => sock.send(b, port, "127.0.0.1", (e) => (e ? rej(e) : res())));
    try {
      // tcpdump listens before run() starts reading; give the first packets a moment anyway.
      await new Promise((r) => setTimeout(r, 300));
      const n = 200;
      const before = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < n; i++) {
        const payload = new Uint8Array(160).fill(i & 0xff);
        await send(rtpPacket(1000 + i, 160 * i, 0xabc, payload));
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      for (let i = 0; i < 300 && rows.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      // The last packets are held by the reorder window until capture time moves on (the timer ticks it).
      assert.equal(rows.length, n, `rows ${rows.length} of ${n}`);
      rows.forEach((r, i) => {
        assert.equal(r.columns["rtp_seq"], 1000 + i);
        assert.equal(r.columns["rtp_codec"], "PCMU/8000");
        assert.equal((r.columns["payload"] as Uint8Array)[0], i & 0xff);
        assert.ok(r.time >= before - 1_000_000_000n && r.time < before + 60_000_000_000n, "kernel time, ns");
      });
      assert.equal(src.source?.stats.frames, n);
    } finally {
      sock.close();
      ac.abort();
      await running.catch(() => {});
      setLogSink(prev);
    }
  },
});
