/**
 * `analyze`: offline analysis of capture files in event time, as fast as possible.
 * @module
 */
import { EXIT_OK, optString, type ParsedArgs, UsageError } from "./command.ts";
import { loadCommandConfig, progressBar } from "./common.ts";
import { readCaptures, rowsByQuery, runCaptures, runFacts, stageOrder } from "./capture_run.ts";
import { decodeErrorLines, diagnose, renderDiagnosis } from "../report/diagnosis.ts";
import { resolveConfigPath } from "../config/load.ts";
import { renderSummaryTable, summarize } from "../report/summary.ts";
import { stagePaths } from "../report/hops.ts";
import { recordSelection } from "./replay_cmd.ts";
import type { RecordSink } from "../actors/exporter.ts";

/** Runs `analyze`. */
export async function analyzeCommand(args: ParsedArgs): Promise<number> {
  const format = optString(args, "format") ?? "table";
  if (format !== "table" && format !== "json") {
    throw new UsageError(`--format expects table or json, got "${format}"`);
  }
  if (args.positionals.length === 0) throw new UsageError("give at least one capture file");
  const select = recordSelection(args);
  const { config } = await loadCommandConfig(args);
  const caps = await readCaptures(args.positionals, config);
  const total = caps.reduce((a, c) => a + c.rows.length, 0);

  const outPath = optString(args, "out");
  const sinks: RecordSink[] = [];
  let out: Deno.FsFile | undefined;
  if (outPath) {
    out = await Deno.open(outPath, { write: true, create: true, truncate: true });
    const enc = new TextEncoder();
    const write = async (rec: unknown) => {
      // FsFile.write may write part of the buffer; loop until the whole line is out.
      const bytes = enc.encode(JSON.stringify(rec) + "\n");
      for (let off = 0; off < bytes.length;) off += await out!.write(bytes.subarray(off));
    };
    sinks.push({ signature: write, match: write });
  }
  try {
    const result = await runCaptures(config, caps, {
      sinks,
      onProgress: total > 20_000 ? progressBar("analyze") : undefined,
    });
    const summary = summarize(result.signatures, result.matches, stageOrder(config), {
      paths: stagePaths(config),
      select,
    });
    // Why results are missing or few, from the engine's counters (decode errors by reason with an example).
    const configFile = await resolveConfigPath(optString(args, "config"));
    const facts = await runFacts(configFile, result.metrics.values(), result, result.problems);
    const diagnosis = diagnose(config, facts, { rowsOf: rowsByQuery(caps) });
    const failed = facts.decodeErrors.reduce((a, e) => a + e.count, 0);
    if (format === "json") {
      console.log(
        JSON.stringify({
          rows: result.rows,
          malformed_lines: result.problems,
          decode_errors: facts.decodeErrors,
          measurements: summary,
          diagnosis,
        }),
      );
    } else {
      console.log(
        `${result.rows} rows from ${caps.length} capture(s); ${result.problems} malformed line(s) skipped; ` +
          `${failed} payload(s) failed to decode` + (failed > 0 ? ":" : "\n"),
      );
      if (failed > 0) console.log(decodeErrorLines(diagnosis).join("\n") + "\n");
      console.log(renderSummaryTable(summary));
      const why = renderDiagnosis(diagnosis, ["decode_errors"]);
      if (why) console.log("\n" + why);
    }
  } finally {
    out?.close();
  }
  return EXIT_OK;
}
