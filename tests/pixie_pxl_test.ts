import { deepStrictEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  type ComposedQueryInput,
  composeScript,
  inlineStartTime,
  PROCESS_POD_EXPR,
  PxlComposeError,
  pxlString,
  startTimeExpr,
} from "../pixie/pxl.ts";
import { directModeProblems } from "../pixie/direct_mode.ts";
import { compilePxl, prunedOn } from "./support/fake_pxl.ts";

const FILTER = `df = px.DataFrame(table='http_events', start_time='-30s')
df = df[df.req_path == '/audio']
`;

function query(name: string, over: Partial<ComposedQueryInput> = {}): ComposedQueryInput {
  return {
    name,
    streamFilter: FILTER,
    node: "node-1",
    columns: { time: "time_", pod: "pod", payload: "req_body", body_size: "req_body_size" },
    streamKeyColumns: ["remote_addr", "remote_port", "$.call_id"],
    ...over,
  };
}

/** Line and column (1-based) of the first occurrence of `needle` in `text`. */
function lineColOf(text: string, needle: string): { line: number; col: number } {
  const at = text.indexOf(needle);
  ok(at >= 0, `${needle} not in text`);
  const before = text.slice(0, at);
  const line = before.split("\n").length;
  return { line, col: at - before.lastIndexOf("\n") };
}

Deno.test("composeScript scopes to the node, adds pod, projects columns and displays a stream", () => {
  const c = composeScript([query("voice/source")]);
  const lines = c.script.split("\n");
  equal(lines[0], "import px");
  ok(c.script.includes(FILTER));
  ok(c.script.includes("df = df[df.ctx['node'] == 'node-1']\n"));
  ok(c.script.includes("df['pod'] = df.ctx['pod']\n"));
  ok(
    c.script.includes(
      "df = df[['time_', 'pod', 'req_body', 'req_body_size', 'remote_addr', 'remote_port']]\n",
    ),
  );
  ok(c.script.trimEnd().endsWith("px.display(df.stream(), 'voice/source')"));
  ok(!c.script.includes("$.call_id"), "payload paths are not projected");
  // The node scope comes after the user's filter, the display last.
  ok(c.script.indexOf("df.ctx['node']") > c.script.indexOf("req_path"));
  deepStrictEqual([...c.tables.keys()], ["voice/source"]);
  deepStrictEqual(c.tables.get("voice/source")!.names, ["voice/source"]);
});

Deno.test("identical filters share one table named after the first; different ones do not", () => {
  const c = composeScript([
    query("voice/source"),
    query("voice/asr"),
    query("other/source"),
    query("voice/tts", { streamFilter: "df = px.DataFrame('http_events')\n" }),
    query("voice/x", { streamKeyColumns: ["local_port"] }),
  ]);
  deepStrictEqual([...c.tables.keys()], ["voice/source", "voice/tts", "voice/x"]);
  deepStrictEqual(c.tables.get("voice/source")!.names, ["voice/source", "voice/asr", "other/source"]);
  equal(c.script.split("px.display(").length - 1, 3);
});

Deno.test("names and nodes are escaped as PxL strings", () => {
  equal(pxlString("a'b\\c\nd"), "'a\\'b\\\\c\\nd'");
  const c = composeScript([query("m'x/s", { node: "no'de" })]);
  ok(c.script.includes("df.ctx['node'] == 'no\\'de'"));
  ok(c.script.includes("px.display(df.stream(), 'm\\'x/s')"));
});

Deno.test("start time replaces or adds start_time in every px.DataFrame call", () => {
  const replaced = composeScript([query("m/s", { startTime: 1700000000123456789n })]).script;
  ok(replaced.includes("df = px.DataFrame(table='http_events', start_time=1700000000123456789)"));
  ok(!replaced.includes("'-30s'"));

  const added = composeScript([
    query("m/s", { streamFilter: "df = px.DataFrame(table='http_events')\n", startTime: "-5m" }),
  ]).script;
  ok(added.includes("df = px.DataFrame(table='http_events', start_time='-5m')"));

  const positional = composeScript([
    query("m/s", {
      streamFilter: "df = px.DataFrame('http_events', ['time_', 'upid'], '-1m')\n",
      startTime: "42",
    }),
  ]).script;
  ok(positional.includes("df = px.DataFrame('http_events', ['time_', 'upid'], 42)"));

  const nested = composeScript([
    query("m/s", {
      streamFilter:
        "# px.DataFrame(in a comment)\nx = 'px.DataFrame('\ndf = px.DataFrame(table=('http_' + 'events'),)\n",
      startTime: "7",
    }),
  ]).script;
  ok(nested.includes("df = px.DataFrame(table=('http_' + 'events'),start_time=7)"));
  ok(nested.includes("# px.DataFrame(in a comment)\nx = 'px.DataFrame('\n"));

  throws(() => startTimeExpr("yesterday"), PxlComposeError);
  throws(
    () => composeScript([query("m/s", { streamFilter: "df = 1\n", startTime: "-1s" })]),
    PxlComposeError,
  );
});

Deno.test("bad configurations are refused with the query named", () => {
  throws(() => composeScript([]), PxlComposeError);
  throws(() => composeScript([query("nostream")]), /not <measurement>\/<tap>/);
  throws(
    () => composeScript([query("m/s", { streamFilter: FILTER + "px.display(df)\n" })]),
    /m\/s: stream_filter must not call px.display/,
  );
  throws(
    () => composeScript([query("m/s", { streamFilter: "x = px.DataFrame('t')\n" })]),
    /assign the DataFrame to df/,
  );
});

Deno.test("compile errors map to the user's line and column, per block", () => {
  const second = "df = px.DataFrame(table='http_events')\ndf = df[df.nope == 1]\n";
  const c = composeScript([query("voice/source"), query("voice/asr", { streamFilter: second })]);
  const at = lineColOf(c.script, "nope");
  const m = c.mapCompileError(at.line, at.col)!;
  equal(m.measurement, "voice");
  equal(m.tap, "asr");
  equal(m.line, 2);
  equal(m.col, second.split("\n")[1]!.indexOf("nope") + 1);
  equal(m.part, undefined);

  const first = lineColOf(c.script, "req_path");
  const m1 = c.mapCompileError(first.line, first.col)!;
  deepStrictEqual([m1.tap, m1.line, m1.col], [
    "source",
    2,
    FILTER.split("\n")[1]!.indexOf("req_path") + 1,
  ]);

  // The header line is fsm-px's own.
  equal(c.mapCompileError(1, 1), undefined);
  // An error in the projection fsm-px adds names the part and the query, not a user line.
  const proj = lineColOf(c.script, "df = df[['time_'");
  const mp = c.mapCompileError(proj.line, proj.col + 3)!;
  equal(mp.tap, "source");
  equal(mp.line, undefined);
  match(mp.part!, /projection/);
});

Deno.test("inlineStartTime: the relative literal every px.DataFrame call gives, else nothing", () => {
  equal(inlineStartTime(FILTER), "-30s");
  equal(inlineStartTime('df = px.DataFrame(table="http_events", start_time="-5m")\n'), "-5m");
  equal(inlineStartTime("df = px.DataFrame('http_events', ['time_'], '-1m')\n"), "-1m", "positional");
  const two = "a = px.DataFrame(table='http_events', start_time='-30s')\n" +
    "b = px.DataFrame(table='redis_events', start_time='-30s')\n";
  equal(inlineStartTime(two), "-30s");
  equal(
    inlineStartTime(two.replace("redis_events', start_time='-30s'", "redis_events', start_time='-1m'")),
    undefined,
  );
  equal(inlineStartTime("df = px.DataFrame(table='http_events')\n"), undefined, "none given");
  equal(inlineStartTime("df = px.DataFrame(table='http_events', start_time=1700000000)\n"), undefined);
  equal(inlineStartTime("df = px.DataFrame(table='http_events', start_time=px.now() - 5)\n"), undefined);
  equal(inlineStartTime("# px.DataFrame(table='x', start_time='-1s')\ndf = 1\n"), undefined, "a comment");
  equal(inlineStartTime("df = px.DataFrame(table='http_events'\n"), undefined, "unbalanced");
});

Deno.test("columns after an inserted start_time still point into the user's text", () => {
  const filter = "df = px.DataFrame(table='http_events', start_time='-30s'); df = df[df.bad_col == 1]\n";
  const c = composeScript([query("m/s", { streamFilter: filter, startTime: 1234567890123456789n })]);
  const at = lineColOf(c.script, "bad_col");
  const m = c.mapCompileError(at.line, at.col)!;
  equal(m.line, 1);
  equal(m.col, filter.indexOf("bad_col") + 1);
  // Inside the value fsm-px wrote: the user's start_time position, flagged.
  const v = lineColOf(c.script, "1234567890123456789");
  const mv = c.mapCompileError(v.line, v.col + 5)!;
  equal(mv.col, filter.indexOf("'-30s'") + 1);
  match(mv.part!, /start_time/);
});

Deno.test("standalone scope: no node filter, the pod column names the process", () => {
  const c = composeScript([query("voice/source", { scope: { kind: "none" }, podSource: "process" })]);
  ok(!c.script.includes("ctx['node']"), "a standalone PEM only sees its own node");
  ok(!c.script.includes("ctx["), "and has no Kubernetes metadata");
  ok(c.script.includes(`df['pod'] = ${PROCESS_POD_EXPR}\n`));
  const at = lineColOf(c.script, "px.upid_to_cmdline");
  match(c.mapCompileError(at.line, at.col)!.part!, /process/);
  // It compiles like Pixie compiles it.
  const outs = compilePxl(c.script);
  deepStrictEqual([...outs[0]!.frame.columns.keys()], [
    "time_",
    "pod",
    "req_body",
    "req_body_size",
    "remote_addr",
    "remote_port",
  ]);
});

Deno.test("scope by this node's pods: equality filters Pixie can prune agents on, two operands per or", () => {
  const c = composeScript([
    query("voice/source", { scope: { kind: "pods", pods: ["voice/a-0", "voice/b-1", "media/c-2"] } }),
  ]);
  ok(c.script.includes(
    "df = df[(df.ctx['pod'] == 'voice/a-0') or ((df.ctx['pod'] == 'voice/b-1') or " +
      "(df.ctx['pod'] == 'media/c-2'))]\n",
  ));
  ok(!c.script.includes("ctx['node']"));
  const frame = compilePxl(c.script)[0]!.frame;
  equal(prunedOn(frame, new Set(["voice/b-1"]), new Set()), false);
  equal(prunedOn(frame, new Set(["other/x"]), new Set()), true);
  // A node filter is never pruned: Pixie's agent metadata filters hold pods and services only.
  equal(
    prunedOn(compilePxl(composeScript([query("voice/source")]).script)[0]!.frame, new Set(), new Set()),
    false,
  );
  throws(() => composeScript([query("m/s", { scope: { kind: "pods", pods: [] } })]), /at least one pod/);
  // A full node's pods nest as a balanced tree (session 30): 110 pods were 110 levels of parentheses deep for
  // Pixie's recursive parser; now 7 pairs (2 per level), every pod still kept and no other.
  const pods = Array.from({ length: 110 }, (_, i) => `voice/p-${i}`);
  const big = composeScript([query("voice/source", { scope: { kind: "pods", pods } })]).script;
  let depth = 0, deepest = 0;
  for (const ch of big) {
    if (ch === "(") deepest = Math.max(deepest, ++depth);
    else if (ch === ")") depth--;
  }
  ok(deepest <= 2 + 2 * Math.ceil(Math.log2(pods.length)), `${deepest} levels of parentheses`);
  const bigFrame = compilePxl(big)[0]!.frame;
  equal(prunedOn(bigFrame, new Set(["voice/p-109"]), new Set()), false);
  equal(prunedOn(bigFrame, new Set(["voice/p-110"]), new Set()), true);
  // Different scopes do not share a table.
  equal(composeScript([query("m/s"), query("m/t", { scope: { kind: "none" } })]).tables.size, 2);
});

Deno.test("direct mode: Kubernetes metadata in a filter is placed and explained, strings and comments ignored", () => {
  const filter = "df = px.DataFrame(table='http_events')\n" +
    "# df.ctx['pod'] in a comment is fine\n" +
    "df = df[px.contains(df.ctx['pod'], 'media') and df.ctx[\"node\"] == 'n1']\n" +
    "df.svc = px.upid_to_service_name(df.upid)\n" +
    "df.cmd = px.upid_to_cmdline(df.upid)\n" +
    "x = \"df.ctx['namespace']\"\n";
  const p = directModeProblems(filter);
  deepStrictEqual(p.map((x) => [x.line, x.col, x.found]), [
    [3, 24, "ctx['pod']"],
    [3, 52, 'ctx["node"]'],
    [4, 10, "px.upid_to_service_name"],
  ]);
  match(p[0]!.message, /reads as '' on a standalone PEM/);
  match(p[0]!.message, /ports \(df\.local_port == 8080/);
  match(p[0]!.message, /df\.req_path/);
  match(p[0]!.message, /df\.remote_addr/);
  match(p[1]!.message, /only sees its own node.*remove it/);
  deepStrictEqual(
    directModeProblems("df = px.DataFrame(table='http_events')\ndf = df[df.local_port == 8080]\n"),
    [],
  );
});
