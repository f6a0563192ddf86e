import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  clockSubject,
  encodeToken,
  matchDedupeId,
  matchSubject,
  parseSubject,
  signatureSubject,
  STREAM_SUBJECTS,
  SubjectError,
} from "../bus/subjects.ts";
import { matchDedupeId as reExported } from "../bus/in_process.ts";
import {
  checkServerVersion,
  compareVersions,
  MIN_SERVER_VERSION,
  parseVersion,
  ServerVersionError,
  streamConfig,
  streamDrift,
} from "../bus/stream_setup.ts";
import { bestSample, median, ntpSample } from "../bus/clock_skew.ts";
import { safeServers } from "../bus/connection.ts";
import { testMatch } from "./support/bus_fixtures.ts";
import { matchRecord } from "../report/records.ts";

Deno.test("subjects: signature and match subjects parse back; bad tokens are refused", () => {
  equal(signatureSubject("call_start"), "fsmpx.sig.call_start");
  equal(matchSubject("call_start", "asr"), "fsmpx.match.call_start.asr");
  deepEqual(parseSubject("fsmpx.sig.call_start"), { kind: "signature", measurement: "call_start" });
  deepEqual(parseSubject("fsmpx.match.call_start.asr"), {
    kind: "match",
    measurement: "call_start",
    stage: "asr",
  });
  equal(parseSubject("fsmpx.clock.hello"), null);
  equal(parseSubject("other.sig.x"), null);
  throws(() => signatureSubject("a.b"), SubjectError);
  throws(() => signatureSubject(""), SubjectError);
  throws(() => matchSubject("m", "*"), SubjectError);
  throws(() => matchSubject("m", "a b"), SubjectError);
  // Clock subjects stay out of the stream: a request there must reach the peer, not be stored and acked.
  for (const s of STREAM_SUBJECTS) ok(!clockSubject("n").startsWith(s.replace(">", "")));
});

Deno.test("subjects: node names with dots become one reversible-looking token", () => {
  equal(encodeToken("node-a_1"), "node-a_1");
  equal(encodeToken("ip-10-0-0-1.ec2.internal"), "ip-10-0-0-1%2Eec2%2Einternal");
  equal(encodeToken("a b*>"), "a%20b%2A%3E");
  equal(clockSubject("n.1"), "fsmpx.clock.n.n%2E1");
  ok(encodeToken("") !== "");
});

Deno.test("subjects: match dedupe id is signature, stage and target stream (same in both buses)", () => {
  const m = matchRecord(testMatch(7));
  equal(matchDedupeId(m), `${m.signature_id}:asr:node-b:asr-stream`);
  equal(reExported(m), matchDedupeId(m));
  equal(matchDedupeId({ ...m, stage: "relay" }) === matchDedupeId(m), false);
});

Deno.test("server version: parse, compare and a clear error for a too-old server", () => {
  deepEqual(parseVersion("2.9.10"), [2, 9, 10]);
  deepEqual(parseVersion("v2.10.0-beta.1"), [2, 10, 0]);
  equal(parseVersion("2.9"), null);
  equal(parseVersion("banana"), null);
  ok(compareVersions([2, 10, 0], [2, 9, 10]) > 0);
  ok(compareVersions([2, 9, 4], [2, 9, 4]) === 0);
  checkServerVersion("2.9.10");
  checkServerVersion("2.14.0");
  checkServerVersion(MIN_SERVER_VERSION);
  throws(() => checkServerVersion("2.9.3"), (e: Error) => {
    ok(e instanceof ServerVersionError);
    match(e.message, /NATS server 2\.9\.3 is too old: fsm-px needs 2\.9\.4 or newer/);
    return true;
  });
  throws(() => checkServerVersion("2.2.0"), ServerVersionError);
  throws(() => checkServerVersion(undefined), /cannot read the NATS server version/);
  throws(() => checkServerVersion("x"), ServerVersionError);
});

Deno.test("stream config: limits as configured, dedupe window within retention, drift detection", () => {
  const spec = {
    name: "FSMPX",
    replicas: 3,
    retentionMs: 7 * 86400_000,
    maxBytes: 1 << 30,
    duplicateWindowMs: 120_000,
    maxMsgSize: 65536,
  };
  const c = streamConfig(spec);
  deepEqual(c.subjects, ["fsmpx.sig.>", "fsmpx.match.>"]);
  equal(c.max_age, 7 * 86400_000 * 1_000_000);
  equal(c.duplicate_window, 120_000 * 1_000_000);
  equal(c.num_replicas, 3);
  equal(c.max_bytes, 1 << 30);
  deepEqual(streamDrift(c, streamConfig(spec)), []);
  deepEqual(streamDrift(c, streamConfig({ ...spec, retentionMs: 3600_000 })), ["max_age"]);
  deepEqual(streamDrift(c, streamConfig({ ...spec, replicas: 1, maxBytes: 5 })), [
    "max_bytes",
    "num_replicas",
  ]);
  equal(streamConfig({ ...spec, retentionMs: 60_000 }).duplicate_window, 60_000 * 1_000_000);
});

Deno.test("clock math: NTP offset and delay, lowest round trip wins, median", () => {
  // Peer 250 ms ahead, 2 ms each way, 1 ms of processing at the peer.
  const s = ntpSample(1000, 1252, 1253, 1005);
  equal(s.offsetMs, 250);
  equal(s.rttMs, 4);
  // Asymmetric queueing (8 ms out, 2 ms back) skews the offset by half the asymmetry; its RTT gives it away.
  const slow = ntpSample(1000, 1258, 1259, 1011);
  equal(slow.offsetMs, 253);
  deepEqual(bestSample([slow, s]), s);
  equal(bestSample([]), null);
  equal(median([3, 1, 2]), 2);
  equal(median([4, 1, 2, 3]), 2.5);
  equal(median([]), null);
});

Deno.test("connection: server URLs are logged without user:password", () => {
  deepEqual(safeServers("nats://u:s3cret@h1:4222, tls://h2:4222"), ["nats://h1:4222", "tls://h2:4222"]);
});
