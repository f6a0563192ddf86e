import { deepEqual, rejects } from "node:assert/strict";
import { withLogsOnFailure } from "./support/tools.ts";
import { logger } from "../util/log.ts";

Deno.test("test logs: held back while a test passes, printed when it fails", async () => {
  const printed: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void printed.push(a.join(" "));
  try {
    const log = logger("t");
    await withLogsOnFailure(() => log.warn("expected failure"));
    deepEqual(printed, []);
    await rejects(withLogsOnFailure(() => {
      log.warn("the clue");
      throw new Error("boom");
    }));
    deepEqual(printed.map((l) => (JSON.parse(l) as { msg: string }).msg), ["the clue"]);
  } finally {
    console.error = orig;
  }
});
