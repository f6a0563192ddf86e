/**
 * The subcommands and their help texts. Handlers are imported lazily so that, for example, `analyze` never
 * loads the gRPC or NATS clients.
 * @module
 */
import type { Command } from "./command.ts";

const CONFIG_HELP =
  "  -c, --config FILE     configuration (default: config.yaml, then example-config.yaml)\n" +
  "      --log-level LVL   debug | info | warn | error";

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: Command[] = [
  {
    name: "run",
    summary: "run the sensor of this node (the DaemonSet's job)",
    help: `usage: deno task run [--config FILE] [--capture FILE [--speed X]]

Runs one sensor: reads this node's traffic from Pixie (or replays a capture file), detects signatures at the
source taps, matches them at every stage, serves /metrics, /healthz and /readyz on metrics.listen, and publishes
signatures and match records on NATS JetStream (or an in-process bus when nats.url is empty).
Stops gracefully on SIGTERM/SIGINT: intake stops, mailboxes drain, publishes flush, exit 0.

options:
${CONFIG_HELP}
      --capture FILE    replay a capture file in real time instead of querying Pixie
      --speed X         with --capture: replay X times faster than real time (default 1)`,
    options: { capture: { type: "string" }, speed: { type: "string" } },
    run: async (args) => (await import("./run_cmd.ts")).runCommand(args),
  },
  {
    name: "demo",
    summary: "replay the bundled multi-node captures and print latencies (needs nothing but the repo)",
    help: `usage: deno task demo [--packets] [--speed X] [--listen HOST:PORT] [--ui HOST:PORT] [--exit]

Replays the bundled captures of a telephony -> media relay -> ASR pipeline on three nodes, in real time
(or X times faster), over the in-process bus, serves /metrics and the web UI, prints each latency as it is
measured and then the same summary as 'analyze'. The UI keeps serving after the replay until Ctrl-C.

options:
${CONFIG_HELP}   (default: fixtures/demo/config.yaml)
      --packets          the packet-capture demo instead: pcaps of an RTP call (ffmpeg -> relay -> ffmpeg
                         Opus) and a WebSocket media stream (fixtures/demo_packets/, its config.yaml)
      --speed X          replay X times faster than real time (default 1)
      --listen HOST:PORT where to serve /metrics (default: 127.0.0.1:9464)
      --ui HOST:PORT     where to serve the web UI (default: 127.0.0.1:8080)
      --exit             exit after the summary instead of serving the UI until Ctrl-C (for scripts)`,
    options: {
      speed: { type: "string" },
      listen: { type: "string" },
      ui: { type: "string" },
      exit: { type: "boolean" },
      packets: { type: "boolean" },
    },
    run: async (args) => (await import("./demo_cmd.ts")).demoCommand(args),
  },
  {
    name: "analyze",
    summary: "offline analysis of capture files (event time, as fast as possible)",
    help: `usage: deno task analyze --config FILE [--out FILE] [--format table|json] CAPTURE...

Runs one node per capture file, all in one process over the in-process bus, in event time as fast as possible,
and prints per measurement and stage: matches, signatures, recall, latency p50/p90/p99/max, and a per-interval
waterfall (interval id x stage latency).

options:
${CONFIG_HELP}
      --out FILE         write signature and match records as JSON Lines
      --format FMT       table (default) or json
      --interval ID      summarise only this interval id
      --id VALUE         only records with this id (any id type, or TYPE=VALUE), signature id or source stream`,
    options: {
      out: { type: "string" },
      format: { type: "string" },
      id: { type: "string" },
      interval: { type: "string" },
    },
    allowPositionals: true,
    run: async (args) => (await import("./analyze_cmd.ts")).analyzeCommand(args),
  },
  {
    name: "record",
    summary: "record this node's configured Pixie queries to a capture file",
    help: `usage: deno task record --config FILE --out FILE [--duration 60s] [--max-rows N]

Runs the configured queries against the live cluster and writes a capture file that 'analyze', 'demo' and
'run --capture' read. Captures contain audio: handle them like call recordings.

options:
${CONFIG_HELP}
      --out FILE         capture file to write (required)
      --duration D       stop after D (default 60s)
      --max-rows N       stop after N rows`,
    options: { out: { type: "string" }, duration: { type: "string" }, "max-rows": { type: "string" } },
    run: async (args) => (await import("./record_cmd.ts")).recordCommand(args),
  },
  {
    name: "check",
    summary: "check a config without Pixie: errors, the PxL each sensor runs, what captures decode to",
    help: `usage: deno task check [--config FILE] [--node NAME] [CAPTURE...]

Validates the config (every problem at file:line:col, stream_filter problems with the corrected line; exit 2
on errors) and prints the PxL script the sensor of node NAME runs (default: this node), with each query's
table, columns and stream key. For each capture file given (JSON Lines from 'record', or pcap/pcapng for
packet taps), runs the engine as 'analyze' does and prints what each stream decodes to: rows, decode errors
by reason with an example row, signatures and matches.

options:
${CONFIG_HELP}
      --node NAME        the sensor node whose script to print (default: node, $NODE_NAME or the hostname)`,
    options: { node: { type: "string" } },
    allowPositionals: true,
    run: async (args) => (await import("./check_cmd.ts")).checkCommand(args),
  },
  {
    name: "replay",
    summary: "offline analysis of signatures and matches stored in JetStream",
    help:
      `usage: deno task replay --config FILE [--since 1h | --start TIME] [--until TIME] [--measurement M] [--format table|json|csv]

Reads signatures and match records by time range from the JetStream stream and prints the same summary and
per-interval waterfall as 'analyze'. --format json prints the records, one JSON line each, exactly as
'analyze --out' writes them. Works against a server the sensors have left.

options:
${CONFIG_HELP}
      --since D          from D ago (e.g. 1h, 30m); default 1h
      --start TIME       from an RFC 3339 time
      --until TIME       up to an RFC 3339 time (default: now)
      --measurement M    only this measurement
      --format FMT       table (default), json or csv
      --interval ID      only this interval id
      --id VALUE         only records with this id (any id type, or TYPE=VALUE), signature id or source stream`,
    options: {
      id: { type: "string" },
      interval: { type: "string" },
      since: { type: "string" },
      start: { type: "string" },
      until: { type: "string" },
      measurement: { type: "string" },
      format: { type: "string" },
    },
    run: async (args) => (await import("./replay_cmd.ts")).replayCommand(args),
  },
  {
    name: "discover",
    summary: "find the streams whose bodies look like audio and propose a config for each",
    help:
      `usage: deno task discover [--config FILE] [--capture FILE ...] [--duration 30s] [--node NAME] [--format table|json]

Reads message bodies for --duration from Pixie's tables that carry them (http_events.req_body,
nats_events.beta.body, redis_events.req_args) on this node, or from capture files, groups them by table, pod
and path or command, and for each group that looks like audio guesses the envelope (JSON path, regex, raw),
encoding (base64, hex, binary), codec, sample rate and channels, each with a confidence and the reason, plus
context ids and a stream key, and prints a ready-to-paste config. With captures and --config it also says
where the configured audio section differs from what the bodies look like.

options:
${CONFIG_HELP}   (live: for the pixie section)
      --capture FILE     read a capture file instead of Pixie (repeatable; capture files may also follow)
      --duration D       live: how long to read (default 30s)
      --node NAME        live: the node whose traffic to read (default: the config's node)
      --format FMT       table (default) or json`,
    options: {
      capture: { type: "string", multiple: true },
      duration: { type: "string" },
      node: { type: "string" },
      format: { type: "string" },
    },
    allowPositionals: true,
    run: async (args) => (await import("./discover_cmd.ts")).discoverCommand(args),
  },
  {
    name: "ui",
    summary: "web UI over match records: files from 'analyze --out', or JetStream (history + live)",
    help: `usage: deno task ui [--config FILE] [--records FILE ...] [--listen HOST:PORT] [--since 1h]

Serves the web UI (Overview, Waterfall, Interval/call, Signature, Health) over match records: the files
given with --records (written by 'analyze --out'), or, without them and with nats.url set, the records stored
in JetStream over the last --since, followed live. Pages work offline (no CDN). Serves until Ctrl-C.

options:
${CONFIG_HELP}
      --records FILE     a JSON Lines record file (repeatable; also as positional arguments)
      --listen HOST:PORT where to serve (default 127.0.0.1:8080)
      --since D          JetStream: history window before following live (default 1h)`,
    options: {
      records: { type: "string", multiple: true },
      listen: { type: "string" },
      since: { type: "string" },
    },
    allowPositionals: true,
    run: async (args) => (await import("./ui_cmd.ts")).uiCommand(args),
  },
  {
    name: "schema",
    summary: "write the JSON Schema of the configuration (for editors)",
    help: `usage: deno task schema [--out FILE]

Writes the JSON Schema of fsm-px's configuration (default: config.schema.json). Point your editor's YAML
language server at it, e.g. '# yaml-language-server: $schema=./config.schema.json'.

options:
      --out FILE         where to write (default config.schema.json; '-' for stdout)`,
    options: { out: { type: "string" } },
    run: async (args) => (await import("./schema_cmd.ts")).schemaCommand(args),
  },
];
