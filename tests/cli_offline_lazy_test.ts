/**
 * The offline commands (`analyze`, `check`, `discover` over captures) and `demo` load no live client at start-up:
 * NATS (replay's reader), Pixie's gRPC client, OTLP and prom-client's index (which pulls in its default process
 * metrics with `@opentelemetry/api`, the Pushgateway and node:http/https/zlib) are imported only when used.
 * ~0.03 CPU s of every `analyze` (0.20 -> 0.17 CPU s on an empty capture).
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
    // Type-only imports have no `code` entry: they are not loaded at run time.
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return seen;
}

const LIVE_ONLY =
  /@nats-io|@grpc|protobufjs|@opentelemetry|\/prom-client\/index\.js$|\/pixie\/client\.ts$|\/bus\/(jetstream|replay_reader)\.ts$|\/report\/otlp\.ts$/;

for (const cmd of ["analyze_cmd", "check_cmd", "discover_cmd", "demo_cmd"]) {
  Deno.test(`${cmd}: no live-only client is loaded statically`, async () => {
    const loaded = [...await staticClosure(new URL(`../cli/${cmd}.ts`, import.meta.url).pathname)];
    deepEqual(loaded.filter((s) => LIVE_ONLY.test(s)), []);
    // The graph is followed: the engine and prom-client's metric classes (the engine counts with them) are in it.
    ok(
      loaded.some((s) => s.endsWith("/actors/node.ts") || s.endsWith("/http/metrics.ts")),
      "closure followed",
    );
    ok(loaded.some((s) => s.endsWith("/prom-client/lib/counter.js")), "prom-client's Counter is loaded");
  });
}
