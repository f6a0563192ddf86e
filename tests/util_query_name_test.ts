import { deepEqual, equal } from "node:assert/strict";
import { parseQueryName, queryName, queryNamesOf, SOURCE_TAP } from "../util/query_name.ts";

Deno.test("query names: built and split in one place; a measurement name may hold a slash", () => {
  equal(queryName("calls", SOURCE_TAP), "calls/source");
  deepEqual(parseQueryName(queryName("team/calls", "asr")), { measurement: "team/calls", tap: "asr" });
  equal(parseQueryName("calls"), undefined);
  equal(parseQueryName("calls/"), undefined);
  equal(parseQueryName("/asr"), undefined);
  deepEqual(queryNamesOf({ name: "m", match_rules: [{ stage: "relay" }, { stage: "asr" }] }), [
    "m/source",
    "m/relay",
    "m/asr",
  ]);
});
