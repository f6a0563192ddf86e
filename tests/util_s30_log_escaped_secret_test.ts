/**
 * A secret with a `"` or `\` in it was logged in the clear (session 30's config review): the logger masks a line once
 * it is JSON, where such characters are escaped, so the registered value no longer appeared in it. Its JSON and
 * percent-encoded forms are masked now too, and forgotten with it.
 */
import { equal, ok } from "node:assert/strict";
import { forgetSecret, logger, redact, registerSecret, setLogSink } from "../util/log.ts";

Deno.test("log: a secret with a quote and a backslash is masked as a log line carries it, and in a URL", () => {
  const secret = 'pa"ss\\word-s30/x@y';
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    registerSecret(secret);
    const log = logger("test");
    log.warn(`connect failed for nats://u:${secret}@h:4222`, { detail: secret });
    log.warn(`url nats://u:${encodeURIComponent(secret)}@h:4222`);
    equal(lines.length, 2);
    for (const l of lines) {
      ok(!l.includes("ss\\\\word"), l);
      ok(!l.includes("word-s30"), l);
      ok(l.includes("[redacted]"), l);
    }
    equal(JSON.parse(lines[0]!).detail, "[redacted]");
    forgetSecret(secret);
    equal(redact(JSON.stringify(secret)), JSON.stringify(secret), "forgotten in every form");
  } finally {
    setLogSink(prev);
    forgetSecret(secret);
  }
});

Deno.test("log: C1 controls and the line separators from traffic are escaped in a log line, which stays the same JSON", () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    const key = "pod-1|\u009b2J\u2028x\u2029y\u0085";
    logger("test").warn("stream ended", { stream: key });
    equal(lines.length, 1);
    ok(!/[\u0080-\u009f\u2028\u2029]/.test(lines[0]!), JSON.stringify(lines[0]));
    ok(lines[0]!.includes("\\u009b2J\\u2028x\\u2029y\\u0085"), lines[0]!);
    equal(JSON.parse(lines[0]!).stream, key);
  } finally {
    setLogSink(prev);
  }
});
