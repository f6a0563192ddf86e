/**
 * HTTP/1: when the parsers' shared budget has no room for the rest of a head still arriving, the parser loses it
 * and resyncs to the next request line. The search for the end of a head must then start at that request, not
 * where it had got to in the head that was lost: before, it started there, past the end of a short next head, so
 * that head was never found and the requests after it were swallowed until 64 KiB had piled up.
 */
import assert from "node:assert/strict";
import { TcpSource } from "../packets/tcp_source.ts";
import type { AppMessage } from "../packets/types.ts";
import { Conn, MS } from "./support/tcp_segments.ts";

const enc = new TextEncoder();
const post = (path: string, body: string) =>
  `POST ${path} HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

Deno.test("http: after a head lost to the parsers' budget, the next requests are read", () => {
  const msgs: AppMessage[] = [];
  const src = new TcpSource({ protocolFor: () => "http", emit: (m) => msgs.push(m), maxParserBytes: 1000 });
  const c = new Conn();
  src.push(c.syn(0, 0n));
  // A head with long headers: its first 150 bytes are kept (300 bytes charged), then 400 more do not fit.
  const longHead = `POST /lost HTTP/1.1\r\nX-Pad: ${"p".repeat(600)}\r\nContent-Length: 2\r\n\r\nzz`;
  const b = enc.encode(longHead);
  let seq = 1;
  let t = MS;
  const send = (bytes: Uint8Array) => {
    src.push(c.seg(seq, bytes, t));
    seq += bytes.length;
    t += MS;
  };
  send(b.subarray(0, 150));
  send(b.subarray(150, 550));
  send(b.subarray(550));
  for (const [i, body] of ["one", "two", "three"].entries()) send(enc.encode(post(`/r${i}`, body)));
  src.finish();
  assert.equal(src.skips.counts.get("tcp_buffer_overflow"), 1);
  assert.deepEqual(msgs.map((m) => new TextDecoder().decode(m.payload)), ["one", "two", "three"]);
});
