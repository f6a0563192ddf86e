import assert from "node:assert/strict";
import {
  ByteBudget,
  ByteQueue,
  TcpReassembler,
  type TcpReassemblyOptions,
} from "../packets/tcp_reassembly.ts";
import { SkipCounter, TcpFlag } from "../packets/types.ts";
import { Conn, MS, RecordingSink } from "./support/tcp_segments.ts";

function setup(opts: TcpReassemblyOptions = {}) {
  const sinks: RecordingSink[] = [];
  const skips = new SkipCounter();
  const r = new TcpReassembler(
    (info) => {
      const s = new RecordingSink(info);
      sinks.push(s);
      return s;
    },
    skips,
    opts,
  );
  return { r, sinks, skips };
}

Deno.test("in order after a SYN: bytes and times per segment, direction info", () => {
  const { r, sinks, skips } = setup();
  const c = new Conn();
  r.push(c.syn(1000, 1n * MS));
  r.push(c.seg(1001, "hello ", 2n * MS));
  r.push(c.seg(1007, "world", 3n * MS));
  assert.equal(sinks.length, 1);
  const s = sinks[0]!;
  assert.equal(s.info.midstream, false);
  assert.equal(s.info.name, "tcp 10.0.0.1:40000>10.0.0.2:8080");
  assert.deepEqual(s.events, [
    { kind: "data", bytes: "hello ", timeNs: 2n * MS },
    { kind: "data", bytes: "world", timeNs: 3n * MS },
  ]);
  assert.equal(skips.counts.size, 0);
});

Deno.test("both directions share the connection key; pure ACKs of unknown directions create nothing", () => {
  const { r, sinks } = setup();
  const c = new Conn();
  r.push(c.back(5, "", 1n * MS)); // a bare ACK
  assert.equal(r.flowCount, 0);
  r.push(c.seg(1, "a", 2n * MS));
  r.push(c.back(9, "b", 3n * MS));
  assert.equal(sinks.length, 2);
  assert.equal(sinks[0]!.info.connection, sinks[1]!.info.connection);
  assert.equal(sinks[0]!.info.midstream, true);
  assert.notEqual(sinks[0]!.info.name, sinks[1]!.info.name);
});

Deno.test("out of order: held until the hole fills, then delivered with the filler's time", () => {
  const { r, sinks, skips } = setup();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1 + 3, "DEF", 2n * MS));
  r.push(c.seg(1 + 6, "GHI", 3n * MS));
  assert.deepEqual(sinks[0]!.events, []);
  assert.equal(r.bufferedBytes, 6);
  r.push(c.seg(1, "ABC", 5n * MS));
  assert.deepEqual(sinks[0]!.events, [
    { kind: "data", bytes: "ABC", timeNs: 5n * MS },
    { kind: "data", bytes: "DEF", timeNs: 5n * MS },
    { kind: "data", bytes: "GHI", timeNs: 5n * MS },
  ]);
  assert.equal(r.bufferedBytes, 0);
  assert.equal(skips.counts.size, 0);
});

Deno.test("retransmissions and overlaps are cut to new bytes and counted", () => {
  const { r, sinks, skips } = setup();
  const c = new Conn();
  r.push(c.syn(99, 0n));
  r.push(c.seg(100, "0123456789", 1n * MS));
  r.push(c.seg(100, "0123456789", 2n * MS)); // full retransmission
  r.push(c.seg(105, "56789ABCDE", 3n * MS)); // overlap: only ABCDE is new
  // Out of order duplicates: the same segment twice ahead of a hole, then an overlapping one in the buffer.
  r.push(c.seg(120, "KLMN", 4n * MS));
  r.push(c.seg(120, "KLMN", 5n * MS));
  r.push(c.seg(118, "IJKL", 6n * MS));
  r.push(c.seg(115, "FGH", 7n * MS));
  assert.equal(sinks[0]!.text(), "0123456789ABCDEFGHIJKLMN");
  assert.equal(skips.counts.get("tcp_retransmission"), 4);
});

Deno.test("a hole older than the timeout becomes a gap; the bytes after it follow", () => {
  const { r, sinks, skips } = setup({ holeTimeoutNs: 500n * MS });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "aaaa", 1n * MS));
  r.push(c.seg(9, "cccc", 20n * MS)); // "bbbb" at 5 is never captured
  r.push(c.seg(13, "dddd", 40n * MS));
  assert.equal(sinks[0]!.text(), "aaaa");
  r.push(c.seg(17, "eeee", 600n * MS));
  assert.equal(sinks[0]!.text(), "aaaa[gap 4]ccccddddeeee");
  assert.equal(skips.counts.get("tcp_gap"), 1);
  // Late arrival of the lost segment is a retransmission now.
  r.push(c.seg(5, "bbbb", 700n * MS));
  assert.equal(skips.counts.get("tcp_retransmission"), 1);
});

Deno.test("tick() gives up old holes without new packets", () => {
  const { r, sinks } = setup({ holeTimeoutNs: 100n * MS });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(11, "later", 1n * MS));
  r.tick(50n * MS);
  assert.equal(sinks[0]!.text(), "");
  r.tick(200n * MS);
  assert.equal(sinks[0]!.text(), "[gap 10]later");
});

Deno.test("the per-flow buffer bound forces a gap (tcp_buffer_overflow)", () => {
  const { r, sinks, skips } = setup({ maxBufferedBytesPerFlow: 10 });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(6, "xxxx", 1n * MS));
  r.push(c.seg(10, "yyyy", 2n * MS));
  assert.equal(sinks[0]!.text(), "");
  r.push(c.seg(14, "zzzz", 3n * MS)); // 12 bytes buffered > 10
  assert.equal(sinks[0]!.text(), "[gap 5]xxxxyyyyzzzz");
  assert.equal(skips.counts.get("tcp_buffer_overflow"), 1);
  assert.equal(skips.counts.get("tcp_gap"), 1);
  assert.equal(r.bufferedBytes, 0);
});

Deno.test("the total buffer bound is shared by all directions", () => {
  const { r, sinks, skips } = setup({ maxBufferedBytesTotal: 10 });
  const a = new Conn("10.0.0.1", 1);
  const b = new Conn("10.0.0.1", 2);
  r.push(a.syn(0, 0n));
  r.push(b.syn(0, 0n));
  r.push(a.seg(5, "aaaaaa", 1n * MS));
  r.push(b.seg(5, "bbbbbb", 2n * MS)); // 12 > 10: b gives up its hole
  assert.equal(sinks[0]!.text(), "");
  assert.equal(sinks[1]!.text(), "[gap 4]bbbbbb");
  assert.equal(skips.counts.get("tcp_buffer_overflow"), 1);
});

Deno.test("uint32 wraparound: in order and out of order across 2^32", () => {
  const { r, sinks, skips } = setup();
  const c = new Conn();
  const isn = 0xffff_fff8;
  r.push(c.syn(isn, 0n));
  r.push(c.seg(isn + 1, "0123", 1n * MS)); // fffffff9..fffffffc
  r.push(c.seg((isn + 9) >>> 0, "89ab", 2n * MS)); // wraps: 00000001..
  r.push(c.seg(isn + 5, "4567", 3n * MS)); // fffffffd..00000000
  r.push(c.seg((isn + 9) >>> 0, "89ab", 4n * MS)); // retransmission after the wrap
  r.push(c.seg((isn + 13) >>> 0, "cdef", 5n * MS));
  assert.equal(sinks[0]!.text(), "0123456789abcdef");
  assert.equal(skips.counts.get("tcp_retransmission"), 1);
});

Deno.test("FIN closes once every byte before it arrived, even when the FIN came first", () => {
  const { r, sinks } = setup();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(5, "tail", 2n * MS, TcpFlag.FIN | TcpFlag.ACK));
  assert.deepEqual(sinks[0]!.events, []);
  r.push(c.seg(1, "head", 3n * MS));
  assert.equal(sinks[0]!.text(), "headtail");
  assert.deepEqual(sinks[0]!.events.at(-1), { kind: "close", reason: "fin", timeNs: 3n * MS });
  // Data after close is a late retransmission, not a new stream.
  r.push(c.seg(1, "head", 4n * MS));
  assert.equal(sinks.length, 1);
});

Deno.test("RST closes and hands on buffered bytes after a gap", () => {
  const { r, sinks, skips } = setup();
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(4, "xyz", 1n * MS));
  r.push(c.seg(7, "", 2n * MS, TcpFlag.RST));
  assert.equal(sinks[0]!.text(), "[gap 3]xyz");
  assert.equal(sinks[0]!.events.at(-1)?.kind, "close");
  assert.equal(skips.counts.get("tcp_gap"), 1);
});

Deno.test("a new SYN on the same 4-tuple restarts the stream; a repeated SYN does not", () => {
  const { r, sinks } = setup();
  const c = new Conn();
  r.push(c.syn(100, 0n));
  r.push(c.syn(100, 1n * MS));
  r.push(c.seg(101, "one", 2n * MS));
  assert.equal(sinks.length, 1);
  r.push(c.syn(5000, 3n * MS));
  r.push(c.seg(5001, "two", 4n * MS));
  assert.equal(sinks.length, 2);
  assert.deepEqual(sinks[0]!.events.at(-1), { kind: "close", reason: "restarted", timeNs: 3n * MS });
  assert.equal(sinks[1]!.text(), "two");
});

Deno.test("flow count bound evicts the oldest direction; idle directions close on tick", () => {
  const { r, sinks, skips } = setup({ maxFlows: 2, idleTimeoutNs: 1000n * MS });
  for (let port = 1; port <= 3; port++) {
    r.push(new Conn("10.0.0.1", port).seg(1, `p${port}`, BigInt(port) * MS));
  }
  assert.equal(r.flowCount, 2);
  assert.equal(skips.counts.get("tcp_flow_evicted"), 1);
  assert.deepEqual(sinks[0]!.events.at(-1), { kind: "close", reason: "evicted", timeNs: 3n * MS });
  r.tick(2000n * MS);
  assert.equal(sinks[1]!.events.at(-1)?.kind, "close");
  assert.equal(sinks[2]!.events.at(-1)?.kind, "close");
});

Deno.test("a direction the factory declines is tracked without buffering; finish() flushes the rest", () => {
  const skips = new SkipCounter();
  const seen: RecordingSink[] = [];
  const r = new TcpReassembler((info) => {
    if (info.flow.dstPort !== 8080) return undefined;
    const s = new RecordingSink(info);
    seen.push(s);
    return s;
  }, skips);
  const other = new Conn("10.0.0.1", 1, "10.0.0.2", 9999);
  r.push(other.seg(10, "ignored", 1n));
  r.push(other.seg(100, "ahead", 2n));
  assert.equal(r.bufferedBytes, 0);
  const c = new Conn();
  r.push(c.seg(10, "ab", 3n));
  r.push(c.seg(20, "later", 4n));
  r.finish();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.text(), "ab[gap 8]later");
  assert.equal(seen[0]!.events.at(-1)?.kind, "close");
});

Deno.test("never throws on odd input: UDP, empty, a throwing sink", () => {
  const skips = new SkipCounter();
  const r = new TcpReassembler(() => ({
    data() {
      throw new Error("consumer bug");
    },
    gap() {},
    close() {},
  }), skips);
  const c = new Conn();
  r.push({ ...c.seg(1, "x", 1n), transport: "udp", tcp: undefined });
  r.push({ ...c.seg(1, "x", 1n), tcp: undefined });
  r.push(c.seg(1, "x", 2n));
  r.push(c.seg(2, "y", 3n));
  assert.equal(r.flowCount, 1);
});

Deno.test("ByteQueue borrows the caller's bytes and copies only what is left", () => {
  const budget = new ByteBudget(1024);
  const q = new ByteQueue(budget, 512);
  const a = new Uint8Array([1, 2, 3, 4]);
  assert.ok(q.push(a));
  assert.equal(q.view().buffer, a.buffer); // borrowed
  q.consume(1);
  q.settle();
  a.fill(9); // the caller reuses its array
  assert.deepEqual([...q.view()], [2, 3, 4]);
  assert.ok(q.push(new Uint8Array([5])));
  assert.deepEqual([...q.view()], [2, 3, 4, 5]);
  assert.ok(budget.used > 0);
  q.clear();
  assert.equal(budget.used, 0);
  // Over its own bound: emptied, false.
  assert.ok(q.push(new Uint8Array(300)));
  q.settle();
  assert.equal(q.push(new Uint8Array(300)), false);
  assert.equal(q.length, 0);
});
