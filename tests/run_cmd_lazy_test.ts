/**
 * `run --capture` loads what a replay needs: Pixie's gRPC client, NATS, the packet capture and OTLP are imported
 * by cli/run_cmd.ts only when the config uses them (~18 MB of RSS at start-up).
 */
import { deepEqual, ok } from "node:assert/strict";

/** The modules a file loads before any `import()` runs: its static import graph (`deno info --json`). */
async function staticClosure(root: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    stdout: "piped",
    stderr: "null",
  }).output();
  ok(out.success, "deno info failed");
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[] }[];
    redirects?: Record<string, string>;
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length > 0) {
    let s = todo.pop()!;
    s = info.redirects?.[s] ?? s;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return seen;
}

Deno.test("run: the live sources' and NATS' clients are not loaded by `run --capture` (imported only when used)", async () => {
  const loaded = [...await staticClosure(new URL("../cli/run_cmd.ts", import.meta.url).pathname)];
  const heavy = /@nats-io|@grpc|protobufjs|@opentelemetry|\/pixie\/client\.ts$|\/bus\/jetstream\.ts$/;
  deepEqual(loaded.filter((s) => heavy.test(s)), []);
  // The engine itself is loaded statically (the graph is followed).
  ok(loaded.some((s) => s.endsWith("/actors/node.ts")), "the closure follows static imports");
});
