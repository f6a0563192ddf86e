import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { RESPONSE_QUEUE_BOUNDS, ResponseQueue } from "../pixie/response_queue.ts";

const MiB = 1024 * 1024;

Deno.test("response queue: ~0.9 MB responses pause the stream by bytes long before the count bound", () => {
  const q = new ResponseQueue<number>();
  let pausedAt = -1;
  for (let i = 0; i < RESPONSE_QUEUE_BOUNDS.highCount; i++) {
    if (q.push(i, 0.9 * 1e6) && pausedAt < 0) pausedAt = i + 1;
  }
  // 8 MiB of them: 10 responses, not 64.
  assertEquals(pausedAt, Math.ceil(RESPONSE_QUEUE_BOUNDS.highBytes / (0.9 * 1e6)));
  assert(pausedAt < RESPONSE_QUEUE_BOUNDS.highCount);
});

Deno.test("response queue: small responses pause the stream at the count bound", () => {
  const q = new ResponseQueue<string>();
  for (let i = 1; i < RESPONSE_QUEUE_BOUNDS.highCount; i++) assert(!q.push(`r${i}`, 100));
  assert(q.push("last", 100));
  assertEquals(q.length, RESPONSE_QUEUE_BOUNDS.highCount);
});

Deno.test("response queue: resumes only with both count and bytes low; keeps order and byte total", () => {
  const q = new ResponseQueue<number>({ highCount: 8, lowCount: 2, highBytes: 10 * MiB, lowBytes: 3 * MiB });
  for (let i = 0; i < 5; i++) q.push(i, 2 * MiB);
  assertEquals(q.bytes, 10 * MiB);
  const out: number[] = [];
  out.push(q.shift(), q.shift());
  // 3 left, 6 MiB: count above low, bytes above low.
  assert(!q.low);
  out.push(q.shift());
  // 2 left, 4 MiB: count low, bytes not.
  assert(!q.low);
  out.push(q.shift());
  assertEquals(q.bytes, 2 * MiB);
  assert(q.low);
  out.push(q.shift());
  assertEquals(out, [0, 1, 2, 3, 4]);
  assertEquals([q.length, q.bytes], [0, 0]);
});
