import { equal, throws } from "node:assert/strict";
import { parseDuration, parseDurationNs } from "../util/duration.ts";
import { relativeToNs } from "../pixie/stream.ts";
import { parseDurationMs } from "../cli/command.ts";

Deno.test("durations: one unit table for the config, the command line and Pixie's relative starts", () => {
  equal(parseDurationNs("250us"), 250_000);
  equal(parseDurationNs("1h30m"), 5_400e9);
  equal(parseDurationNs("7d"), 604_800e9);
  equal(parseDurationNs("0s"), undefined);
  equal(parseDurationNs("1w"), undefined);
  equal(parseDuration("1500us"), 2); // rounded to whole ms
  equal(parseDuration("100us"), undefined); // rounds to 0 ms: not a duration the config can use
  // The three callers read the same language (the CLI once had its own table without compounds).
  equal(parseDurationMs("1h30m", "--since"), 5_400_000);
  equal(relativeToNs("-1h30m"), 5_400_000_000_000n);
  equal(relativeToNs("-30s"), 30_000_000_000n);
  equal(relativeToNs("30s"), undefined);
});

Deno.test("parseDurationMs: more than 100 years is a usage error (ui --since 300000000d threw from Date)", () => {
  equal(parseDurationMs("36500d", "--since"), 36_500 * 86_400_000);
  throws(
    () => parseDurationMs("300000000d", "--since"),
    (e: Error) => e.message.includes("at most 100 years"),
  );
});
