/**
 * HTTP Content-Encoding lists (RFC 9110 8.4: the codings in the order they were applied; repeated header lines
 * join into one list): a body is decoded from its last coding on, `identity` in the list being nothing to undo.
 * A list was read as one unknown coding, and the compressed bytes were handed on uncounted.
 */
import { deepEqual, equal } from "node:assert/strict";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { decodeContent, Http1Direction } from "../packets/http1.ts";
import { type AppMessage, type FlowDirection, SkipCounter } from "../packets/types.ts";

const te = new TextEncoder(), td = new TextDecoder();
const BODY = te.encode(JSON.stringify({ audioContent: btoa("\u0000\u00ff".repeat(2000)) }));
const u8 = (b: ArrayBufferLike | Uint8Array) =>
  new Uint8Array(b instanceof Uint8Array ? b : new Uint8Array(b));
const gz = (b: Uint8Array) => u8(gzipSync(b));

Deno.test("s31 HTTP encoding lists: decoded from the last coding on; identity skipped; unknown stops", () => {
  deepEqual(decodeContent(gz(BODY), "gzip, identity", 1 << 20), BODY);
  deepEqual(decodeContent(gz(BODY), "identity,gzip", 1 << 20), BODY);
  deepEqual(decodeContent(u8(brotliCompressSync(gz(BODY))), "gzip, br", 1 << 20), BODY);
  deepEqual(decodeContent(gz(u8(deflateSync(BODY))), "deflate , GZIP", 1 << 20), BODY);
  // What a coding not known here covers is handed on as it is (after the codings outside it are undone).
  const inner = new Uint8Array([40, 181, 47, 253, 1, 2, 3]);
  deepEqual(decodeContent(gz(inner), "zstd, gzip", 1 << 20), inner);
  deepEqual(decodeContent(inner, "gzip, zstd", 1 << 20), inner);
  // One of them not what it says, or past the bound: not decoded.
  equal(decodeContent(gz(BODY), "gzip, gzip", 1 << 20), undefined);
  equal(decodeContent(gz(gz(new Uint8Array(4 << 20))), "gzip, gzip", 1 << 20), undefined);
});

Deno.test("s31 HTTP encoding lists: a response with 'gzip, identity' and one with two header lines are decoded", () => {
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
  const response = (body: Uint8Array, encodingLines: string) =>
    new Uint8Array([
      ...te.encode(
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${encodingLines}Content-Length: ${body.length}\r\n\r\n`,
      ),
      ...body,
    ]);
  d.data(response(gz(BODY), "Content-Encoding: gzip, identity\r\n"), 1n);
  d.data(
    response(u8(brotliCompressSync(gz(BODY))), "Content-Encoding: gzip\r\nContent-Encoding: br\r\n"),
    2n,
  );
  d.close(3n);
  deepEqual(out.map((m) => td.decode(m.payload)), [td.decode(BODY), td.decode(BODY)]);
  deepEqual(skips.toJSON(), {});
});
