/**
 * A stream that exists before the sensors with `max_consumers` set (made by hand, by another tool): the server
 * cannot change that limit on a live stream, and every sensor, UI and `replay` holds consumers of its own.
 * @module
 */
import { equal, rejects } from "node:assert/strict";
import { JetStreamBus } from "../bus/jetstream.ts";
import { NatsServer } from "./support/nats_server.ts";
import { preexistingStream, testBusOptions } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";
import { setLogSink } from "../util/log.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "stream set-up: a stream made with max_consumers is named at start-up, and a sensor past the limit says why",
  async () => {
    const srv = await NatsServer.start();
    const buses: JetStreamBus[] = [];
    const lines: string[] = [];
    const prev = setLogSink((line) => void lines.push(line));
    try {
      await preexistingStream(srv.url, { max_consumers: 1 });
      const a = await JetStreamBus.connect(testBusOptions(srv.url, "node-a"));
      buses.push(a);
      const warned = lines.map((l) => JSON.parse(l)).filter((l) => /limits its consumers/.test(l.msg));
      equal(warned.length, 1, lines.join("\n"));
      equal(warned[0].max_consumers, 1);
      await a.subscribeSignatures(["m"], () => {});
      const b = await JetStreamBus.connect(testBusOptions(srv.url, "node-b"));
      buses.push(b);
      // The server's words alone ("maximum consumers limit reached") did not say which stream, what limit, or
      // what to do.
      await rejects(
        b.subscribeSignatures(["m"], () => {}),
        (e: Error) =>
          e.message.startsWith("maximum consumers limit reached: stream ") &&
          e.message.includes("limits its consumers to 1") && e.message.includes("delete the stream"),
      );
    } finally {
      setLogSink(prev);
      for (const b of buses) await b.close();
      await srv.stop();
    }
  },
);

natsTest("stream set-up: a stream the sensors made has no consumer limit and no such warning", async () => {
  const srv = await NatsServer.start();
  const lines: string[] = [];
  const prev = setLogSink((line) => void lines.push(line));
  const buses: JetStreamBus[] = [];
  try {
    for (const node of ["node-a", "node-b", "node-c"]) {
      const bus = await JetStreamBus.connect(testBusOptions(srv.url, node));
      buses.push(bus);
      await bus.subscribeSignatures(["m"], () => {});
    }
    equal(lines.filter((l) => /limits its consumers/.test(l)).length, 0);
  } finally {
    setLogSink(prev);
    for (const b of buses) await b.close();
    await srv.stop();
  }
});
