/**
 * `ui`: the web UI over match records, from files written by `analyze --out` or, with `nats.url`, from
 * JetStream (the history of a time window, then a live tail). Serves until Ctrl-C.
 * @module
 */
import { EXIT_FAILURE, EXIT_OK, optString, type ParsedArgs, parseDurationMs } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { listenFromOption, optListen } from "./listen_option.ts";
import { stageOrder } from "./capture_run.ts";
import { loadRecordFiles, startUiServer } from "../http/ui_server.ts";
import { RecordStore } from "../http/ui/store.ts";
import { stagePaths } from "../report/hops.ts";
import { logger } from "../util/log.ts";
import { REPEAT_WINDOW_MS } from "../actors/shutdown.ts";

/** Where the UI listens unless `--listen` says otherwise. */
export const DEFAULT_UI_LISTEN = "127.0.0.1:8080";

/** The `--records` values (the option may repeat; positionals count as record files too). */
function recordFiles(args: ParsedArgs): string[] {
  const v = args.values["records"];
  const given = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  return [...given, ...args.positionals];
}

/**
 * Waits for SIGINT or SIGTERM. The listeners stay: the same Ctrl-C delivered twice (under `deno task` it reaches
 * the process from the terminal and again from the task runner, see actors/shutdown.ts) is ignored while the
 * caller shuts down (with the listeners gone the repeat killed the process, exit 130, whenever the shutdown took
 * longer than the two deliveries apart); a second signal after {@link REPEAT_WINDOW_MS} exits at once with 1.
 */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    let firstAt: number | null = null;
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => {
        const now = performance.now();
        if (firstAt === null) {
          firstAt = now;
          resolve(sig);
        } else if (now - firstAt >= REPEAT_WINDOW_MS) {
          logger("ui").warn("second signal; exiting without waiting for the shutdown", { signal: sig });
          Deno.exit(1);
        }
      });
    }
  });
}

/** Runs `ui`. */
export async function uiCommand(args: ParsedArgs): Promise<number> {
  const listen = optListen(args, "listen", DEFAULT_UI_LISTEN);
  const windowMs = parseDurationMs(optString(args, "since") ?? "1h", "--since");
  const files = recordFiles(args);
  const loaded = await loadCommandConfig(args);
  const { config } = loaded;
  // Over JetStream the store keeps the window's records as the tail goes on (files: every record).
  const store = new RecordStore(stagePaths(config), stageOrder(config), files.length > 0 ? {} : { windowMs });
  const log = logger("ui");

  let stopTail: (() => Promise<void>) | undefined;
  let closeNats: (() => Promise<void>) | undefined;
  if (files.length > 0) {
    const n = await loadRecordFiles(store, files);
    console.log(`${n} records from ${files.length} file(s); ${store.skipped} line(s) skipped`);
  } else if (config.nats.url !== "") {
    // Imported here: a UI over files never loads the NATS client.
    const { connectNats } = await import("../bus/connection.ts");
    const { natsConnectOptions } = await import("./bus_from_config.ts");
    const { readHistory, tailRecords } = await import("../http/ui/jetstream_source.ts");
    const nc = await connectNats({ ...natsConnectOptions(config), name: "fsmpx-ui" });
    closeNats = () => nc.close().catch(() => {});
    const startMs = Date.now() - windowMs;
    const history = await readHistory(
      nc,
      config.nats.stream,
      startMs,
      (r, storedMs) => store.add(r, storedMs),
      () => store.skipped++,
    );
    console.log(
      `${history.records} records from JetStream stream ${config.nats.stream} ` +
        `(last ${optString(args, "since") ?? "1h"})`,
    );
    // The tail starts at the history's last message by the server's clock (stored times are the server's): it
    // repeats that message and any stored in the same ms, which the store holds once, and misses none stored
    // after it, whatever this host's clock says (starting at this host's "now" lost what was stored while the
    // server's clock caught up with a host clock ahead of it). A history cut short by a stalled read is
    // completed by the tail. No history: from the window's start.
    const tail = await tailRecords(
      nc,
      config.nats.stream,
      history.lastStoredMs ?? startMs,
      (r, storedMs) => store.add(r, storedMs),
      {
        onSkip: () => store.skipped++,
      },
    );
    stopTail = () => tail.stop();
  } else {
    log.error("nothing to show: give --records FILE (from analyze --out) or set nats.url", {});
    return EXIT_FAILURE;
  }
  const server = listenFromOption("listen", () => startUiServer({ listen, store, title: loaded.file }));
  console.log(`fsm-px UI at ${server.url} (Ctrl-C stops)`);
  await untilSignal();
  await stopTail?.();
  await closeNats?.();
  await server.close();
  return EXIT_OK;
}
