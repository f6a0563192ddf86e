/**
 * The server looks for the end of a request head only in the bytes a read added (and the 3 before them), not
 * from the head's start after every read: a head sent a byte at a time cost a scan of all it held at each byte.
 * The incremental scan must find the end wherever the reads split it.
 * @module
 */
import { equal } from "node:assert/strict";
import { indexOfHeadEnd } from "../http/server.ts";

Deno.test("head scan: the blank line is found wherever the reads split the head, from the new bytes only", () => {
  const head = new TextEncoder().encode("GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nrest");
  const want = indexOfHeadEnd(head, head.length);
  equal(want, head.length - 8);
  // Every split into two reads, and a byte at a time.
  for (let cut = 0; cut <= head.length; cut++) {
    let found = indexOfHeadEnd(head, cut);
    if (found < 0) found = indexOfHeadEnd(head, head.length, Math.max(0, cut - 3));
    equal(found, want, `cut at ${cut}`);
  }
  let have = 0, found = -1;
  while (found < 0 && have < head.length) {
    found = indexOfHeadEnd(head, have + 1, Math.max(0, have - 3));
    have++;
  }
  equal(found, want);
  // From past the blank line's start it is not found (the caller never starts there: at most 3 bytes back).
  equal(indexOfHeadEnd(head, head.length, want + 1), -1);
});
