/**
 * Entry point of every command: dispatch, help, logging setup and the mapping of errors to exit codes.
 * @module
 */
import {
  type Command,
  commonOptions,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  helpText,
  optionLines,
  parseCommandArgs,
  UsageError,
} from "./command.ts";
import { isLogLevel, logger, redact, setLogLevel } from "../util/log.ts";
import { COMMANDS } from "./commands.ts";

const log = logger("main");

/** Top-level usage text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "fsm-px: audio latency measurement for voice pipelines on Kubernetes",
    "",
    "usage: deno task <command> [options]      (or: deno run ... main.ts <command> [options])",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "common options:",
    ...optionLines(commonOptions()),
    "",
    "exit codes: 0 success, 2 usage or configuration error, 1 runtime failure",
  ].join("\n");
}

/** An error that carries its own exit code and a user-facing text (e.g. a ConfigError). */
interface ReportableError {
  exitCode: number;
  format(): string;
}

function isReportable(e: unknown): e is ReportableError {
  return e instanceof Error && typeof (e as Partial<ReportableError>).exitCode === "number" &&
    typeof (e as Partial<ReportableError>).format === "function";
}

/** Runs the command line `argv`; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const cmd: Command | undefined = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`fsm-px: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  try {
    const args = parseCommandArgs(cmd, rest);
    if (args.values["help"]) {
      console.log(helpText(cmd));
      return EXIT_OK;
    }
    const level = args.values["log-level"];
    // The parser has checked the word against the option's choices.
    if (typeof level === "string" && isLogLevel(level)) setLogLevel(level);
    return await cmd.run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`fsm-px ${cmd.name}: ${e.message}\nrun 'deno task ${cmd.name} --help' for usage`);
      return EXIT_USAGE;
    }
    if (isReportable(e)) {
      console.error(redact(e.format()));
      return e.exitCode;
    }
    log.error("command failed", { command: cmd.name, error: redact((e as Error).message ?? String(e)) });
    return EXIT_FAILURE;
  }
}
