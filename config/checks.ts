/**
 * Rules that span several fields: unique names, the audio section's envelope/path/channel agreement, TLS key
 * pairs. They read the raw document defensively (any field may be missing or of the wrong type, which the
 * schema reports) so they run, and report, whatever else is wrong.
 * @module
 */

import { SOURCE_STREAM } from "../pixie/row.ts";
import { DEFAULT_AUDIO } from "./defaults.ts";
import type { Problem } from "./problem.ts";
import type { KeyPath } from "./schema_walk.ts";
import { didYouMean } from "./suggest.ts";
import { compilePattern } from "./units.ts";

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Obj : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Cross-field problems in the raw (interpolated, not yet validated) config data. */
export function crossFieldProblems(data: unknown): Problem[] {
  const problems: Problem[] = [];
  const root = obj(data);
  if (!root) return problems;

  const measurementNames = new Map<string, number>();
  list(root.measurements).forEach((m, i) => {
    const measurement = obj(m);
    if (!measurement) return;
    const name = measurement.name;
    if (typeof name === "string") {
      const first = measurementNames.get(name);
      if (first !== undefined) {
        problems.push({
          path: ["measurements", i, "name"],
          expected: "a unique measurement name",
          found: `${JSON.stringify(name)}, already the name of measurements[${first}]`,
        });
      } else {
        measurementNames.set(name, i);
      }
    }
    const sig = obj(measurement.signature_rules);
    if (sig) problems.push(...audioProblems(sig.audio, ["measurements", i, "signature_rules", "audio"]));

    const stages = new Map<string, number>();
    list(measurement.match_rules).forEach((r, j) => {
      const rule = obj(r);
      if (!rule) return;
      const path: KeyPath = ["measurements", i, "match_rules", j];
      if (typeof rule.stage === "string") {
        const first = stages.get(rule.stage);
        if (rule.stage === SOURCE_STREAM) {
          problems.push({
            path: [...path, "stage"],
            expected: 'a stage name other than "source"',
            found: '"source", which names the signature_rules query',
          });
        } else if (first !== undefined) {
          problems.push({
            path: [...path, "stage"],
            expected: "a stage name unique in this measurement",
            found: `${JSON.stringify(rule.stage)}, already the stage of match_rules[${first}]`,
          });
        } else {
          stages.set(rule.stage, j);
        }
      }
      problems.push(...audioProblems(rule.audio, [...path, "audio"]));
    });
    problems.push(...afterProblems(list(measurement.match_rules), ["measurements", i, "match_rules"]));
  });

  const tls = obj(obj(root.nats)?.tls);
  if (tls) {
    const cert = typeof tls.cert_file === "string" && tls.cert_file !== "";
    const key = typeof tls.key_file === "string" && tls.key_file !== "";
    if (cert !== key) {
      const missing = cert ? "key_file" : "cert_file";
      problems.push({
        path: ["nats", "tls", missing],
        expected: `${missing} set too (a client certificate needs both cert_file and key_file)`,
        found: "nothing",
      });
    }
  }
  return problems;
}

/**
 * `match_rules[].after` must name the source or another stage of the same measurement, and following `after`
 * from any stage must reach the source: the stages form a path (or a tree), never a cycle. Nothing is inferred.
 */
function afterProblems(rules: unknown[], at: KeyPath): Problem[] {
  const problems: Problem[] = [];
  const after = new Map<string, string>();
  rules.forEach((r) => {
    const rule = obj(r);
    if (rule && typeof rule.stage === "string") {
      after.set(rule.stage, typeof rule.after === "string" ? rule.after : SOURCE_STREAM);
    }
  });
  rules.forEach((r, j) => {
    const rule = obj(r);
    if (!rule || typeof rule.stage !== "string" || typeof rule.after !== "string") return;
    const path: KeyPath = [...at, j, "after"];
    const stages = [...after.keys()].filter((s) => s !== rule.stage);
    const choices = [SOURCE_STREAM, ...stages].join("|");
    if (rule.after === rule.stage) {
      problems.push({
        path,
        expected: `the stage before this one (${choices})`,
        found: `${JSON.stringify(rule.after)}, this stage itself`,
      });
      return;
    }
    if (rule.after !== SOURCE_STREAM && !after.has(rule.after)) {
      problems.push({
        path,
        expected: `a stage of this measurement or source (${choices})`,
        found: JSON.stringify(rule.after),
        hint: suggestion(rule.after, [SOURCE_STREAM, ...stages]),
      });
      return;
    }
    // Walk towards the source; coming back to this stage is a cycle.
    const seen = new Set<string>([rule.stage]);
    let cur: string | undefined = rule.after;
    while (cur !== undefined && cur !== SOURCE_STREAM) {
      if (seen.has(cur)) {
        problems.push({
          path,
          expected: "a path of stages that leads back to source",
          found: `a cycle: ${[...seen, cur].map((s) => JSON.stringify(s)).join(" after ")}`,
        });
        return;
      }
      seen.add(cur);
      cur = after.get(cur);
    }
  });
  return problems;
}

function suggestion(word: string, choices: readonly string[]): string | undefined {
  const s = didYouMean(word, choices);
  return s === undefined ? undefined : `did you mean ${JSON.stringify(s)}?`;
}

function audioProblems(value: unknown, at: KeyPath): Problem[] {
  const audio = obj(value);
  if (!audio) return [];
  const problems: Problem[] = [];
  const envelope = audio.envelope ?? DEFAULT_AUDIO.envelope;
  const path = audio.path;
  if (envelope === "regex") {
    if (typeof path !== "string") {
      if (path === undefined) {
        problems.push({
          path: [...at, "path"],
          expected: "a regular expression with exactly one capture group (envelope regex)",
          found: "nothing",
        });
      }
    } else {
      const compiled = compilePattern(path);
      if ("error" in compiled || compiled.groups !== 1) {
        problems.push({
          path: [...at, "path"],
          expected: "a regular expression with exactly one capture group (envelope regex)",
          found: "error" in compiled
            ? `${JSON.stringify(path)} (${compiled.error.split(": ").pop()})`
            : `${JSON.stringify(path)} with ${compiled.groups} capture groups`,
        });
      }
    }
  } else if (envelope === "json" && typeof path === "string" && !/^[^.\s]+(\.[^.\s]+)*$/.test(path)) {
    problems.push({
      path: [...at, "path"],
      expected: "a dotted path to the audio field such as media.payload (envelope json)",
      found: JSON.stringify(path),
    });
  }
  const channels = audio.channels ?? DEFAULT_AUDIO.channels;
  const channel = audio.channel;
  if (
    typeof channel === "number" && typeof channels === "number" && Number.isInteger(channels) &&
    channel >= channels
  ) {
    problems.push({
      path: [...at, "channel"],
      expected: `a channel index below channels (${channels}) or "mix"`,
      found: String(channel),
    });
  }
  return problems;
}
