/**
 * TCP reassembly's sweep (idle directions, old holes) under many flows and clock steps: at the flow bound a new
 * direction costs about what it costs below it (the sweep that visits every direction ran for each one, milliseconds
 * a packet), and a capture clock that stepped back does not stop holes of quiet directions from being given up.
 * And a new connection on a 4-tuple whose SYN (and the old connection's end) the capture missed is read, where its
 * bytes were taken for retransmissions for as long as it lasted; real retransmissions and keep-alives are not.
 * Real parts: TcpReassembler with recording sinks.
 */
import assert from "node:assert/strict";
import { TcpReassembler } from "../packets/tcp_reassembly.ts";
import { SkipCounter } from "../packets/types.ts";
import { Conn, MS, recorder, RecordingSink } from "./support/tcp_segments.ts";

/** A client connection numbered `i` (distinct 4-tuples). */
function conn(i: number, net = 0): Conn {
  return new Conn(`10.${net}.${(i >> 8) & 255}.${i & 255}`, 40000 + (i >> 16), "10.255.0.1", 8080);
}

/** Time (ms) to open `n` new directions (one data segment each) numbered from `from`, at 1 µs apart. */
function openFlows(r: TcpReassembler, from: number, n: number, net: number, t0: bigint): number {
  const start = performance.now();
  for (let i = from; i < from + n; i++) r.push(conn(i, net).seg(1, "x", t0 + BigInt(i) * 1000n));
  return performance.now() - start;
}

Deno.test("TCP reassembly: at the flow bound, new directions cost about what they cost below it", () => {
  const max = 20_000;
  const skips = new SkipCounter();
  const r = new TcpReassembler((info) => new RecordingSink(info), skips, { maxFlows: max });
  const below = openFlows(r, 0, max, 1, 0n) / max;
  assert.equal(r.flowCount, max);
  // Every direction is active (nothing idle to sweep away): each new one evicts the oldest.
  const n = 5_000;
  const at = openFlows(r, 0, n, 2, 20_000_000n) / n;
  assert.equal(skips.counts.get("tcp_flow_evicted"), n, "one eviction per new direction, counted");
  assert.equal(r.flowCount, max);
  // A sweep of 20,000 directions per new one made this ~100 times the cost below the bound; without it, ~1-2.
  assert.ok(
    at < below * 20 + 0.01,
    `per new direction: ${at.toFixed(4)} ms at the bound, ${below.toFixed(4)} below`,
  );
});

Deno.test("TCP reassembly: after the capture clock stepped back, a quiet direction's hole is still given up", () => {
  const sinks: RecordingSink[] = [];
  const r = new TcpReassembler((info) => {
    const s = new RecordingSink(info);
    sinks.push(s);
    return s;
  }, new SkipCounter());
  const T = 1_700_000_000_000_000_000n;
  const busy = new Conn("10.0.0.3", 40003);
  r.push(busy.syn(0, T));
  // One frame stamped an hour ahead (a clock stepped forward, then back).
  r.push(busy.seg(1, "a", T + 3_600_000n * MS));
  // A direction loses a segment and goes quiet: "world" waits for the hole before it.
  const quiet = new Conn("10.0.0.4", 40004);
  r.push(quiet.syn(0, T + 10n * MS));
  r.push(quiet.seg(1, "hello ", T + 20n * MS));
  r.push(quiet.seg(12, "world", T + 30n * MS));
  // The busy direction goes on at the right time for 3 s.
  for (let i = 0; i < 300; i++) r.push(busy.seg(2 + i, "b", T + 40n * MS + BigInt(i) * 10n * MS));
  const q = sinks.find((s) => s.info.flow.srcPort === 40004)!;
  assert.equal(q.text(), "hello [gap 5]world", "the hole given up after its 1 s, by the sweep");
});

Deno.test("TCP reassembly: a new connection on the 4-tuple, SYN missed, far behind the old one is read at once", () => {
  const { r, sinks } = recorder();
  const c = new Conn();
  r.push(c.syn(0x7000_0000, 0n));
  r.push(c.seg(0x7000_0001, "old connection", MS));
  // The old connection's end and the new one's SYN were lost to kernel drops; its bytes start 1.5 GiB behind.
  let seq = 0x1000_0000;
  for (let i = 0; i < 5; i++) {
    r.push(c.seg(seq, `new ${i};`, 2000n * MS + BigInt(i) * 20n * MS));
    seq += 6;
  }
  assert.equal(sinks.length, 2, "a new direction for the new connection");
  assert.ok(sinks[1]!.info.midstream);
  assert.equal(sinks[1]!.text(), "new 0;new 1;new 2;new 3;new 4;");
  assert.deepEqual(sinks[0]!.events.at(-1), { kind: "close", reason: "restarted", timeNs: 2000n * MS });
});

Deno.test("TCP reassembly: a new connection, SYN missed, a little behind the old one is read after 10 s of old data following on", () => {
  const { r, sinks, skips } = recorder();
  const c = new Conn();
  r.push(c.syn(1_000_000, 0n));
  r.push(c.seg(1_000_001, "old connection", MS));
  // 500,000 bytes behind: within a window, so first taken for retransmissions; 20 ms apart for 20 s.
  let seq = 500_000;
  for (let i = 0; i < 1000; i++) {
    r.push(c.seg(seq, `new ${String(i).padStart(4, "0")};`, 2000n * MS + BigInt(i) * 20n * MS));
    seq += 9;
  }
  assert.equal(sinks.length, 2, "the direction stayed silent for as long as the connection lasted");
  // Retransmissions for 10 s (500 segments), then the new connection's bytes from the segment that restarted it.
  assert.equal(skips.counts.get("tcp_retransmission"), 500);
  assert.equal(
    sinks[1]!.text(),
    Array.from({ length: 500 }, (_, i) => `new ${String(500 + i).padStart(4, "0")};`).join(""),
  );
});

Deno.test("TCP reassembly: retransmissions and one-byte keep-alives of an idle connection do not restart it", () => {
  const { r, sinks, skips } = recorder();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "hello", MS));
  r.push(c.seg(6, "world", 2n * MS));
  // Both segments sent again, one after the other, every second for a minute (their acknowledgements lost), and
  // keep-alive probes carrying the last byte.
  for (let s = 1; s <= 60; s++) {
    r.push(c.seg(1, "hello", BigInt(s) * 1000n * MS));
    r.push(c.seg(6, "world", BigInt(s) * 1000n * MS + 1n * MS));
    r.push(c.seg(10, "d", BigInt(s) * 1000n * MS + 500n * MS));
  }
  r.push(c.seg(11, "!", 61_000n * MS));
  assert.equal(sinks.length, 1);
  assert.equal(sinks[0]!.text(), "helloworld!");
  assert.equal(skips.counts.get("tcp_retransmission"), 180);
});
