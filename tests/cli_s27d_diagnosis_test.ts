/**
 * First-user mistakes on the bundled demo captures, one at a time in a temp copy of the config: what `analyze`
 * and `check` say about a run that measures (or names) nothing.
 */
import assert from "node:assert/strict";
import { runMain } from "./support/sensor_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DEMO = `${ROOT}fixtures/demo/`;
const PACKETS = `${ROOT}fixtures/demo_packets/`;
const tmp = await Deno.makeTempDir({ prefix: "fsmpx-s27d-diagnosis-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const demoCaptures = ["node-a", "node-b", "node-c"].map((n) => `${DEMO}${n}.jsonl`);
const packetCaptures = ["node-rtp", "node-ws"].map((n) => `${PACKETS}${n}.pcap`);

/** A copy of `base` with one edit (which must apply), as `name`.yaml in the temp dir. */
async function mistake(base: string, name: string, from: string, to: string): Promise<string> {
  const text = await Deno.readTextFile(base);
  assert.ok(text.includes(from), `${from} is in ${base}`);
  const file = `${tmp}/${name}.yaml`;
  await Deno.writeTextFile(file, text.replace(from, to));
  return file;
}

async function cli(...args: string[]): Promise<string> {
  const r = await runMain(args, { FSMPX_LOG_LEVEL: "error" });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Line and column (1-based) of the first occurrence of `needle` in `file`. */
async function lineCol(file: string, needle: string): Promise<string> {
  const text = await Deno.readTextFile(file);
  const at = text.indexOf(needle);
  const before = text.slice(0, at).split("\n");
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

Deno.test("s27d: an id pattern that matches no message is named at file:line:col with a source message", async () => {
  const cfg = await mistake(
    `${DEMO}config.yaml`,
    "id_pattern",
    `pattern: "interval_id\\":`,
    `pattern: "intervalId\\":`,
  );
  const at = `${cfg}:${await lineCol(cfg, `"intervalId`)}`;
  for (const cmd of ["analyze", "check"]) {
    const text = await cli(cmd, "--config", cfg, ...demoCaptures);
    assert.match(
      text,
      /call_audio: none of 30 signatures has an id interval_id: its pattern matched no source message/,
    );
    assert.ok(
      text.includes(`${at}: id_patterns[0].pattern "intervalId\\":\\"([a-f0-9-]{36})" is searched`),
      text,
    );
    assert.match(
      text,
      /a source message: node node-a, pod voice\/telephony-0, time_ \d+: \{"event":"media".*"interval_id":"/,
    );
  }
  const r = JSON.parse(await cli("analyze", "--format", "json", "--config", cfg, ...demoCaptures));
  assert.deepEqual(r.diagnosis.findings.map((f: { kind: string }) => f.kind), ["no_ids"]);
  // The bundled configs' patterns match: nothing to say.
  const ok = JSON.parse(
    await cli("analyze", "--format", "json", "--config", `${DEMO}config.yaml`, ...demoCaptures),
  );
  assert.deepEqual(ok.diagnosis.findings, []);
  const pk = JSON.parse(
    await cli("analyze", "--format", "json", "--config", `${PACKETS}config.yaml`, ...packetCaptures),
  );
  assert.ok(!pk.diagnosis.findings.some((f: { kind: string }) => f.kind === "no_ids"));
});

Deno.test("s27d: a stage tap on the source's own port is named, not reported as a 0 ms latency", async () => {
  const cfg = await mistake(
    `${PACKETS}config.yaml`,
    "self_stage",
    "packets: { protocol: rtp, port: 24002 }",
    "packets: { protocol: rtp, port: 24000 }",
  );
  const at = `${cfg}:${await lineCol(cfg, "{ protocol: rtp, port: 24000 }\n      - stage: opus")}`;
  for (const cmd of ["analyze", "check"]) {
    const text = await cli(cmd, "--config", cfg, ...packetCaptures);
    assert.match(text, /Why \(stage relay: matches in the source's own stream; /);
    assert.match(
      text,
      /stage rtp_call\/relay: 14 of 14 matches are in the source's own stream \(same node and stream, latency 0\)/,
    );
    assert.ok(text.includes(`${at}: match_rules[0].packets: point it at the stage's own traffic`), text);
  }
  const r = JSON.parse(await cli("analyze", "--format", "json", "--config", cfg, ...packetCaptures));
  assert.ok(r.diagnosis.findings.some((f: { kind: string }) => f.kind === "self_matches"));
  // What is measured is unchanged: the matches are still counted, at 0 ms.
  const relay = r.measurements.find((m: { measurement: string }) => m.measurement === "rtp_call").stages[0];
  assert.deepEqual([relay.stage, relay.matches, relay.latency_s.p50], ["relay", 14, 0]);
});

Deno.test("s27d: an RTP stage without matches is not told to change an audio section RTP does not read", async () => {
  // The bundled packet demo as it is: stage other_call is another call's RTP, rightly without matches.
  for (const cmd of ["analyze", "check"]) {
    const text = await cli(cmd, "--config", `${PACKETS}config.yaml`, ...packetCaptures);
    assert.match(text, /stage rtp_call\/other_call: 200 rows, 0 matches of 14 signatures/);
    assert.match(
      text,
      /or a dynamic payload type is mapped to the wrong codec or rate \(packets\.payload_types\)/,
    );
    // The default audio section (Twilio JSON) is not compared with RTP payloads.
    assert.doesNotMatch(text, /its bodies look like: envelope: "json" -> "raw"/);
    assert.doesNotMatch(text, /rtp_call\/other_call.*look like/);
  }
});

Deno.test("s27d: a source audio section with the wrong rate or codec is named, though it decodes", async () => {
  // 16 kHz for 8 kHz μ-law: 16 signatures, no stage matches; before, only the stages were suspected.
  const rate = await mistake(
    `${DEMO}config.yaml`,
    "source_rate",
    "codec: mulaw, sample_rate: 8000",
    "codec: mulaw, sample_rate: 16000",
  );
  const rateAt = `${rate}:${await lineCol(rate, "{ envelope: json, path: media.payload")}`;
  for (const cmd of ["analyze", "check"]) {
    const text = await cli(cmd, "--config", rate, ...demoCaptures);
    assert.match(text, /Why \(stage relay: no matches; stage asr: no matches\)/);
    assert.match(
      text,
      /the bodies of call_audio\/source look like: sample_rate: 16000 -> 8000 \(configured -> seen\)/,
    );
    assert.ok(
      text.includes(`${rateAt}: signature_rules.audio: a wrong codec or sample rate still decodes`),
      text,
    );
  }
  // A-law for μ-law: 17 signatures instead of 30, all matched: a run that looks fine.
  const codec = await mistake(`${DEMO}config.yaml`, "source_codec", "codec: mulaw", "codec: alaw");
  const text = await cli("analyze", "--config", codec, ...demoCaptures);
  assert.match(text, /measurement call_audio: 17 signatures/);
  assert.match(
    text,
    /Notes on this run[^\n]*\n {2}- the bodies of call_audio\/source look like: codec: "alaw" -> "mulaw"/,
  );
  const r = JSON.parse(await cli("analyze", "--format", "json", "--config", codec, ...demoCaptures));
  assert.deepEqual(r.diagnosis.findings.map((f: { kind: string }) => f.kind), ["audio_mismatch"]);
  assert.equal(r.diagnosis.poor, false);
});

Deno.test("s27d: a tap without rows says where it is written and what to check (wrong port, wrong node)", async () => {
  const port = await mistake(
    `${PACKETS}config.yaml`,
    "source_port",
    "packets: { protocol: rtp, port: 24000 }",
    "packets: { protocol: rtp, port: 24001 }",
  );
  const at = `${port}:${await lineCol(port, "{ protocol: rtp, port: 24001 }")}`;
  for (const cmd of ["analyze", "check"]) {
    const text = await cli(cmd, "--config", port, ...packetCaptures);
    assert.match(
      text,
      /rtp_call: 0 signatures from 0 source rows: no source rows \(configured queries without rows, below\)/,
    );
    assert.ok(
      text.includes(
        `${at}: signature_rules.packets (protocol rtp, port 24001) took no message from the packet captures`,
      ),
      text,
    );
    assert.match(text, /deno task discover CAPTURE\.\.\. lists the ports that carry audio/);
  }
  // The relay's capture only: the source's and the ASR's rows are on other nodes.
  const text = await cli("analyze", "--config", `${DEMO}config.yaml`, `${DEMO}node-b.jsonl`);
  assert.match(text, /configured queries without rows: call_audio\/source, call_audio\/asr\n/);
  assert.match(
    text,
    /call_audio\/source: no capture has rows of this query: .*give the capture of the node that runs these pods/,
  );
});

Deno.test("s27d: a stage's audio section that does not fit its bodies is named at file:line:col", async () => {
  // The wrong JSON field: every message fails to decode.
  const path = await mistake(`${DEMO}config.yaml`, "stage_path", "path: data,", "path: audio,");
  const pathAt = `${path}:${await lineCol(path, "{ envelope: json, path: audio")}`;
  let text = await cli("analyze", "--config", path, ...demoCaptures);
  assert.match(
    text,
    /the bodies of call_audio\/asr look like: path: "audio" -> "data" \(configured -> seen\)/,
  );
  assert.ok(text.includes(`${pathAt}: match_rules[1].audio; deno task discover`), text);
  // PCM16 big-endian for little-endian: it decodes, into noise; no matches.
  const be = await mistake(`${DEMO}config.yaml`, "stage_endian", "codec: pcm16le", "codec: pcm16be");
  const beAt = `${be}:${await lineCol(be, "{ envelope: json, path: data")}`;
  text = await cli("check", "--config", be, ...demoCaptures);
  assert.ok(
    text.includes(
      `its bodies look like: codec: "pcm16be" -> "pcm16le" (configured -> seen)\n      change it at ${beAt}: ` +
        `match_rules[1].audio\n`,
    ),
    text,
  );
});
