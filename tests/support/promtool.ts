/**
 * Validates exposition text with real tools: `promtool check metrics` for Prometheus text and the strict
 * OpenMetrics parser of Debian's python3-prometheus-client for OpenMetrics (promtool 2.42 cannot parse exemplars).
 * @module
 */

/** Output of a validator run. */
export interface ToolResult {
  code: number;
  output: string;
}

async function runWithStdin(cmd: string, args: string[], input: string): Promise<ToolResult> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** `promtool check metrics` on Prometheus text exposition. */
export function promtoolCheckMetrics(text: string): Promise<ToolResult> {
  return runWithStdin("promtool", ["check", "metrics"], text);
}

const OM_PARSE = `
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
n = 0
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        n += 1
        if s.exemplar is not None:
            print("exemplar", s.name, dict(s.exemplar.labels))
print("samples", n)
`;

/** Parses OpenMetrics text with the strict python parser; prints exemplars found. */
export function parseOpenMetrics(text: string): Promise<ToolResult> {
  return runWithStdin("/usr/bin/python3", ["-c", OM_PARSE], text);
}
