/**
 * Review 30 (the README as a new user runs it): `--out FILE` of every command, run through its deno task's own
 * permissions. `deno task replay --out FILE` (README: "`--out FILE` writes the records") was refused whatever the
 * path, exit 2 "cannot write it (permission denied)": its task had no --allow-write; `deno task schema --out FILE`
 * wrote only inside the repository (`--allow-write=.`). And the variables a config may hold, read by every task
 * that loads one.
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { denoTasks, taskAllowsEnv } from "./support/deno_tasks.ts";
import { RUN_TASK_VARIABLES } from "../config/interpolate.ts";
import { ROOT } from "./support/sensor_process.ts";
import { COMMANDS } from "../cli/commands.ts";
import { optionsOf } from "../cli/command.ts";

/**
 * The `deno ...` arguments a task runs, its command name last (after any `... &&` set-up step, without its
 * leading VAR=value).
 */
function taskDenoArgs(task: string): string[] {
  const words = task.split("&&").at(-1)!.trim().split(/\s+/).filter((w) => !/^[A-Z_]+=/.test(w));
  equal(words[0], "deno", task);
  return words.slice(1);
}

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("every command's --out writes a file outside the repository under its deno task's permissions", async () => {
  const tasks = await denoTasks();
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "c.yaml");
    // No nats.url (replay then stops at its config, after checking --out) and a Pixie that is not there (record
    // records nothing for 1 s).
    await Deno.writeTextFile(
      config,
      `node: node-x\npixie:\n  direct_addr: 127.0.0.1:${closedPort()}\nmeasurements:\n  - name: calls\n` +
        "    signature_rules:\n      stream_filter: |\n" +
        "        df = px.DataFrame(table='http_events', start_time='-30s')\n" +
        "        df = df[df.local_port == 8080]\n",
    );
    const capture = join(dir, "node-a.jsonl");
    await Deno.writeTextFile(capture, '{"capture": 1, "node": "node-a"}\n');
    const rest: Record<string, string[]> = {
      analyze: ["--config", config, capture],
      record: ["--config", config, "--duration", "1s"],
      replay: ["--config", config],
      schema: [],
    };
    const withOut = COMMANDS.filter((c) => "out" in optionsOf(c)).map((c) => c.name);
    equal(withOut.sort().join(" "), Object.keys(rest).sort().join(" "), "the commands with --out");
    for (const name of withOut) {
      const out = join(dir, `${name}.out`);
      const res = await new Deno.Command(Deno.execPath(), {
        args: [...taskDenoArgs(tasks[name]!), "--out", out, ...rest[name]!],
        cwd: ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(res.stderr);
      ok(
        !/cannot write it|permission|Requires write access/i.test(text),
        `deno task ${name} --out:\n${text}`,
      );
      const made = await Deno.stat(out).then((s) => s.isFile, () => false);
      ok(made, `deno task ${name} --out created no file:\n${text}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every task that loads a config reads the variables deno task run may put in it", async () => {
  // The README has the API key in `pixie.api_key: ${PIXIE_API_KEY}` and k8s/config/config.yaml has
  // ${NATS_USER}/${NATS_PASSWORD}; analyze, ui and replay (no PIXIE_*), record and discover (no NATS_*) refused
  // such a config as "unreadable here" although every variable was set, exit 2.
  const tasks = await denoTasks();
  for (const c of COMMANDS.filter((c) => c.config !== false && tasks[c.name] !== undefined)) {
    for (const v of ["NODE_NAME", "HOSTNAME", "PIXIE_API_KEY", "NATS_PASSWORD", "FSMPX_TEMPO_TENANT"]) {
      ok(RUN_TASK_VARIABLES.test(v) && taskAllowsEnv(tasks.run ?? "", v), `run reads ${v}`);
      ok(taskAllowsEnv(tasks[c.name]!, v), `deno task ${c.name} reads ${v}`);
    }
  }
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "c.yaml");
    await Deno.writeTextFile(
      config,
      "node: ${NODE_NAME}\npixie:\n  api_key: ${PIXIE_API_KEY}\n  cluster: ${PIXIE_CLUSTER}\n" +
        "nats:\n  user: ${NATS_USER}\n  password: ${NATS_PASSWORD}\nmeasurements:\n  - name: calls\n" +
        "    signature_rules:\n      stream_filter: |\n" +
        "        df = px.DataFrame(table='http_events', start_time='-30s')\n" +
        "        df = df[px.contains(df.ctx['pod'], 'telephony')]\n",
    );
    const capture = join(dir, "node-a.jsonl");
    await Deno.writeTextFile(capture, '{"capture": 1, "node": "node-a"}\n');
    const env = {
      NODE_NAME: "node-a",
      PIXIE_API_KEY: "px-api-0123456789abcdef",
      PIXIE_CLUSTER: "c1",
      NATS_USER: "fsm-px-viewer",
      NATS_PASSWORD: "0123456789abcdef",
    };
    // analyze runs; replay gets past the config to the missing nats.url.
    for (const [name, args] of [["analyze", [capture]], ["replay", []]] as const) {
      const res = await new Deno.Command(Deno.execPath(), {
        args: [...taskDenoArgs(tasks[name]!), "--config", config, ...args],
        cwd: ROOT,
        env,
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(res.stderr);
      ok(!text.includes("unreadable here"), `deno task ${name}:\n${text}`);
      if (name === "analyze") equal(res.code, 0, text);
      else ok(/nats\.url: expected a NATS URL/.test(text), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
