import assert from "node:assert/strict";
import { looksLikeHttp, parseHead } from "../packets/http1.ts";
import { detectTcpProtocol } from "../packets/tcp_source.ts";
import { feed, texts } from "./support/tcp_feed.ts";
import { frame } from "./support/ws_frames.ts";

const post = (path: string, body: string, ct = "application/json") =>
  `POST ${path} HTTP/1.1\r\nHost: asr\r\nContent-Type: ${ct}\r\nContent-Length: ${
    new TextEncoder().encode(body).length
  }\r\n\r\n${body}`;

const chunked = (path: string, chunks: string[]) =>
  `POST ${path} HTTP/1.1\r\nHost: asr\r\nTransfer-Encoding: chunked\r\nContent-Type: audio/basic\r\n\r\n` +
  chunks.map((c) => `${c.length.toString(16)};ext=1\r\n${c}\r\n`).join("") + "0\r\nX-Trailer: t\r\n\r\n";

Deno.test("Content-Length bodies, pipelined keep-alive requests, a GET without body; any segmentation", () => {
  const stream = post("/a", '{"audio":"AAAA"}') + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" +
    post("/b?x=1", "second body", "audio/basic") + "\r\n" + post("/c", "");
  for (const step of [1, 7, 100, 100000]) {
    const r = feed("http", stream, { step });
    assert.deepEqual(texts(r), ['{"audio":"AAAA"}', "second body"], `step ${step}`);
    assert.deepEqual(r.msgs[1]!.meta, { method: "POST", path: "/b?x=1", content_type: "audio/basic" });
    assert.equal(r.msgs[0]!.protocol, "http");
    assert.deepEqual(r.skips, {});
  }
});

Deno.test("chunked bodies with extensions and trailers; the time is that of the last chunk's segment", () => {
  const stream = chunked("/stream", ["hello ", "chunked ", "world"]) + post("/after", "x");
  for (const step of [1, 5, 1000]) {
    const r = feed("http", stream, { step });
    assert.deepEqual(texts(r), ["hello chunked world", "x"], `step ${step}`);
    assert.equal(r.msgs[0]!.meta?.content_type, "audio/basic");
  }
  const r = feed("http", stream, { step: 10 });
  const endOfFirst = chunked("/stream", ["hello ", "chunked ", "world"]).length;
  assert.equal(r.msgs[0]!.timeNs, BigInt(Math.ceil(endOfFirst / 10)) * 1_000_000n);
});

Deno.test("responses: skipped and counted by default, emitted with status when asked; until-close bodies", () => {
  const stream = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" +
    "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
  const quiet = feed("http", stream, { back: true });
  assert.deepEqual(texts(quiet), []);
  assert.equal(quiet.skips.http_response, 2);
  const loud = feed("http", stream, { back: true, httpResponses: true, step: 3 });
  assert.deepEqual(texts(loud), ["hello", "until close"]);
  assert.deepEqual(loud.msgs[1]!.meta, { status: "200", content_type: "text/plain" });
});

Deno.test("a gap inside a Content-Length body drops that request only; a gap in a head resyncs", () => {
  const a = post("/1", "A".repeat(100));
  const b = post("/2", "B".repeat(100));
  const c = post("/3", "C".repeat(100));
  const inBody = feed("http", a + b + c, { step: 40, lose: [a.length + 100, a.length + 120] });
  assert.deepEqual(texts(inBody), ["A".repeat(100), "C".repeat(100)]);
  assert.equal(inBody.skips.http_bad_message, 1);
  assert.equal(inBody.skips.tcp_gap, 1);
  const inHead = feed("http", a + b + c, { step: 40, lose: [a.length + 5, a.length + 20] });
  assert.deepEqual(texts(inHead), ["A".repeat(100), "C".repeat(100)]);
});

Deno.test("the safety bound skips a body whole; upgrades end HTTP parsing; bad heads are counted", () => {
  const big = feed("http", post("/big", "x".repeat(5000)) + post("/ok", "fine"), { max: 1000, step: 512 });
  assert.deepEqual(texts(big), ["fine"]);
  assert.equal(big.skips.message_too_large, 1);
  // After the switch, the client's bytes are WebSocket frames (here one whose payload is a whole request): never
  // parsed as HTTP. (A request line right after the upgrade request means the server refused it: see
  // packets_s26_http_upgrade_test.ts.)
  const up = feed(
    "http",
    new Uint8Array([
      ...new TextEncoder().encode("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
      ...frame({ op: 2, payload: post("/never", "x"), mask: [9, 8, 7, 6] }),
    ]),
  );
  assert.deepEqual(texts(up), []);
  const bad = feed("http", "POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n" + post("/y", "after bad"));
  assert.deepEqual(texts(bad), ["after bad"]);
  assert.ok((bad.skips.http_bad_message ?? 0) >= 1);
  const junk = feed("http", new Uint8Array(3000).map((_, i) => (i * 7) & 255));
  assert.deepEqual(texts(junk), []);
});

Deno.test("parseHead, looksLikeHttp and protocol detection", () => {
  const h = parseHead(new TextEncoder().encode("PUT /x HTTP/1.0\r\nA: 1\r\na: 2\r\n"));
  assert.equal(h?.method, "PUT");
  assert.equal(h?.headers.get("a"), "1, 2");
  assert.equal(parseHead(new TextEncoder().encode("nonsense\r\n")), undefined);
  const enc = new TextEncoder();
  assert.ok(looksLikeHttp(enc.encode("POST /a HTTP/1.1\r\nHost: x\r\n")));
  assert.ok(!looksLikeHttp(enc.encode("PUB a 1\r\nx\r\n")));
  assert.equal(detectTcpProtocol(enc.encode("GET /m HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")), "websocket");
  assert.equal(detectTcpProtocol(enc.encode("POST /a HTTP/1.1\r\n\r\n")), "http");
  assert.equal(detectTcpProtocol(enc.encode('CONNECT {"verbose":false}\r\n')), "nats");
  assert.equal(detectTcpProtocol(enc.encode("*3\r\n$7\r\nPUBLISH\r\n")), "redis");
  assert.equal(detectTcpProtocol(new Uint8Array([0x16, 0x03, 0x01, 0x02])), undefined); // TLS
});
