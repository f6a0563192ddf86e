/**
 * Rules that span several fields: unique names, the audio section's envelope/path/channel agreement, TLS key
 * pairs, and every `stream_filter` against Pixie's PxL rules and the columns of the table it reads. They read
 * the raw document defensively (any field may be missing or of the wrong type, which the schema reports) so
 * they run, and report, whatever else is wrong.
 * @module
 */

import { parseProtobufPath } from "../audio/decode/protobuf_path.ts";
import { directModeProblems } from "../pixie/direct_mode.ts";
import { SOURCE_TAP } from "../pixie/row.ts";
import {
  checkStreamFilter,
  defaultPayloadColumn,
  describeAudioTables,
  type FilterCheck,
  fixHint,
} from "../pixie/pxl_check.ts";
import { DEFAULT_AUDIO, DEFAULT_COLUMNS } from "./defaults.ts";
import { type Problem, valueAt } from "./problem.ts";
import type { KeyPath } from "./schema_walk.ts";
import { didYouMean } from "../util/suggest.ts";
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
        if (rule.stage === SOURCE_TAP) {
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
  problems.push(...cloudAddrProblems(obj(root.pixie)));
  problems.push(...podScopeProblems(obj(root.pixie)));
  return problems;
}

/**
 * `pixie.scope: pods` with `pixie.direct_addr`: a standalone PEM has no pod metadata to scope by. The sensor refuses
 * it at start (cli/sensor_sources.ts); here `check` and every command refuse it too, instead of passing it.
 */
function podScopeProblems(pixie: Record<string, unknown> | undefined): Problem[] {
  const direct = pixie?.direct_addr;
  if (pixie?.scope !== "pods" || typeof direct !== "string" || direct === "") return [];
  return [{
    path: ["pixie", "scope"],
    expected: "node with pixie.direct_addr (a standalone PEM only sees its own node and has no pod metadata)",
    found: "pods",
    hint: "remove pixie.scope, or pixie.direct_addr to query through Pixie Cloud",
  }];
}

/**
 * `pixie.cloud_addr` as an IP address never connects: TLS sends the host as the server name (SNI), which may not
 * be an IP ("servername must not be an IP"), and Pixie Cloud's certificate names a host anyway.
 */
function cloudAddrProblems(pixie: Record<string, unknown> | undefined): Problem[] {
  const addr = pixie?.cloud_addr;
  if (typeof addr !== "string") return [];
  const host = /^\[([0-9A-Fa-f:.]+)\]:\d+$/.exec(addr)?.[1] ??
    /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(addr)?.[1];
  if (host === undefined) return [];
  return [{
    path: ["pixie", "cloud_addr"],
    expected:
      "host:port with a host name (TLS sends the host as the server name, which cannot be an IP address)",
    found: JSON.stringify(addr),
    hint:
      "use the name in the cloud's certificate (e.g. work.withpixie.ai:443; map it to the IP in /etc/hosts " +
      "or a hostAlias if DNS lacks it), or pixie.direct_addr for a standalone PEM",
  }];
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
      after.set(rule.stage, typeof rule.after === "string" ? rule.after : SOURCE_TAP);
    }
  });
  rules.forEach((r, j) => {
    const rule = obj(r);
    if (!rule || typeof rule.stage !== "string" || typeof rule.after !== "string") return;
    const path: KeyPath = [...at, j, "after"];
    const stages = [...after.keys()].filter((s) => s !== rule.stage);
    const choices = [SOURCE_TAP, ...stages].join("|");
    if (rule.after === rule.stage) {
      problems.push({
        path,
        expected: `the stage before this one (${choices})`,
        found: `${JSON.stringify(rule.after)}, this stage itself`,
      });
      return;
    }
    if (rule.after !== SOURCE_TAP && !after.has(rule.after)) {
      problems.push({
        path,
        expected: `a stage of this measurement or source (${choices})`,
        found: JSON.stringify(rule.after),
        hint: suggestion(rule.after, [SOURCE_TAP, ...stages]),
      });
      return;
    }
    // Walk towards the source; coming back to this stage is a cycle.
    const seen = new Set<string>([rule.stage]);
    let cur: string | undefined = rule.after;
    while (cur !== undefined && cur !== SOURCE_TAP) {
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
  } else if (envelope === "protobuf" && (typeof path !== "string" || parseProtobufPath(path) === undefined)) {
    problems.push({
      path: [...at, "path"],
      expected:
        "the field numbers of the audio's bytes field, such as 2 or 1.3 (envelope protobuf; field 3 of " +
        "the message in field 1 is 1.3)",
      found: path === undefined ? "nothing" : JSON.stringify(path),
    });
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

/** Maps an offset inside the string value at a key path to an offset in the config file's text. */
export type ValueOffset = (path: KeyPath, valueOffset: number) => number | undefined;

/** What checking every `stream_filter` found: errors fail the load, warnings are reported and logged. */
export interface StreamFilterFindings {
  errors: Problem[];
  warnings: Problem[];
}

/** Every tap (signature_rules and match_rules entry) of the raw data, with its key path. */
function taps(root: Obj): { path: KeyPath; rule: Obj }[] {
  const out: { path: KeyPath; rule: Obj }[] = [];
  list(root.measurements).forEach((m, i) => {
    const measurement = obj(m);
    if (!measurement) return;
    const sig = obj(measurement.signature_rules);
    if (sig) out.push({ path: ["measurements", i, "signature_rules"], rule: sig });
    list(measurement.match_rules).forEach((r, j) => {
      const rule = obj(r);
      if (rule) out.push({ path: ["measurements", i, "match_rules", j], rule });
    });
  });
  return out;
}

/**
 * Checks every `stream_filter` of the raw (interpolated) config against Pixie's PxL rules and table schemas
 * (pixie/pxl_check.ts), and the configured columns against the table the filter reads. Problems inside a filter
 * carry the file offset of their own position (through `offsetOf`) and the corrected line as their hint. Taps
 * without a `stream_filter` (packet taps) are not checked here. (Kubernetes metadata on a standalone PEM is
 * pixie/direct_mode.ts's check.)
 */
export function streamFilterProblems(data: unknown, offsetOf: ValueOffset): StreamFilterFindings {
  const found: StreamFilterFindings = { errors: [], warnings: [] };
  const root = obj(data);
  if (!root) return found;
  for (const { path, rule } of taps(root)) {
    if (typeof rule.stream_filter !== "string") continue;
    const filterPath: KeyPath = [...path, "stream_filter"];
    const check = checkStreamFilter(rule.stream_filter);
    // A standalone PEM has no Kubernetes metadata: filters on it would match nothing (or remove every row).
    const direct = obj(root.pixie)?.direct_addr;
    if (typeof direct === "string" && direct !== "") {
      const lines = rule.stream_filter.split("\n");
      for (const d of directModeProblems(rule.stream_filter)) {
        const at = lines.slice(0, d.line - 1).reduce((a, l) => a + l.length + 1, 0) + d.col - 1;
        const problem: Problem = {
          path: filterPath,
          expected: "a filter on what a standalone PEM sees (ports, paths, addresses, the process)",
          found: d.message,
        };
        const offset = offsetOf(filterPath, at);
        if (offset !== undefined) problem.offset = offset;
        found.errors.push(problem);
      }
    }
    for (const p of check.problems) {
      const problem: Problem = { path: filterPath, expected: p.expected, found: p.found };
      // "Not PxL at all" is about the whole value: report it where the value starts.
      if (p.code !== "no-dataframe") {
        const offset = offsetOf(filterPath, p.offset);
        if (offset !== undefined) problem.offset = offset;
      }
      if (p.fix !== undefined) problem.hint = fixHint(p.fix);
      (p.severity === "error" ? found.errors : found.warnings).push(problem);
    }
    if (check.problems.some((p) => p.severity === "error")) continue;
    found.errors.push(...columnProblems(rule, path, check));
  }
  return found;
}

/** The configured columns (payload, time, body_size, stream key columns) must exist in what the filter leaves. */
function columnProblems(rule: Obj, path: KeyPath, check: FilterCheck): Problem[] {
  const problems: Problem[] = [];
  const columns = obj(rule.columns) ?? {};
  const table = check.schema;
  if (!table || !check.columns) return problems;
  const have = check.columns;
  const pod = typeof columns.pod === "string" ? columns.pod : DEFAULT_COLUMNS.pod;
  const bodies = table.body ? [table.body.payload, ...table.body.others] : [];
  if (columns.payload === undefined && !table.body) {
    problems.push({
      path: [...path, "columns", "payload"],
      expected: `the column that holds the message body: ${table.name} has none (the tables with bodies: ` +
        `${describeAudioTables()})`,
      found: "nothing",
    });
  }
  const named: [string, unknown, string][] = [
    [
      "payload",
      columns.payload,
      bodies.length > 0 ? `the message body (${bodies.join(" or ")})` : "the body",
    ],
    ["time", columns.time, "the capture time (time_)"],
    ["body_size", columns.body_size, "the body size before truncation"],
    ["latency", columns.latency, "the time from the payload's message to time_ (ns)"],
  ];
  // A column of the table that the filter itself leaves out (`select=[...]`, `df[[...]]`, `df.drop`): the table has
  // it, so the fix is in the filter, not the name (the error said the table lacked it and suggested the same name).
  const dropped = (name: string) => table.columns.some((c) => c.name === name);
  const droppedProblem = (at: KeyPath, name: string, expected: string): Problem => ({
    path: at,
    expected,
    found:
      `${JSON.stringify(name)}, which ${table.name} has but the stream_filter leaves out (a select=[...], ` +
      "df[[...]] or df.drop that does not keep it)",
    hint: `keep '${name}' in the stream_filter's columns`,
  });
  for (const [key, value, what] of named) {
    if (typeof value !== "string" || have.has(value)) continue;
    if (dropped(value)) {
      problems.push(
        droppedProblem([...path, "columns", key], value, `a column of ${table.name} that holds ${what}`),
      );
      continue;
    }
    const suggestion = key === "payload" && bodies.length > 0
      ? bodies[0]
      : key === "body_size" && table.body?.bodySize
      ? table.body.bodySize
      : key === "latency" && table.body?.latency
      ? table.body.latency
      : didYouMean(value, [...have]);
    problems.push({
      path: [...path, "columns", key],
      expected: `a column of ${table.name} that holds ${what}`,
      found: `${JSON.stringify(value)}, which ${table.name} does not have`,
      ...(suggestion ? { hint: `did you mean "${suggestion}"?` } : {}),
    });
  }
  list(rule.stream_key).forEach((item, k) => {
    if (typeof item !== "string" || item.startsWith("$.") || item === pod || have.has(item)) return;
    const expected = `a column of ${table.name}, the pod column (${pod}) or a $.path into the JSON envelope`;
    if (dropped(item)) return void problems.push(droppedProblem([...path, "stream_key", k], item, expected));
    const suggestion = didYouMean(item, [...have]);
    problems.push({
      path: [...path, "stream_key", k],
      expected,
      found: JSON.stringify(item),
      ...(suggestion ? { hint: `did you mean "${suggestion}"?` } : {}),
    });
  });
  return problems;
}

/** A tap of a loaded config, as far as payload defaults are concerned. */
interface TapColumns {
  stream_filter?: string;
  columns: { payload: string; latency?: string };
}

/**
 * Sets `columns.payload` of every tap that reads a Pixie table and did not name one to that table's body column
 * (req_body for http_events, body for nats_events.beta, req_args for redis_events, ...). The match rule derived
 * when `match_rules` is absent takes its source's column. `data` is the raw config, to tell a value the user
 * wrote from the schema's default.
 */
export function fillPayloadDefaults(
  config: { measurements: { signature_rules: TapColumns; match_rules: TapColumns[] }[] },
  data: unknown,
): void {
  const written = (path: KeyPath, key: string) =>
    obj(valueAt(data, [...path, "columns"]))?.[key] !== undefined;
  const fill = (tap: TapColumns, path: KeyPath) => {
    if (typeof tap.stream_filter !== "string") return;
    const check = checkStreamFilter(tap.stream_filter);
    if (!written(path, "payload")) {
      const payload = check.table === undefined ? undefined : defaultPayloadColumn(check.table);
      if (payload) tap.columns.payload = payload;
    }
    // The table's time_ is another message's than the payload's (http_events: the response's): the payload's
    // time is time_ less the column's, where the filter keeps it.
    const latency = check.schema?.body?.latency;
    if (
      latency !== undefined && !written(path, "latency") &&
      tap.columns.payload === check.schema?.body?.payload &&
      check.columns?.has(latency) === true
    ) tap.columns.latency = latency;
  };
  config.measurements.forEach((m, i) => {
    const sigPath: KeyPath = ["measurements", i, "signature_rules"];
    fill(m.signature_rules, sigPath);
    const derived = list(valueAt(data, ["measurements", i, "match_rules"])).length === 0;
    m.match_rules.forEach((r, j) => {
      if (derived) {
        r.columns.payload = m.signature_rules.columns.payload;
        if (m.signature_rules.columns.latency !== undefined) {
          r.columns.latency = m.signature_rules.columns.latency;
        }
      } else fill(r, ["measurements", i, "match_rules", j]);
    });
  });
}
