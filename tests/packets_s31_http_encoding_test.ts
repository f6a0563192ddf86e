/**
 * HTTP bodies with a Content-Encoding: Pixie's Stirling inflates gzip response bodies in http_events
 * (stitcher.cc PreProcessRespMessage), and most servers gzip JSON when the client accepts it (a TTS API's
 * `{"audioContent": "<base64>"}`), but packet capture handed the compressed bytes on: the envelope failed on every
 * one. Bodies are now decoded (gzip, deflate in either form, br) before they are handed on, within the parser's
 * bound (a small body may inflate a thousandfold); what does not decode is counted `http_encoding_error`.
 */
import { deepEqual, equal } from "node:assert/strict";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { decodeContent, formUrlDecode, Http1Direction } from "../packets/http1.ts";
import { type AppMessage, type FlowDirection, SkipCounter } from "../packets/types.ts";

const te = new TextEncoder(), td = new TextDecoder();
const BODY = te.encode(JSON.stringify({ audioContent: btoa("\u0000\u00ff".repeat(2000)) }));
const bytes = (b: Uint8Array | ArrayBufferLike) =>
  new Uint8Array(b instanceof Uint8Array ? b : new Uint8Array(b));

Deno.test("s31 HTTP encoding: gzip, deflate (zlib or raw) and br bodies decode; identity and none pass as they are", () => {
  for (
    const [encoding, packed] of [
      ["gzip", gzipSync(BODY)],
      ["x-gzip", gzipSync(BODY)],
      ["deflate", deflateSync(BODY)],
      ["deflate", deflateRawSync(BODY)],
      ["br", brotliCompressSync(BODY)],
      [" GZIP ", gzipSync(BODY)],
    ] as const
  ) {
    deepEqual(decodeContent(bytes(packed), encoding, 1 << 20), BODY, encoding);
  }
  deepEqual(decodeContent(BODY, undefined, 1 << 20), BODY);
  deepEqual(decodeContent(BODY, "identity", 1 << 20), BODY);
  // An encoding not known here is handed on as it is.
  deepEqual(decodeContent(BODY, "zstd", 1 << 20), BODY);
  // Not what it says it is; or past the bound.
  equal(decodeContent(BODY, "gzip", 1 << 20), undefined);
  equal(decodeContent(bytes(gzipSync(new Uint8Array(4 << 20))), "gzip", 1 << 20), undefined);
  equal(decodeContent(bytes(deflateSync(new Uint8Array(4 << 20))), "deflate", 1 << 20), undefined);
});

Deno.test("s31 HTTP encoding: a gzip JSON response and request are handed on decoded; a corrupt one is counted", () => {
  const flow: FlowDirection = {
    transport: "tcp",
    src: "10.0.0.2",
    srcPort: 80,
    dst: "10.0.0.1",
    dstPort: 5000,
  };
  const out: AppMessage[] = [];
  const skips = new SkipCounter();
  const d = new Http1Direction(flow, "s", false, (m) => out.push(m), skips, { responses: true });
  const gz = bytes(gzipSync(BODY));
  const response = (body: Uint8Array, encoding = "gzip") =>
    new Uint8Array([
      ...te.encode(
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: ${encoding}\r\n` +
          `Content-Length: ${body.length}\r\n\r\n`,
      ),
      ...body,
    ]);
  d.data(response(gz), 1n);
  d.data(response(new Uint8Array([31, 139, 8, 0, 1, 2, 3])), 2n);
  d.data(response(bytes(brotliCompressSync(BODY)), "br"), 3n);
  d.close(4n);
  deepEqual(out.map((m) => td.decode(m.payload)), [td.decode(BODY), td.decode(BODY)]);
  deepEqual(out.map((m) => m.meta?.status), ["200", "200"]);
  deepEqual(skips.toJSON(), { http_encoding_error: 1 });

  const req: AppMessage[] = [];
  const r = new Http1Direction(
    { ...flow, src: flow.dst, srcPort: 5000, dst: flow.src, dstPort: 80 },
    "r",
    false,
    (m) => req.push(m),
    new SkipCounter(),
  );
  r.data(
    new Uint8Array([
      ...te.encode(`POST /audio HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`),
      ...gz,
    ]),
    5n,
  );
  r.close(6n);
  deepEqual(req.map((m) => td.decode(m.payload)), [td.decode(BODY)]);
});

Deno.test("s31 HTTP form bodies: URL-decoded as Pixie's Stirling does for that exact content type", () => {
  const td2 = new TextDecoder();
  deepEqual(td2.decode(formUrlDecode(te.encode("a=b%2Bc%2F%3D%3d&x=y+z%zz%4"))), "a=b+c/==&x=y z%zz%4");
  const out: AppMessage[] = [];
  const flow: FlowDirection = {
    transport: "tcp",
    src: "10.0.0.1",
    srcPort: 5000,
    dst: "10.0.0.2",
    dstPort: 80,
  };
  const d = new Http1Direction(flow, "s", false, (m) => out.push(m), new SkipCounter());
  const post = (type: string, body: string) =>
    d.data(
      te.encode(`POST /u HTTP/1.1\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      1n,
    );
  post("application/x-www-form-urlencoded", "audio=AAB%2B%2F%3D%3D&call=c+1");
  // Pixie compares the whole value: with a charset the body is left as sent.
  post("application/x-www-form-urlencoded; charset=utf-8", "audio=AAB%2B");
  post("application/json", '{"a":"%2B"}');
  d.close(2n);
  deepEqual(out.map((m) => td.decode(m.payload)), ["audio=AAB+/==&call=c 1", "audio=AAB%2B", '{"a":"%2B"}']);
});
