/**
 * JetStreamBus.delivered: a node's own signatures come back to it through the server, so a finish (actors/node.ts
 * finishNodes) waits for them before it syncs the registry and lets the Matcher verify what is pending; a flush only
 * waits for the server's acknowledgement, which comes before the subscription has handed the signature on.
 */
import { deepEqual, equal } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testSignature } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

/** A promise opened from outside. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** What `p` has come to within `ms`: its value, or "pending". */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<"pending">((r) => timer = setTimeout(() => r("pending"), ms)),
  ]);
}

natsTest(
  "jetstream bus: delivered() waits until the subscriptions have handed on the bus's own signatures",
  async () => {
    const srv = await NatsServer.start();
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
    try {
      equal(await bus.delivered(1000), true, "nothing published: nothing to wait for");
      const handled: string[] = [];
      const other: string[] = [];
      let held = gate();
      await bus.subscribeSignatures(["m"], async (s) => {
        await held.wait;
        handled.push(s.id);
      });
      // Reads only another measurement: never waited for on m's signatures.
      await bus.subscribeSignatures(["other"], (s) => void other.push(s.id));

      const sig = testSignature(1);
      await bus.publishSignature(sig);
      await bus.flush(5000);
      // Acknowledged, not handed on: the handler is held.
      deepEqual(handled, []);
      const done = bus.delivered(10_000);
      equal(await settledWithin(done, 300), "pending", "delivered() waits for the handler");
      held.open();
      equal(await done, true);
      deepEqual(handled, [sig.id], "handed on once delivered() resolves");
      deepEqual(other, []);

      // A handler that does not return in time: false at the deadline, not a hang.
      held = gate();
      await bus.publishSignature(testSignature(2));
      await bus.flush(5000);
      equal(await settledWithin(bus.delivered(200), 5000), false);
      held.open();
      equal(await bus.delivered(5000), true);
      deepEqual(handled, [sig.id, testSignature(2).id]);

      // A signature of the other measurement is waited for on the subscription that reads it only.
      await bus.publishSignature(testSignature(3, "other"));
      await bus.flush(5000);
      equal(await bus.delivered(5000), true);
      deepEqual(other, [testSignature(3).id]);
    } finally {
      await bus.close();
      await srv.stop();
    }
  },
);
