/**
 * The command-line grammar every subcommand shares: options declared once (name, value, help, default,
 * choices), one parser for them, help generated from the declarations, one set of output formats, and the
 * errors that map to exit codes: 0 success, 2 usage or configuration error, 1 runtime failure.
 * @module
 */
import { didYouMean } from "../util/suggest.ts";
import { DURATION_EXAMPLES, parseDuration } from "../util/duration.ts";

/** Exit codes of every command. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A wrong command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** One option of a command. */
export interface OptionSpec {
  /** `flag`: no value; `value`: one value (a repeat replaces it); `list`: a value that may repeat. */
  kind: "flag" | "value" | "list";
  /** One-letter alias (`-c`). */
  short?: string;
  /** What the value is, in the help and in messages (`FILE`, `D`, `HOST:PORT`). */
  arg?: string;
  /** One or two sentences for the help. */
  help: string;
  /** The default, as the help shows it. */
  default?: string;
  /** The only values accepted (the parser refuses others); listed in the help. */
  choices?: readonly string[];
  /** The command cannot run without it (shown in the usage line, enforced by the parser). */
  required?: boolean;
}

/** Options by long name. */
export type OptionSpecs = Record<string, OptionSpec>;

/** Parsed command line of one subcommand. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** One subcommand of `main.ts`. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** What the command does, for `--help` (between the usage line and the options). */
  about: string;
  /** The positional arguments as the usage line names them (`CAPTURE...`); absent: none accepted. */
  positionals?: string;
  /** Command-specific options (the common ones are added unless `config` is false). */
  options: OptionSpecs;
  /** `--config`: its default as this command's help shows it, or false when the command reads no config. */
  config?: string | false;
  run(args: ParsedArgs): Promise<number>;
}

/** Where `--config` is looked for unless a command says otherwise. */
export const DEFAULT_CONFIG_TEXT = "config.yaml, then example-config.yaml";

/** The options every command accepts (`config`: the help's default for `--config`, or false for none). */
export function commonOptions(config: string | false = DEFAULT_CONFIG_TEXT): OptionSpecs {
  const help: OptionSpec = { kind: "flag", short: "h", help: "this help" };
  if (config === false) return { help };
  return {
    config: { kind: "value", short: "c", arg: "FILE", help: "configuration", default: config },
    "log-level": {
      kind: "value",
      arg: "LEVEL",
      help: "log level",
      choices: ["debug", "info", "warn", "error"],
      default: "$FSMPX_LOG_LEVEL, else the config's log_level",
    },
    help,
  };
}

/** Every option of `cmd`, common ones first. */
export function optionsOf(cmd: Command): OptionSpecs {
  return { ...commonOptions(cmd.config), ...cmd.options };
}

/** Output formats, the same words with the same meaning for every command that prints results. */
export const FORMATS = {
  table: "tables for people (ms)",
  json: "one JSON document (snake_case, units in the key names)",
  summary: "the summary as one JSON document (as analyze's json)",
  csv: "a row per stage",
  records: "the records as JSON Lines, as --out writes them",
} as const;

/** One of {@link FORMATS}. */
export type Format = keyof typeof FORMATS;

/**
 * The `--format` option of a command that prints in `choices` (the first is the default). `meaning` replaces
 * {@link FORMATS}' words for a format that means something else for this command (replay's json, kept for
 * scripts, is its records), so that the help says what the command prints.
 */
export function formatOption(
  choices: readonly Format[],
  meaning: Partial<Record<Format, string>> = {},
): OptionSpec {
  return {
    kind: "value",
    arg: "FMT",
    help: choices.map((c) => `${c}: ${meaning[c] ?? FORMATS[c]}`).join("; "),
    choices,
    default: choices[0],
  };
}

/** The `--format` a command was given (the parser has checked it against the command's choices). */
export function optFormat(args: ParsedArgs, fallback: Format = "table"): Format {
  const v = optString(args, "format");
  return v !== undefined && v in FORMATS ? v as Format : fallback;
}

function nameOf(spec: OptionSpec, name: string): string {
  return spec.arg ? `--${name} ${spec.arg}` : `--${name}`;
}

function choiceList(choices: readonly string[]): string {
  return choices.length <= 1 ? choices.join("") : `${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`;
}

/** Parses `argv` for `cmd`; every mistake is a UsageError that says what was expected. */
export function parseCommandArgs(cmd: Command, argv: readonly string[]): ParsedArgs {
  const specs = optionsOf(cmd);
  const byShort = new Map(Object.entries(specs).flatMap(([n, s]) => s.short ? [[s.short, n] as const] : []));
  const values: ParsedArgs["values"] = {};
  const positionals: string[] = [];
  const names = Object.keys(specs).map((n) => `--${n}`);
  const unknown = (word: string): UsageError => {
    const near = didYouMean(word, names);
    return new UsageError(`unknown option ${word}` + (near ? ` (did you mean ${near}?)` : ""));
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      positionals.push(word);
      continue;
    }
    const eq = word.indexOf("=");
    let name: string | undefined;
    if (word.startsWith("--")) {
      name = word.slice(2, eq >= 0 ? eq : undefined);
      if (!(name in specs)) throw unknown(eq >= 0 ? word.slice(0, eq) : word);
    } else {
      name = byShort.get(word.slice(1, eq >= 0 ? eq : undefined));
      if (name === undefined) throw unknown(word);
    }
    const spec = specs[name]!;
    if (spec.kind === "flag") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value, got "${word.slice(eq + 1)}"`);
      values[name] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = word.slice(eq + 1);
    else {
      const next = argv[i + 1];
      // A following option is not taken for the value: `--interval --id x` lacks the interval.
      if (next === undefined || /^--?[A-Za-z]/.test(next)) {
        throw new UsageError(`${nameOf(spec, name)}: the ${spec.arg ?? "value"} is missing`);
      }
      value = next;
      i++;
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new UsageError(`--${name} expects ${choiceList(spec.choices)}, got "${value}"`);
    }
    if (spec.kind === "list") {
      const prev = values[name];
      values[name] = [...(Array.isArray(prev) ? prev : []), value];
    } else values[name] = value;
  }
  if (values["help"] === true) return { values, positionals };
  if (positionals.length > 0 && cmd.positionals === undefined) {
    const p = positionals[0]!;
    const near = didYouMean(`--${p}`, names);
    throw new UsageError(
      `${cmd.name} takes no arguments besides options, got "${p}"` + (near ? ` (did you mean ${near}?)` : ""),
    );
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.required && values[name] === undefined) {
      throw new UsageError(`${nameOf(spec, name)} is required`);
    }
  }
  return { values, positionals };
}

const WIDTH = 110;

/** Wraps `text` to WIDTH columns, continuation lines indented by `indent`. */
function wrap(text: string, first: string, indent: number): string[] {
  const lines: string[] = [];
  let line = first;
  for (const w of text.split(/\s+/).filter((x) => x !== "")) {
    if (line.length + 1 + w.length > WIDTH && line.trim() !== "" && line.length > indent) {
      lines.push(line);
      line = " ".repeat(indent) + w;
    } else line += (line.length === 0 || line.endsWith(" ") ? "" : " ") + w;
  }
  lines.push(line);
  return lines;
}

/** The usage line of a command: required options, `[options]`, positionals. */
export function usageLine(cmd: Command): string {
  const req = Object.entries(cmd.options).filter(([, s]) => s.required).map(([n, s]) => nameOf(s, n));
  return ["usage: deno task", cmd.name, ...req, "[options]", ...(cmd.positionals ? [cmd.positionals] : [])]
    .join(" ");
}

/** The option lines of a help text (each option once, with its values and default). */
export function optionLines(specs: OptionSpecs): string[] {
  const heads = Object.entries(specs).map(([n, s]) => `${s.short ? `-${s.short}, ` : "    "}${nameOf(s, n)}`);
  const col = Math.max(...heads.map((h) => h.length)) + 4;
  return Object.entries(specs).flatMap(([, s], i) => {
    let text = s.help;
    if (s.choices && !text.includes(s.choices[0]!)) text += ` (${s.choices.join(" | ")})`;
    if (s.default !== undefined) text += ` (default: ${s.default})`;
    if (s.kind === "list") text += "; repeatable";
    return wrap(text, `  ${heads[i]!.padEnd(col - 2)}`, col);
  });
}

/** The `--help` text of a command, generated from its declaration. */
export function helpText(cmd: Command): string {
  return [
    usageLine(cmd),
    "",
    ...cmd.about.split("\n\n").flatMap((p, i) => [...(i > 0 ? [""] : []), ...wrap(p, "", 0)]),
    "",
    "options:",
    ...optionLines(optionsOf(cmd)),
  ].join("\n");
}

/** Reads a string option, or undefined. */
export function optString(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Reads a repeatable option (empty when absent). */
export function optList(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

/** Parses a positive number option such as `--speed 4`. */
export function optNumber(args: ParsedArgs, name: string, fallback: number): number {
  const v = optString(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} expects a positive number, got "${v}"`);
  return n;
}

/** The longest duration a command line takes (100 years). */
export const MAX_DURATION_MS = 100 * 365.25 * 86_400_000;

/** Parses a duration like `90s`, `1h`, `500ms` or `1h30m` (util/duration.ts) into milliseconds. */
export function parseDurationMs(text: string, what: string): number {
  const ms = parseDuration(text.trim());
  if (ms === undefined) {
    throw new UsageError(`${what} expects a duration like ${DURATION_EXAMPLES}, got "${text}"`);
  }
  // A time that far back is no date at all (Date.toISOString throws past ±273,790 years).
  if (ms > MAX_DURATION_MS) throw new UsageError(`${what}: at most 100 years, got "${text}"`);
  return ms;
}
