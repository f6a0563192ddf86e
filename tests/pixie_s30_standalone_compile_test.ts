/**
 * A standalone PEM's compile error carries no line or column, so the stream names the query whose filter holds
 * what the message quotes. An unknown px function ("'px' object has no attribute 'regex_matchx'", which config
 * check only warns about: Pixie versions differ) quotes 'px', which every filter holds: the error named the whole
 * script ("in the script of queries voice/source, voice/relay") instead of the one filter that holds the function.
 * Against the fake Vizier's standalone model (its compiler refuses the unknown function).
 */
import { equal, match, ok, rejects } from "node:assert/strict";
import { PixieClient } from "../pixie/client.ts";
import type { ComposedQueryInput } from "../pixie/pxl.ts";
import { PixieCompileError, PixieQueryStream } from "../pixie/stream.ts";
import { setLogLevel } from "../util/log.ts";
import { FakeVizier, ManualClock } from "./support/fake_vizier.ts";

setLogLevel("error");

function q(name: string, filter: string): ComposedQueryInput {
  return {
    name,
    streamFilter: filter,
    node: "node-1",
    scope: { kind: "none" },
    podSource: "process",
    columns: { time: "time_", pod: "pod", payload: "req_body" },
    streamKeyColumns: [],
  };
}

Deno.test("standalone PEM: an unknown px function is placed in the one filter that calls it", async () => {
  const fake = await FakeVizier.start({ standalone: true });
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  try {
    const stream = new PixieQueryStream({
      client,
      clusterId: "",
      clock: new ManualClock(),
      queries: [
        q("voice/source", "df = px.DataFrame(table='http_events')\ndf = df[df.local_port == 8001]\n"),
        q(
          "voice/relay",
          "df = px.DataFrame(table='http_events')\ndf = df[px.regex_matchx('/a', df.req_path)]\n",
        ),
        q("voice/asr", "df = px.DataFrame(table='http_events')\ndf = df[px.contains(df.req_path, '/asr')]\n"),
      ],
    });
    await rejects(
      (async () => {
        for await (const _ of stream) { /* none */ }
      })(),
      (e: unknown) => {
        ok(e instanceof PixieCompileError, String(e));
        match(e.message, /'px' object has no attribute 'regex_matchx'/);
        equal(e.measurement, "voice", e.message);
        equal(e.tap, "relay", e.message);
        match(
          e.message,
          /stream_filter of measurement voice, tap relay \(the standalone PEM reports no line/,
        );
        return true;
      },
    );
  } finally {
    client.close();
    await fake.stop();
  }
});
