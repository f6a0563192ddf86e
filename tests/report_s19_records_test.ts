import { equal, ok } from "node:assert/strict";
import { parseRecord, type SignatureRecord } from "../report/records.ts";
import { summarize } from "../report/summary.ts";

const SIG = {
  kind: "signature",
  measurement: "m",
  signature_id: "00ff00ff00ff00ff",
  node: "node-a",
  pod: "voice/telephony-0",
  stream: "call-1",
  time_ns: "1763910000123456789",
  offset_ms: 0,
  ids: { interval_id: "i-1" },
  bytes: 600,
};

Deno.test("records: a signature record whose time_ns is no integer is refused, as a match's tap times are", () => {
  const good = parseRecord(SIG);
  ok(typeof good !== "string");
  // Accepted before the fix, it then threw in every BigInt of the summary (the UI's records file, replay).
  equal(summarize([good as SignatureRecord], []).length, 1);
  for (const time_ns of ["1.5e18", "12.5", "", "now", " 1"]) {
    const r = parseRecord({ ...SIG, time_ns });
    equal(typeof r, "string", `time_ns ${JSON.stringify(time_ns)} accepted`);
  }
  ok(
    typeof parseRecord({ ...SIG, time_ns: "-5" }) !== "string",
    "a signed integer stays valid (as for taps)",
  );
});

Deno.test("records: a time_ns of more than 19 digits, or ids under Object.prototype's names, are refused", () => {
  const sig = {
    kind: "signature",
    measurement: "m",
    signature_id: "s",
    node: "a",
    pod: "p",
    stream: "x",
    time_ns: "1763910000000000000",
    offset_ms: 0,
    ids: { call_id: "c1" },
    bytes: 600,
  };
  ok(typeof parseRecord(sig) !== "string");
  // 320 digits: Number() of it is Infinity, and the UI's time bands were NaN wide (every overview a 500).
  equal(typeof parseRecord({ ...sig, time_ns: "1" + "0".repeat(320) }), "string");
  equal(typeof parseRecord({ ...sig, time_ns: "-9223372036854775808" }), "object");
  // An id type named `constructor` made every record without that id yield the inherited Object function.
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    equal(typeof parseRecord({ ...sig, ids: JSON.parse(`{"${name}": "x"}`) }), "string", name);
  }
});
