/**
 * A stream the server refuses for the config's replicas or size is a config error at the setting (exit 2). The
 * sensor exited 1 with the server's words alone ("replicas > 1 not supported in non-clustered mode", "insufficient
 * storage resources available"), naming neither `nats.replicas`/`nats.max_bytes` nor the file, e.g. for the
 * Kubernetes config (replicas 3, 4GiB) run against one dev nats-server. Real nats-server.
 */
import { equal, match, rejects } from "node:assert/strict";
import { parseConfigText } from "../config/load.ts";
import { ConfigError } from "../config/errors.ts";
import { connectJetStream } from "../cli/bus_from_config.ts";
import { NatsServer } from "./support/nats_server.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const configFor = (url: string, nats: string[]) =>
  parseConfigText(
    [
      "node: n1",
      "measurements:",
      "  - name: m",
      "    signature_rules:",
      "      stream_filter: |",
      "        df = px.DataFrame(table='http_events', start_time='-30s')",
      "nats:",
      `  url: ${url}`,
      ...nats.map((l) => `  ${l}`),
      "",
    ].join("\n"),
    "c.yaml",
    {},
  ).config;

/** The ConfigError connecting with `config` fails with. */
async function refusal(config: ReturnType<typeof configFor>): Promise<ConfigError> {
  let err: unknown;
  await rejects(connectJetStream(config).then((b) => b.close()), (e) => {
    err = e;
    return e instanceof ConfigError;
  });
  return err as ConfigError;
}

natsTest(
  "stream set-up: replicas a single server cannot hold are a config error at nats.replicas",
  async () => {
    const srv = await NatsServer.start();
    try {
      const e = await refusal(configFor(srv.url, ["replicas: 3"]));
      equal(e.exitCode, 2);
      match(
        e.format(),
        /^c\.yaml:9:13: nats\.replicas: expected at most as many replicas as the NATS cluster has JetStream servers, found 3, which the server refuses \(replicas > 1 not supported in non-clustered mode\) \(set nats\.replicas: 1/,
      );
    } finally {
      await srv.stop();
    }
  },
);

natsTest(
  "stream set-up: a size beyond the server's JetStream storage is a config error at nats.max_bytes",
  async () => {
    const srv = await NatsServer.start({ configLines: ["jetstream { max_file_store: 100MB }"] });
    try {
      const e = await refusal(configFor(srv.url, ["max_bytes: 1GiB"]));
      match(
        e.format(),
        /^c\.yaml:9:14: nats\.max_bytes: expected a stream size the server's JetStream storage can hold \(its max_file_store\), found 1073741824 bytes, which the server refuses \(insufficient storage resources available\)/,
      );
      // What fits is created as before.
      await (await connectJetStream(configFor(srv.url, ["max_bytes: 64MiB"]))).close();
    } finally {
      await srv.stop();
    }
  },
);
