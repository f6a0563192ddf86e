/**
 * A Redis command of many small arguments arriving in many TCP segments is parsed in time linear in its size (it
 * was re-read from its first argument for every segment: a bulk RPUSH within the 16 MiB bound took minutes of the
 * packet path's CPU), and a long RESP3 map reply is only framed, the same way. Real parts: TcpSource over
 * hand-built segments with the Redis parser.
 */
import assert from "node:assert/strict";
import { feed, texts } from "./support/tcp_feed.ts";

/** `RPUSH key 000000 000001 ...`: `n` six-byte arguments. */
function bulkRpush(n: number): string {
  const parts = [`*${n + 2}\r\n$5\r\nRPUSH\r\n$3\r\nkey\r\n`];
  for (let i = 0; i < n; i++) parts.push(`$6\r\n${String(i).padStart(6, "0")}\r\n`);
  return parts.join("");
}

Deno.test("Redis: a command of 400,000 arguments in 1448-byte segments is parsed in linear time, every value kept", () => {
  const n = 400_000;
  const stream = bulkRpush(n) + `*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$4\r\nnext\r\n`;
  const t0 = performance.now();
  const r = feed("redis", stream, { step: 1448 });
  const ms = performance.now() - t0;
  const got = texts(r);
  assert.equal(got.length, n + 1);
  assert.equal(got[0], "000000");
  assert.equal(got[n - 1], String(n - 1).padStart(6, "0"));
  assert.equal(got[n], "next", "the command after it is read too");
  assert.deepEqual(r.msgs[0]!.meta, { command: "RPUSH", key: "key" });
  assert.equal(r.skips.redis_bad_message, undefined);
  // 4.8 MB: about a second when each segment goes on from where the last one stopped; re-reading the command
  // from its start for each of its ~3,300 segments took ~45 s here (a liveness bound, not a benchmark).
  assert.ok(ms < 8_000, `${ms.toFixed(0)} ms for ${stream.length} bytes`);
});

Deno.test("Redis: a long RESP3 map reply in many segments is framed (counted), and what follows is read", () => {
  const n = 400_000;
  const parts = [`%${n}\r\n`];
  for (let i = 0; i < n; i++) parts.push(`+f${i}\r\n:${i}\r\n`);
  const push = `>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nafter\r\n`;
  const t0 = performance.now();
  const r = feed("redis", parts.join("") + push, { back: true, step: 1448 });
  const ms = performance.now() - t0;
  assert.deepEqual(texts(r), ["after"]);
  assert.equal(r.skips.redis_other, 1, "the map reply counted once");
  assert.equal(r.skips.redis_bad_message, undefined);
  // Re-read from its start for each segment: ~16 s here; framed as it comes: ~0.3 s (a liveness bound).
  assert.ok(ms < 8_000, `${ms.toFixed(0)} ms`);
});
