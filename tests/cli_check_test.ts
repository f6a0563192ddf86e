/**
 * `check` as a user runs it (the real CLI, a subprocess): a bad config gives every problem at file:line:col with
 * the corrected line and the corrected filter, exit 2; a good one prints the PxL each node's sensor runs; captures
 * given are decoded by the engine, per stream, with decode errors by reason and an example row.
 */
import { equal, match, ok } from "node:assert/strict";
import { encodeCaptureHeader, encodeCaptureLine } from "../pixie/capture.ts";
import type { Row } from "../pixie/row.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures_config/", import.meta.url).pathname;

async function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "check", ...args],
    cwd: ROOT,
    env: { NODE_NAME: "node-z" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("check: the seed's Quick Start -> exit 2, each problem at file:line:col, and the corrected filter", async () => {
  const r = await check(["--config", `${FIXTURES}bad_seed_quickstart.yaml`]);
  equal(r.code, 2, r.stderr);
  const errors = r.stderr.trim().split("\n");
  equal(errors.length, 3, r.stderr);
  match(errors[0]!, /bad_seed_quickstart\.yaml:7:33: .*'socket_data', which is no Pixie table/);
  match(errors[1]!, /bad_seed_quickstart\.yaml:8:20: .*pod_name/);
  match(
    errors[2]!,
    /bad_seed_quickstart\.yaml:8:28: .*did you mean: df = df\[px\.contains\(df\.ctx\['pod'\], 'telephony'\)\]/,
  );
  equal(
    r.stdout,
    "measurements[0].signature_rules.stream_filter, corrected:\n" +
      "    df = px.DataFrame(table='http_events')\n" +
      "    df = df[px.contains(df.ctx['pod'], 'telephony')]\n",
  );
});

Deno.test("check: a good config prints each query and the script of the node asked for", async () => {
  const r = await check(["--config", "fixtures/demo/config.yaml", "--node", "node-b"]);
  equal(r.code, 0, r.stderr);
  match(r.stdout, /config fixtures\/demo\/config\.yaml: OK \(1 measurement\(s\), 3 Pixie queries\)/);
  match(
    r.stdout,
    /call_audio\/source: table http_events; columns time=time_ pod=pod \(df\.ctx\['pod'\]\) payload=req_body/,
  );
  match(r.stdout, /PxL the sensor on node node-b runs \(your filters as written; fsm-px rewrites nothing\)/);
  match(r.stdout, /^ {4}df = df\[px\.contains\(df\.ctx\['pod'\], 'media-relay'\)\]$/m);
  match(r.stdout, /^ {4}px\.display\(df\.stream\(\), 'call_audio\/asr'\)$/m);
  ok(r.stdout.includes("df.ctx['node'] == 'node-b'"), r.stdout);
  // Without --node: this node ($NODE_NAME).
  const here = await check(["--config", "fixtures/demo/config.yaml"]);
  ok(
    here.stdout.includes("df.ctx['node'] == 'fixtures-demo'") || here.stdout.includes("'node-z'"),
    here.stdout,
  );
});

Deno.test("check: captures decode per stream, with decode errors by reason and an example row", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // node-a's real rows, with two payloads broken in two different ways.
    const text = await Deno.readTextFile(`${ROOT}fixtures/demo/node-a.jsonl`);
    const lines = text.trim().split("\n");
    const rows = lines.slice(1, 400).map((l) =>
      JSON.parse(l) as { query: string; row: Record<string, unknown> }
    );
    rows[10]!.row["req_body"] = "this is not json";
    rows[20]!.row["req_body"] = JSON.stringify({ event: "media", media: { payload: "@@not base64@@" } });
    const path = `${dir}/node-a.jsonl`;
    await Deno.writeTextFile(
      path,
      [lines[0], ...rows.map((r) => JSON.stringify(r)), "{not a row"].join("\n") + "\n",
    );
    const r = await check([
      "--config",
      "fixtures/demo/config.yaml",
      path,
      `${ROOT}fixtures/demo/node-b.jsonl`,
    ]);
    equal(r.code, 0, r.stderr);
    match(
      r.stdout,
      new RegExp(
        `capture ${path.replaceAll(".", "\\.")} \\(node node-a\\): 399 rows, 1 malformed lines skipped`,
      ),
    );
    match(r.stdout, /call_audio\/source: 399 rows, 397 decoded, 2 failed to decode, \d+ signatures/);
    match(r.stdout, /decode errors: (bad_json 1, bad_base64 1|bad_base64 1, bad_json 1)/);
    // The diagnosis shows an example of each failure.
    match(r.stdout, /this is not json/);
    match(r.stdout, /capture .*node-b\.jsonl \(node node-b\): 1438 rows/);
    match(r.stdout, /call_audio\/relay: 1438 rows, 1438 decoded, 0 failed to decode, \d+ matches/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: the per-input part takes any async iterable of rows", async () => {
  const { checkRowInputs } = await import("../cli/check_cmd.ts");
  const { parseConfigText } = await import("../config/load.ts");
  const { readCapture } = await import("../pixie/capture.ts");
  const { config } = parseConfigText(
    await Deno.readTextFile(`${ROOT}fixtures/demo/config.yaml`),
    "demo.yaml",
    {},
  );
  const cap = await readCapture(`${ROOT}fixtures/demo/node-a.jsonl`);
  const some: Row[] = cap.rows.slice(0, 300);
  // Rows from a generator, as a pcap reader or a live source would give them.
  async function* source() {
    for (const r of some) yield r;
  }
  const checked = await checkRowInputs(config, "demo.yaml", [{
    label: "gen",
    node: "node-a",
    rows: source(),
  }]);
  equal(checked.inputs.length, 1);
  const [stream] = checked.inputs[0]!.streams;
  equal(stream!.query, "call_audio/source");
  equal(stream!.rows, 300);
  equal(Object.keys(stream!.decodeErrors).length, 0);
  ok((stream!.signatures ?? 0) > 0);
  // The capture format round-trips what the generator gave.
  ok(encodeCaptureHeader("node-a").includes("node-a"));
  ok(encodeCaptureLine(some[0]!).includes("call_audio/source"));
});
