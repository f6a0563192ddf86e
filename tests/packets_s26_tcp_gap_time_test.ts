/**
 * The capture time of bytes handed on after a TCP hole is given up (never filled: the capture missed the segment,
 * or the buffer bound forced it open, or the direction ended): each keeps the capture time of its own segment,
 * as bytes in order do, not the time at which the hole was given up (the hole timeout later, the idle timeout
 * later, or the capture's last frame for a direction still holding bytes when a file ends). A hole a
 * retransmission fills still dates the bytes after it by the filler.
 */
import assert from "node:assert/strict";
import { TcpReassembler, type TcpReassemblyOptions } from "../packets/tcp_reassembly.ts";
import { type AppMessage, SkipCounter } from "../packets/types.ts";
import { TcpSource } from "../packets/tcp_source.ts";
import { Conn, MS, RecordingSink } from "./support/tcp_segments.ts";

function setup(opts: TcpReassemblyOptions = {}) {
  const sinks: RecordingSink[] = [];
  const r = new TcpReassembler(
    (info) => {
      const s = new RecordingSink(info);
      sinks.push(s);
      return s;
    },
    new SkipCounter(),
    opts,
  );
  return { r, sinks };
}

const dataTimes = (s: RecordingSink) =>
  s.events.flatMap((e) => e.kind === "data" ? [[e.bytes, e.timeNs / MS] as const] : []);

Deno.test("a hole given up by time: the bytes after it keep their own capture times", () => {
  const { r, sinks } = setup({ holeTimeoutNs: 1000n * MS });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(1, "aaaa", 10n * MS));
  r.push(c.seg(9, "cccc", 20n * MS)); // "bbbb" at 5 is never captured
  r.push(c.seg(13, "dddd", 30n * MS));
  r.tick(1500n * MS);
  assert.equal(sinks[0]!.text(), "aaaa[gap 4]ccccdddd");
  assert.deepEqual(dataTimes(sinks[0]!), [["aaaa", 10n], ["cccc", 20n], ["dddd", 30n]]);
});

Deno.test("a direction that ends with a hole (end of a capture file, idle, RST): bytes keep their times", () => {
  for (const end of ["finish", "idle", "rst"] as const) {
    const { r, sinks } = setup({ idleTimeoutNs: 120_000n * MS });
    const c = new Conn();
    r.push(c.syn(0, 0n));
    r.push(c.seg(5, "later", 40n * MS)); // bytes 1..4 never captured
    if (end === "finish") r.finish(3_600_000n * MS); // the file's last frame an hour later
    else if (end === "idle") r.tick(200_000n * MS);
    else r.push(c.seg(10, "", 90n * MS, 0x04));
    assert.equal(sinks[0]!.text(), "[gap 4]later", end);
    assert.deepEqual(dataTimes(sinks[0]!), [["later", 40n]], end);
  }
});

Deno.test("a hole the buffer bound forces open: bytes keep their times; bytes that wait on one another take the later", () => {
  const { r, sinks } = setup({ maxBufferedBytesPerFlow: 10 });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(10, "yyyy", 1n * MS)); // after "xxxx" at 6
  r.push(c.seg(6, "xxxx", 2n * MS)); // after the hole at 1..5
  r.push(c.seg(14, "zzzz", 3n * MS)); // 12 bytes buffered > 10
  assert.equal(sinks[0]!.text(), "[gap 5]xxxxyyyyzzzz");
  // "yyyy" follows "xxxx", which came only at 2 ms.
  assert.deepEqual(dataTimes(sinks[0]!), [["xxxx", 2n], ["yyyy", 2n], ["zzzz", 3n]]);
});

Deno.test("a hole a retransmission fills still dates the bytes after it by the filler", () => {
  const { r, sinks } = setup({ holeTimeoutNs: 1000n * MS });
  const c = new Conn();
  r.push(c.syn(0, 0n));
  r.push(c.seg(5, "EFGH", 10n * MS));
  r.push(c.seg(1, "ABCD", 300n * MS));
  assert.deepEqual(dataTimes(sinks[0]!), [["ABCD", 300n], ["EFGH", 300n]]);
});

Deno.test("an HTTP request whose segment came after a lost one is timed by its own capture, not the give-up", () => {
  const msgs: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "http", emit: (m) => msgs.push(m) });
  const c = new Conn();
  const enc = (s: string) => new TextEncoder().encode(s);
  const first = enc("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\none");
  const lost = enc("POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo");
  const third = enc("POST /c HTTP/1.1\r\nContent-Length: 5\r\n\r\nthree");
  src.push(c.syn(0, 0n));
  src.push(c.seg(1, first, 10n * MS));
  src.push(c.seg(1 + first.length + lost.length, third, 30n * MS));
  src.tick(1500n * MS); // the hole timeout (1 s) passes: "two" is given up
  assert.deepEqual(msgs.map((m) => new TextDecoder().decode(m.payload)), ["one", "three"]);
  assert.deepEqual(msgs.map((m) => m.timeNs / MS), [10n, 30n]);
});
