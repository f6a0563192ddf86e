/**
 * `replay`: offline analysis of records stored in JetStream.
 * @module
 */
import { EXIT_FAILURE, type ParsedArgs } from "./command.ts";
import { loadCommandConfig } from "./common.ts";
import { logger } from "../util/log.ts";

/** Runs `replay`. */
export async function replayCommand(args: ParsedArgs): Promise<number> {
  await loadCommandConfig(args);
  logger("replay").error("replay from JetStream is not in this build yet (the JetStream bus lands with issue #6)", {});
  return EXIT_FAILURE;
}
