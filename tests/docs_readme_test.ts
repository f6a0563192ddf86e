/**
 * The README states contracts (command lines, tasks, label values, files); these checks keep it from drifting
 * from the code that makes them true. Each one reads the README as text: no network, no system tools.
 */
import { deepEqual, ok } from "node:assert/strict";
import { tcpdumpArgs } from "../packets/live_capture.ts";

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
