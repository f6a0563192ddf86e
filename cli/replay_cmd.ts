/**
 * `replay`: offline analysis of the signatures and match records stored in JetStream, by time range (the time
 * the server stored them). Works against a server the sensors have left.
 * @module
 */
import { configIssue } from "../config/load.ts";
import { EXIT_OK, optFormat, optString, type ParsedArgs, parseDurationMs, UsageError } from "./command.ts";
import { NAME_PATTERN } from "../config/schema.ts";
import { checkOutFile, loadCommandConfig } from "./common.ts";
import { stageOrder } from "./capture_run.ts";
import { natsConnectOptions } from "./bus_from_config.ts";
import { readRecords } from "../bus/replay_reader.ts";
import type { AnyRecord, MatchRecord, SignatureRecord } from "../report/records.ts";
import { renderSummaryCsv, renderSummaryTable, selectRecords, summarize } from "../report/summary.ts";
import { addHops, stagePaths } from "../report/hops.ts";
import { recordSelection } from "./record_selection.ts";
import { matchDedupeId } from "../bus/subjects.ts";
import { logger } from "../util/log.ts";
import { terminalText } from "../util/printable.ts";

const log = logger("replay");

/** A date, then optionally a time and a zone: what {@link parseTime} hands to Date.parse. */
const RFC3339ISH = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * Parses an RFC 3339 time (a date, optionally a time and a zone) into epoch ms; `now` is `nowMs` (the
 * help shows `--until`'s default as "now", so the word is accepted as written).
 */
export function parseTime(text: string, what: string, nowMs: number = Date.now()): number {
  if (text.trim().toLowerCase() === "now") return nowMs;
  // Date.parse also takes what is no RFC 3339 time and guesses: "5" is 2001-05-01, "May 3" a day of 2001. A date,
  // then optionally a time and a zone (without one, the host's: UTC in a pod), as before.
  const ms = RFC3339ISH.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(`${what} expects an RFC 3339 time like 2026-11-23T10:00:00Z or now, got "${text}"`);
  }
  return ms;
}

/** Runs `replay`. */
export async function replayCommand(args: ParsedArgs): Promise<number> {
  // `replay --format json` has always printed the records exactly as `analyze --out` writes them (a contract
  // scripts depend on): it stays the same as `--format records`.
  const asked = optFormat(args);
  const format = asked === "json" ? "records" : asked;
  const outPath = optString(args, "out");
  const since = optString(args, "since");
  const start = optString(args, "start");
  if (since !== undefined && start !== undefined) throw new UsageError("give --since or --start, not both");
  const now = Date.now();
  const startMs = start !== undefined
    ? parseTime(start, "--start", now)
    : now - parseDurationMs(since ?? "1h", "--since");
  const untilText = optString(args, "until");
  const untilMs = untilText !== undefined ? parseTime(untilText, "--until", now) : undefined;
  if (untilMs !== undefined && untilMs < startMs) {
    throw new UsageError("--until is before the start of the range");
  }
  const measurement = optString(args, "measurement");
  if (measurement !== undefined && !NAME_PATTERN.test(measurement)) {
    // It names the stream's subjects: a dot or a wildcard would read other measurements' records, or fail later.
    throw new UsageError(
      `--measurement expects a measurement name (${NAME_PATTERN.source}), got "${measurement}"`,
    );
  }
  const select = recordSelection(args);
  if (outPath !== undefined) await checkOutFile(outPath);

  const { config } = await loadCommandConfig(args);
  if (config.nats.url === "") {
    throw configIssue(
      config,
      ["nats", "url"],
      "a NATS URL (replay reads the JetStream stream the sensors publish to)",
      "an empty value",
    );
  }
  const signatures: SignatureRecord[] = [];
  const matches: MatchRecord[] = [];
  const ordered: AnyRecord[] = [];
  // The stream drops a repeated message id only within its dedupe window: a record republished after an outage
  // longer than that (its first ack lost) is stored twice. Held once, by the message id it was published with,
  // as the UI's store does.
  const seen = new Set<string>();
  let repeated = 0;
  for await (
    const rec of readRecords(natsConnectOptions(config), {
      stream: config.nats.stream,
      startMs,
      untilMs,
      measurement,
      // A read the server stalls for good is an error: printing part of the range as if it were all is worse.
      stallError: true,
    })
  ) {
    const id = rec.kind === "signature" ? `signature ${rec.signature_id}` : `match ${matchDedupeId(rec)}`;
    if (seen.has(id)) {
      repeated++;
      continue;
    }
    seen.add(id);
    ordered.push(rec);
    if (rec.kind === "signature") signatures.push(rec);
    else matches.push(rec);
  }
  if (repeated > 0) log.info("records stored more than once read once", { repeated });
  if (
    measurement !== undefined && ordered.length === 0 &&
    !config.measurements.some((m) => m.name === measurement)
  ) {
    // A mistyped name read nothing and was told "no signatures and no matches", as if the range were empty.
    console.error(
      `replay: no records of measurement "${measurement}", which ${
        optString(args, "config") ?? "the config"
      } does not name ` +
        `either (it names ${config.measurements.map((m) => m.name).join(", ")})`,
    );
  }
  const paths = stagePaths(config);
  if (format === "records" || outPath !== undefined) {
    // Hops need every match of a signature, so records are written once all are read, with hops computed
    // from the whole range (the same records `analyze --out` writes, plus hops a live node could not know).
    const withHops = addHops(matches, paths);
    const hopped = new Map(matches.map((m, i) => [m, withHops[i]!]));
    const picked = selectRecords(signatures, withHops, select);
    const keep = new Set<unknown>([...picked.signatures, ...picked.matches]);
    const lines: string[] = [];
    for (const rec of ordered) {
      const out = rec.kind === "match" ? hopped.get(rec)! : rec;
      if (keep.has(out)) lines.push(JSON.stringify(out));
    }
    if (outPath !== undefined) await Deno.writeTextFile(outPath, lines.map((l) => l + "\n").join(""));
    if (format === "records") {
      for (const l of lines) console.log(l);
      return EXIT_OK;
    }
  }
  const summary = summarize(signatures, matches, stageOrder(config), { paths, select });
  if (format === "summary") console.log(JSON.stringify({ measurements: summary }));
  // The records are any publisher's: no control character of theirs reaches the terminal.
  else {console.log(
      format === "csv" ? renderSummaryCsv(summary).trimEnd() : terminalText(renderSummaryTable(summary)),
    );}
  return EXIT_OK;
}
