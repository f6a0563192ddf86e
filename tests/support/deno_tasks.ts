/**
 * What the tasks in deno.json allow, read the way Deno reads their flags, for the tests that check a manifest
 * or a feature against the permissions its task runs with.
 * @module
 */
import { join } from "node:path";
import { ROOT } from "./sensor_process.ts";

/** The tasks of the repository's deno.json, by name. */
export async function denoTasks(): Promise<Record<string, string>> {
  const deno = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
    tasks: Record<string, string>;
  };
  return deno.tasks;
}

/**
 * Whether a task's command line lets the program read environment variable `name`: `-A`, a bare
 * `--allow-env`, an exact name in `--allow-env=A,B`, or a prefix pattern such as `NATS_*` (Deno's wildcard).
 */
export function taskAllowsEnv(task: string, name: string): boolean {
  if (/(^|\s)(-A|--allow-all)(\s|$)/.test(task) || /--allow-env(\s|$)/.test(task)) return true;
  const list = /--allow-env=(\S+)/.exec(task)?.[1]?.split(",") ?? [];
  return list.some((p) => p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : p === name);
}
