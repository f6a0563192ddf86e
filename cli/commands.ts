/**
 * The subcommands: what each does and its options, declared once; `--help` is generated from these
 * (cli/command.ts). Handlers are imported lazily so that, for example, `analyze` never loads the gRPC or NATS
 * clients.
 * @module
 */
import { type Command, formatOption, type OptionSpec } from "./command.ts";

const ID: OptionSpec = {
  kind: "value",
  arg: "VALUE",
  help: "only records with this id (any id type, or TYPE=VALUE), signature id or source stream",
};
const INTERVAL: OptionSpec = { kind: "value", arg: "ID", help: "only this interval id" };
const SPEED: OptionSpec = {
  kind: "value",
  arg: "X",
  help: "replay X times faster than real time",
  default: "1",
};

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: Command[] = [
  {
    name: "run",
    summary: "run the sensor of this node (the DaemonSet's job)",
    about:
      "Runs one sensor: reads this node's traffic from Pixie and/or its own packets (packets.interface), or " +
      "replays a capture file, detects signatures " +
      "at the source taps, matches them at every stage, serves /metrics, /healthz and /readyz on " +
      "metrics.listen, and publishes signatures and match records on NATS JetStream (or an in-process bus when " +
      "nats.url is empty).\n\n" +
      "Stops gracefully on SIGTERM/SIGINT: a live sensor first finishes its calls in progress as a capture's " +
      "end does (sources stop, a packet capture handing on what it still holds, the last signatures are " +
      "published, pending matches are verified with the " +
      "frames there are), then intake stops, mailboxes drain, publishes flush, exit 0; the finish and the " +
      "drain share a 20 s deadline. A second signal exits at once with 1.",
    options: {
      capture: {
        kind: "value",
        arg: "FILE",
        help: "replay a capture file in real time instead of querying Pixie",
      },
      speed: { ...SPEED, help: "with --capture: replay X times faster than real time" },
    },
    run: async (args) => (await import("./run_cmd.ts")).runCommand(args),
  },
  {
    name: "demo",
    summary: "replay the bundled multi-node captures and print latencies (needs nothing but the repo)",
    about:
      "Replays the bundled captures of a telephony -> media relay -> ASR pipeline on three nodes, in real " +
      "time (or X times faster), over the in-process bus, serves /metrics and the web UI, prints each latency " +
      "as it is measured and then the same summary as 'analyze'. The UI keeps serving after the replay until " +
      "Ctrl-C.",
    config: "fixtures/demo/config.yaml; with --packets fixtures/demo_packets/config.yaml",
    options: {
      packets: {
        kind: "flag",
        help:
          "the packet-capture demo instead: pcaps of an RTP call (ffmpeg -> relay -> ffmpeg Opus) and a " +
          "WebSocket media stream (fixtures/demo_packets/)",
      },
      speed: SPEED,
      listen: { kind: "value", arg: "HOST:PORT", help: "where to serve /metrics", default: "127.0.0.1:9464" },
      ui: { kind: "value", arg: "HOST:PORT", help: "where to serve the web UI", default: "127.0.0.1:8080" },
      exit: {
        kind: "flag",
        help: "exit after the summary instead of serving the UI until Ctrl-C (for scripts)",
      },
    },
    run: async (args) => (await import("./demo_cmd.ts")).demoCommand(args),
  },
  {
    name: "analyze",
    summary: "offline analysis of capture files (event time, as fast as possible)",
    about:
      "Runs one node per capture file, all in one process over the in-process bus, in event time as fast " +
      "as possible, and prints per measurement and stage: matches, signatures, recall, latency " +
      "p50/p90/p99/max, and a per-interval waterfall (interval id x stage latency).",
    positionals: "CAPTURE...",
    options: {
      out: { kind: "value", arg: "FILE", help: "write signature and match records as JSON Lines" },
      format: formatOption(["table", "json", "csv", "records", "summary"]),
      interval: { ...INTERVAL, help: "summarise only this interval id" },
      id: ID,
    },
    run: async (args) => (await import("./analyze_cmd.ts")).analyzeCommand(args),
  },
  {
    name: "record",
    summary: "record this node's configured Pixie queries to a capture file",
    about: "Runs the configured queries against the live cluster and writes a capture file that 'analyze', " +
      "'check', 'discover' and 'run --capture' read. Captures contain audio: handle them like call recordings.",
    options: {
      out: { kind: "value", arg: "FILE", help: "capture file to write", required: true },
      duration: { kind: "value", arg: "D", help: "stop after D", default: "60s" },
      "max-rows": { kind: "value", arg: "N", help: "stop after N rows" },
    },
    run: async (args) => (await import("./record_cmd.ts")).recordCommand(args),
  },
  {
    name: "check",
    summary: "check a config without Pixie: errors, the PxL each sensor runs, what captures decode to",
    about:
      "Validates the config (every problem at file:line:col, stream_filter problems with the corrected " +
      "line; exit 2 on errors) and prints the PxL script the sensor of node NAME runs (default: this node), " +
      "with each query's table, columns and stream key.\n\n" +
      "For each capture file given (JSON Lines from 'record', or pcap/pcapng for packet taps), runs the engine " +
      "as 'analyze' does and prints what each stream decodes to: rows, decode errors by reason with an example " +
      "row, signatures and matches.",
    positionals: "[CAPTURE...]",
    options: {
      node: {
        kind: "value",
        arg: "NAME",
        help: "the sensor node whose script to print",
        default: "node, $NODE_NAME or the hostname",
      },
    },
    run: async (args) => (await import("./check_cmd.ts")).checkCommand(args),
  },
  {
    name: "replay",
    summary: "offline analysis of signatures and matches stored in JetStream",
    about: "Reads signatures and match records by time range from the JetStream stream and prints the same " +
      "summary and per-interval waterfall as 'analyze' (--format summary: as JSON; --format records, or json as " +
      "it always has: the records themselves, exactly as 'analyze --out' writes them). Works against a server " +
      "the sensors have left.",
    options: {
      since: { kind: "value", arg: "D", help: "from D ago (e.g. 1h, 30m)", default: "1h" },
      start: { kind: "value", arg: "TIME", help: "from an RFC 3339 time" },
      until: { kind: "value", arg: "TIME", help: "up to an RFC 3339 time, or now", default: "now" },
      measurement: { kind: "value", arg: "M", help: "only this measurement" },
      out: {
        kind: "value",
        arg: "FILE",
        help: "also write the records read as JSON Lines (as analyze --out)",
      },
      format: formatOption(["table", "json", "csv", "records", "summary"], {
        json: "the records, as records prints them (what replay's json has always printed)",
      }),
      interval: INTERVAL,
      id: ID,
    },
    run: async (args) => (await import("./replay_cmd.ts")).replayCommand(args),
  },
  {
    name: "discover",
    summary: "find the streams whose bodies look like audio and propose a config for each",
    about: "Reads message bodies for --duration from Pixie's tables that carry them (http_events.req_body, " +
      "nats_events.beta.body, redis_events.req_args) on this node, or from capture files, groups them by table, " +
      "pod and path or command, and for each group that looks like audio guesses the envelope (JSON path, " +
      "regex, raw), encoding (base64, hex, binary), codec, sample rate and channels, each with a confidence " +
      "and the reason, plus context ids and a stream key, and prints a ready-to-paste config.\n\n" +
      "With captures and --config it also says where the configured audio section differs from what the " +
      "bodies look like.",
    positionals: "[CAPTURE...]",
    config: "live: config.yaml, then example-config.yaml, for the pixie section; with captures: none",
    options: {
      capture: { kind: "list", arg: "FILE", help: "read a capture file instead of Pixie" },
      duration: { kind: "value", arg: "D", help: "live: how long to read", default: "30s" },
      node: {
        kind: "value",
        arg: "NAME",
        help: "live: the node whose traffic to read",
        default: "the config's node",
      },
      format: formatOption(["table", "json"], {
        json: "what was found (groups, their guesses and reasons) as one JSON document",
      }),
    },
    run: async (args) => (await import("./discover_cmd.ts")).discoverCommand(args),
  },
  {
    name: "ui",
    summary: "web UI over match records: files from 'analyze --out', or JetStream (history + live)",
    about:
      "Serves the web UI (Overview, Waterfall, Interval/call, Signature, Health) over match records: the " +
      "files given with --records (written by 'analyze --out'), or, without them and with nats.url set, the " +
      "records stored in JetStream over the last --since, followed live. Pages work offline (no CDN). Serves " +
      "until Ctrl-C.",
    positionals: "[RECORDS...]",
    options: {
      records: { kind: "list", arg: "FILE", help: "a JSON Lines record file (also as positional arguments)" },
      listen: { kind: "value", arg: "HOST:PORT", help: "where to serve", default: "127.0.0.1:8080" },
      since: {
        kind: "value",
        arg: "D",
        help: "JetStream: history window before following live, kept as it slides",
        default: "1h",
      },
    },
    run: async (args) => (await import("./ui_cmd.ts")).uiCommand(args),
  },
  {
    name: "schema",
    summary: "write the JSON Schema of the configuration (for editors)",
    about:
      "Writes the JSON Schema of fsm-px's configuration. Point your editor's YAML language server at it, " +
      "e.g. '# yaml-language-server: $schema=./config.schema.json'.",
    config: false,
    options: {
      out: {
        kind: "value",
        arg: "FILE",
        help: "where to write ('-' for stdout)",
        default: "config.schema.json",
      },
    },
    run: async (args) => (await import("./schema_cmd.ts")).schemaCommand(args),
  },
];
