import assert from "node:assert/strict";
import { looksLikeNats, parseNatsLine } from "../packets/nats_proto.ts";
import { looksLikeResp, xaddFields } from "../packets/redis_proto.ts";
import { feed, texts } from "./support/tcp_feed.ts";

const enc = new TextEncoder();
const bulk = (...args: string[]) =>
  `*${args.length}\r\n` + args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("");

Deno.test("NATS: PUB (with reply), HPUB headers removed, control lines counted; any segmentation", () => {
  const stream = 'CONNECT {"verbose":false}\r\nPING\r\nPUB audio.in 5\r\nhello\r\n' +
    "SUB audio.out 1\r\npub audio.in _INBOX.x 0\r\n\r\n" +
    "HPUB audio.hdr 24 32\r\nNATS/1.0\r\nA: bcdefgh\r\n\r\n12345678\r\nPUB a.b 3\r\n\r\nx\r\n";
  for (const step of [1, 6, 1000]) {
    const r = feed("nats", stream, { step });
    assert.deepEqual(texts(r), ["hello", "", "12345678", "\r\nx"], `step ${step}`);
    assert.deepEqual(r.msgs[0]!.meta, { command: "PUB", subject: "audio.in" });
    assert.deepEqual(r.msgs[1]!.meta, { command: "PUB", subject: "audio.in", reply: "_INBOX.x" });
    assert.equal(r.skips.nats_control, 3);
  }
});

Deno.test("NATS: MSG and HMSG from the server, a gap inside a payload keeps framing, junk resyncs", () => {
  const stream =
    'INFO {"server_id":"x"}\r\nMSG audio.in 7 5\r\nhello\r\nMSG audio.in 7 _R.1 10\r\n0123456789\r\n' +
    "HMSG audio.in 7 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPONG\r\nMSG last 1 4\r\nlast\r\n";
  const r = feed("nats", stream, { back: true, step: 9 });
  assert.deepEqual(texts(r), ["hello", "0123456789", "abc", "last"]);
  assert.deepEqual(r.msgs[1]!.meta, { command: "MSG", subject: "audio.in", reply: "_R.1" });
  const at = stream.indexOf("0123456789");
  const gap = feed("nats", stream, { back: true, step: 9, lose: [at + 2, at + 5] });
  assert.deepEqual(texts(gap), ["hello", "abc", "last"]);
  assert.equal(gap.skips.nats_bad_message, 1);
  const across = feed("nats", stream, { back: true, step: 9, lose: [at + 2, at + 20] });
  assert.deepEqual(texts(across), ["hello", "last"]); // the HMSG line itself was lost
  const bad = feed("nats", "FOO bar\r\nPUB x 3\r\nabcXY\r\nPUB y 2\r\nok\r\n");
  assert.deepEqual(texts(bad), ["ok"]);
  assert.ok((bad.skips.nats_bad_message ?? 0) >= 2);
  const big = feed("nats", "PUB big 5000\r\n" + "z".repeat(5000) + "\r\nPUB s 2\r\nok\r\n", {
    max: 1000,
    step: 700,
  });
  assert.deepEqual(texts(big), ["ok"]);
  assert.equal(big.skips.message_too_large, 1);
  assert.equal(parseNatsLine("PUB", ["a", "b", "c", "1"]), undefined);
  assert.ok(looksLikeNats(enc.encode('INFO {"server_id":"x"}\r\n')));
  assert.ok(!looksLikeNats(enc.encode("*1\r\n$4\r\nPING\r\n")));
});

Deno.test("Redis: PUBLISH, XADD with options (one message per field), SET/RPUSH, inline and other commands", () => {
  const stream = bulk("PUBLISH", "calls:1", "audio-bytes") + "PING\r\n" + bulk("GET", "k") +
    bulk("XADD", "stream:a", "NOMKSTREAM", "MAXLEN", "~", "1000", "*", "audio", "AAA", "seq", "7") +
    bulk("xadd", "s2", "MINID", "0-1", "LIMIT", "5", "1-1", "f", "v") + bulk("SET", "k", "val") +
    bulk("RPUSH", "q", "x", "y");
  for (const step of [1, 11, 10000]) {
    const r = feed("redis", stream, { step });
    assert.deepEqual(texts(r), ["audio-bytes", "AAA", "7", "v", "val", "x", "y"], `step ${step}`);
    assert.deepEqual(r.msgs[0]!.meta, { command: "PUBLISH", channel: "calls:1" });
    assert.deepEqual(r.msgs[1]!.meta, { command: "XADD", key: "stream:a", field: "audio" });
    assert.deepEqual(r.msgs[3]!.meta, { command: "XADD", key: "s2", field: "f" });
    assert.equal(r.skips.redis_other, 2);
  }
});

Deno.test("Redis: server pushes (RESP2 message/pmessage, RESP3 > push), replies skipped, nested values", () => {
  const push3 = `>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n`;
  const stream = "+OK\r\n" + bulk("subscribe", "ch") + ":1\r\n" + bulk("message", "ch", "payload-1") +
    bulk("pmessage", "c*", "ch", "payload-2") + "%1\r\n+k\r\n*2\r\n:1\r\n$-1\r\n" +
    "|1\r\n+a\r\n+b\r\n+OK\r\n" +
    "_\r\n,1.5\r\n#t\r\n(123\r\n=7\r\ntxt:abc\r\n" + push3;
  for (const step of [1, 13, 10000]) {
    const r = feed("redis", stream, { back: true, step });
    assert.deepEqual(texts(r), ["payload-1", "payload-2", "abc"], `step ${step}`);
    assert.deepEqual(r.msgs[1]!.meta, { command: "pmessage", pattern: "c*", channel: "ch" });
    assert.equal(r.skips.redis_bad_message, undefined);
  }
});

Deno.test("Redis: a gap drops the partial command and resyncs; the bound skips big values; bad XADD counted", () => {
  const a = bulk("PUBLISH", "c", "A".repeat(50));
  const b = bulk("PUBLISH", "c", "B".repeat(50));
  const c = bulk("PUBLISH", "c", "C".repeat(50));
  const r = feed("redis", a + b + c, { step: 20, lose: [a.length + 30, a.length + 40] });
  assert.deepEqual(texts(r), ["A".repeat(50), "C".repeat(50)]);
  assert.equal(r.skips.tcp_gap, 1);
  const big = feed("redis", bulk("PUBLISH", "c", "x".repeat(100_000)) + bulk("PUBLISH", "c", "ok"), {
    max: 1000,
    step: 4000,
  });
  assert.deepEqual(texts(big), ["ok"]);
  assert.equal(big.skips.message_too_large, 1);
  const bad = feed("redis", bulk("XADD", "k", "*", "lonely") + bulk("PUBLISH", "c", "fine"));
  assert.deepEqual(texts(bad), ["fine"]);
  assert.equal(bad.skips.redis_bad_message, 1);
  const junk = feed("redis", new Uint8Array(2000).map((_, i) => (i * 31) & 255));
  assert.deepEqual(texts(junk), []);
  assert.equal(xaddFields(6, (i) => ["XADD", "k", "MAXLEN", "=", "5", "*"][i]!), -1);
  assert.ok(looksLikeResp(enc.encode(bulk("PING"))));
  assert.ok(!looksLikeResp(enc.encode("PUB a 1\r\n")));
});
