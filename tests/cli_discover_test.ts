/**
 * `discover` as a user runs it, on every bundled capture: the proposed `audio` section equals the one the
 * fixture's config was generated with, and the proposed config, used as it is, makes `analyze` produce signatures
 * (and, for a whole capture set, matches at every stage).
 */
import assert from "node:assert/strict";
import { runMain } from "./support/sensor_process.ts";
import { loadConfig } from "../config/load.ts";
import { tapOf } from "../report/diagnosis.ts";
import type { AudioFormat } from "../audio/types.ts";
import type { Row } from "../pixie/row.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SETS = ["demo", "e2e"] as const;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Run> {
  return await runMain(args, { FSMPX_LOG_LEVEL: "error" });
}

interface DiscoverJson {
  rows: number;
  streams: { query: string; verdict: string; confidence: number; audio?: AudioFormat; snippet?: string }[];
  capture_config?: string;
}

async function discover(files: string[]): Promise<DiscoverJson> {
  const r = await cli(["discover", "--format", "json", ...files]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DiscoverJson;
}

interface AnalyzeJson {
  rows: number;
  measurements: {
    measurement: string;
    signatures: number;
    stages: { stage: string; matches: number; recall: number }[];
  }[];
  diagnosis: { poor: boolean };
}

async function analyze(config: string, files: string[]): Promise<AnalyzeJson> {
  const r = await cli(["analyze", "--config", config, "--format", "json", ...files]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as AnalyzeJson;
}

const tmp = await Deno.makeTempDir({ prefix: "fsmpx-discover-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

for (const set of SETS) {
  const dir = `${ROOT}fixtures/${set}/`;
  const { config } = await loadConfig(`${dir}config.yaml`);
  const files = ["node-a", "node-b", "node-c"].map((n) => `${dir}${n}.jsonl`);

  Deno.test(`discover: each ${set} capture gets the fixture's audio section, and its config gives signatures`, async () => {
    for (const file of files) {
      const d = await discover([file]);
      assert.equal(d.streams.length, 1, JSON.stringify(d.streams.map((s) => s.query)));
      const s = d.streams[0]!;
      assert.equal(s.verdict, "audio");
      assert.ok(s.confidence >= 0.9, `${file}: confidence ${s.confidence}`);
      const expected = tapOf(config, s.query)!.tap.audio;
      assert.deepEqual(s.audio, expected, `${file}: ${s.query}`);

      // The snippet as a config file, used as it is. Its measurement reads this stream as its source, so the
      // rows are offered under that query name (a capture records the query names of the config it ran with).
      const cfgPath = `${tmp}/${set}-${s.query.replace("/", "-")}.yaml`;
      await Deno.writeTextFile(cfgPath, s.snippet!);
      const name = (await loadConfig(cfgPath)).config.measurements[0]!.name;
      const text = await Deno.readTextFile(file);
      const capPath = `${tmp}/${set}-${s.query.replace("/", "-")}.jsonl`;
      await Deno.writeTextFile(capPath, text.replaceAll(`"query":"${s.query}"`, `"query":"${name}/source"`));
      const a = await analyze(cfgPath, [capPath]);
      const m = a.measurements.find((x) => x.measurement === name)!;
      assert.ok(m.signatures >= 5, `${file}: ${m.signatures} signatures with the proposed config`);
    }
  });

  Deno.test(`discover: the ${set} captures together give one config that matches at every stage`, async () => {
    const d = await discover(files);
    assert.ok(d.capture_config, "a whole config for the capture set");
    const cfgPath = `${tmp}/${set}-all.yaml`;
    await Deno.writeTextFile(cfgPath, d.capture_config);
    const proposed = (await loadConfig(cfgPath)).config;
    for (const q of ["call_audio/source", "call_audio/relay", "call_audio/asr"]) {
      assert.deepEqual(tapOf(proposed, q)!.tap.audio, tapOf(config, q)!.tap.audio, q);
    }
    const a = await analyze(cfgPath, files);
    const m = a.measurements[0]!;
    assert.ok(m.signatures >= 8, `${m.signatures} signatures`);
    for (const st of m.stages) assert.ok(st.recall >= 0.9, `${st.stage}: recall ${st.recall}`);
    assert.equal(a.diagnosis.poor, false);
  });
}

Deno.test("discover: the deno task runs with its declared permissions, and prints the reasons", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "discover", "fixtures/demo/node-c.jsonl"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /call_audio\/asr\s+pod voice\/asr-0\s+\(req_body, 667 rows\): audio/);
  assert.match(text, /codec\s+pcm16le\s+1\.00\s+decoded as pcm16le/);
  assert.match(text, /rate\s+16000 Hz/);
  assert.match(text, /df = df\[px\.contains\(df\.ctx\['pod'\], 'asr'\)\]/);
  assert.doesNotMatch(text, /\.contains\('/, "no pandas-style .contains in proposed PxL");
});

Deno.test("discover: with --config it says where the configured audio differs", async () => {
  const src = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
  const bad = `${tmp}/wrong-codec.yaml`;
  await Deno.writeTextFile(
    bad,
    src.replace("codec: alaw, sample_rate: 8000", "codec: mulaw, sample_rate: 8000"),
  );
  const r = await cli(["discover", "--config", bad, "--capture", `${ROOT}fixtures/demo/node-b.jsonl`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /your config for call_audio\/relay differs: codec: "mulaw" -> "alaw"/);
});

Deno.test("discover: a capture without audio says so", async () => {
  const path = `${tmp}/chat.jsonl`;
  const lines = [];
  for (let i = 0; i < 50; i++) {
    const body = JSON.stringify({ user: `u${i % 3}`, text: ["hi", "how are you", "fine, thanks"][i % 3] });
    lines.push(
      JSON.stringify({
        query: "chat/source",
        row: { time_: String(1e18 + i * 1e9), pod: "ns/chat-0", req_body: body },
      }),
    );
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  const r = await cli(["discover", path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /0 look like audio/);
  assert.match(r.stdout, /no audio: JSON without a string field that holds base64 or hex data/);
  assert.match(r.stdout, /no group looks like audio/);
});

Deno.test("discover: live from Pixie (a fake Vizier serving the demo traffic as http_events rows)", async () => {
  const { FakeVizier } = await import("./support/fake_vizier.ts");
  const { serveRows } = await import("./support/capture_vizier.ts");
  const { readCapture } = await import("../pixie/capture.ts");
  const rows: Row[] = [];
  for (const n of ["node-a", "node-b", "node-c"]) {
    for (const r of (await readCapture(`${ROOT}fixtures/demo/${n}.jsonl`)).rows) {
      rows.push({ ...r, query: "discover/http_events" });
    }
  }
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const fake = await FakeVizier.start({ healthIntervalMs: 200 });
  fake.onExecute = (call) => serveRows(call, rows);
  try {
    const src = await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`);
    const cfg = `${tmp}/live.yaml`;
    await Deno.writeTextFile(
      cfg,
      // A standalone PEM has no pod metadata: the config's pod filters become port filters.
      src.replace(/^node:.*$/m, "node: node-x").replace(/^metrics:[\s\S]*?(?=^\S)/m, "")
        .replace(/px\.contains\(df\.ctx\['pod'\], '[^']*'\)/g, "df.local_port > 0") +
        `pixie:\n  direct_addr: ${fake.address}\n`,
    );
    const r = await cli(["discover", "--config", cfg, "--duration", "4s", "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as DiscoverJson & {
      tables: { table: string; rows: number; error?: string }[];
    };
    const http = d.tables.find((t) => t.table === "http_events")!;
    assert.equal(http.rows, rows.length, JSON.stringify(d.tables));
    const { config } = await loadConfig(`${ROOT}fixtures/demo/config.yaml`);
    const byPod = new Map(d.streams.map((s) => [(s as unknown as { pod: string }).pod, s]));
    for (
      const [pod, query] of [["voice/telephony-0", "call_audio/source"], [
        "voice/media-relay-0",
        "call_audio/relay",
      ], [
        "voice/asr-0",
        "call_audio/asr",
      ]] as const
    ) {
      const s = byPod.get(pod);
      assert.ok(s, `${pod} in ${[...byPod.keys()]}`);
      assert.deepEqual(s.audio, tapOf(config, query)!.tap.audio, pod);
      assert.match(s.snippet!, /df = px\.DataFrame\(table='http_events', start_time='-30s'\)/);
      assert.match(s.snippet!, /columns: \{ payload: req_body \}/);
    }
  } finally {
    await fake.stop();
  }
});
