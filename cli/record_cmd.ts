/**
 * `record`: runs the configured queries against the live cluster and writes a capture file, so a user can record
 * once in the cluster and analyze or replay offline.
 * @module
 */
import { EXIT_OK, optString, type ParsedArgs, parseDurationMs, UsageError } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { CaptureWriter } from "../pixie/capture.ts";
import { connectPixie, queriesFromConfig } from "../pixie/queries.ts";
import { PixieRowSource } from "../pixie/live_source.ts";
import { logger } from "../util/log.ts";

const log = logger("record");

/** Runs `record`. */
export async function recordCommand(args: ParsedArgs): Promise<number> {
  const out = optString(args, "out");
  if (!out) throw new UsageError("--out FILE is required");
  const durationMs = parseDurationMs(optString(args, "duration") ?? "60s", "--duration");
  const maxRowsText = optString(args, "max-rows");
  const maxRows = maxRowsText === undefined ? Infinity : Number(maxRowsText);
  if (!(maxRows > 0) || (maxRowsText !== undefined && !Number.isInteger(maxRows))) {
    throw new UsageError(`--max-rows expects a positive integer, got "${maxRowsText}"`);
  }
  const { config } = await loadCommandConfig(args);
  log.warn("captures contain audio payloads: store and share them like call recordings", { out });

  const { client, clusterId } = await connectPixie(config);
  const writer = await CaptureWriter.create(out, config.node);
  const ac = new AbortController();
  const stop = () => ac.abort();
  const timer = setTimeout(stop, durationMs);
  Deno.addSignalListener("SIGINT", stop);
  const perQuery = new Map<string, number>();
  try {
    const source = new PixieRowSource({
      client,
      clusterId,
      queries: queriesFromConfig(config, config.node),
      encryption: config.pixie.encryption && client.cloud,
    });
    await source.run(async (row) => {
      if (writer.rows >= maxRows) return stop();
      await writer.write(row);
      perQuery.set(row.query, (perQuery.get(row.query) ?? 0) + 1);
    }, ac.signal).catch((e) => {
      if (!ac.signal.aborted) throw e;
    });
  } finally {
    clearTimeout(timer);
    Deno.removeSignalListener("SIGINT", stop);
    await writer.close();
    client.close();
  }
  log.info("capture written", { out, rows: writer.rows, queries: Object.fromEntries(perQuery) });
  return EXIT_OK;
}
