/**
 * A message the connection's end cuts off inside its first line or head is counted, as one cut inside its body
 * already was: an HTTP request whose head never completed and a NATS `PUB` line without its end vanished
 * uncounted. Real parts: TcpSource with the HTTP/1 and NATS parsers over hand-built segments.
 */
import assert from "node:assert/strict";
import { feed, texts } from "./support/tcp_feed.ts";

Deno.test("HTTP/1: a request cut off inside its head by the end of the connection is counted", () => {
  const r = feed("http", "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nContent-Le", {
    step: 7,
  });
  assert.deepEqual(texts(r), ["hello"]);
  assert.equal(r.skips.http_bad_message, 1);
});

Deno.test("NATS: a PUB cut off inside its line by the end of the connection is counted", () => {
  const r = feed("nats", "PUB a 5\r\nhello\r\nPUB b", { step: 7 });
  assert.deepEqual(texts(r), ["hello"]);
  assert.equal(r.skips.nats_bad_message, 1);
});

Deno.test("between messages, the end of a connection counts nothing", () => {
  assert.deepEqual(
    feed("http", "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\r\n", { step: 7 }).skips,
    {},
  );
  assert.deepEqual(feed("nats", "PUB a 5\r\nhello\r\nPING\r\n", { step: 7 }).skips, { nats_control: 1 });
});
