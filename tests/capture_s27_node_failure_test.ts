/**
 * A capture run (`analyze`, `check`, `demo`) whose node shuts down by itself (an actor past its restart limit)
 * stops reading and says why (cli/capture_run.ts).
 */
import { equal, ok, rejects } from "node:assert/strict";
import { readCaptures, runCaptures } from "../cli/capture_run.ts";
import { loadConfig } from "../config/load.ts";
import { setLogSink } from "../util/log.ts";
import { E2E } from "./support/actor_fixtures.ts";

setLogSink(() => {});

Deno.test("capture run: a node that escalates stops the run at once, with the escalation as the error", async () => {
  const { config } = await loadConfig(`${E2E}config.yaml`);
  const caps = await readCaptures([`${E2E}node-a.jsonl`, `${E2E}node-b.jsonl`], config);
  const total = caps.reduce((n, c) => n + c.rows.length, 0);
  let delivered = -1;
  await rejects(
    () =>
      runCaptures(config, caps, {
        onNodes: (nodes) => {
          // An actor of node-b that fails on its first message with no restart allowed: node-b escalates.
          const faulty = nodes.get("node-b")!.system.spawn("faulty", () => ({
            receive() {
              throw new Error("injected failure");
            },
          }), { capacity: 1, overflow: "backpressure", restart: { maxRestarts: 0 } });
          void faulty.tell(1);
        },
        onProgress: (done) => void (delivered = done),
      }),
    (e: Error) => {
      equal(
        e.message,
        'node node-b ended with code 1: escalated: actor "faulty" exceeded 0 restarts within 60000 ms',
      );
      return true;
    },
  );
  ok(delivered >= 0 && delivered < total, `${delivered} of ${total} rows handed on after node-b stopped`);
});
