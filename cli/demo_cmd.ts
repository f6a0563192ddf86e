/**
 * `demo`: the main job on bundled captures of a telephony -> media relay -> ASR pipeline on three nodes,
 * replayed in real time (or faster) over the in-process bus, with live /metrics, a printout per latency and
 * the web UI (served during the replay and after it until Ctrl-C; `--exit` ends after the summary).
 * @module
 */
import { redact } from "../util/log.ts";
import { EXIT_OK, optNumber, type ParsedArgs } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { listenFromOption, optListen } from "./listen_option.ts";
import { decodeExamples, explainRun, readCaptures, runCaptures, stageOrder } from "./capture_run.ts";
import { renderSummaryTable, summarize } from "../report/summary.ts";
import { type HttpServer, parseListen, startHttpServer } from "../http/server.ts";
import { startUiServer, type UiServer } from "../http/ui_server.ts";
import { RecordStore } from "../http/ui/store.ts";
import { healthFromMetrics } from "../http/ui/health.ts";
import { addHops, stagePaths } from "../report/hops.ts";
import { DEFAULT_UI_LISTEN, untilSignal } from "./ui_cmd.ts";
import type { FsmMetrics } from "../http/metrics.ts";

/** Where the bundled demo lives, relative to the repository root. */
export const DEMO_DIR = new URL("../fixtures/demo/", import.meta.url);
/** The packet-capture demo (`--packets`): pcaps of an RTP call and a WebSocket media stream. */
export const DEMO_PACKETS_DIR = new URL("../fixtures/demo_packets/", import.meta.url);

/** Runs `demo`. */
export async function demoCommand(args: ParsedArgs): Promise<number> {
  const speed = optNumber(args, "speed", 1);
  const listen = parseListen(optListen(args, "listen", "127.0.0.1:9464"));
  const uiListen = optListen(args, "ui", DEFAULT_UI_LISTEN);
  const dir = args.values["packets"] === true ? DEMO_PACKETS_DIR : DEMO_DIR;
  const { config, file: configFile } = await loadCommandConfig(args, new URL("config.yaml", dir).pathname);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && /\.(jsonl|pcap)$/.test(e.name)) files.push(e.name);
  files.sort();
  const caps = await readCaptures(files.map((f) => new URL(f, dir).pathname), config);
  const exitAfter = args.values["exit"] === true;
  let first: bigint | undefined, last: bigint | undefined;
  for (const c of caps) {
    for (const r of c.rows) {
      if (first === undefined || r.time < first) first = r.time;
      if (last === undefined || r.time > last) last = r.time;
    }
  }
  const seconds = first !== undefined && last !== undefined ? Number(last - first) / 1e9 : 0;
  console.log(
    `fsm-px demo: ${caps.length} nodes (${caps.map((c) => c.node).join(", ")}), ${
      seconds.toFixed(0)
    } s of traffic replayed at ${speed}x`,
  );
  const servers: HttpServer[] = [];
  const store = new RecordStore(stagePaths(config), stageOrder(config));
  const nodeMetrics: FsmMetrics[] = [];
  store.health = () => healthFromMetrics(nodeMetrics);
  const ui: UiServer = listenFromOption(
    "ui",
    () => startUiServer({ listen: uiListen, store, title: "fsm-px demo" }),
  );
  console.log(`  web UI at ${ui.url}`);
  // Traces of every interval's journey (config otlp.endpoint): records are spans once their hops are known.
  const otlp = config.otlp.endpoint
    ? new (await import("../report/otlp.ts")).OtlpExporter({
      endpoint: config.otlp.endpoint,
      headers: config.otlp.headers,
      serviceName: config.otlp.service_name,
    })
    : undefined;
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const result = await runCaptures(config, caps, {
      speed,
      signal: ac.signal,
      onNodes: (_nodes, metrics) => {
        let port = listen.port;
        nodeMetrics.push(...metrics.values());
        for (const [name, m] of metrics) {
          const s = listenFromOption(
            "listen",
            () =>
              startHttpServer({
                listen: `${listen.hostname}:${port === 0 ? 0 : port++}`,
                metrics: m,
                healthz: () => ({ ok: true, detail: `node ${name} running` }),
                readyz: () => ({ ok: true, detail: "replaying capture" }),
              }),
            ` (node ${name}'s metrics: the nodes listen on consecutive ports from --listen)`,
          );
          servers.push(s);
          console.log(`  node ${name}: metrics at http://${s.addr}/metrics`);
        }
      },
      sinks: [{
        signature: (r) => store.add(r),
        match: (r) => {
          store.add(r);
          const id = r.ids["interval_id"] ?? Object.values(r.ids)[0] ?? "-";
          console.log(
            `  ${r.measurement}/${r.stage.padEnd(8)} ${(r.latency_s * 1000).toFixed(1).padStart(8)} ms  ` +
              `${r.source.pod} -> ${r.target.pod}  ${id}`,
          );
        },
      }],
    });
    console.log("");
    console.log(
      renderSummaryTable(
        summarize(result.signatures, result.matches, stageOrder(config), { paths: stagePaths(config) }),
      ),
    );
    const why = await explainRun(config, configFile, caps, result);
    const examples = await decodeExamples(config, configFile, caps, result);
    store.health = async () => ({ ...await healthFromMetrics(nodeMetrics), decodeExamples: examples });
    if (why) console.log("\n" + why);
    Deno.removeSignalListener("SIGINT", onSignal);
    if (otlp) {
      // Spans from the complete set: a hop whose previous stage arrived later is known here.
      const paths = stagePaths(config);
      for (const r of result.signatures) otlp.signature(r);
      for (const m of addHops(result.matches, paths)) otlp.match(m);
      await otlp.close();
      const st = otlp.stats();
      // The endpoint may carry user:password@ (registered as a secret when the config loaded).
      console.log(
        redact(
          `traces: ${st.sent} spans sent to ${config.otlp.endpoint} (${st.failed} failed, ${st.dropped} dropped)`,
        ),
      );
    }
    if (!exitAfter && !ac.signal.aborted) {
      console.log(`web UI at ${ui.url} (per-hop waterfall, calls, signatures); Ctrl-C stops`);
      await untilSignal();
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await ui.close();
    for (const s of servers) await s.close();
  }
  return EXIT_OK;
}
