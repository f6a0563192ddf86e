/**
 * Names from traffic and peers reach the human-readable outputs: a stream key read from a message's JSON field
 * (`$.streamSid`) with `\u001b[2J` in it cleared the terminal of whoever ran `analyze` on the capture, and a match
 * record any publisher puts on the stream did the same to `replay`'s table (an OSC 52 sequence writes the
 * clipboard). Control characters are printed escaped.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { JetStreamBus } from "../bus/jetstream.ts";
import { payloadPreview } from "../report/diagnosis.ts";
import { renderSummaryTable, summarize } from "../report/summary.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { printable, terminalText } from "../util/printable.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature } from "./support/bus_fixtures.ts";
import { ROOT, runMain, writeSensorConfig } from "./support/sensor_process.ts";
import { gatedTest } from "./support/tools.ts";

/** Any C0 (but line feed), DEL or C1 control character. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

Deno.test("printable / terminalText: controls escaped, text and (for a whole text) its layout kept", () => {
  assert.equal(printable("a\u001b[2Jb\nc\u009b\u202ed é"), "a\\x1b[2Jb\\nc\\x9b\\u202ed é");
  assert.equal(terminalText("row 1\n\trow\u0007 2\r"), "row 1\n\trow\\x07 2\\r");
});

Deno.test("renderSummaryTable: a stream key or id with controls or a line break stays one escaped cell", () => {
  const sig: SignatureRecord = {
    kind: "signature",
    measurement: "m",
    signature_id: "0000000000000001",
    node: "a",
    pod: "p",
    stream: "call\u001b]52;c;ZWNobyBoaQ==\u0007\nforged line",
    time_ns: "1700000000000000000",
    offset_ms: 0,
    ids: { interval_id: "iv\u001b[2J" },
    bytes: 100,
  };
  const match: MatchRecord = {
    kind: "match",
    measurement: "m",
    stage: "asr",
    signature_id: sig.signature_id,
    ids: sig.ids,
    source: { node: "a", pod: "p", stream: sig.stream, time_ns: sig.time_ns, offset_ms: 0 },
    target: { node: "b", pod: "q", stream: "t", time_ns: "1700000000100000000", offset_ms: 0 },
    latency_s: 0.1,
    ber: 0.1,
  };
  const text = renderSummaryTable(summarize([sig], [match], { m: ["asr"] }));
  assert.doesNotMatch(text, RAW_CONTROL, text);
  assert.match(text, /iv\\x1b\[2J/);
  assert.match(text, /\\x07\\nforged line/);
  assert.ok(!text.split("\n").some((l) => l.startsWith("forged line")), text);
});

Deno.test("payloadPreview: a text body's escape sequences are shown escaped", () => {
  const shown = payloadPreview(new TextEncoder().encode("hello \u001b[2J\u001b]0;title\u0007 world"));
  assert.doesNotMatch(shown, RAW_CONTROL, shown);
  assert.match(shown, /\\x1b\[2J\\x1b\]0;title\\x07/);
});

Deno.test("analyze: a stream key with ESC sequences from the messages does not reach the terminal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-term-" });
  try {
    // The e2e capture with `\u001b[2J\u001b[31m` after every source message's streamSid (JSON-escaped in the
    // message, so the stream key read from `$.streamSid` holds the raw characters).
    const src = await Deno.readTextFile(join(ROOT, "fixtures/e2e/node-a.jsonl"));
    const evil = src.replace(/(\\"streamSid\\":\\"MZ[0-9a-f]+)/g, "$1\\\\u001b[2J\\\\u001b[31m");
    assert.notEqual(evil, src);
    await Deno.writeTextFile(join(dir, "node-a.jsonl"), evil);
    const r = await runMain([
      "analyze",
      "--config",
      join(ROOT, "fixtures/e2e/config.yaml"),
      join(dir, "node-a.jsonl"),
      join(ROOT, "fixtures/e2e/node-b.jsonl"),
      join(ROOT, "fixtures/e2e/node-c.jsonl"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\\x1b\[2J\\x1b\[31m/, "the calls table shows the key, escaped");
    assert.doesNotMatch(r.stdout, RAW_CONTROL);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest("replay: a published record's control characters do not reach the terminal", async () => {
  const srv = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-term-replay-" });
  try {
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a", { stream: "FSMPX" }));
    try {
      const sig = testSignature(1, "call_audio");
      sig.source.stream = "10.0.0.1:5060\u001b[2J\u001b]0;owned\u0007";
      sig.ids = { interval_id: "iv\u001b[31m" };
      await bus.publishSignature(sig);
      const m = testMatchRecord(1, "asr");
      await bus.publishMatch({
        ...m,
        measurement: "call_audio",
        ids: sig.ids,
        source: { ...m.source, stream: sig.source.stream },
      });
      await bus.flush(5000);
    } finally {
      await bus.close();
    }
    const config = await writeSensorConfig({
      base: `${ROOT}fixtures/demo/config.yaml`,
      dir,
      node: "viewer",
      natsUrl: srv.url,
    });
    const out = await runMain(["replay", "--config", config, "--since", "1h"]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /iv\\x1b\[31m/, out.stdout);
    assert.match(out.stdout, /\\x1b\[2J\\x1b\]0;owned\\x07/, out.stdout);
    assert.doesNotMatch(out.stdout, RAW_CONTROL);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await srv.stop();
  }
});
