/**
 * The README states contracts (command lines, tasks, label values, files); these checks keep it from drifting
 * from the code that makes them true. Each one reads the README as text: no network, no system tools.
 */
import { deepEqual, ok } from "node:assert/strict";
import { tcpdumpArgs } from "../packets/live_capture.ts";
import { EXPIRE_REASONS, ROW_SKIP_REASONS } from "../actors/messages.ts";
import { FsmMetrics } from "../http/metrics.ts";

const ROOT = new URL("../", import.meta.url);
const README = await Deno.readTextFile(new URL("README.md", ROOT));

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
