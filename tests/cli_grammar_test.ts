/**
 * One command-line grammar: every command's options parsed by one parser, help generated from the
 * declarations, the same formats everywhere, and mistakes answered with what was expected.
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { COMMANDS } from "../cli/commands.ts";
import { type Command, helpText, optionsOf, parseCommandArgs, UsageError } from "../cli/command.ts";
import { NatsServer } from "./support/nats_server.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const dec = new TextDecoder();

function command(name: string): Command {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) throw new Error(`no command ${name}`);
  return c;
}

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { FSMPX_LOG_LEVEL: "warn" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("grammar: each option's default is on its own line (demo --help used to show --config's on --log-level)", () => {
  const help = helpText(command("demo"));
  const logLine = help.split("\n").find((l) => l.includes("--log-level"))!;
  ok(!logLine.includes("fixtures/demo"), logLine);
  match(help, /--config FILE\s+configuration \(default: fixtures\/demo\/config\.yaml/);
  for (const cmd of COMMANDS) {
    const text = helpText(cmd);
    match(text, new RegExp(`^usage: deno task ${cmd.name}`));
    // Every declared option is in the help, once.
    for (const name of Object.keys(optionsOf(cmd))) {
      const heads = text.split("\n").filter((l) => new RegExp(`^  (-\\w, |    )--${name}( |$)`).test(l));
      equal(heads.length, 1, `${cmd.name} --${name}`);
    }
    ok(text.split("\n").every((l) => l.length <= 110), `${cmd.name}: a help line over 110 columns`);
  }
});

Deno.test("grammar: one parser: =value, short options, repeats, --, and errors that say what was expected", () => {
  const analyze = command("analyze");
  const a = parseCommandArgs(analyze, ["-c", "x.yaml", "--format=csv", "--id", "abc", "f1", "--", "--f2"]);
  deepEqual(a.values, { config: "x.yaml", format: "csv", id: "abc" });
  deepEqual(a.positionals, ["f1", "--f2"]);
  const ui = parseCommandArgs(command("ui"), ["--records", "a", "--records=b"]);
  deepEqual(ui.values["records"], ["a", "b"]);

  const says = (argv: string[], re: RegExp, cmd = analyze) =>
    throws(() => parseCommandArgs(cmd, argv), (e: Error) => e instanceof UsageError && re.test(e.message));
  says(["--bogus"], /^unknown option --bogus$/);
  says(["--intervl", "3"], /^unknown option --intervl \(did you mean --interval\?\)$/);
  says(["--interval"], /^--interval ID: the ID is missing$/);
  says(["--interval", "--id", "x"], /--interval ID: the ID is missing/);
  says(["--format", "xml"], /^--format expects table, json, csv, records or summary, got "xml"$/);
  says(["--log-level", "loud"], /^--log-level expects debug, info, warn or error, got "loud"$/);
  says(["--exit=yes"], /^--exit takes no value/, command("demo"));
  says(
    ["speed"],
    /takes no arguments besides options, got "speed" \(did you mean --speed\?\)/,
    command("demo"),
  );
  says([], /^--out FILE is required$/, command("record"));
  // --help wins over what is missing.
  equal(parseCommandArgs(command("record"), ["--help"]).values["help"], true);
});

Deno.test("grammar: the same formats for analyze and replay; json is snake_case with units in the key names", async () => {
  // One set of words; `json` keeps its old meaning per command (analyze: the summary; replay: the records).
  for (const name of ["analyze", "replay"]) {
    deepEqual(
      optionsOf(command(name))["format"]!.choices,
      ["table", "json", "csv", "records", "summary"],
      name,
    );
  }
  const files = ["node-a", "node-b", "node-c"].map((n) => `fixtures/e2e/${n}.jsonl`);
  const csv = await cli(["analyze", "--config", "fixtures/e2e/config.yaml", "--format", "csv", ...files]);
  equal(csv.code, 0, csv.stderr);
  const rows = csv.stdout.trim().split("\n");
  equal(
    rows[0],
    "measurement,stage,matches,signatures,recall,p50_s,p90_s,p99_s,max_s,hop_from,hop_p50_s,hop_p90_s,hop_p99_s",
  );
  deepEqual(rows.slice(1).map((r) => r.split(",").slice(0, 2).join(",")), [
    "call_audio,relay",
    "call_audio,asr",
  ]);

  const json = await cli(["analyze", "--config", "fixtures/e2e/config.yaml", "--format", "json", ...files]);
  equal(json.code, 0, json.stderr);
  const summary = await cli([
    "analyze",
    "--config",
    "fixtures/e2e/config.yaml",
    "--format",
    "summary",
    ...files,
  ]);
  equal(summary.code, 0, summary.stderr);
  deepEqual(
    (JSON.parse(summary.stdout) as { measurements: unknown }).measurements,
    (JSON.parse(json.stdout) as { measurements: unknown }).measurements,
    "analyze: summary is json",
  );
  const keys = new Set<string>();
  JSON.parse(json.stdout, (k, v) => {
    if (k !== "" && !/^\d+$/.test(k)) keys.add(k);
    return v;
  });
  const mine = [...keys].filter((k) =>
    // Keys that are data, not names: stage names and ids as map keys.
    !["relay", "asr"].includes(k)
  );
  for (const k of mine) match(k, /^[a-z0-9_]+$/, `not snake_case: ${k}`);
  for (
    const k of ["latency_s", "first_ns", "duration_s", "t_s", "latency_s_by_stage", "matched_signatures"]
  ) {
    ok(keys.has(k), `missing ${k}`);
  }

  const recs = await cli([
    "analyze",
    "--config",
    "fixtures/e2e/config.yaml",
    "--format",
    "records",
    ...files,
  ]);
  equal(recs.code, 0, recs.stderr);
  const kinds = recs.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { kind: string }).kind);
  ok(kinds.includes("signature") && kinds.includes("match"), kinds.join(","));
});

Deno.test("grammar: each command's --format help says what that command prints", () => {
  // replay's json is its records and discover's json its findings (camelCase); both helps said "one JSON document
  // (snake_case, units in the key names)", which is analyze's.
  const formatHelp = (name: string) => helpText(command(name)).replace(/\s+/g, " ");
  match(formatHelp("replay"), /json: the records/);
  match(formatHelp("discover"), /json: what was found/);
  match(formatHelp("analyze"), /json: one JSON document \(snake_case, units in the key names\)/);
  for (const name of ["replay", "discover"]) ok(!/snake_case/.test(formatHelp(name)), name);
});

natsTest("replay against a server without the stream names the stream and why (exit 1)", async () => {
  const srv = await NatsServer.start();
  const dir = await Deno.makeTempDir();
  try {
    const cfg = `${dir}/c.yaml`;
    const base = await Deno.readTextFile("fixtures/e2e/config.yaml");
    await Deno.writeTextFile(
      cfg,
      base.replace(/^nats:\n(?:[ \t].*\n)*/m, "") + `\nnats:\n  url: ${srv.url}\n`,
    );
    const r = await cli(["replay", "--config", cfg]);
    equal(r.code, 1, r.stderr);
    match(r.stderr, /JetStream stream "FSMPX" does not exist on 127\.0\.0\.1:\d+: no sensor has published/);
    ok(!r.stderr.includes('"level"'), "a sentence, not a JSON log line");
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
