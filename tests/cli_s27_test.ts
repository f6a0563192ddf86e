/**
 * Review 27 of cli/: command-line values that parsed but then did something else than asked.
 */
import { equal, match, ok, throws } from "node:assert/strict";
import { parseTime } from "../cli/replay_cmd.ts";
import { ROOT, sleep } from "./support/sensor_process.ts";
import { denoTasks, taskAllowsEnv } from "./support/deno_tasks.ts";
import { RUN_TASK_VARIABLES } from "../config/interpolate.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("record --duration longer than setTimeout's 24.8 days records until then (here: until Ctrl-C)", async () => {
  // setTimeout turns a delay over 2^31 - 1 ms into 1 ms: `record --duration 30d` stopped at once, "0 rows in 30d".
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/c.yaml`;
    await Deno.writeTextFile(
      config,
      `node: node-x\npixie:\n  direct_addr: 127.0.0.1:${closedPort()}\nmeasurements:\n  - name: calls\n` +
        "    signature_rules:\n      stream_filter: |\n" +
        "        df = px.DataFrame(table='http_events', start_time='-30s')\n" +
        "        df = df[df.local_port == 8080]\n",
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "record",
        "--config",
        config,
        "--out",
        `${dir}/o.jsonl`,
        "--duration",
        "30d",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const ended = await Promise.race([child.status.then(() => true), sleep(3000).then(() => false)]);
    if (!ended) child.kill("SIGINT");
    const status = await child.status;
    const text = await stderr;
    equal(ended, false, `record ended before its duration:\n${text}`);
    // Stopped by the signal, it reports as at the end of its duration.
    equal(status.code, 1, text);
    match(text, /record: 0 rows in 30d/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task check reads every variable deno task run may put in the config", async () => {
  // check ran without FSMPX_*: a config the sensor loads (${FSMPX_TEMPO_TENANT}, the README's) failed check as
  // unreadable, and ${FSMPX_MEMORY_LIMIT_MIB:-0} was checked with its default instead of the value run uses.
  const tasks = await denoTasks();
  for (
    const v of ["NODE_NAME", "HOSTNAME", "PIXIE_API_KEY", "NATS_URL", "FSMPX_TEMPO_TENANT", "FSMPX_LOG_LEVEL"]
  ) {
    ok(RUN_TASK_VARIABLES.test(v) && taskAllowsEnv(tasks.run ?? "", v), `run reads ${v}`);
    ok(taskAllowsEnv(tasks.check ?? "", v), `check reads ${v} too`);
  }
});

Deno.test("demo --listen / --ui and ui --listen that are no HOST:PORT are usage errors (exit 2), before any work", async () => {
  // demo read its config and captures first and then failed with exit 1 ("command failed"); a port past 65535
  // passed the check and the server refused it, exit 1 too.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/r.jsonl`, "");
    for (
      const [args, message] of [
        [["demo", "--listen", "metrics", "--exit"], /--listen expects HOST:PORT .*got "metrics"/],
        [["demo", "--ui", "127.0.0.1:99999", "--exit"], /--ui expects HOST:PORT .*got "127\.0\.0\.1:99999"/],
        [
          ["ui", "--config", `${ROOT}/example-config.yaml`, "--listen", "127.0.0.1:70000", `${dir}/r.jsonl`],
          /--listen/,
        ],
      ] as const
    ) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", MAIN, ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr);
      equal(out.code, 2, `${args.join(" ")}: ${text}`);
      match(text, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check prints the pod-scoped script the sensor runs with pixie.scope: pods, not the node-scoped one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      "node: node-a\npixie:\n  scope: pods\nmeasurements:\n  - name: m\n    signature_rules:\n" +
        "      stream_filter: |\n        df = px.DataFrame(table='http_events', start_time='-30s')\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "check", "--config", `${dir}/c.yaml`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    match(
      text,
      /df = df\[\(df\.ctx\['pod'\] == '<pod 1 on node-a>'\) or \(df\.ctx\['pod'\] == '<pod 2 on node-a>'\)\]/,
    );
    ok(!text.includes("df.ctx['node']"), text);
    match(text, /pixie\.scope pods: one df\.ctx\['pod'\] condition per pod on the node/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay --until now: the word its help shows as the default is accepted", () => {
  // The help reads "--until TIME ... (default: now)", and `--until now` was "--until expects an RFC 3339 time".
  const before = Date.now();
  const now = parseTime("now", "--until");
  ok(now >= before && now <= Date.now(), String(now));
  equal(parseTime("2026-11-23T10:00:00Z", "--until"), Date.UTC(2026, 10, 23, 10));
  throws(
    () => parseTime("yesterday", "--start"),
    /--start expects an RFC 3339 time like .* or now, got "yesterday"/,
  );
});

Deno.test("replay --start/--until: what is no RFC 3339 time is refused, not guessed by Date.parse", () => {
  // Date.parse read "5" as 2001-05-01 and "May 3" as a day of 2001: replay then asked JetStream for 25 years.
  for (const t of ["5", "May 3", "3/4/2026", "2026"]) {
    throws(() => parseTime(t, "--start"), /--start expects an RFC 3339 time/, t);
  }
  equal(parseTime("2026-11-23", "--start"), Date.UTC(2026, 10, 23));
  equal(parseTime("2026-11-23T10:00:00.5+02:00", "--start"), Date.UTC(2026, 10, 23, 8, 0, 0, 500));
  equal(parseTime(" 2026-11-23 10:00:00Z ", "--start"), Date.UTC(2026, 10, 23, 10));
});

Deno.test("run: packets.pod_metadata kubernetes without a Kubernetes API is a config error at the setting (exit 2)", async () => {
  // It was a plain error: exit 1, "command failed", no file:line:col (pixie.scope: pods, the same case, was exit 2).
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      "node: node-a\nmetrics: { listen: 127.0.0.1:0 }\npackets:\n  interface: lo\n  pod_metadata: kubernetes\n" +
        "measurements:\n  - name: m\n    signature_rules:\n      packets: { protocol: rtp, port: 40000 }\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "run", "--config", `${dir}/c.yaml`],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", FSMPX_SERVICE_ACCOUNT_DIR: `${dir}/none` },
      stdout: "null",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    equal(out.code, 2, text);
    match(
      text,
      /c\.yaml:5:17: packets\.pod_metadata: expected a sensor in a pod with its ServiceAccount token/,
    );
    match(text, /apply the k8s\/packet-capture\/ component, or set packets\.pod_metadata: auto or off/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--config with an empty FILE is a usage error, not example-config.yaml loaded in its place", async () => {
  // `--config "$CFG"` with CFG unset: check said "config example-config.yaml: OK", run would run that config.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "check", "--config", ""],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  equal(out.code, 2, text + new TextDecoder().decode(out.stdout));
  match(text, /fsm-px check: --config FILE: the FILE is empty/);
});
