/**
 * `run --capture` loads what a replay needs: Pixie's gRPC client, NATS, the packet capture and OTLP are imported
 * by cli/run_cmd.ts only when the config uses them (~18 MB of RSS at start-up).
 */
import { deepEqual, ok } from "node:assert/strict";
import { staticClosure } from "./support/static_closure.ts";

Deno.test("run: the live sources' and NATS' clients are not loaded by `run --capture` (imported only when used)", async () => {
  const loaded = [...await staticClosure(new URL("../cli/run_cmd.ts", import.meta.url).pathname)];
  const heavy = /@nats-io|@grpc|protobufjs|@opentelemetry|\/pixie\/client\.ts$|\/bus\/jetstream\.ts$/;
  deepEqual(loaded.filter((s) => heavy.test(s)), []);
  // The engine itself is loaded statically (the graph is followed).
  ok(loaded.some((s) => s.endsWith("/actors/node.ts")), "the closure follows static imports");
});
