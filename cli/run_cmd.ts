/**
 * `run`: one sensor, exactly as in the DaemonSet. Rows come from Pixie, or from a capture file replayed in real
 * time with `--capture` (accelerated by `--speed`).
 * @module
 */
import { optNumber, optString, type ParsedArgs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { readCaptures, rowsByQuery, runFacts } from "./capture_run.ts";
import { diagnose, renderDiagnosis } from "../report/diagnosis.ts";
import { resolveConfigPath } from "../config/load.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import { installSignalHandlers } from "../actors/shutdown.ts";
import { InProcessBus } from "../bus/in_process.ts";
import type { Bus } from "../bus/bus.ts";
import type { Config } from "../config/schema.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { sensorMetrics } from "./sensor_metrics.ts";
import { startHttpServer } from "../http/server.ts";
import { replay } from "../pixie/replay.ts";
import { connectPixie, queriesFromConfig } from "./pixie_queries.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import { PixieHealth } from "../pixie/health.ts";
import type { PixieClient } from "../pixie/client.ts";
import { logger } from "../util/log.ts";
import { OtlpExporter } from "../report/otlp.ts";
import { jetStreamMatchFeed } from "../http/ui/jetstream_source.ts";
import { CombinedRowSource, packetSide, usesPixie } from "./sensor_sources.ts";
import { connectJetStream } from "./bus_from_config.ts";
import { JetStreamBus, signatureStartTimeMs } from "../bus/jetstream.ts";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";

const log = logger("run");

/** Graceful-stop budget; the DaemonSet's terminationGracePeriodSeconds must exceed it plus the flush budget. */
export const DRAIN_DEADLINE_MS = 20_000;

export { sensorMetrics };

/** The bus of a sensor: JetStream when nats.url is set (with its metrics and clock-skew estimator). */
async function openBus(
  config: Config,
  metrics: FsmMetrics,
): Promise<{ bus: Bus; skew?: ClockSkewEstimator }> {
  if (config.nats.url === "") return { bus: new InProcessBus() };
  const bus = await connectJetStream(config, {
    outboxDepth: (n) => metrics.outboxDepth(n),
    outboxOverflow: (n) => metrics.outboxOverflow(n),
    published: (kind) => metrics.published(kind),
    publishFailed: (kind, reason) => metrics.publishFailed(kind, reason),
    receiveFailed: (kind, reason) => metrics.receiveFailed(kind, reason),
  });
  const skew = new ClockSkewEstimator({
    nc: bus.connection,
    node: config.node,
    warnMs: config.nats.clock_skew_warn_ms,
    onOffset: (peer, s) => metrics.clockOffset(peer, s),
  });
  skew.start();
  return { bus, skew };
}

/** Runs `run`. */
export async function runCommand(args: ParsedArgs): Promise<number> {
  const capturePath = optString(args, "capture");
  const speed = optNumber(args, "speed", 1);
  if (optString(args, "speed") !== undefined && capturePath === undefined) {
    throw new UsageError("--speed only applies with --capture");
  }
  const { config } = await loadCommandConfig(args);
  const metrics = sensorMetrics(config);
  const { bus, skew } = await openBus(config, metrics);

  const sources: RowSource[] = [];
  let pixie: { client: PixieClient; health: PixieHealth } | undefined;
  const packets = capturePath === undefined ? await packetSide(config, metrics) : undefined;
  if (packets) sources.push(packets.source);
  if (capturePath === undefined && (usesPixie(config) || !packets)) {
    const { client, clusterId } = await connectPixie(config);
    const health = new PixieHealth({ client, clusterId, onChange: (ok) => metrics.pixieHealthy(ok) });
    health.start();
    pixie = { client, health };
    sources.push(
      new PixieRowSource({
        client,
        clusterId,
        queries: queriesFromConfig(config, config.node),
        encryption: config.pixie.encryption && client.cloud,
        metrics: {
          restarts: (q, kind) => metrics.queryRestarted(q, kind),
          lag: (q, s) => metrics.streamLag(q, s),
          errors: (_q, kind) => metrics.pixieSkipped(kind),
          duplicates: (q, n) => metrics.rowsSkipped(q, "rerun_duplicate", n),
        },
      }),
    );
  }
  const source = sources.length === 0
    ? undefined
    : sources.length === 1
    ? sources[0]
    : new CombinedRowSource(sources);
  const caps = capturePath === undefined ? [] : await readCaptures([capturePath], config);
  const otlp = config.otlp.endpoint === "" ? undefined : new OtlpExporter({
    endpoint: config.otlp.endpoint,
    headers: config.otlp.headers,
    serviceName: config.otlp.service_name,
    resource: { "k8s.node.name": config.node },
  });
  const node = await SensorNode.start({
    config,
    node: config.node,
    bus,
    metrics,
    mode: source ? "live" : "replay",
    source,
    sinks: otlp ? [otlp] : [],
    matchFeed: bus instanceof JetStreamBus
      ? jetStreamMatchFeed(bus.connection, config.nats.stream)
      : undefined,
    subscribeFromMs: signatureStartTimeMs(Math.max(...config.measurements.map((m) => m.ttl_seconds))),
  });
  // Peers' clocks ahead of ours widen the search before a signature's instant (see SensorNode.noteClockOffsets).
  skew?.addListener((offsets) => node.noteClockOffsets(offsets.values()));
  let replaying = capturePath !== undefined;
  const http = startHttpServer({
    listen: config.metrics.listen,
    metrics,
    healthz: () => ({
      ok: !node.system.stopping.aborted,
      detail: node.system.stopping.aborted ? "stopping" : "actors running",
    }),
    readyz: () =>
      pixie
        ? { ok: pixie.health.healthy, detail: pixie.health.healthy ? "pixie healthy" : "pixie not healthy" }
        : packets
        ? { ok: !node.system.stopping.aborted, detail: "capturing packets" }
        : { ok: true, detail: replaying ? "replaying capture" : "capture replayed" },
  });
  node.system.onFlush(async () => {
    await skew?.stop();
    await bus.close();
    pixie?.health.stop();
    pixie?.client.close();
    await packets?.stop();
    await otlp?.close();
    await http.close();
  });
  log.info("sensor started", {
    node: config.node,
    metrics: `http://${http.addr}/metrics`,
    source: capturePath
      ? `capture ${capturePath} at ${speed}x`
      : [pixie ? "pixie" : "", packets ? `packets on ${config.packets.interface}` : ""].filter(Boolean).join(
        " + ",
      ),
  });
  const signals = installSignalHandlers(node.system, { deadlineMs: DRAIN_DEADLINE_MS });

  if (capturePath !== undefined) {
    const rows = caps.flatMap((c) => c.rows).map((r) => ({ ...r, node: config.node }));
    // In the capture's own order, as the sensor received the rows live; rows without a time are not replayed.
    const done = await replay([{ node: config.node, rows }], async (_n, row) => {
      await node.ingest(row);
    }, {
      speed,
      signal: node.system.stopping,
      order: "arrival",
      onSkipped: (row, reason) => {
        if (reason === "no_time") node.countSkipped(row.query, "no_time");
      },
    });
    if (!node.system.stopping.aborted) {
      await finishNodes([node], bus);
      replaying = false;
      log.info("capture replayed; serving metrics until stopped", { rows: done });
      // When the replay gave no or few signatures or matches, say why (on stderr, for the person watching).
      const facts = await runFacts(
        await resolveConfigPath(optString(args, "config")),
        [metrics],
        undefined,
        caps.reduce((a, c) => a + c.problems.length, 0),
      );
      const diagnosis = diagnose(config, facts, {
        rowsOf: rowsByQuery([{ file: capturePath, node: config.node, rows, problems: [] }]),
      });
      const why = renderDiagnosis(diagnosis);
      if (why) console.error(why);
    }
  }
  const t = await node.system.terminated;
  signals.uninstall();
  return t.code;
}
