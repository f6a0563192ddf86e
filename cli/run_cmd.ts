/**
 * `run`: one sensor, exactly as in the DaemonSet. Rows come from Pixie, or from a capture file replayed in real
 * time with `--capture` (accelerated by `--speed`).
 * @module
 */
import { optNumber, optString, type ParsedArgs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { type CaptureSource, openCaptures, RowSample, runFacts } from "./capture_run.ts";
import { diagnose, renderDiagnosis } from "../report/diagnosis.ts";
import { configIssue, resolveConfigPath } from "../config/load.ts";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { MatchFeed } from "../actors/exporter.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import { installSignalHandlers } from "../actors/shutdown.ts";
import { InProcessBus } from "../bus/in_process.ts";
import type { Bus } from "../bus/bus.ts";
import type { Config } from "../config/schema.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { sensorMetrics } from "./sensor_metrics.ts";
import { type HttpServer, ListenError, startHttpServer } from "../http/server.ts";
import { pixieReadiness } from "./readiness.ts";
import { replayStream, RowLeases } from "../pixie/replay.ts";
import type { Row } from "../pixie/row.ts";
import type { PixieHealth } from "../pixie/health.ts";
import type { PixieClient } from "../pixie/client.ts";
import { logger } from "../util/log.ts";
import type { PixiePodScope } from "./sensor_sources.ts";
import { usesPixie } from "./packet_taps.ts";
import type { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { terminalText } from "../util/printable.ts";

const log = logger("run");

/**
 * Graceful-stop budget before the flush: a live sensor's finish of its streams in progress, then the drain, within
 * it together. The DaemonSet's terminationGracePeriodSeconds must exceed it plus the flush budget.
 */
export const DRAIN_DEADLINE_MS = 20_000;
/**
 * What a stop gives the OTLP collector to take the last spans (within the flush hooks' 5 s): one that does not
 * answer held the stop until the flush deadline, the spans lost uncounted, and the metrics server was never closed.
 */
const OTLP_STOP_MS = 2_000;

export { sensorMetrics };

/**
 * The bus of a sensor: JetStream when nats.url is set (with its metrics, clock-skew estimator, the match feed of
 * the UI and where the signature subscription starts). The NATS client is only loaded then: a sensor on the
 * in-process bus (`run --capture` without nats.url) never holds its modules.
 */
async function openBus(
  config: Config,
  metrics: FsmMetrics,
): Promise<{ bus: Bus; skew?: ClockSkewEstimator; matchFeed?: MatchFeed; subscribeFromMs?: number }> {
  if (config.nats.url === "") return { bus: new InProcessBus() };
  const [{ connectJetStream }, { ClockSkewEstimator }, { signatureStartTimeMs }, { jetStreamMatchFeed }] =
    await Promise.all([
      import("./bus_from_config.ts"),
      import("../bus/clock_skew.ts"),
      import("../bus/jetstream.ts"),
      import("../http/ui/jetstream_source.ts"),
    ]);
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
    onForget: (peer) => metrics.clockOffsetGone(peer),
  });
  skew.start();
  return {
    bus,
    skew,
    matchFeed: jetStreamMatchFeed(
      bus.connection,
      config.nats.stream,
      undefined,
      (reason) => metrics.receiveFailed("match", reason),
    ),
    subscribeFromMs: signatureStartTimeMs(Math.max(...config.measurements.map((m) => m.ttl_seconds))),
  };
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
  const { bus, skew, matchFeed, subscribeFromMs } = await openBus(config, metrics);

  const sources: RowSource[] = [];
  let pixie: { client: PixieClient; health: PixieHealth; pods?: PixiePodScope } | undefined;
  // The live sources' modules (Pixie's gRPC client, the packet capture, the Kubernetes API) are only loaded
  // for a live sensor: `run --capture` never holds them.
  const live = capturePath === undefined ? await import("./sensor_sources.ts") : undefined;
  const packets = live ? await live.packetSide(config, metrics) : undefined;
  if (packets) sources.push(packets.source);
  if (live && (usesPixie(config) || !packets)) {
    const [{ connectPixie, queriesFromConfig }, { PixieRowSource }, { PixieHealth }] = await Promise.all([
      import("./pixie_queries.ts"),
      import("../pixie/live_source.ts"),
      import("../pixie/health.ts"),
    ]);
    // pixie.scope pods: this node's pods first (no Kubernetes API is a config error, before Pixie is dialled).
    const pods = await live.pixiePodScope(config);
    const { client, clusterId } = await connectPixie(config).catch(async (e) => {
      await pods?.stop();
      throw e;
    });
    const health = new PixieHealth({ client, clusterId, onChange: (ok) => metrics.pixieHealthy(ok) });
    metrics.pixieStreamOpened();
    health.start();
    pixie = { client, health, pods };
    sources.push(
      new PixieRowSource({
        client,
        clusterId,
        queries: queriesFromConfig(config, config.node),
        podScope: pods?.scope,
        encryption: config.pixie.encryption && client.cloud,
        metrics: {
          responded: () => metrics.pixieResponded(),
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
    : sources.length === 1 || !live
    ? sources[0]
    : new live.CombinedRowSource(sources);
  // Opened here (a bad file is an error before the sensor starts), read as a stream during the replay.
  const caps: CaptureSource[] = capturePath === undefined ? [] : await openCaptures([capturePath], config);
  const otlp = config.otlp.endpoint === ""
    ? undefined
    : new (await import("../report/otlp.ts")).OtlpExporter({
      endpoint: config.otlp.endpoint,
      headers: config.otlp.headers,
      serviceName: config.otlp.service_name,
      resource: { "k8s.node.name": config.node },
    });
  if (otlp) metrics.otlpOpened(() => otlp.stats());
  // A capture's batches go back to its reader once the node's actors have taken every row of them (their memory
  // is reused, see pixie/capture_slabs.ts): the rows wait in the node's mailboxes for as long as the node takes.
  const leases = caps.some((c) => c.release) ? new RowLeases() : undefined;
  const node = await SensorNode.start({
    config,
    node: config.node,
    bus,
    metrics,
    mode: source ? "live" : "replay",
    source,
    onRowsDone: leases && ((rows) => leases.done(rows)),
    sinks: otlp ? [otlp] : [],
    matchFeed,
    subscribeFromMs,
    // Each signature's node is a source whose clock offset its latencies carry: probed first (a name the
    // signature format cut, with its `~`, names no node's clock subject; Kubernetes node names have none).
    onSignatureFrom: skew && ((n) => {
      if (!n.includes("~")) skew.addSource(n);
    }),
  });
  // Peers' clocks ahead of ours widen the search before a signature's instant (see SensorNode.noteClockOffsets).
  skew?.addListener((offsets) => node.noteClockOffsets(offsets.values()));
  let replaying = capturePath !== undefined;
  const startedMs = Date.now();
  const http = listenAtConfig(config, () =>
    startHttpServer({
      listen: config.metrics.listen,
      metrics,
      healthz: () => {
        // A bus whose connection ended for good publishes and receives nothing again: a restart is the cure.
        const lost = bus.lost?.();
        if (lost !== undefined) return { ok: false, detail: `NATS connection closed for good (${lost})` };
        return {
          ok: !node.system.stopping.aborted,
          detail: node.system.stopping.aborted ? "stopping" : "actors running",
        };
      },
      readyz: () =>
        pixie
          ? pixieReadiness(
            { healthy: pixie.health.healthy, lastResponseMs: metrics.pixieLastResponseMs, startedMs },
            Date.now(),
          )
          : packets
          ? { ok: !node.system.stopping.aborted, detail: "capturing packets" }
          : { ok: true, detail: replaying ? "replaying capture" : "capture replayed" },
    }));
  node.system.onFlush(async () => {
    await skew?.stop();
    await bus.close();
    pixie?.health.stop();
    await pixie?.pods?.stop();
    pixie?.client.close();
    await packets?.stop();
    await otlp?.close(OTLP_STOP_MS);
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
  const signals = installSignalHandlers(node.system, {
    deadlineMs: DRAIN_DEADLINE_MS,
    // A live stop first finishes the streams in progress, as a capture's end does: the live sources stop, the
    // Detectors publish their streams' last signatures, and the Matcher verifies what is pending with the frames
    // there are. Without it the last seconds of every call in progress were lost (a rolling update stops every
    // node, and the new pod never saw that audio).
    finish: source &&
      ((deadlineMs, phase) => finishNodes([node], bus, { stopSources: true, deadlineMs, onPhase: phase })),
  });

  if (capturePath !== undefined) {
    const sample = new RowSample(config);
    /** The capture's rows in its own order, as the sensor received them live, as this node's. */
    const arrival = async function* (): AsyncGenerator<{ node: string; row: Row }[]> {
      for (const c of caps) {
        const release = c.release && ((batch: readonly Row[]) => c.release!(batch));
        for await (const batch of c.batches()) {
          const out: { node: string; row: Row }[] = [];
          const kept: Row[] = [];
          for (const r of batch) {
            // Rows without a usable time are not replayed (pacing cannot place them); counted.
            if (!(r.time > 0n)) {
              node.countSkipped(r.query, "no_time");
              continue;
            }
            const row = r.node === config.node ? r : { ...r, node: config.node };
            sample.add(row);
            out.push({ node: config.node, row });
            kept.push(row);
          }
          if (leases && release) leases.hold(batch, kept, release);
          if (out.length > 0) yield out;
        }
        for (const p of c.problems.slice(0, 20)) log.warn("malformed capture line skipped", { ...p });
      }
    };
    const done = await replayStream(arrival(), async (_n, rows) => {
      for (const row of rows) await node.ingest(row);
    }, { speed, signal: node.system.stopping });
    if (!node.system.stopping.aborted) {
      await finishNodes([node], bus);
      replaying = false;
      log.info("capture replayed; serving metrics until stopped", { rows: done });
      // When the replay gave no or few signatures or matches, say why (on stderr, for the person watching).
      const facts = await runFacts(
        await resolveConfigPath(optString(args, "config")),
        [metrics],
        undefined,
        caps.reduce((a, c) => a + c.problemCount(), 0),
      );
      const diagnosis = diagnose(config, facts, { rowsOf: sample.rowsOf });
      const why = renderDiagnosis(diagnosis);
      if (why) console.error(terminalText(why));
    }
  }
  const t = await node.system.terminated;
  signals.uninstall();
  return t.code;
}

/**
 * Starts the metrics server, a failure to listen reported as a config error at `metrics.listen` (exit 2) with what
 * to do: Deno's "Address already in use (os error 98)" named neither the address nor the setting.
 */
function listenAtConfig(config: Config, start: () => HttpServer): HttpServer {
  try {
    return start();
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    throw configIssue(
      config,
      ["metrics", "listen"],
      "an address this sensor can listen on",
      `${e.listen}: ${e.reason}`,
      e.inUse
        ? "stop what listens there (another sensor or a demo?) or set metrics.listen to a free port (port 0: any)"
        : "set metrics.listen to an address of this host, e.g. 0.0.0.0:9464 (all of its addresses)",
    );
  }
}
