/**
 * Tuned rules of the packet layer that no test held: each test builds the input a rule is there for and fails with
 * the rule neutralised (named in each test).
 * Real parts: RtpJitter, RtpSource, TcpReassembler, ByteQueue and srtpTagBytes as the sources use them.
 */
import assert from "node:assert/strict";
import { RtpJitter } from "../packets/jitter.ts";
import { RtpSource } from "../packets/rtp_source.ts";
import { srtpTagBytes } from "../packets/srtp_guess.ts";
import { ByteBudget, ByteQueue, TcpReassembler, type TcpStreamSink } from "../packets/tcp_reassembly.ts";
import { type AppMessage, type Packet, SkipCounter } from "../packets/types.ts";
import { Conn, MS, recorder } from "./support/tcp_segments.ts";

function msg(stream: string, seq: number, timeNs: number): AppMessage {
  return {
    protocol: "rtp",
    timeNs: BigInt(timeNs),
    flow: { transport: "udp", src: "10.0.0.1", srcPort: 1, dst: "10.0.0.2", dstPort: 2 },
    stream,
    payload: new Uint8Array([seq & 0xff]),
    rtp: { pt: 0, seq, ts: (seq * 160) >>> 0, ssrc: 1, marker: false, lostBefore: -1 },
  };
}

function jitter(opts: ConstructorParameters<typeof RtpJitter>[2] = {}) {
  const out: AppMessage[] = [];
  const skips = new SkipCounter();
  const j = new RtpJitter((m) => out.push(m), skips, { probation: 1, ...opts });
  const emitted = () => out.map((m) => `${m.rtp!.seq}/${m.rtp!.lostBefore}`);
  return { j, out, skips, emitted };
}

// Neutralised `opts.maxStreams ?? 10_000` -> 1e12: nothing is evicted (an RTP tap's state grew with every SSRC).
// Neutralised the tenth (`times.length - 1` for the cut): all 10,000 streams are evicted at once.
Deno.test("RTP jitter: at 10,000 streams by default the least recently active tenth is flushed, its held packets emitted", () => {
  const { j, out, skips } = jitter();
  // The oldest stream waits on a gap: 3 held behind the missing 2.
  j.push(msg("s0", 1, 0));
  j.push(msg("s0", 3, 1));
  for (let i = 1; i < 10_000; i++) j.push(msg(`s${i}`, 1, 1 + i));
  assert.equal(j.stats.streams, 10_000);
  assert.equal(j.stats.evicted, 0);
  j.push(msg("s10000", 1, 20_000));
  assert.equal(j.stats.evicted, 1_000, "the least recently active tenth");
  assert.equal(j.stats.streams, 9_001);
  const s0 = out.filter((m) => m.stream === "s0").map((m) => `${m.rtp!.seq}/${m.rtp!.lostBefore}`);
  assert.deepEqual(s0, ["1/0", "3/1"], "the evicted stream's held packet came out, its gap counted");
  assert.deepEqual(skips.toJSON(), {});
});

// Neutralised `Math.max(2 * this.#window, opts.maxMisorder ?? 100)` -> `Math.max(0, …)`: the late packet is taken
// for the start of a sender restart and, alone, counted `not_rtp`.
Deno.test("RTP jitter: with a wide window, a packet the window gave up on is late, not a stray (maxMisorder >= 2 windows)", () => {
  const { j, skips, emitted } = jitter({ windowPackets: 200 });
  // 1 is missing; 2..201 come (0.1 ms apart, well inside the time window): the packet window gives 1 up.
  j.push(msg("s", 0, 0));
  for (let s = 2; s <= 201; s++) j.push(msg("s", s, s * 100_000));
  assert.equal(emitted().length, 201);
  assert.equal(emitted()[1], "2/1");
  // 1 arrives 201 packets behind (more than RFC 3550's 100), then the stream goes on.
  j.push(msg("s", 1, 21_000_000));
  j.push(msg("s", 202, 21_100_000));
  assert.deepEqual(skips.toJSON(), { rtp_late: 1 });
  assert.equal(j.stats.restarts, 0);
  assert.equal(emitted().at(-1), "202/0");
});

// Neutralised `EXT_BASE = 1 << 20` -> 0: 65535's extended number is negative, its slot index too; it is never
// emitted (the list stops at 65534).
Deno.test("RTP jitter: a stream whose first packets straddle the sequence wrap, reordered, loses none of them", () => {
  const { j, skips, emitted } = jitter({ probation: 2 });
  for (const [i, s] of [1, 65533, 65535, 65534, 0].entries()) j.push(msg("s", s, i * 1_000_000));
  assert.deepEqual(emitted(), ["65533/0", "65534/0", "65535/0", "0/0", "1/0"]);
  j.flush();
  assert.deepEqual(emitted(), ["65533/0", "65534/0", "65535/0", "0/0", "1/0"]);
  assert.deepEqual(skips.toJSON(), {});
});

function udp(i: number): Packet {
  return {
    timeNs: BigInt(i),
    transport: "udp",
    src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    srcPort: 4000,
    dst: "10.255.0.1",
    dstPort: 5000,
    payload: new Uint8Array(12),
    truncated: false,
  };
}

// Neutralised `opts.maxFlows ?? 100_000` -> 1e12: the cache keeps all 100,001 flows (a port scan or a spray of
// UDP grew it without end), and flow 0 is not looked at again.
Deno.test("RTP source: the flow cache is bounded at 100,000 flow directions by default (cleared past it)", () => {
  let asked = 0;
  const src = new RtpSource(() => {}, {
    acceptFlow: () => {
      asked++;
      return false;
    },
  });
  src.pushPacket(udp(0));
  src.pushPacket(udp(0));
  assert.equal(asked, 1, "a known flow is not asked again");
  for (let i = 1; i <= 100_000; i++) src.pushPacket(udp(i));
  assert.equal(asked, 100_001);
  src.pushPacket(udp(0));
  assert.equal(asked, 100_002, "the cache was cleared when the 100,001st flow came: flow 0 is asked again");
  assert.equal(src.stats.filtered, 100_003);
});

// Neutralised the ±64-byte band (`s.dts * perTick > s.bytes + 1e9 || …`): steps across losses count as mismatches,
// 30 of 50 steps show the tag (0.6 < 0.8), and the SRTP stream is not named.
Deno.test("srtp guess: steps across losses (several packets' worth) are left out of the share", () => {
  const steps = (n: number, extra: number, dts: number) =>
    Array.from({ length: n }, () => ({ dts, bytes: dts + extra }));
  // A lossy SRTP call: 30 single steps carry the 10-byte tag; 20 steps span two lost packets (480 ticks, 170 bytes).
  assert.equal(srtpTagBytes([...steps(30, 10, 160), ...steps(20, 10 - 320, 480)], 1), 10);
  // Plain RTP with the same losses is still plain.
  assert.equal(srtpTagBytes([...steps(30, 0, 160), ...steps(20, -320, 480)], 1), undefined);
});

/** A reassembler whose sinks drop what they get, and its skip counter. */
function quietReassembler(): { r: TcpReassembler; skips: SkipCounter } {
  const skips = new SkipCounter();
  const sink: TcpStreamSink = { data: () => {}, gap: () => {}, close: () => {} };
  return { r: new TcpReassembler(() => sink, skips), skips };
}

// Neutralised `opts.maxBufferedBytesPerFlow ?? 1 << 20` -> 2 ** 50: 1.1 MiB stay buffered behind the hole.
Deno.test("TCP reassembly: by default a direction buffers at most 1 MiB behind a hole", () => {
  const { r, skips } = quietReassembler();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "a", MS));
  const chunk = new Uint8Array(64 * 1024);
  // Byte 2 is lost; 18 segments of 64 KiB (1.125 MiB) follow within 20 ms.
  for (let i = 0; i < 18; i++) r.push(c.seg(3 + i * chunk.length, chunk, 2n * MS + BigInt(i) * MS));
  assert.ok((skips.counts.get("tcp_buffer_overflow") ?? 0) >= 1);
  assert.ok(r.bufferedBytes <= 1 << 20, `${r.bufferedBytes} bytes buffered`);
});

// Neutralised `opts.maxBufferedBytesTotal ?? 64 << 20` -> 2 ** 50: 66 directions hold ~64.5 MiB between them.
Deno.test("TCP reassembly: by default all directions together buffer at most 64 MiB", () => {
  const { r, skips } = quietReassembler();
  const chunk = new Uint8Array(64_000);
  for (let d = 0; d < 66; d++) {
    const c = new Conn(`10.0.1.${d}`, 40000);
    r.push(c.syn(0, BigInt(d) * MS));
    // Each under its own bound (1,024,000 bytes < 1 MiB) behind a lost byte 1.
    for (let i = 0; i < 16; i++) r.push(c.seg(2 + i * chunk.length, chunk, BigInt(d) * MS + 1000n));
  }
  assert.ok((skips.counts.get("tcp_buffer_overflow") ?? 0) >= 1);
  assert.ok(r.bufferedBytes <= 64 << 20, `${r.bufferedBytes} bytes buffered`);
});

// Neutralised `opts.maxFlows ?? 100_000` -> 1e12: 100,001 directions are tracked, none evicted.
Deno.test("TCP reassembly: by default at most 100,000 directions are tracked", () => {
  const { r, skips } = quietReassembler();
  for (let i = 0; i <= 100_000; i++) {
    r.push(
      new Conn(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 40000).seg(1, "x", BigInt(i) * 1000n),
    );
  }
  assert.equal(r.flowCount, 100_000);
  assert.equal(skips.counts.get("tcp_flow_evicted"), 1);
});

// Neutralised `BACK_STEP_NS = SWEEP_NS` -> 0n: the packet 0.5 ms behind the sweep is taken for a clock step back,
// every direction's times move back 0.5 ms, and the hole is given up 0.2 ms early ("[gap 5]world!").
Deno.test("TCP clock: a packet a little behind the last sweep (captured on another CPU) is no clock step", () => {
  const { r, sinks, skips } = recorder();
  const a = new Conn("10.0.0.1", 40001);
  const b = new Conn("10.0.0.2", 40002);
  r.push(a.syn(0, 0n));
  r.push(a.seg(1, "hello ", 10n * MS));
  // " big " (bytes 7-11) is late; the hole opens at 100 ms.
  r.push(a.seg(12, "world", 100n * MS));
  // Another connection's packets: one starts the sweep at 1 s, the next was captured 0.5 ms before it.
  r.push(b.seg(1, "x", 1000n * MS));
  r.push(b.seg(2, "y", 1000n * MS - MS / 2n));
  // The hole has waited 999.8 ms of capture time when more of A comes, and is filled 0.1 ms later.
  r.push(a.seg(17, "!", 1099n * MS + 800_000n));
  r.push(a.seg(7, " big ", 1099n * MS + 900_000n));
  assert.equal(sinks[0]!.text(), "hello  big world!");
  assert.equal(skips.counts.get("tcp_gap"), undefined);
});

// Neutralised `|| len <= 1` in startsOver: the keep-alive follows on from the retransmission before it, 10 s
// later, and the idle connection is taken for a new one (closed "restarted", a second sink opened).
Deno.test("TCP reassembly: a one-byte keep-alive 10 s after a retransmission ending where it starts restarts nothing", () => {
  const { r, sinks } = recorder();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "x".repeat(100), MS));
  r.push(c.seg(101, "!", 2n * MS));
  // The 100-byte segment retransmitted (it ends where the last byte starts); then a keep-alive carrying that byte.
  r.push(c.seg(1, "x".repeat(100), 1000n * MS));
  // The capture's clock goes on (a live source ticks each second while no packet comes).
  for (let s = 2n; s <= 10n; s++) r.tick(s * 1000n * MS);
  r.push(c.seg(101, "!", 11_000n * MS));
  assert.equal(sinks.length, 1);
  assert.ok(!sinks[0]!.events.some((e) => e.kind === "close"));
});

// Neutralised `this.charged > 4096` -> `> 2 ** 50`: the drained queue keeps its 20 KB charged to the shared budget
// (an idle direction holding what its largest message needed); -> `> 0`: the small storage is given back too.
Deno.test("ByteQueue: storage over 4 KiB is given back to the budget once drained; small storage is kept", () => {
  const budget = new ByteBudget(1 << 20);
  const q = new ByteQueue(budget, 1 << 20);
  q.push(new Uint8Array(10_000));
  assert.ok(q.settle());
  assert.equal(budget.used, 20_000);
  q.consume(10_000);
  assert.ok(q.settle());
  assert.equal(budget.used, 0);
  q.push(new Uint8Array(100));
  assert.ok(q.settle());
  assert.equal(budget.used, 256);
  q.consume(100);
  assert.ok(q.settle());
  assert.equal(budget.used, 256, "a small buffer stays for the next message");
});
