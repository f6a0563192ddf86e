/**
 * `check`: what a config will do, without Pixie. Validates the config (every problem at file:line:col with the
 * corrected line; exit 2), prints the PxL script the sensor of a node runs with the table, columns and stream
 * key of every query, and, for capture files given, what each stream decodes to: rows, decode errors by reason
 * with an example row, signatures and matches, through the same engine as `analyze`.
 *
 * The capture part is {@link checkRowInputs}: it takes rows as async iterables, so any row source (JSON Lines
 * captures, pcap files turned into rows, a live reader) can be checked the same way.
 * @module
 */
import { parse } from "yaml";
import { EXIT_OK, EXIT_USAGE, optString, type ParsedArgs } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { readCaptures, rowsByQuery, runCaptures, runFacts } from "./capture_run.ts";
import { ConfigError } from "../config/errors.ts";
import { resolveConfigPath } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { Capture } from "../pixie/capture.ts";
import { composeScript, PxlComposeError } from "../pixie/pxl.ts";
import { checkStreamFilter } from "../pixie/pxl_check.ts";
import { queriesFromConfig } from "./pixie_queries.ts";
import type { Row } from "../pixie/row.ts";
import { parseQueryName, queryNamesOf, SOURCE_TAP } from "../util/query_name.ts";
import { diagnose, type Diagnosis, renderDiagnosis } from "../report/diagnosis.ts";
import { terminalText } from "../util/printable.ts";

/** One source of rows to check: a capture file, or anything else that yields rows. */
export interface RowInput {
  /** What to call it in the report (a file name). */
  label: string;
  /** The node whose sensor saw the rows. */
  node: string;
  rows: AsyncIterable<Row>;
  /** Lines or records of the source that could not be read (already counted by its reader). */
  malformed?: number;
}

/** What one query's rows of one input came to. */
export interface StreamReport {
  /** `<measurement>/<tap>`. */
  query: string;
  rows: number;
  /** Rows whose payload did not decode, by reason. */
  decodeErrors: Record<string, number>;
  /**
   * Of {@link decodeErrors}, rows that are not audio by design (the stream's events, text on its connection; the
   * diagnosis's `no_audio` findings): not failures.
   */
  noAudio: number;
  /** Source streams: signatures made. */
  signatures?: number;
  /** Stages: matches found (of signatures from any input). */
  matches?: number;
  /** No measurement names this query: its rows are ignored. */
  unnamed: boolean;
}

/** What one input came to. */
export interface InputReport {
  label: string;
  node: string;
  rows: number;
  malformed: number;
  streams: StreamReport[];
  /** This input's own findings: decode errors with an example row, bodies cut by Pixie, format guesses. */
  diagnosis: Diagnosis;
}

/** What {@link checkRowInputs} found. */
export interface RowCheck {
  inputs: InputReport[];
  /** The whole run: why there are no or few signatures or matches. */
  diagnosis: Diagnosis;
}

/** Findings about one input's rows; the others (signatures, matches) are about the whole run. */
const PER_INPUT: readonly Diagnosis["findings"][number]["kind"][] = [
  "decode_errors",
  "no_audio",
  "audio_mismatch",
  "truncated",
];

async function collect(rows: AsyncIterable<Row>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const r of rows) out.push(r);
  return out;
}

/**
 * Runs the inputs through the engine together (one node per input node, over the in-process bus, in event time
 * as `analyze` does, so stages match the signatures of other inputs) and reports each input's streams.
 */
export async function checkRowInputs(
  config: Config,
  configFile: string,
  inputs: readonly RowInput[],
): Promise<RowCheck> {
  const caps: Capture[] = [];
  for (const input of inputs) {
    caps.push({ file: input.label, node: input.node, rows: await collect(input.rows), problems: [] });
  }
  const result = await runCaptures(config, caps);
  const named = new Set(config.measurements.flatMap(queryNamesOf));
  const reports: InputReport[] = [];
  for (const [i, input] of inputs.entries()) {
    const cap = caps[i]!;
    const metrics = result.metrics.get(cap.node);
    const mine = {
      signatures: result.signatures.filter((s) => s.node === cap.node),
      matches: result.matches.filter((m) => m.target.node === cap.node),
    };
    const facts = await runFacts(configFile, metrics ? [metrics] : [], mine, input.malformed ?? 0);
    const diagnosis = diagnose(config, facts, { rowsOf: rowsByQuery([cap]) });
    const queries = new Map<string, number>();
    for (const r of cap.rows) queries.set(r.query, (queries.get(r.query) ?? 0) + 1);
    const streams: StreamReport[] = [...queries].sort(([a], [b]) => a.localeCompare(b)).map(
      ([query, rows]) => {
        const q = parseQueryName(query);
        const noAudio = diagnosis.findings.reduce(
          (a, f) => a + (f.kind === "no_audio" && f.query === query ? f.rows ?? 0 : 0),
          0,
        );
        const report: StreamReport = { query, rows, decodeErrors: {}, noAudio, unnamed: !named.has(query) };
        for (const e of facts.decodeErrors) {
          if (q && e.measurement === q.measurement && e.stream === q.tap) {
            report.decodeErrors[e.reason] = e.count;
          }
        }
        if (q?.tap === SOURCE_TAP) {
          report.signatures = mine.signatures.filter((s) => s.measurement === q.measurement).length;
        } else if (q) {
          report.matches = mine.matches.filter((m) => m.measurement === q.measurement && m.stage === q.tap)
            .length;
        }
        return report;
      },
    );
    reports.push({
      label: input.label,
      node: cap.node,
      rows: cap.rows.length,
      malformed: input.malformed ?? 0,
      streams,
      diagnosis,
    });
  }
  const all = await runFacts(configFile, result.metrics.values(), result, 0);
  return { inputs: reports, diagnosis: diagnose(config, all, { rowsOf: rowsByQuery(caps) }) };
}

/** Renders one input's report as text lines. */
export function renderInputReport(r: InputReport): string[] {
  const lines = [
    `capture ${r.label} (node ${r.node}): ${r.rows} rows` +
    (r.malformed > 0 ? `, ${r.malformed} malformed lines skipped` : ""),
  ];
  for (const s of r.streams) {
    const undecoded = Object.values(s.decodeErrors).reduce((a, b) => a + b, 0);
    const outcome = s.unnamed
      ? "no measurement names this query: its rows are ignored"
      : `${s.rows - undecoded} decoded, ${undecoded - s.noAudio} failed to decode` +
        (s.noAudio > 0 ? `, ${s.noAudio} without audio` : "") +
        (s.signatures !== undefined ? `, ${s.signatures} signatures` : `, ${s.matches ?? 0} matches`);
    lines.push(`  ${s.query}: ${s.rows} rows, ${outcome}`);
    const reasons = Object.entries(s.decodeErrors).sort(([, a], [, b]) => b - a);
    if (reasons.length > 0) {
      lines.push(`    decode errors: ${reasons.map(([k, v]) => `${k} ${v}`).join(", ")}`);
    }
  }
  for (const f of r.diagnosis.findings.filter((f) => PER_INPUT.includes(f.kind))) {
    lines.push(`  - ${f.text}`, ...f.detail.map((d) => `      ${d}`));
  }
  return lines;
}

/** The corrected text of every stream_filter that has fixes, from the raw file (when the config fails to load). */
async function correctedFilters(file: string | undefined): Promise<string[]> {
  if (!file) return [];
  let data: unknown;
  try {
    data = parse(await Deno.readTextFile(file));
  } catch {
    return [];
  }
  const lines: string[] = [];
  const measurements = (data as { measurements?: unknown })?.measurements;
  if (!Array.isArray(measurements)) return lines;
  const show = (where: string, filter: unknown) => {
    if (typeof filter !== "string") return;
    const fixed = checkStreamFilter(filter).corrected;
    if (fixed === undefined) return;
    lines.push(`${where}.stream_filter, corrected:`, ...fixed.trimEnd().split("\n").map((l) => `    ${l}`));
  };
  measurements.forEach((m: unknown, i) => {
    const rec = m as { signature_rules?: { stream_filter?: unknown }; match_rules?: unknown };
    show(`measurements[${i}].signature_rules`, rec?.signature_rules?.stream_filter);
    if (Array.isArray(rec?.match_rules)) {
      rec.match_rules.forEach((r: unknown, j) => {
        show(`measurements[${i}].match_rules[${j}]`, (r as { stream_filter?: unknown })?.stream_filter);
      });
    }
  });
  return lines;
}

/** Runs `check`. */
export async function checkCommand(args: ParsedArgs): Promise<number> {
  let loaded;
  try {
    loaded = await loadCommandConfig(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(e.format());
    let file: string | undefined;
    try {
      file = await resolveConfigPath(optString(args, "config"));
    } catch {
      file = undefined;
    }
    const fixes = await correctedFilters(file);
    if (fixes.length > 0) console.log(fixes.join("\n"));
    return e.exitCode;
  }
  const { config, file, warnings } = loaded;
  const node = optString(args, "node") ?? config.node;
  // pixie.scope: pods scopes the sensor's queries to the node's pods (listed from the Kubernetes API when it starts)
  // instead of the node: the script shows that filter, with placeholders for the pods check cannot list.
  const podScoped = config.pixie.scope === "pods";
  const queries = queriesFromConfig(config, node).map((q) =>
    podScoped
      ? { ...q, scope: { kind: "pods" as const, pods: [`<pod 1 on ${node}>`, `<pod 2 on ${node}>`] } }
      : q
  );
  const packetTaps = config.measurements.reduce(
    (a, m) =>
      a + (m.signature_rules.stream_filter === undefined ? 1 : 0) +
      m.match_rules.filter((r) => r.stream_filter === undefined).length,
    0,
  );
  console.log(
    `config ${file}: OK (${config.measurements.length} measurement(s), ${queries.length} Pixie queries` +
      (packetTaps > 0 ? `, ${packetTaps} packet taps` : "") + `)`,
  );
  for (const w of warnings) {
    console.log(`warning: ${w.file}:${w.line}:${w.col}: ${w.path}: expected ${w.expected}, found ${w.found}`);
  }

  if (queries.length > 0) {
    for (const q of queries) {
      const table = checkStreamFilter(q.streamFilter).table ?? "?";
      const c = q.columns;
      console.log(
        `  ${q.name}: table ${table}; columns time=${c.time} pod=${c.pod} (df.ctx['pod']) payload=${c.payload}` +
          (c.body_size ? ` body_size=${c.body_size}` : "") +
          (c.latency ? ` latency=${c.latency} (the payload's time is ${c.time} − ${c.latency})` : "") +
          `; stream key ${q.streamKeyColumns.join(", ")}`,
      );
    }
    let script: string;
    try {
      script = composeScript(queries).script;
    } catch (e) {
      if (!(e instanceof PxlComposeError)) throw e;
      console.error(`${file}: ${e.message}`);
      return EXIT_USAGE;
    }
    console.log(
      `\nPxL the sensor on node ${node} runs (your filters as written; fsm-px rewrites nothing):\n` +
        (podScoped
          ? "(pixie.scope pods: one df.ctx['pod'] condition per pod on the node, from the Kubernetes API)\n"
          : ""),
    );
    console.log(script.trimEnd().split("\n").map((l) => `    ${l}`).join("\n"));
  }

  if (args.positionals.length > 0) {
    const caps = await readCaptures(args.positionals, config);
    const inputs: RowInput[] = caps.map((c) => ({
      label: c.file,
      node: c.node,
      rows: (async function* () {
        yield* c.rows;
      })(),
      malformed: c.problems.length,
    }));
    const checked = await checkRowInputs(config, file, inputs);
    // Examples quote the captures' rows: no control character of theirs reaches the terminal.
    for (const r of checked.inputs) console.log(terminalText("\n" + renderInputReport(r).join("\n")));
    const why = renderDiagnosis(checked.diagnosis, PER_INPUT);
    if (why) console.log(terminalText("\n" + why));
  }
  return EXIT_OK;
}
