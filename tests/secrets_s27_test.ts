/**
 * Secrets never reach an output channel, end to end with real parts on loopback: the CLI as a subprocess (`run`,
 * `check`, `discover`, `record`, `replay`, `ui`), a real nats-server requiring a user and password, the fake
 * Vizier requiring an API key (and echoing a wrong one in its error), and an OTLP receiver that refuses every
 * export with a body echoing the `Authorization` header and URL. Every channel is searched for each secret, raw,
 * percent-encoded and base64 (the Basic auth of `user:password`): stdout, stderr, `/metrics`, `/healthz`,
 * `/readyz`, the UI's `/api/*`, `replay`'s records and `record`'s capture file.
 *
 * Secrets shorter than 4 characters are not masked (util/log.ts registerSecret; README, Reliability); they are
 * not used here.
 */
import { equal, match, ok } from "node:assert/strict";
import { stringify } from "yaml";
import { gatedTest } from "./support/tools.ts";
import { freePort, NatsServer } from "./support/nats_server.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { FakeVizier, makeTestCert } from "./support/fake_vizier.ts";
import { ROOT, SensorProcess, sleep } from "./support/sensor_process.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server", "openssl"]);

/** Distinctive values: regex specials, characters URLs and base64 change, a `%` escape in a URL. */
const NATS_PASSWORD = "S27nats.*+?[pw]{2}|(x)^$";
const OTLP_PASSWORD_IN_URL = "S27otlp%2Fpw%40x"; // decodes to S27otlp/pw@x
const OTLP_PASSWORD = decodeURIComponent(OTLP_PASSWORD_IN_URL);
const OTLP_BEARER = "S27bearerQWERTYzxcv";
const PIXIE_KEY = "S27pixie-key.+(k)";
const HEADER_TOKEN = "S27hdrTokenPLMOKN";

/** A secret in every form a channel could carry it. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), btoa(secret)];
}

const ALL_FORMS = [
  ...forms(NATS_PASSWORD),
  btoa(`fsm:${NATS_PASSWORD}`),
  OTLP_PASSWORD_IN_URL,
  ...forms(OTLP_PASSWORD),
  btoa(`otlpuser:${OTLP_PASSWORD}`),
  ...forms(OTLP_BEARER),
  ...forms(PIXIE_KEY),
  ...forms(HEADER_TOKEN),
  "98765432101234",
];

/** Fails naming the channel and the lines that carry a secret. */
function assertClean(channel: string, text: string): void {
  const found = ALL_FORMS.filter((s) => text.includes(s));
  ok(
    found.length === 0,
    `${channel} carries ${JSON.stringify(found)}:\n` +
      text.split("\n").filter((l) => found.some((s) => l.includes(s))).join("\n"),
  );
}

interface Ran {
  code: number;
  out: string;
}

/** `main.ts <args>` with `env` added, stdout and stderr together; SIGTERM after `ms`. */
async function cli(args: string[], env: Record<string, string> = {}, ms = 60_000): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch {
      // ended
    }
  }, ms);
  const o = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("check: otlp.headers values are never quoted in a config error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-s27-secrets-" });
  try {
    const cases: [string, string][] = [
      // The headers written as one string (an easy slip): the whole string was quoted, token and all.
      ["string", `  headers: "Authorization: Bearer ${HEADER_TOKEN}"\n`],
      ["string from env", `  headers: "\${FSMPX_OTLP_HEADER}"\n`],
      // A key of digits is a YAML number, not a string: it was quoted as found.
      ["number", `  headers:\n    X-Api-Key: 98765432101234\n`],
    ];
    for (const [name, headers] of cases) {
      const config = `${dir}/${name.replaceAll(" ", "_")}.yaml`;
      await Deno.writeTextFile(
        config,
        `node: n\notlp:\n  endpoint: http://127.0.0.1:4318\n${headers}` +
          `measurements:\n  - name: calls\n    signature_rules:\n      stream_filter: |\n` +
          `        df = px.DataFrame(table='http_events', start_time='-30s')\n`,
      );
      const r = await cli(["check", "--config", config], {
        FSMPX_OTLP_HEADER: `Authorization: Bearer ${HEADER_TOKEN}`,
      });
      equal(r.code, 2, `${name}: ${r.out}`);
      match(r.out, /otlp\.headers/, name);
      assertClean(`check (${name})`, r.out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const FILTER = "df = px.DataFrame(table='http_events', start_time='-30s')\n" +
  "df = df[px.contains(df.ctx['pod'], 'telephony')]\n";

/** `ui` until it serves: every `/api/*` answer, then SIGTERM; returns the answers and all it printed. */
async function uiChannels(config: string, env: Record<string, string>): Promise<Ran & { api: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "ui", "--config", config, "--listen", "127.0.0.1:0"],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const stdout = (async () => {
    for await (const c of child.stdout.pipeThrough(new TextDecoderStream())) out += c;
  })();
  const stderr = new Response(child.stderr).text();
  let api = "";
  const end = Date.now() + 60_000;
  let status: Deno.CommandStatus | undefined;
  child.status.then((s) => status = s);
  while (Date.now() < end && status === undefined) {
    const url = /UI at (http:\/\/\S+\/)/.exec(out)?.[1];
    if (url) {
      for (const p of ["info", "overview", "waterfall", "health", "interval?id=x", "signature?id=x"]) {
        api += await (await fetch(`${url}api/${p}`)).text();
      }
      child.kill("SIGTERM");
      break;
    }
    await sleep(50);
  }
  const s = await child.status;
  await stdout;
  return { code: s.code, out: out + await stderr, api };
}

natsTest({
  name: "run, replay, ui: no NATS or OTLP secret on any channel, with the collector echoing Authorization",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-s27-secrets-" });
    const srv = await NatsServer.start({ user: "fsm", password: NATS_PASSWORD });
    const rx = await startOtlpReceiver({ refuseWith: 401 });
    let sensor: SensorProcess | undefined;
    // The sensor inherits this process's environment; the one-shot commands get it too.
    const env = { NATS_PASSWORD, FSMPX_OTLP_AUTH: `Bearer ${OTLP_BEARER}` };
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
    try {
      const { parse } = await import("yaml");
      const doc = parse(await Deno.readTextFile(`${ROOT}fixtures/e2e/config.yaml`)) as Record<
        string,
        unknown
      >;
      doc["node"] = "node-a";
      doc["log_level"] = "info";
      doc["metrics"] = { listen: "127.0.0.1:0" };
      doc["nats"] = { url: srv.url, user: "fsm", password: "${NATS_PASSWORD}" };
      doc["otlp"] = {
        endpoint: rx.endpoint.replace("://", `://otlpuser:${OTLP_PASSWORD_IN_URL}@`),
        headers: { Authorization: "${FSMPX_OTLP_AUTH}" },
      };
      const config = `${dir}/node-a.yaml`;
      await Deno.writeTextFile(config, stringify(doc));

      sensor = await SensorProcess.start({
        node: "node-a",
        config,
        capture: `${ROOT}fixtures/e2e/node-a.jsonl`,
        speed: 8,
      });
      await sensor.waitReplayed();
      await sensor.waitMetric("fsmpx_otlp_spans_total", { outcome: "failed" }, (v) => v > 0, 30_000);
      ok(rx.requests.some((r) => r.authorization !== ""), "the collector was sent credentials");
      for (const path of ["/metrics", "/healthz", "/readyz"]) {
        assertClean(`run ${path}`, await (await fetch(`http://${sensor.addr}${path}`)).text());
      }

      const replay = await cli(["replay", "--config", config, "--since", "1h", "--format", "records"], env);
      equal(replay.code, 0, replay.out);
      ok(replay.out.includes(`"kind":"signature"`), replay.out);
      assertClean("replay --format records", replay.out);

      const ui = await uiChannels(config, env);
      ok(ui.api.includes("measurement"), ui.out + ui.api);
      assertClean("ui /api/*", ui.api);
      assertClean("ui output", ui.out);

      // Refused and unreachable: the start-up errors.
      const wrong = { ...env, NATS_PASSWORD: `${NATS_PASSWORD}-wrong` };
      for (const args of [["replay", "--since", "1h"], ["ui", "--listen", "127.0.0.1:0"]]) {
        const r = await cli([args[0]!, "--config", config, ...args.slice(1)], wrong, 30_000);
        equal(r.code, 1, r.out);
        assertClean(`${args[0]} with a wrong password`, r.out);
      }
      const down = `${dir}/down.yaml`;
      await Deno.writeTextFile(
        down,
        stringify({
          ...doc,
          nats: { url: `nats://fsm:${encodeURIComponent(NATS_PASSWORD)}@127.0.0.1:${freePort()}` },
        }),
      );
      for (
        const args of [["replay", "--since", "1h"], ["run", "--capture", `${ROOT}fixtures/e2e/node-a.jsonl`]]
      ) {
        const r = await cli([args[0]!, "--config", down, ...args.slice(1)], env, 30_000);
        equal(r.code, 1, r.out);
        assertClean(`${args[0]} with the server down`, r.out);
      }

      equal((await sensor.stop()).code, 0);
      assertClean("run stderr", sensor.stderr);
      match(sensor.stderr, /OTLP export failed/);
    } finally {
      await sensor?.kill();
      for (const k of Object.keys(env)) Deno.env.delete(k);
      await rx.close();
      await srv.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

natsTest(
  "record, discover: the API key is not shown when Vizier refuses it or echoes it in a query error",
  async () => {
    const tls = await makeTestCert();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-s27-secrets-" });
    await Deno.writeFile(`${dir}/ca.pem`, tls.cert);
    const fake = await FakeVizier.start({
      tls,
      apiKey: PIXIE_KEY,
      healthIntervalMs: 200,
      clusters: [{
        id: "11111111-2222-3333-4444-555555555555",
        status: 1,
        clusterName: "c1",
        prettyClusterName: "c1",
        vizierVersion: "0.14.0",
      }],
    });
    // A server that quotes the request in its error.
    fake.onExecute = (call) => call.fail(3, `refused script from client with pixie-api-key=${PIXIE_KEY}`);
    try {
      const config = `${dir}/c.yaml`;
      await Deno.writeTextFile(
        config,
        stringify({
          node: "n",
          pixie: {
            cloud_addr: fake.address.replace("127.0.0.1", "localhost"),
            api_key: "${PIXIE_API_KEY}",
            cluster: "c1",
            ca_file: `${dir}/ca.pem`,
          },
          measurements: [{ name: "calls", signature_rules: { stream_filter: FILTER } }],
        }),
      );
      for (const key of [`${PIXIE_KEY}-wrong`, PIXIE_KEY]) {
        const env = { PIXIE_API_KEY: key };
        const out = `${dir}/rec.jsonl`;
        const rec = await cli(["record", "--config", config, "--out", out, "--duration", "2s"], env);
        equal(rec.code, 1, rec.out);
        assertClean(`record (${key === PIXIE_KEY ? "query refused" : "wrong key"})`, rec.out);
        assertClean("record's capture", await Deno.readTextFile(out).catch(() => ""));
        for (const format of ["table", "json"]) {
          const d = await cli(["discover", "--config", config, "--duration", "2s", "--format", format], env);
          assertClean(`discover --format ${format}`, d.out);
        }
      }
      ok(fake.calls.some((c) => c.method === "ExecuteScript"), "a query reached Vizier and was refused");
      ok(fake.calls.some((c) => !c.authorized), "a wrong key was refused");
    } finally {
      await fake.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
