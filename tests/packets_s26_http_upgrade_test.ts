/**
 * HTTP/1 after a request that asks for an upgrade: the server may refuse it (answer in HTTP/1.1, RFC 9110 7.8),
 * and the client then goes on with HTTP/1.1 on the same connection. Java's HttpClient does this on every cold
 * plain-text connection (its first request carries `Upgrade: h2c`, a POST's body included); curl --http2 and Qt
 * too. Before, the client's direction stopped parsing after any upgrade request, so every later request of such
 * a connection (the audio bodies of a Java client's keep-alive connection after its first) was never seen. A real
 * switch still ends HTTP parsing, with nothing counted: the new protocol's bytes never start with a request line.
 */
import assert from "node:assert/strict";
import { feed, texts } from "./support/tcp_feed.ts";
import { frame } from "./support/ws_frames.ts";

const enc = new TextEncoder();

const post = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: asr\r\n${extra}Content-Type: audio/basic\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

const H2C =
  "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQBAAAAAAIAAAAA\r\n";

Deno.test("http: requests after a refused h2c upgrade on the same connection are read", () => {
  const stream = post("/one", "first", H2C) + post("/two", "second") + post("/three", "third");
  for (const step of [1, 9, 100000]) {
    const r = feed("http", stream, { step });
    assert.deepEqual(texts(r), ["first", "second", "third"], `step ${step}`);
    assert.deepEqual(r.skips, {}, `step ${step}`);
  }
  // Every request asking again (the server never switching) is read just the same.
  const again = feed("http", post("/a", "A", H2C) + post("/b", "B", H2C), { step: 7 });
  assert.deepEqual(texts(again), ["A", "B"]);
});

Deno.test("http: a refused CONNECT or WebSocket upgrade is followed by HTTP/1.1 requests that are read", () => {
  const connect = feed("http", "CONNECT asr:443 HTTP/1.1\r\nHost: asr:443\r\n\r\n" + post("/p", "plain"));
  assert.deepEqual(texts(connect), ["plain"]);
  const ws = feed(
    "http",
    "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + post("/fallback", "polled"),
    { step: 5 },
  );
  assert.deepEqual(texts(ws), ["polled"]);
});

Deno.test("http: after a real switch the new protocol's bytes are not HTTP: nothing read, nothing counted", () => {
  const mask: [number, number, number, number] = [1, 2, 3, 4];
  const frames = [0, 1, 2].map((i) =>
    frame({ op: 2, payload: enc.encode(post(`/in-frame-${i}`, "not http")), mask, fin: true })
  );
  const head = enc.encode("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  const wsBytes = new Uint8Array([...head, ...frames.flatMap((f) => [...f])]);
  for (const step of [1, 13, 100000]) {
    const r = feed("http", wsBytes, { step });
    assert.deepEqual(texts(r), [], `step ${step}`);
    assert.deepEqual(r.skips, {}, `step ${step}`);
  }
  // h2c switched: the client's connection preface, then HTTP/2 frames.
  const h2 = feed(
    "http",
    post("/one", "first", H2C) + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    { step: 4 },
  );
  assert.deepEqual(texts(h2), ["first"]);
  assert.deepEqual(h2.skips, {});
  // A tunnel (TLS after CONNECT, here without a newline for longer than any request line).
  const tls = feed("http", "CONNECT asr:443 HTTP/1.1\r\n\r\n" + "\x16\x03\x01" + "\x01".repeat(9000), {
    step: 512,
  });
  assert.deepEqual(texts(tls), []);
  assert.deepEqual(tls.skips, {});
});
