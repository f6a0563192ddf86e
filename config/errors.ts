/**
 * Configuration errors: every problem found in a config file, each with its position, key path, what was
 * expected and what was found. The loader collects all of them before throwing one {@link ConfigError}.
 * @module
 */

import { redact } from "../util/log.ts";

/** One problem in a config file. */
export interface ConfigIssue {
  /** The file as the user named it. */
  file: string;
  /** 1-based line, or 0 when the problem is with the file itself (missing, unreadable). */
  line: number;
  /** 1-based column, or 0 with line 0. */
  col: number;
  /** Key path such as `measurements[0].signature_rules.audio.codec`; empty for the whole document. */
  path: string;
  /** What a valid value looks like. */
  expected: string;
  /** What the file holds instead (secrets are shown as `<from $VAR>` or `<secret>`, never as values). */
  found: string;
  /** A suggestion, e.g. `did you mean "mulaw"?`. */
  hint?: string;
}

/** Issues printed at most; the rest are counted in one line. */
export const MAX_SHOWN_ISSUES = 100;

/** Renders one issue as `file:line:col: path: expected X, found Y (hint)`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  const path = issue.path ? ` ${issue.path}:` : "";
  const hint = issue.hint ? ` (${issue.hint})` : "";
  return redact(`${where}:${path} expected ${issue.expected}, found ${issue.found}${hint}`);
}

/** All problems of one config file. The CLI prints {@link ConfigError.format} and exits with `exitCode`. */
export class ConfigError extends Error {
  /** Every problem found, in file order. */
  readonly issues: readonly ConfigIssue[];
  /** Process exit code for a configuration error. */
  readonly exitCode = 2;

  /** Sorts the issues by position so the report reads top to bottom. */
  constructor(issues: readonly ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
    super(ConfigError.render(sorted));
    this.name = "ConfigError";
    this.issues = sorted;
  }

  /** One line per issue. */
  format(): string {
    return ConfigError.render(this.issues);
  }

  private static render(issues: readonly ConfigIssue[]): string {
    // A file of 64k unknown keys is one mistake repeated: the first ones say it, the count says the rest.
    const shown = issues.slice(0, MAX_SHOWN_ISSUES).map(formatIssue);
    if (issues.length > MAX_SHOWN_ISSUES) {
      shown.push(`... and ${issues.length - MAX_SHOWN_ISSUES} more problems`);
    }
    return shown.join("\n");
  }
}
