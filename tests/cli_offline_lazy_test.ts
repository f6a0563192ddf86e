/**
 * The offline commands (`analyze`, `check`, `discover` over captures) and `demo` load no live client at start-up:
 * NATS (replay's reader), Pixie's gRPC client, OTLP and prom-client's index (which pulls in its default process
 * metrics with `@opentelemetry/api`, the Pushgateway and node:http/https/zlib) are imported only when used.
 * ~0.03 CPU s of every `analyze` (0.20 -> 0.17 CPU s on an empty capture).
 */
import { deepEqual, ok } from "node:assert/strict";
import { staticClosure } from "./support/static_closure.ts";

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
