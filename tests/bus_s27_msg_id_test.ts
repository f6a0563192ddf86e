/**
 * Match message ids hold the target stream key, which may come from any JSON field of a payload: keys with a line
 * break or with spaces at an end must still give each match its own `Nats-Msg-Id`, which the client would refuse
 * (CR, LF) or trim (the ends). Real parts: nats-server, the JetStream bus.
 */
import { equal, notEqual } from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { JetStreamBus, wireMsgId } from "../bus/jetstream.ts";
import { connectNats } from "../bus/connection.ts";
import { NatsServer } from "./support/nats_server.ts";
import { testBusOptions, testMatchRecord, testSignature } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

Deno.test("msg id: plain ids unchanged; line breaks and end spaces encoded, distinct from every plain id", () => {
  equal(wireMsgId("0000000000000001"), "0000000000000001");
  equal(wireMsgId("0000000000000001:asr:node-b:ns/a b|50%|x"), "0000000000000001:asr:node-b:ns/a b|50%|x");
  equal(
    wireMsgId("0000000000000001:asr:node-b:caller\r\nname"),
    "~0000000000000001:asr:node-b:caller%0D%0Aname",
  );
  equal(wireMsgId("0000000000000001:asr:node-b:x 50% "), "~0000000000000001:asr:node-b:x 50%25%20");
  equal(wireMsgId(" \u00a0a"), "~%20%C2%A0a");
  notEqual(wireMsgId("1:s:n:x "), wireMsgId("1:s:n:x"));
});

natsTest(
  "jetstream bus: matches whose target stream keys hold a line break or differ in end spaces are each stored once",
  async () => {
    const srv = await NatsServer.start();
    const bus = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
    try {
      const base = testMatchRecord(1);
      const keys = ["ns/asr-0|caller\nname", "ns/asr-0|x", "ns/asr-0|x ", " ns/asr-0|x"];
      for (let round = 0; round < 2; round++) {
        for (const stream of keys) await bus.publishMatch({ ...base, target: { ...base.target, stream } });
        await bus.publishSignature(testSignature(2));
      }
      await bus.flush(5000);
      const st = bus.stats();
      equal(st.failed, 0, "refused publishes");
      equal(st.published, keys.length + 1, "stored once each");
      equal(st.duplicates, keys.length + 1, "the second round dropped as duplicates");
      const nc = await connectNats({ url: srv.url });
      try {
        equal(
          (await (await jetstreamManager(nc)).streams.info("FSMPX_TEST")).state.messages,
          keys.length + 1,
        );
      } finally {
        await nc.close();
      }
    } finally {
      await bus.close();
      await srv.stop();
    }
  },
);
