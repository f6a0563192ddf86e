/**
 * What deno.json's tasks start a process with, so a bench measures a command as its task runs it: the V8 flags
 * (`--v8-flags=` words) and the environment variables (`NAME=value` words before `deno run`).
 * @module
 */

/** The command line of deno.json's task `task` ("" when there is none). */
function taskLine(denoJsonText: string, task: string): string {
  return (JSON.parse(denoJsonText) as { tasks?: Record<string, string> }).tasks?.[task] ?? "";
}

/** The V8 flags deno.json's task `task` passes to `deno run`. */
export function taskV8Flags(denoJsonText: string, task: string): string[] {
  // A task may run other commands first (`deno install -q && deno run ...`): only `deno run`'s flags count.
  const line = taskLine(denoJsonText, task).split("&&").find((c) => /\bdeno run\b/.test(c)) ?? "";
  return line.split(/\s+/).flatMap((w) => w.startsWith("--v8-flags=") ? w.slice(11).split(",") : [])
    .filter((f) => f !== "");
}

/** The variables deno.json's task `task` sets (`NAME=value` words at the start of its command). */
export function taskEnv(denoJsonText: string, task: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of taskLine(denoJsonText, task).trim().split(/\s+/)) {
    const m = w.match(/^([A-Za-z_]\w*)=(.*)$/);
    if (!m) break;
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** `--v8-flags=` of a `deno run` command line for these V8 flags (nothing when there are none). */
export function v8FlagsArgs(flags: readonly string[]): string[] {
  return flags.length === 0 ? [] : [`--v8-flags=${flags.join(",")}`];
}
