/**
 * Review 30 (the README as a new user runs it): `--out FILE` of every command, run through its deno task's own
 * permissions. `deno task replay --out FILE` (README: "`--out FILE` writes the records") was refused whatever the
 * path, exit 2 "cannot write it (permission denied)": its task had no --allow-write; `deno task schema --out FILE`
 * wrote only inside the repository (`--allow-write=.`).
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { denoTasks } from "./support/deno_tasks.ts";
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
