/**
 * `record` with nothing to record fails (exit 1) and says why: Pixie unreachable, TLS refused, or a stream that was
 * up but matched nothing, with the config file, each query's table, payload column and node scope, and what to try.
 * The real CLI runs as a subprocess against a real gRPC server (the fake Vizier) or a closed port.
 */
import { equal, match, ok } from "node:assert/strict";
import { FakeVizier, makeTestCert } from "./support/fake_vizier.ts";
import { displayNames } from "./support/capture_vizier.ts";
import { type ColumnInfo, DataType } from "../pixie/messages.ts";
import { readCapture } from "../pixie/capture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

const FILTER = `    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
        df = df[px.contains(df.ctx['pod'], 'telephony')]
`;
/** A standalone PEM has no pod metadata: filter on a port. */
const DIRECT_FILTER = `    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
        df = df[df.local_port == 8080]
`;

async function record(
  config: string,
  out: string,
  duration = "2s",
): Promise<{ code: number; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "record", "--config", config, "--out", out, "--duration", duration],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("record: Pixie unreachable -> exit 1, the last error, the queries and the config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`;
    const port = closedPort();
    await Deno.writeTextFile(
      config,
      `node: node-x\npixie:\n  direct_addr: 127.0.0.1:${port}\nmeasurements:\n  - name: calls\n${DIRECT_FILTER}`,
    );
    const r = await record(config, `${dir}/out.jsonl`);
    equal(r.code, 1, r.stderr);
    match(r.stderr, new RegExp(`record: 0 rows in 2s from the standalone PEM at 127\\.0\\.0\\.1:${port}`));
    match(r.stderr, new RegExp(`config: ${config.replaceAll(".", "\\.")}`));
    match(r.stderr, /calls\/source: http_events, payload column req_body, rows of node 'node-x'/);
    match(r.stderr, /the stream dropped \d+ time\(s\)/);
    match(r.stderr, /last drop: .*ECONNREFUSED/);
    match(r.stderr, /nothing answers at 127\.0\.0\.1/);
    match(r.stderr, /deno task check --config/);
    // The file holds its header and no row.
    equal((await readCapture(`${dir}/out.jsonl`)).rows.length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record: a stream that is up but matches nothing -> exit 1, says so, with the node scope", async () => {
  const fake = await FakeVizier.start({ healthIntervalMs: 200 });
  const relation: ColumnInfo[] = [
    { name: "time_", type: DataType.TIME64NS },
    { name: "pod", type: DataType.STRING },
    { name: "req_body", type: DataType.STRING },
  ];
  // Metadata for every table, then keep-alives only: Pixie's answer when no row matches.
  fake.onExecute = async (call) => {
    const names = displayNames(call.request.queryStr);
    for (const [i, name] of names.entries()) await call.meta(`t${i}`, name, relation);
    while (!call.isCancelled()) {
      for (const i of names.keys()) await call.keepAlive(`t${i}`, relation);
      await Promise.race([call.cancelled, new Promise((r) => setTimeout(r, 200))]);
    }
  };
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`;
    await Deno.writeTextFile(
      config,
      `node: worker-7\npixie:\n  direct_addr: ${fake.address}\nmeasurements:\n  - name: calls\n${DIRECT_FILTER}`,
    );
    const r = await record(config, `${dir}/out.jsonl`);
    equal(r.code, 1, r.stderr);
    match(r.stderr, /record: 0 rows in 2s/);
    match(r.stderr, /the stream was up, but no row matched the filters/);
    match(r.stderr, /a standalone PEM sees only its own node and has no pod metadata/);
    ok(!/the stream dropped/.test(r.stderr), r.stderr);
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("record: a TLS failure is named, with pixie.ca_file as the fix", async () => {
  const tls = await makeTestCert();
  const fake = await FakeVizier.start({ tls, apiKey: "k" });
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`;
    await Deno.writeTextFile(
      config,
      `node: n\npixie:\n  cloud_addr: ${
        fake.address.replace("127.0.0.1", "localhost")
      }\n  api_key: k\n  cluster: c1\nmeasurements:\n  - name: calls\n${FILTER}`,
    );
    const r = await record(config, `${dir}/out.jsonl`);
    equal(r.code, 1, r.stderr);
    match(r.stderr, /record: cannot reach Pixie Cloud/);
    match(r.stderr, /TLS failed: .*pixie\.ca_file/);
  } finally {
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
