/**
 * `analyze`: offline analysis of capture files in event time, as fast as possible.
 * @module
 */
import { EXIT_OK, optFormat, optString, type ParsedArgs, UsageError } from "./command.ts";
import { checkOutFile, loadCommandConfig, progressBar } from "./common.ts";
import { openCaptures, runCaptureSources, runFacts, stageOrder } from "./capture_run.ts";
import { decodeErrorLines, diagnose, renderDiagnosis } from "../report/diagnosis.ts";
import { resolveConfigPath } from "../config/load.ts";
import { renderSummaryCsv, renderSummaryTable, summarize } from "../report/summary.ts";
import { addHops, type StagePaths, stagePaths } from "../report/hops.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { recordSelection } from "./record_selection.ts";
import type { RecordSink } from "../actors/exporter.ts";
import { terminalText } from "../util/printable.ts";

/** Runs `analyze`. */
export async function analyzeCommand(args: ParsedArgs): Promise<number> {
  // `summary` is the same JSON document as `json` (replay's `json` prints records: a contract kept from before).
  const asked = optFormat(args);
  const format = asked === "summary" ? "json" : asked;
  if (args.positionals.length === 0) throw new UsageError("give at least one capture file");
  const select = recordSelection(args);
  const outPath = optString(args, "out");
  // Before the run: records are written once it is over.
  if (outPath !== undefined) await checkOutFile(outPath);
  const { config } = await loadCommandConfig(args);
  // Read as a stream: rows are handed on as they are parsed, so memory does not grow with the captures.
  const caps = await openCaptures(args.positionals, config);
  const total = caps.reduce((a, c) => a + c.size, 0);

  // Records are written once the run is over, with every hop computed from all matches (a live node can only
  // add a hop when the previous stage's match came first; offline, all of them are known): the same records
  // on every run.
  const ordered: (SignatureRecord | MatchRecord)[] = [];
  const sinks: RecordSink[] = [];
  if (outPath !== undefined || format === "records") {
    sinks.push({ signature: (r) => void ordered.push(r), match: (r) => void ordered.push(r) });
  }
  const result = await runCaptureSources(config, caps, {
    sinks,
    onBytes: total > 8_000_000 ? progressBar("analyze") : undefined,
  });
  const summary = summarize(result.signatures, result.matches, stageOrder(config), {
    paths: stagePaths(config),
    select,
  });
  // Why results are missing or few, from the engine's counters (decode errors by reason with an example).
  const configFile = await resolveConfigPath(optString(args, "config"));
  const facts = await runFacts(configFile, result.metrics.values(), result, result.problems);
  // Examples and levels come from the first rows of each query (a bounded sample), not the whole capture.
  const diagnosis = diagnose(config, facts, { rowsOf: result.sample.rowsOf });
  // Rows that are not audio by design (a stream's events, text on its connection) are not failures.
  const noAudio = diagnosis.findings.reduce((a, f) => a + (f.kind === "no_audio" ? f.rows ?? 0 : 0), 0);
  const failed = facts.decodeErrors.reduce((a, e) => a + e.count, 0) - noAudio;
  if (ordered.length > 0 || outPath !== undefined || format === "records") {
    const lines = recordLines(ordered, stagePaths(config));
    if (outPath !== undefined) await Deno.writeTextFile(outPath, lines.map((l) => l + "\n").join(""));
    if (format === "records") {
      for (const l of lines) console.log(l);
      return EXIT_OK;
    }
  }
  if (format === "json") {
    const { configFile: config_file, ...why } = diagnosis;
    console.log(
      JSON.stringify({
        rows: result.rows,
        malformed_lines: result.problems,
        decode_errors: facts.decodeErrors,
        measurements: summary,
        diagnosis: { ...why, config_file },
      }),
    );
  } else if (format === "csv") {
    console.log(renderSummaryCsv(summary).trimEnd());
  } else {
    console.log(
      `${result.rows} rows from ${caps.length} capture(s); ${result.problems} malformed line(s) skipped; ` +
        `${failed} payload(s) failed to decode` +
        (noAudio > 0 ? `; ${noAudio} message(s) without audio (the streams' events, text)` : "") +
        (failed + noAudio > 0 ? ":" : "\n"),
    );
    // Stream keys, ids and payload previews come from traffic: no control character of theirs reaches the terminal.
    if (failed + noAudio > 0) console.log(terminalText(decodeErrorLines(diagnosis).join("\n") + "\n"));
    console.log(terminalText(renderSummaryTable(summary)));
    const why = renderDiagnosis(diagnosis, ["decode_errors"]);
    if (why) console.log(terminalText("\n" + why));
  }
  return EXIT_OK;
}

/** Records as JSON lines in the order they were made, each match with its hop from all matches of the run. */
function recordLines(ordered: readonly (SignatureRecord | MatchRecord)[], paths: StagePaths): string[] {
  const matches = ordered.filter((r): r is MatchRecord => r.kind === "match");
  const hopped = new Map<MatchRecord, MatchRecord>();
  addHops(matches, paths).forEach((m, i) => hopped.set(matches[i]!, m));
  return ordered.map((r) => JSON.stringify(r.kind === "match" ? hopped.get(r)! : r));
}
