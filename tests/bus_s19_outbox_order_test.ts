import { deepEqual, equal, ok } from "node:assert/strict";
import { Outbox, type OutboxItem, type PublishOutcome } from "../bus/outbox.ts";
import { quietTest } from "./support/tools.ts";

function item(n: number): OutboxItem {
  return { kind: "signature", subject: "fsmpx.sig.m", data: new Uint8Array([n]), msgId: String(n) };
}

quietTest(
  "outbox: messages in flight together that fail together are sent again in the order they were enqueued",
  async () => {
    const sent: string[] = [];
    const pending: ((r: PublishOutcome) => void)[] = [];
    let up = false;
    const publish = (it: OutboxItem): Promise<PublishOutcome> => {
      if (up) {
        sent.push(it.msgId);
        return Promise.resolve({ ok: true, duplicate: false });
      }
      return new Promise((resolve) => pending.push(resolve));
    };
    const box = new Outbox({ capacity: 100, publish, maxInFlight: 4, retryBaseMs: 5, retryMaxMs: 20 });
    for (let i = 1; i <= 6; i++) box.enqueue(item(i));
    equal(pending.length, 4); // 1..4 in flight, 5 and 6 queued
    // The connection drops: the four publishes fail, answered in the order they were sent.
    for (const fail of pending.splice(0)) fail({ ok: false, retry: true, reason: "disconnected" });
    up = true;
    ok(await box.drained(2000));
    deepEqual(sent, ["1", "2", "3", "4", "5", "6"]);
    equal(box.stats().published, 6);
    equal(box.stats().retries, 4);
  },
);
