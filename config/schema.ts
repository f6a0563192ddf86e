/**
 * The config schema (zod v4). It checks shapes, types, ranges and single-field rules, fills the documented
 * defaults, and adds derived values (durations in ms, byte sizes, compiled id patterns, a default match rule).
 * Rules that span several fields live in checks.ts so that they run even when other fields are wrong.
 *
 * Custom messages start with "expected ": the error mapper turns them into the `expected` part of an issue.
 * @module
 */

import { z } from "zod";
import type { AudioCriteria, AudioFormat } from "../audio/types.ts";
import {
  DEFAULT_AUDIO,
  DEFAULT_AUDIO_CRITERIA,
  DEFAULT_COLUMNS,
  DEFAULT_MATCH_THRESHOLDS,
  DEFAULT_STAGE,
  DEFAULT_STREAM_KEY,
  PACKET_STREAM_COLUMN,
  wholeTableQuery,
} from "./defaults.ts";
import { compilePattern, isUuid, parseByteSize, parseDuration, parseHostPort } from "./units.ts";
import { packetsSectionSchema, packetTapSchema } from "./packets_schema.ts";
import type { LinearRegex } from "../util/linear_regex.ts";

/** Measurement and stage names: they become NATS subject tokens and metric label values. */
export const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;
/**
 * Longest measurement name: the signature wire format's cap on it (audio/fingerprint/signature.ts
 * `NAME_CAPS.measurement`). A longer name is cut there to a prefix and a hash, which names no measurement a node
 * has (its registry passed every signature over, the JetStream bus refused the `~` in a subject): nothing of such a
 * measurement was ever matched, silently.
 */
export const MEASUREMENT_NAME_MAX = 40;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STREAM_KEY_ITEM = /^(?:[A-Za-z_][A-Za-z0-9_]*|\$(?:\.[^.\s]+)+)$/;
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
// nats:// and tls:// only: the NATS client fsm-px uses (transport-node) refuses ws:// and wss:// servers at connect
// ("node client doesn't support websockets"), so such a URL is a config error here rather than a start-up failure.
const NATS_SERVER =
  /^(?:(?:nats|tls):\/\/)?(?:[^@\s/]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::\d{1,5})?$/;
const WEBSOCKET_SERVER = /^wss?:\/\//i;

function expected(text: string): { error: string } {
  return { error: `expected ${text}` };
}

/** Control characters (a line break above all): never part of a credential, only of a copying mistake. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/**
 * A credential (`pixie.api_key`, `nats.user`, `nats.password`, `nats.token`) without control characters. A
 * Kubernetes Secret made from a file keeps the file's last newline, and a key with one was refused only later and
 * darkly: gRPC will not send it (every Pixie query failed with 'Metadata string value "[redacted]" contains illegal
 * characters', the sensor silent), a NATS server answers "Authorization Violation". `refused` says which.
 * The value is never shown (the error mapper names its variable instead).
 */
function credential(what: string, refused: string) {
  return z.string().superRefine((s, ctx) => {
    const at = s.search(CONTROL_CHAR);
    if (at < 0) return;
    const c = s[at];
    const kind = c === "\n" || c === "\r" ? "a line break" : c === "\t" ? "a tab" : "a control character";
    const where = at >= s.trimEnd().length
      ? "at its end"
      : at < s.length - s.trimStart().length
      ? "at its start"
      : "inside it";
    ctx.addIssue({
      code: "custom",
      message: `expected ${what} without line breaks or other control characters`,
      params: {
        hint: `it has ${kind} ${where}, which ${refused}; a Secret made from a file keeps the file's last ` +
          "newline: make it with kubectl create secret --from-literal, or write the file with printf '%s'",
      },
    });
  });
}

function int(min: number, max?: number) {
  const e = expected(max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`);
  const s = z.number(e).int(e).min(min, e);
  return max === undefined ? s : s.max(max, e);
}

function positive() {
  const e = expected("a number > 0");
  return z.number(e).gt(0, e);
}

function fraction(min: number, inclusiveMin: boolean, below: number) {
  const e = expected(`a number ${inclusiveMin ? ">=" : ">"} ${min} and < ${below}`);
  const s = z.number(e).lt(below, e);
  return inclusiveMin ? s.gte(min, e) : s.gt(min, e);
}

function name(what: string) {
  return z.string().regex(
    NAME_PATTERN,
    expected(`${what} of lowercase letters, digits and _, starting with a letter`),
  );
}

function hostPort(allowPortZero: boolean) {
  return z.string().refine((s) => parseHostPort(s, allowPortZero) !== undefined, expected("host:port"));
}

function duration() {
  return z.string().refine(
    (s) => parseDuration(s) !== undefined,
    expected("a duration > 0 such as 168h, 7d, 30m, 90s, 500ms or 1h30m"),
  );
}

const column = z.string().regex(IDENT, expected("a column name"));

// Whether a stream_filter is PxL that compiles against Pixie's tables is checked at load by pixie/pxl_check.ts
// (config/checks.ts streamFilterProblems), with positions inside the text and the corrected line.
const pxl = z.string();

const regexWithOneGroup = z.string().superRefine((pattern, ctx) => {
  const compiled = compilePattern(pattern);
  const message = "expected a regular expression with exactly one capture group";
  if ("error" in compiled) {
    const reason = compiled.error.split(": ").pop() ?? compiled.error;
    ctx.addIssue({ code: "custom", message, params: { found: `${JSON.stringify(pattern)} (${reason})` } });
  } else if (compiled.groups !== 1) {
    ctx.addIssue({
      code: "custom",
      message,
      params: {
        found: `${JSON.stringify(pattern)} with ${compiled.groups} capture groups`,
        hint: compiled.groups === 0 ? "put the id in ( )" : "make the other groups non-capturing: (?: )",
      },
    });
  }
});

const columnsSchema = z.strictObject({
  time: column.default(DEFAULT_COLUMNS.time).describe("Capture time column (TIME64NS)."),
  pod: column.default(DEFAULT_COLUMNS.pod).describe("Pod column (namespace/pod)."),
  payload: column.default(DEFAULT_COLUMNS.payload).describe(
    "Column holding the message body. Default: the body column of the table the stream_filter reads " +
      "(req_body for http_events, body for nats_events.beta, req_args for redis_events).",
  ),
  body_size: column.optional().describe(
    "Optional column with the untruncated body size, e.g. req_body_size.",
  ),
  latency: column.optional().describe(
    "Optional INT64 column: how long (ns) before time_ the payload's message was complete, where time_ is " +
      "another message's. Default: latency for http_events request bodies (Pixie's time_ there is the " +
      "response's), so the audio's time is its request's.",
  ),
});

const streamKeySchema = z
  .array(z.string().regex(STREAM_KEY_ITEM, expected("a column name or a $.path into the JSON envelope")))
  .min(1, expected("at least one stream key item"))
  .optional()
  .describe(
    "What tells one audio stream from another: column names, or $.path into the JSON envelope. " +
      "Default: [pod] for Pixie taps, [stream] (one flow direction, and SSRC for RTP) for packet taps.",
  );

/** The stream key a tap uses when `stream_key` is absent. */
function defaultStreamKey(packets: boolean): string[] {
  return packets ? [PACKET_STREAM_COLUMN] : [...DEFAULT_STREAM_KEY];
}

/** A tap reads Pixie (`stream_filter`) or packets (`packets`): exactly one of them. */
function oneSource(r: { stream_filter?: string; packets?: unknown }, ctx: z.RefinementCtx): void {
  if ((r.stream_filter === undefined) === (r.packets === undefined)) {
    ctx.addIssue({
      code: "custom",
      message: "expected stream_filter (a Pixie tap) or packets (a packet-capture tap), exactly one",
      params: { found: r.stream_filter === undefined ? "neither" : "both" },
    });
  }
}

/** Telephony names of the G.711 codecs (SDP's PCMU/PCMA, ITU's G.711 µ-law/A-law), any case. */
export const CODEC_ALIASES: Readonly<Record<string, string>> = {
  pcmu: "mulaw",
  g711u: "mulaw",
  "g711-ulaw": "mulaw",
  pcma: "alaw",
  g711a: "alaw",
  "g711-alaw": "alaw",
};

/** The codecs a payload may hold, as the engine names them. */
export const CODEC_SCHEMA = z.enum(["mulaw", "alaw", "pcm16le", "pcm16be", "float32le"]);

function codecAlias(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const lower = v.toLowerCase();
  return CODEC_ALIASES[lower] ?? lower;
}

const audioSchema = z
  .strictObject({
    envelope: z.enum(["json", "regex", "raw", "protobuf"]).default(DEFAULT_AUDIO.envelope),
    // protobuf field numbers are written as numbers (path: 2) as often as strings.
    path: z.preprocess((v) => typeof v === "number" ? String(v) : v, z.string()).optional().describe(
      "json: dotted path to the audio field (default media.payload); regex: a pattern with one group; raw: " +
        "unused; protobuf: field numbers of the audio's length-delimited field, e.g. 2 or 1.3.",
    ),
    encoding: z.enum(["base64", "hex", "binary"]).default(DEFAULT_AUDIO.encoding),
    codec: z.preprocess(codecAlias, CODEC_SCHEMA).default(DEFAULT_AUDIO.codec).describe(
      "mulaw (aliases pcmu, g711u), alaw (pcma, g711a), pcm16le, pcm16be or float32le; any case.",
    ),
    sample_rate: int(8000, 48000).default(DEFAULT_AUDIO.sample_rate),
    channels: int(1, 32).default(DEFAULT_AUDIO.channels).describe("Interleaved channels in the payload."),
    channel: z
      .union([int(0), z.literal("mix")], expected('a channel index (an integer >= 0) or "mix"'))
      .default(DEFAULT_AUDIO.channel)
      .describe('Channel to analyse (0-based), or "mix" to average all.'),
    skip_bytes: int(0).default(DEFAULT_AUDIO.skip_bytes).describe("raw: header bytes before the audio."),
  })
  .transform((a): AudioFormat => ({
    envelope: a.envelope,
    path: a.path ?? (a.envelope === "json" ? DEFAULT_AUDIO.path : ""),
    encoding: a.encoding,
    codec: a.codec,
    sample_rate: a.sample_rate,
    channels: a.channels,
    channel: a.channel,
    skip_bytes: a.skip_bytes,
  }));

const audioCriteriaSchema = z
  .strictObject({
    vad_mode: z.enum(["energy", "webrtc"]).default(DEFAULT_AUDIO_CRITERIA.vad_mode),
    vad_aggressiveness: int(0, 3).default(DEFAULT_AUDIO_CRITERIA.vad_aggressiveness).describe(
      "webrtc: 0..3.",
    ),
    energy_threshold: positive().default(DEFAULT_AUDIO_CRITERIA.energy_threshold)
      .describe("energy: how far above the adaptive noise floor a frame must be to count as speech."),
    min_duration_ms: int(1).default(DEFAULT_AUDIO_CRITERIA.min_duration_ms)
      .describe("Speech that must follow an onset for it to become an anchor."),
    min_silence_ms: int(0).default(DEFAULT_AUDIO_CRITERIA.min_silence_ms)
      .describe("Silence that must precede an onset."),
    reanchor_ms: int(0).default(DEFAULT_AUDIO_CRITERIA.reanchor_ms)
      .describe("During continuous speech, a new anchor every this many ms (0 disables)."),
  })
  // Keeps the section assignable to the engine's option type: a drift fails type checking here.
  .transform((c): AudioCriteria => c);

const signatureRulesSchema = z.strictObject({
  stream_filter: pxl.optional().describe("PxL that leaves a DataFrame named df: the source tap (Pixie)."),
  packets: packetTapSchema.optional().describe("The source tap from packets, instead of stream_filter."),
  columns: columnsSchema.prefault({}),
  stream_key: streamKeySchema,
  audio: audioSchema.prefault({}),
  audio_criteria: audioCriteriaSchema.prefault({}),
}).superRefine(oneSource).transform((r) => ({
  ...r,
  stream_key: r.stream_key ?? defaultStreamKey(r.packets !== undefined),
}));

const matchRuleSchema = z.strictObject({
  stage: name("a stage name").describe("A name for this tap; one query per stage."),
  stream_filter: pxl.optional().describe("PxL that leaves a DataFrame named df: the downstream tap (Pixie)."),
  packets: packetTapSchema.optional().describe("The downstream tap from packets, instead of stream_filter."),
  columns: columnsSchema.prefault({}),
  stream_key: streamKeySchema,
  audio: audioSchema.prefault({}),
  exclude_source_streams: z.boolean().default(false)
    .describe("Skip streams that are this measurement's source streams."),
  after: name("a stage name").default("source")
    .describe("The tap the audio passes just before this one: another stage of this measurement, or source."),
}).superRefine(oneSource).transform((r) => ({
  ...r,
  stream_key: r.stream_key ?? defaultStreamKey(r.packets !== undefined),
}));

const idPatternSchema = z
  .strictObject({
    pattern: regexWithOneGroup.describe(
      "JavaScript regular expression with exactly one capture group (run in linear time: no lookarounds or " +
        "backreferences).",
    ),
    id_type: z.string().regex(IDENT, expected("an id name (letters, digits, _)")),
  })
  // The pattern was checked above; it runs in the linear-time engine (util/linear_regex.ts), never in RegExp.
  .transform((p) => ({ ...p, regex: compiledPattern(p.pattern) }));

function compiledPattern(pattern: string): LinearRegex {
  const c = compilePattern(pattern);
  if ("error" in c) throw new Error(`id pattern passed validation but does not compile: ${c.error}`);
  return c.regex;
}

/** A match rule as derived when `match_rules` is absent: the source table, minus the source streams. */
function defaultMatchRule(sig: z.output<typeof signatureRulesSchema>): z.output<typeof matchRuleSchema> {
  return {
    stage: DEFAULT_STAGE,
    // Packets: the same protocol on the same ports and hosts, on any pod.
    ...(sig.packets
      ? { packets: { ...sig.packets, pod: undefined, direction: "any" as const } }
      : { stream_filter: wholeTableQuery(sig.stream_filter ?? "") ?? sig.stream_filter }),
    columns: { ...sig.columns },
    stream_key: [...sig.stream_key],
    audio: { ...sig.audio },
    exclude_source_streams: true,
    after: "source",
  };
}

const measurementSchema = z
  .strictObject({
    name: name("a measurement name").max(
      MEASUREMENT_NAME_MAX,
      expected(`a measurement name of at most ${MEASUREMENT_NAME_MAX} characters (signatures carry it)`),
    ),
    ttl_seconds: int(1).default(120).describe("How long a signature stays matchable (event time)."),
    signature_rules: signatureRulesSchema,
    match_rules: z.array(matchRuleSchema).default([])
      .describe(
        "Downstream taps. Absent: every node searches all traffic of the source table but the source.",
      ),
    metadata_extraction: z
      .strictObject({ id_patterns: z.array(idPatternSchema).default([]) })
      .prefault({}),
  })
  .transform((m) => ({
    ...m,
    match_rules: m.match_rules.length > 0 ? m.match_rules : [defaultMatchRule(m.signature_rules)],
  }));

const pixieSchema = z.strictObject({
  cloud_addr: hostPort(false).default("work.withpixie.ai:443"),
  api_key: credential("a Pixie API key", "gRPC refuses to send (every query would fail)").default(""),
  cluster: z
    .string()
    .refine((s) => s === "" || isUuid(s) || CLUSTER_NAME.test(s), expected("a cluster UUID or name"))
    .default("")
    .describe("Cluster UUID or name."),
  direct_addr: z
    .string()
    .refine((s) => s === "" || parseHostPort(s) !== undefined, expected("host:port, or empty"))
    .default("")
    .describe("Standalone PEM host:port (plaintext); used instead of the cloud when set."),
  encryption: z.boolean().default(true),
  ca_file: z.string().default(""),
  scope: z.enum(["node", "pods"]).default("node")
    .describe(
      "node: filter on this node (the query runs on every PEM); pods: on this node's pods, from the Kubernetes " +
        "API, so Pixie runs it on this node's PEM only.",
    ),
});

const byteSize = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const bytes = typeof v === "number"
      ? (Number.isSafeInteger(v) && v > 0 ? v : undefined)
      : parseByteSize(v);
    if (bytes === undefined) {
      ctx.issues.push({
        code: "custom",
        message: "expected a byte size such as 1GiB, 512MiB or 1000000",
        input: v,
      });
      return z.NEVER;
    }
    return bytes;
  });

const natsSchema = z
  .strictObject({
    url: z
      .string()
      .superRefine((s, ctx) => {
        if (s === "" || s.split(",").every((u) => NATS_SERVER.test(u.trim()))) return;
        const websocket = s.split(",").some((u) => WEBSOCKET_SERVER.test(u.trim()));
        ctx.addIssue({
          code: "custom",
          message: "expected nats://host:port (several separated by commas), or empty",
          params: websocket
            ? {
              hint: "NATS over WebSocket is not supported: use the server's client port, nats:// or tls://",
            }
            : {},
        });
      })
      .default("")
      .describe("Empty: in-process bus, single node."),
    stream: z.string().regex(/^[A-Za-z0-9_-]+$/, expected("a stream name (letters, digits, _ and -)"))
      .default("FSMPX"),
    replicas: int(1, 5).default(1),
    retention: duration().default("168h"),
    credentials_file: z.string().default(""),
    user: credential("a user name", "the server refuses (Authorization Violation)").default(""),
    password: credential("a password", "the server refuses (Authorization Violation)").default(""),
    token: credential("a token", "the server refuses (Authorization Violation)").default(""),
    tls: z
      .strictObject({
        ca_file: z.string().default(""),
        cert_file: z.string().default(""),
        key_file: z.string().default(""),
      })
      .prefault({}),
    max_bytes: byteSize.prefault("1GiB").describe("Stream size limit: bytes, or a string such as 1GiB."),
    duplicate_window: duration().default("2m"),
    outbox_size: int(1).default(10000).describe("Messages kept while the bus is unreachable."),
    clock_skew_warn_ms: int(0).default(50),
  })
  .transform((n) => ({
    ...n,
    retention_ms: parseDuration(n.retention) ?? 0,
    duplicate_window_ms: parseDuration(n.duplicate_window) ?? 0,
  }));

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Headers fetch would refuse: it throws on every request ("Invalid header name", "Invalid header value: <the
 * value>", "not a valid ByteString"), so each export failed and its log line quoted the value, a token often.
 * The value is described, never shown.
 */
function headerProblems(headers: Record<string, string>, ctx: z.RefinementCtx): void {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) {
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: "expected a header name (letters, digits and !#$%&'*+-.^_`|~)",
        params: { found: JSON.stringify(name) },
      });
      continue;
    }
    // fetch trims spaces, tabs and line breaks at the ends (HTTP whitespace), then refuses NUL, CR, LF and
    // anything past U+00FF inside.
    const odd = [...value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "")].find((c) =>
      c.codePointAt(0)! > 0xff || /[\0\r\n]/.test(c)
    );
    if (odd !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: "expected a header value on one line, of Latin-1 characters",
        params: {
          found: /[\0\r\n]/.test(odd)
            ? "a value with a line break or NUL inside"
            : `a value holding U+${odd.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`,
        },
      });
    }
  }
}

const otlpSchema = z.strictObject({
  endpoint: z.string()
    .superRefine((s, ctx) => {
      // The exporter POSTs to `new URL(endpoint)`: one that matched the pattern but is no URL (a port over 65535,
      // a password holding `/`) loaded, then failed every export with "Invalid URL: '<the URL, password and all>'".
      if (s === "" || (/^https?:\/\/[^\s/]+(\/\S*)?$/.test(s) && URL.canParse(s))) return;
      ctx.addIssue({
        code: "custom",
        message: "expected an http(s) URL such as http://tempo:4318, or empty",
        params: s.includes("@") ? { hint: "in user:password@, write / @ : as %2F %40 %3A" } : {},
      });
    })
    .default("")
    .describe(
      "OTLP/HTTP receiver (Tempo, Jaeger, a collector) for each interval's journey as a trace. Empty: off.",
    ),
  headers: z.record(z.string(), z.string()).superRefine(headerProblems).default({})
    .describe("Extra request headers, e.g. X-Scope-OrgID (put secrets in ${VAR})."),
  service_name: z.string().min(1, expected("a service name")).default("fsm-px"),
});

const metricsSchema = z.strictObject({
  listen: hostPort(true).default("0.0.0.0:9464"),
  exemplars: z.boolean().default(true),
  latency_last_series: int(0).default(1000).describe("Most per-interval latency series kept."),
  latency_last_ttl_seconds: int(1).default(300),
});

const engineSchema = z.strictObject({
  lookback_seconds: positive().default(30).describe(
    "How far back in a target stream a signature is searched.",
  ),
  max_active_signatures: int(1).default(10000),
  match_threshold_ber: fraction(0, false, 0.5).default(DEFAULT_MATCH_THRESHOLDS.match_threshold_ber).describe(
    "Highest bit error rate of a match.",
  ),
  match_margin: fraction(0, true, 0.5).default(DEFAULT_MATCH_THRESHOLDS.match_margin)
    .describe("How much better than the second-best alignment the best must be."),
  max_streams: int(1).default(1000).describe(
    "Most streams a node follows at once, per measurement's source and for all stages together, each stage " +
      "owed an equal share (~0.35 MiB each with a 30 s lookback); past it the least recently active is finished " +
      "early once 2 s quiet, or the largest stage's for a stage below its share, and counted.",
  ),
  memory_limit_mib: int(0).optional().describe(
    "Live nodes: the memory the sensor must fit in, MiB (default: its container's memory limit; 0: none). When " +
      "max_streams would not fit, the target lookback is shortened (down to 12 s), then fewer streams are " +
      "followed (counted as the cap's are).",
  ),
  clock_window_seconds: positive().max(3600, expected("a number > 0 and <= 3600")).default(30).describe(
    "Largest clock difference tolerated: rows further ahead of the node's recent rows (or wall clock) do not " +
      "move its event clock, and signatures further ahead of it are refused.",
  ),
  late_row_seconds: positive().max(3600, expected("a number > 0 and <= 3600")).default(5).describe(
    "Live nodes: rows read more than this much later than usual (their event lag beyond the lowest of the last " +
      'minute, so clock offsets cancel) are dropped and counted in fsmpx_mailbox_dropped_total{reason="late"}: ' +
      "an overloaded sensor catches up instead of falling further behind.",
  ),
  search_before_source_seconds: positive().max(3600, expected("a number > 0 and <= 3600")).default(2)
    .describe(
      "Target audio captured up to this long before a signature's source instant is searched (clock skew); " +
        "widened on its own to the skew the nodes measure, up to clock_window_seconds.",
    ),
});

/** The whole config file. Parse with the loader (load.ts), which also interpolates and cross-checks. */
export const configSchema = z.strictObject({
  log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
  node: z.string().default("").describe("Node name; empty: $NODE_NAME, else the hostname."),
  pixie: pixieSchema.prefault({}),
  nats: natsSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  otlp: otlpSchema.prefault({}).describe("Traces over OTLP/HTTP (off unless endpoint is set)."),
  engine: engineSchema.prefault({}),
  packets: packetsSectionSchema.prefault({}).describe("Live packet capture on this node."),
  measurements: z.array(measurementSchema).min(1, expected("at least one measurement")),
});

/** A loaded config: every default filled, `node` resolved to a non-empty name. */
export type Config = z.output<typeof configSchema>;
/** What a config file may contain (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** One entry of `measurements`. */
export type Measurement = Config["measurements"][number];
/** A measurement's source tap. */
export type SignatureRules = Measurement["signature_rules"];
/** A measurement's downstream tap. */
export type MatchRule = Measurement["match_rules"][number];
/** Column names of a tap. */
export type Columns = SignatureRules["columns"];
/** One compiled `metadata_extraction.id_patterns` entry. */
export type IdPattern = Measurement["metadata_extraction"]["id_patterns"][number];
/** `pixie` section. */
export type PixieConfig = Config["pixie"];
/** `nats` section, with `retention_ms` and `duplicate_window_ms` derived. */
export type NatsConfig = Config["nats"];
/** A `packets:` tap of a rule. */
export type { PacketTapConfig } from "./packets_schema.ts";
/** The top-level `packets` section. */
export type { PacketsSection } from "./packets_schema.ts";
/** `metrics` section. */
export type MetricsConfig = Config["metrics"];
/** `engine` section. */
export type EngineConfig = Config["engine"];
