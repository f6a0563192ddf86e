/**
 * A capture row with a body of many MB (packet taps have no size cap; a capture line of 100 MB) is shown as an
 * example in the end-of-run diagnosis without ending the command.
 */
import { equal } from "node:assert/strict";
import { payloadPreview } from "../report/diagnosis.ts";

const enc = new TextEncoder();

Deno.test("the preview of a text body of 12 MB: its start, its long run measured", () => {
  // Not JSON: the text is shown with its long runs of letters and digits cut (base64 audio, say).
  const body = "audio: " + "QUJD".repeat(3_000_000) + " end";
  equal(payloadPreview(enc.encode(body)), "audio: QUJDQUJDQUJD...<12000000 chars> end");
});

Deno.test("the preview of a text body: runs over 40 characters shortened, others kept, cut at max", () => {
  const text = "x" + "a".repeat(41) + " " + "b".repeat(40) + "\tc" + " d".repeat(200);
  // As the regex replace gave it: /[A-Za-z0-9+/=_-]{41,}/g, then tabs and newlines as spaces, then the cut.
  const want = text.replace(/[A-Za-z0-9+/=_-]{41,}/g, (r) => `${r.slice(0, 12)}...<${r.length} chars>`)
    .replace(/[\r\n\t]/g, " ");
  equal(payloadPreview(enc.encode(text)), want.slice(0, 240) + " ...");
  equal(payloadPreview(enc.encode(text), 2000), want);
});
