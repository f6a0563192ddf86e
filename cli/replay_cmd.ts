/**
 * `replay`: offline analysis of the signatures and match records stored in JetStream, by time range (the time
 * the server stored them). Works against a server the sensors have left.
 * @module
 */
import { EXIT_FAILURE, EXIT_OK, optString, type ParsedArgs, parseDurationMs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { stageOrder } from "./capture_run.ts";
import { natsConnectOptions } from "../bus/from_config.ts";
import { readRecords } from "../bus/replay_reader.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { renderSummaryCsv, renderSummaryTable, summarize } from "../report/summary.ts";
import { logger } from "../util/log.ts";

/** Parses an RFC 3339 time (or anything Date accepts that includes a date) into epoch ms. */
export function parseTime(text: string, what: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new UsageError(`${what} expects an RFC 3339 time like 2026-11-23T10:00:00Z, got "${text}"`);
  }
  return ms;
}

/** Runs `replay`. */
export async function replayCommand(args: ParsedArgs): Promise<number> {
  const format = optString(args, "format") ?? "table";
  if (!["table", "json", "csv"].includes(format)) {
    throw new UsageError(`--format expects table, json or csv, got "${format}"`);
  }
  const since = optString(args, "since");
  const start = optString(args, "start");
  if (since !== undefined && start !== undefined) throw new UsageError("give --since or --start, not both");
  const now = Date.now();
  const startMs = start !== undefined
    ? parseTime(start, "--start")
    : now - parseDurationMs(since ?? "1h", "--since");
  const untilText = optString(args, "until");
  const untilMs = untilText !== undefined ? parseTime(untilText, "--until") : undefined;
  if (untilMs !== undefined && untilMs < startMs) {
    throw new UsageError("--until is before the start of the range");
  }
  const measurement = optString(args, "measurement");

  const { config } = await loadCommandConfig(args);
  if (config.nats.url === "") {
    logger("replay").error("nats.url is empty: replay reads the JetStream stream the sensors publish to", {});
    return EXIT_FAILURE;
  }
  const signatures: SignatureRecord[] = [];
  const matches: MatchRecord[] = [];
  for await (
    const rec of readRecords(natsConnectOptions(config), {
      stream: config.nats.stream,
      startMs,
      untilMs,
      measurement,
    })
  ) {
    if (format === "json") console.log(JSON.stringify(rec));
    else if (rec.kind === "signature") signatures.push(rec);
    else matches.push(rec);
  }
  if (format === "json") return EXIT_OK;
  const summary = summarize(signatures, matches, stageOrder(config));
  console.log(format === "csv" ? renderSummaryCsv(summary) : renderSummaryTable(summary));
  return EXIT_OK;
}
