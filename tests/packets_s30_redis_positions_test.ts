/**
 * The argument positions a Redis direction keeps for a command it emits from are charged to the shared parser
 * budget, and none are kept for other arrays: a 16 MiB array of empty bulk strings (2.8 million) held ~54 MiB of
 * heap per connection the budget did not see, as a plain array of offsets, whatever the array was (a reply, a
 * DEL), so connections within the 256 MiB budget could hold several times that much. Real parts: RedisDirection
 * and TcpSource over hand-built segments.
 */
import assert from "node:assert/strict";
import { RedisDirection } from "../packets/redis_proto.ts";
import { ByteBudget } from "../packets/tcp_reassembly.ts";
import { SkipCounter } from "../packets/types.ts";
import { feed, texts } from "./support/tcp_feed.ts";

const FLOW = { transport: "tcp" as const, src: "10.0.0.1", srcPort: 40000, dst: "10.0.0.2", dstPort: 6379 };
const enc = new TextEncoder();

/** `RPUSH k` and `n` empty values, without the last `$0\r\n\r\n` when `open`. */
function rpushEmpty(n: number, open: boolean): Uint8Array {
  const head = enc.encode(`*${n + 2}\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n`);
  const el = enc.encode("$0\r\n\r\n");
  const count = open ? n - 1 : n;
  const out = new Uint8Array(head.length + el.length * count);
  out.set(head, 0);
  for (let i = 0; i < count; i++) out.set(el, head.length + i * el.length);
  return out;
}

Deno.test("Redis: a long command's argument positions are charged to the budget and given back", () => {
  const n = 500_000;
  const budget = new ByteBudget();
  const skips = new SkipCounter();
  let emitted = 0;
  const dir = new RedisDirection(FLOW, "s", false, () => emitted++, skips, { budget });
  const bytes = rpushEmpty(n, true);
  for (let o = 0; o < bytes.length; o += 1448) dir.data(bytes.subarray(o, o + 1448), 0n);
  // The buffered bytes (6 a value) and two 4-byte offsets a value; the buffer alone is charged at most twice its
  // length (12 a value), which is all the budget saw before.
  assert.ok(budget.used >= bytes.length + 8 * n, `${budget.used} bytes charged for ${bytes.length} buffered`);
  dir.data(enc.encode("$0\r\n\r\n"), 0n);
  assert.equal(emitted, n, "every value emitted");
  assert.equal(budget.used, 0, "nothing held once the command is read");
  assert.equal(skips.toJSON().tcp_buffer_overflow, undefined);
});

Deno.test("Redis: positions the budget has no room for are counted tcp_buffer_overflow, and parsing goes on", () => {
  const budget = new ByteBudget(16 << 20);
  const skips = new SkipCounter();
  const got: string[] = [];
  const dir = new RedisDirection(
    FLOW,
    "s",
    false,
    (m) => got.push(new TextDecoder().decode(m.payload)),
    skips,
    {
      budget,
    },
  );
  // 1M values: their 6 MB of bytes fit (charged at most 12 MB), their 8 MiB of offsets then do not.
  const bytes = rpushEmpty(1_000_000, false);
  for (let o = 0; o < bytes.length; o += 1448) dir.data(bytes.subarray(o, o + 1448), 0n);
  dir.data(enc.encode("*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$4\r\nnext\r\n"), 0n);
  assert.equal(skips.toJSON().tcp_buffer_overflow, 1);
  assert.deepEqual(got, ["next"], "the command after it is read");
  assert.ok(budget.used <= 4096, `${budget.used} bytes still charged (a small buffer is kept)`);
});

Deno.test("Redis: a long reply of bulk strings keeps no positions (framed and counted)", async () => {
  for (const first of ["DEL", "value-of-an-LRANGE-reply", "RPUSH"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--v8-flags=--expose-gc",
        new URL("./support/redis_positions_memory.ts", import.meta.url).pathname,
        first,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as { heapBytes: number; chargedBytes: number };
    // Offsets in a plain array: ~54 MiB of heap for any of them.
    assert.ok(r.heapBytes < 4 << 20, `${first}: ${(r.heapBytes / 2 ** 20).toFixed(1)} MiB of heap`);
    if (first !== "RPUSH") assert.ok(r.chargedBytes < 40 << 20, `${first}: ${r.chargedBytes} charged`);
  }
  // The reply is counted, and a push after it read.
  const reply = `*3\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nb\r\n` +
    `>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nafter\r\n`;
  const r = feed("redis", reply, { back: true, step: 5 });
  assert.deepEqual(texts(r), ["after"]);
  assert.equal(r.skips.redis_other, 1);
});
