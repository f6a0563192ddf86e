/**
 * The README and k8s/README.md state contracts (command lines, tasks, label values, config keys, metric names,
 * files); these checks keep them from drifting from the code that makes them true: every `deno task` named
 * exists with the options given it, every link, anchor and repository path resolves, every metric named is
 * served, every config key named is in the schema and the README's configs load. Each reads the documents as
 * text: no network, no system tools.
 */
import { deepEqual, ok } from "node:assert/strict";
import { tcpdumpArgs } from "../packets/live_capture.ts";
import { EXPIRE_REASONS, ROW_SKIP_REASONS } from "../actors/messages.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { parse as parseYaml } from "yaml";
import { COMMANDS } from "../cli/commands.ts";
import { optionsOf } from "../cli/command.ts";
import { configJsonSchema, type JsonSchema } from "../config/json_schema.ts";
import { parseConfigText } from "../config/load.ts";

const ROOT = new URL("../", import.meta.url);
const README = await Deno.readTextFile(new URL("README.md", ROOT));
/** The user-facing documents these checks read, by path from the repository root. */
const DOCS = ["README.md", "k8s/README.md"];
const TEXT = new Map(
  await Promise.all(DOCS.map(async (d) => [d, await Deno.readTextFile(new URL(d, ROOT))] as const)),
);

/** The text of every fenced code block of `lang` (any language when absent). */
function codeBlocks(text: string, lang?: string): string[] {
  return [...text.matchAll(/^[ \t]*```(\w*)\n([\s\S]*?)^[ \t]*```$/gm)]
    .filter((m) => lang === undefined || m[1] === lang)
    .map((m) => m[2]!);
}

/** Every inline code span (line breaks inside folded), outside fenced blocks. */
function codeSpans(text: string): string[] {
  return [...folded(text.replace(/^[ \t]*```\w*\n[\s\S]*?^[ \t]*```$/gm, "")).matchAll(/`([^`]+)`/g)].map((
    m,
  ) => m[1]!);
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

/** The README's text with its line breaks inside paragraphs folded to spaces. */
function folded(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

Deno.test("README: the live tcpdump options it names are the ones the sensor passes", () => {
  // It named --immediate-mode, which the sensor leaves out on purpose (packets/live_capture.ts: it lost 20%).
  const m = /supervised `tcpdump` child \(`([^`]+)`/.exec(folded(README));
  ok(m, "the Live bullet names tcpdump's options");
  const named = m[1]!.split(" ").filter((t) => t.startsWith("-"));
  const args = tcpdumpArgs(
    { tcpdump: "tcpdump", iface: "any", filter: "", snaplen: 262144, bufferMib: 32 },
    false,
  );
  deepEqual(named.filter((o) => !args.includes(o)), [], `tcpdump is run with ${args.join(" ")}`);
  ok(named.length >= 2, named.join(" "));
});

Deno.test("README: the reasons it lists for a counter are the ones the code counts, and the help names them", async () => {
  // fsmpx_rows_skipped_total's list lacked unknown_stage; its HELP lacked no_time and stream_limit.
  const help = new Map(
    (await new FsmMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, m.help]),
  );
  for (
    const [metric, reasons] of [
      ["fsmpx_rows_skipped_total", ROW_SKIP_REASONS],
      ["fsmpx_signatures_expired_total", EXPIRE_REASONS],
    ] as const
  ) {
    const m = new RegExp(`\`${metric}\\{reason=([a-z_|]+)\\}\``).exec(folded(README));
    ok(m, `README lists the reasons of ${metric}`);
    deepEqual(m[1]!.split("|"), [...reasons], metric);
    const h = help.get(metric) ?? "";
    deepEqual(reasons.filter((r) => !h.includes(r)), [], `${metric}'s help: ${h}`);
  }
});

Deno.test("README: each reason, outcome or place it names for a metric is one the metric's help lists", async () => {
  // fsmpx_bus_publish_failed_total{reason="rejected"}: the help said "refused, unencodable, abandoned", none of
  // them a label value. A help that ends its list with "..." (packet skip reasons) is open and not checked.
  const metrics = new FsmMetrics();
  metrics.otlpOpened(() => ({ sent: 0, failed: 0, dropped: 0 }));
  const help = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, m.help]));
  let checked = 0;
  for (const m of folded(README).matchAll(/`([a-z_]+)\{(reason|outcome|where)=("?)([a-z_|]+)\3\}`/g)) {
    const [, metric, label, , values] = m;
    const h = help.get(metric!);
    ok(h !== undefined, `${metric} is a metric`);
    if (h.includes("...")) continue;
    deepEqual(values!.split("|").filter((v) => !h.includes(v)), [], `${metric}{${label}}: ${h}`);
    checked++;
  }
  ok(checked >= 6, `${checked} label lists checked`);
});

Deno.test("docs: every deno task they name exists, with the options they give it", async () => {
  const tasks = Object.keys(
    (JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as { tasks: Record<string, string> })
      .tasks,
  );
  const uses: { doc: string; task: string; rest: string }[] = [];
  const TASK = /^(?:npx -y )?deno(?:@[\d.]+)? task ([a-z]+)(.*)$/;
  for (const [doc, text] of TEXT) {
    for (const span of codeSpans(text)) {
      const m = TASK.exec(span);
      if (m) uses.push({ doc, task: m[1]!, rest: m[2]! });
    }
    for (const block of codeBlocks(text)) {
      for (const line of block.split("\n")) {
        const m = TASK.exec(line.trim());
        if (m) uses.push({ doc, task: m[1]!, rest: m[2]!.replace(/\s#.*$/, "") });
      }
    }
  }
  ok(uses.length > 20, `${uses.length} task uses found`);
  const problems: string[] = [];
  for (const { doc, task, rest } of uses) {
    if (!tasks.includes(task)) {
      problems.push(`${doc}: deno task ${task} (tasks: ${tasks.join(", ")})`);
      continue;
    }
    const cmd = COMMANDS.find((c) => c.name === task);
    if (!cmd) continue; // test, bench, ok: not fsm-px commands
    const options = Object.keys(optionsOf(cmd));
    for (const flag of rest.match(/(?<![\w-])--[a-z][a-z-]*/g) ?? []) {
      if (!options.includes(flag.slice(2))) problems.push(`${doc}: deno task ${task} ${flag}`);
    }
  }
  deepEqual(problems, []);
});

Deno.test("docs: every link and file path they name resolves", async () => {
  const problems: string[] = [];
  const slug = (heading: string) =>
    heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
  const anchors = (text: string) =>
    new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!.replace(/`/g, ""))));
  const topDirs = new Set<string>();
  for await (const e of Deno.readDir(ROOT)) if (e.isDirectory && !e.name.startsWith(".")) topDirs.add(e.name);
  for (const [doc, text] of TEXT) {
    const base = new URL(doc, ROOT);
    const prose = text.replace(/^[ \t]*```\w*\n[\s\S]*?^[ \t]*```$/gm, "");
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split("#") as [string, string | undefined];
      const url = file === "" ? base : new URL(file, base);
      if (!(await exists(url))) {
        problems.push(`${doc}: link ${target}`);
        continue;
      }
      if (anchor !== undefined && !anchors(await Deno.readTextFile(url)).has(anchor)) {
        problems.push(`${doc}: anchor ${target}`);
      }
    }
    // A code span that is a path under a folder of the repository or of the document's own folder, resolved
    // from either (k8s/README.md names k8s/ files from k8s/). `nats/nats` is the Helm chart.
    const bases = [new URL(".", base), ROOT];
    const dirs = new Set(topDirs);
    for await (const e of Deno.readDir(bases[0]!)) if (e.isDirectory) dirs.add(e.name);
    for (const span of codeSpans(text)) {
      if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.*\/-]*$/.test(span)) continue;
      if (!dirs.has(span.split("/")[0]!) || span === "nats/nats") continue;
      const cut = span.lastIndexOf("/") + 1;
      const [dir, name] = [span.slice(0, cut), span.slice(cut)];
      // `tests/e2e_packets_*_test.ts`: a glob on the last part.
      const re = new RegExp(`^${name.replace(/[.]/g, "\\.").replace(/\*/g, ".*")}$`);
      let found = false;
      for (const b of bases) {
        if (!span.includes("*")) found ||= await exists(new URL(span, b));
        else if (await exists(new URL(dir, b))) {
          for await (const e of Deno.readDir(new URL(dir, b))) found ||= re.test(e.name);
        }
      }
      if (!found) problems.push(`${doc}: ${span}`);
    }
  }
  deepEqual(problems, []);
});

Deno.test("docs: every metric they name is one fsm-px serves", async () => {
  // The other direction (every metric served is in the README's table) is in http_metrics_test.
  const served = new Set<string>();
  for (const f of ["http/metrics.ts", "http/server.ts"]) {
    for (const m of (await Deno.readTextFile(new URL(f, ROOT))).matchAll(/name: "([a-z_]+)"/g)) {
      served.add(m[1]!);
    }
  }
  const problems: string[] = [];
  for (const [doc, text] of TEXT) {
    for (const span of codeSpans(text)) {
      const m =
        /^((?:fsmpx|audio|signatures|node_clock|process_resident)_[a-z_]+|active_signatures)(?:\{[^}]*\})?$/
          .exec(span);
      if (!m) continue;
      const name = m[1]!.replace(/_(bucket|count|sum)$/, (s) => served.has(m[1]!) ? s : "");
      if (!served.has(name)) problems.push(`${doc}: ${m[1]}`);
    }
  }
  ok(served.size > 30, `${served.size} metrics served`);
  deepEqual(problems, []);
});

/** Every key path the config schema allows, `[]` for array items left out (`measurements.match_rules.after`). */
function schemaKeyPaths(schema: JsonSchema): Set<string> {
  const defs = (schema.$defs ?? {}) as Record<string, JsonSchema>;
  const out = new Set<string>();
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > 12 || node === null || typeof node !== "object") return;
    const n = node as JsonSchema;
    if (typeof n.$ref === "string" && n.$ref.startsWith("#/$defs/")) {
      walk(defs[n.$ref.slice(8)], path, depth + 1);
    }
    for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, unknown>)) {
      const p = path === "" ? k : `${path}.${k}`;
      out.add(p);
      walk(v, p, depth + 1);
    }
    for (const key of ["items", "anyOf", "oneOf", "allOf"]) {
      const v = n[key];
      for (const x of Array.isArray(v) ? v : [v]) walk(x, path, depth + 1);
    }
  };
  walk(schema, "", 0);
  return out;
}

Deno.test("docs: every config key they name is in the schema, and their configs load", () => {
  const paths = schemaKeyPaths(configJsonSchema());
  ok(paths.has("measurements.match_rules.after") && paths.has("packets.reorder_ms"), [...paths].join(" "));
  /** Whether `key` (dotted) is the end of some schema path: `columns.payload` is a tap's. */
  const known = (key: string) => [...paths].some((p) => p === key || p.endsWith(`.${key}`));
  const SECTION =
    /^((?:pixie|nats|metrics|otlp|engine|packets|columns|audio|audio_criteria|signature_rules|match_rules|metadata_extraction)(?:\[\])?(?:\.[a-z_]+(?:\[\])?)+)(?::.*)?$/;
  const problems: string[] = [];
  for (const [doc, text] of TEXT) {
    for (const span of codeSpans(text)) {
      const m = SECTION.exec(span);
      if (!m || /\.(conf|ts|yaml|md|json)$/.test(m[1]!)) continue;
      if (!known(m[1]!.replace(/\[\]/g, ""))) problems.push(`${doc}: ${m[1]}`);
    }
  }
  // The YAML blocks: a whole config loads without a problem; a part of one (a section, a tap) has known keys.
  let configs = 0;
  for (const block of codeBlocks(README, "yaml")) {
    const doc = parseYaml(block) as unknown;
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) continue;
    if ("measurements" in doc) {
      parseConfigText(block, "README.md", { FSMPX_TEMPO_TENANT: "t" });
      configs++;
      continue;
    }
    const keys = (v: unknown, path: string): string[] =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.entries(v).flatMap(([k, x]) => {
          const p = path === "" ? k : `${path}.${k}`;
          // Maps whose keys are data (headers, payload types) end the walk.
          return [p, ...(/(^|\.)(headers|payload_types)$/.test(p) ? [] : keys(x, p))];
        })
        : [];
    for (const k of keys(doc, "")) if (!known(k)) problems.push(`README.md yaml block: ${k}`);
  }
  ok(configs >= 1, "the smallest useful config is checked");
  deepEqual(problems, []);
});
