/**
 * Regenerates `tables.json` and `pxl.json` from a git checkout of Pixie (github.com/pixie-io/pixie): the column
 * lists of the Stirling tables, the compiler's metadata (`df.ctx[...]`) keys, the `px.*` names and the operators
 * the compiler handles. Run it when Pixie changes, review the diff, commit:
 *
 *   deno run --allow-read --allow-write --allow-run=git pixie/schemas/extract.ts /path/to/pixie [REV]
 *
 * It reads with `git show REV:path` (default HEAD), so a bare mirror works.
 * @module
 */

const SOCKET = "src/stirling/source_connectors/socket_tracer";

/** Tables read, by file: the socket tracer's protocol tables and the process stats. */
const TABLE_FILES = [
  `${SOCKET}/http_table.h`,
  `${SOCKET}/nats_table.h`,
  `${SOCKET}/redis_table.h`,
  `${SOCKET}/kafka_table.h`,
  `${SOCKET}/amqp_table.h`,
  `${SOCKET}/mysql_table.h`,
  `${SOCKET}/pgsql_table.h`,
  `${SOCKET}/dns_table.h`,
  `${SOCKET}/cass_table.h`,
  `${SOCKET}/mongodb_table.h`,
  `${SOCKET}/mux_table.h`,
  `${SOCKET}/tls_table.h`,
  `${SOCKET}/conn_stats_table.h`,
  "src/stirling/source_connectors/process_stats/process_stats_table.h",
  "src/stirling/source_connectors/network_stats/network_stats_table.h",
];
const CANONICAL_FILES = ["src/stirling/core/canonical_types.h", `${SOCKET}/canonical_types.h`];
const CONNECTOR = `${SOCKET}/socket_trace_connector.h`;
const METADATA_HANDLER = "src/carnot/planner/metadata/metadata_handler.cc";
const METADATA_PROTO = "src/shared/metadatapb/metadata.proto";
const PIXIE_MODULE = "src/carnot/planner/objects/pixie_module.h";
const DATAFRAME = "src/carnot/planner/objects/dataframe.h";
const FUNC_IR = "src/carnot/planner/ir/func_ir.cc";
const UDF_DIRS = ["src/carnot/funcs", "src/vizier/funcs"];

interface Column {
  name: string;
  type: string;
  desc: string;
  debug_only?: true;
}

async function git(repo: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args: ["-C", repo, ...args], stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

function cStrings(s: string): string {
  return [...s.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!).join("");
}

/** `constexpr DataElement kName = { "col", "desc", types::DataType::T, ...}` definitions. */
function canonical(text: string): Map<string, Column> {
  const out = new Map<string, Column>();
  const re =
    /constexpr DataElement (k\w+) = \{\s*(k\w+|"[^"]*")\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+),\s*types::DataType::(\w+)/g;
  for (const m of text.matchAll(re)) {
    let name = m[2]!;
    if (name.startsWith("k")) {
      name = new RegExp(`${name}\\s*=\\s*"([^"]+)"`).exec(text)?.[1] ?? name;
    } else {
      name = name.slice(1, -1);
    }
    out.set(m[1]!, { name, type: m[4]!, desc: cStrings(m[3]!) });
  }
  return out;
}

function tableOf(text: string, canon: Map<string, Column>): { name: string; columns: Column[] } {
  const name = /DataTableSchema(?:\s+\w+)?\s*\(\s*"([^"]+)"/.exec(text)?.[1];
  const body = /DataElement k\w+Elements\[\] = \{([\s\S]*?)\n\};/.exec(text)?.[1];
  if (!name || !body) throw new Error("no table schema found");
  const columns: Column[] = [];
  let debug = false;
  const re =
    /(#ifndef NDEBUG)|(#endif)|canonical_data_elements::(k\w+)|\{\s*"([a-z0-9_]+)"\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+),\s*types::DataType::(\w+)/g;
  for (const m of body.matchAll(re)) {
    if (m[1]) debug = true;
    else if (m[2]) debug = false;
    else {
      const col = m[3] ? canon.get(m[3]) : { name: m[4]!, type: m[6]!, desc: cStrings(m[5]!) };
      if (!col) throw new Error(`unknown canonical element ${m[3]}`);
      columns.push(debug ? { ...col, debug_only: true } : { ...col });
    }
  }
  return { name, columns };
}

async function main(repo: string, rev: string): Promise<void> {
  const show = (path: string) => git(repo, "show", `${rev}:${path}`);
  const commit = (await git(repo, "rev-parse", rev)).trim();
  const date = (await git(repo, "show", "-s", "--format=%cs", commit)).trim();
  const described = (await git(repo, "describe", "--tags", "--match", "release/vizier/*", commit)).trim();
  const pixie = { repo: "https://github.com/pixie-io/pixie", commit, date, vizier: described };

  const canon = new Map<string, Column>();
  for (const f of CANONICAL_FILES) for (const [k, v] of canonical(await show(f))) canon.set(k, v);
  const connector = await show(CONNECTOR);
  const exported = /kTables = MakeArray\(([^;]*)\);/.exec(connector)?.[1] ?? "";
  const tables: Record<string, unknown> = {};
  for (const file of TABLE_FILES) {
    const t = tableOf(await show(file), canon);
    const constName = /(k\w+Table)\b/.exec(
      (await show(file)).split("\n").find((l) => l.includes("DataTableSchema")) ?? "",
    )?.[1];
    tables[t.name] = {
      source: file,
      ...(file.startsWith(SOCKET) && constName && !exported.includes(constName)
        ? { note: "not exported by the socket tracer" }
        : {}),
      columns: t.columns,
    };
  }
  await Deno.writeTextFile(
    new URL("./tables.json", import.meta.url),
    JSON.stringify(
      { $comment: "Generated by pixie/schemas/extract.ts; do not edit.", pixie, tables },
      null,
      2,
    ) +
      "\n",
  );

  // df.ctx keys: each metadata type's lowercase name and its aliases.
  const proto = await show(METADATA_PROTO);
  const handler = await show(METADATA_HANDLER);
  const ctx: Record<string, string> = {};
  for (const m of handler.matchAll(/AddObject<\w+>\(\s*MetadataType::(\w+),\s*\{([^}]*)\}/g)) {
    if (!new RegExp(`\\b${m[1]} = \\d+;`).test(proto)) throw new Error(`unknown metadata type ${m[1]}`);
    const canonicalName = m[1]!.toLowerCase();
    ctx[canonicalName] = canonicalName;
    for (const a of m[2]!.matchAll(/"([^"]+)"/g)) ctx[a[1]!] = canonicalName;
  }
  const udfs = new Set<string>();
  for (const dir of UDF_DIRS) {
    const grep = await git(
      repo,
      "grep",
      "-h",
      "-o",
      "-E",
      'RegisterOrDie<[^;]*>\\("[A-Za-z0-9_]+"\\)',
      rev,
      "--",
      dir,
    );
    for (const m of grep.matchAll(/\("([A-Za-z0-9_]+)"\)/g)) udfs.add(m[1]!);
  }
  const module = await show(PIXIE_MODULE);
  const moduleNames = [...module.matchAll(/constexpr char k\w*(?:OpID|ID|TypeName)\[\] = "([^"]+)"/g)].map((
    m,
  ) => m[1]!);
  const timeFuncs = [...(/kTimeFuncValues =([\s\S]*?)\}\}\};/.exec(module)?.[1] ?? "").matchAll(/\{"(\w+)"/g)]
    .map((m) => m[1]!);
  const dataframe = await show(DATAFRAME);
  const dfMethods = [...dataframe.matchAll(/constexpr char k\w+(?:OpI[Dd]|AttrName)\[\] = "([^"]+)"/g)].map((
    m,
  ) => m[1]!);
  const funcIr = await show(FUNC_IR);
  const ops = (section: string) =>
    [...(new RegExp(`FuncIR::${section}\\{([\\s\\S]*?)(?:\\}\\};|\\n\\};)`).exec(funcIr)?.[1] ?? "").matchAll(
      /\{"([^"]+)", \{/g,
    )]
      .map((m) => m[1]!);
  const pxl = {
    $comment: "Generated by pixie/schemas/extract.ts; do not edit.",
    pixie,
    sources: {
      ctx: METADATA_HANDLER,
      px: [...UDF_DIRS.map((d) => `${d}/**/*.cc (RegisterOrDie)`), PIXIE_MODULE],
      dataframe: DATAFRAME,
      operators: FUNC_IR,
    },
    ctx,
    px: [
      ...new Set([
        ...moduleNames.filter((n) => n !== "px" && n !== "pl" && n !== "_"),
        ...timeFuncs,
        ...udfs,
      ]),
    ]
      .sort(),
    dataframe: [...new Set(dfMethods)].sort(),
    binary_operators: ops("op_map"),
    unary_operators: ops("unary_op_map"),
  };
  await Deno.writeTextFile(new URL("./pxl.json", import.meta.url), JSON.stringify(pxl, null, 2) + "\n");
}

if (import.meta.main) {
  const [repo, rev = "HEAD"] = Deno.args;
  if (!repo) {
    console.error("usage: extract.ts PIXIE_GIT_DIR [REV]");
    Deno.exit(2);
  }
  await main(repo, rev);
}
