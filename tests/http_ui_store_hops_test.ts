/**
 * The UI store computes hops again only for signatures that got a match since its last view (a live tail adds a
 * few records to 100,000): records arriving in any order, across views, must end with the hops `addHops` gives
 * over all of them at once.
 */
import { deepEqual, equal } from "node:assert/strict";
import { RecordStore } from "../http/ui/store.ts";
import { addHops, type StagePaths } from "../report/hops.ts";
import type { MatchRecord } from "../report/records.ts";

const PATHS: StagePaths = { m: { relay: "source", asr: "relay" } };
const T0 = 1_763_910_000_000_000_000n;
const MS = 1_000_000n;

function match(sig: number, stage: "relay" | "asr", afterMs: number, stream = `${stage}-1`): MatchRecord {
  const src = T0 + BigInt(sig) * 1000n * MS;
  const t = src + BigInt(afterMs) * MS;
  return {
    kind: "match",
    measurement: "m",
    stage,
    signature_id: sig.toString(16).padStart(16, "0"),
    ids: { interval_id: `iv-${sig}` },
    source: { node: "a", pod: "voice/telephony-0", stream: "call-1", time_ns: src.toString(), offset_ms: 0 },
    target: {
      node: stage === "relay" ? "b" : "c",
      pod: `voice/${stage}-0`,
      stream,
      time_ns: t.toString(),
      offset_ms: 0,
    },
    latency_s: Number(t - src) / 1e9,
    ber: 0.05,
  };
}

/** Every match the store shows, by signature and stage and target stream, with its hop. */
function held(store: RecordStore, sigs: number[]): Map<string, MatchRecord> {
  const out = new Map<string, MatchRecord>();
  for (const s of sigs) {
    for (const m of store.signature(s.toString(16).padStart(16, "0"))?.matches ?? []) {
      out.set(`${m.signature_id} ${m.stage} ${m.target.stream}`, m);
    }
  }
  return out;
}

Deno.test("UI store: hops recomputed per signature across views equal addHops over every record", () => {
  const store = new RecordStore(PATHS, { m: ["relay", "asr"] });
  const all: MatchRecord[] = [];
  const add = (m: MatchRecord) => {
    all.push(m);
    store.add(m);
  };
  // View 1: asr matches whose relay match is not there yet (no hop), and one complete signature.
  add(match(1, "asr", 900));
  add(match(2, "asr", 800));
  add(match(3, "relay", 100));
  add(match(3, "asr", 700));
  let v = held(store, [1, 2, 3]);
  equal(v.get("0000000000000001 asr asr-1")?.hop, undefined);
  deepEqual(v.get("0000000000000003 asr asr-1")?.hop, {
    from_stage: "relay",
    latency_s: 0.6,
    from_node: "b",
    from_stream: "relay-1",
  });
  // View 2: signature 1's relay match arrives (its asr hop appears); signature 3 gets a second relay stream, a
  // later one: the asr hop now follows the latest relay match before it.
  add(match(1, "relay", 150));
  add(match(3, "relay", 300, "relay-2"));
  v = held(store, [1, 2, 3]);
  deepEqual(v.get("0000000000000001 asr asr-1")?.hop, {
    from_stage: "relay",
    latency_s: 0.75,
    from_node: "b",
    from_stream: "relay-1",
  });
  deepEqual(v.get("0000000000000003 asr asr-1")?.hop, {
    from_stage: "relay",
    latency_s: 0.4,
    from_node: "b",
    from_stream: "relay-2",
  });
  equal(v.get("0000000000000002 asr asr-1")?.hop, undefined);
  // View 3: a repeat of a record already held replaces it; everything equals addHops over all at once.
  add(match(2, "relay", 200));
  add(match(2, "relay", 200));
  const want = new Map(
    addHops(all, PATHS).map((m) => [`${m.signature_id} ${m.stage} ${m.target.stream}`, m]),
  );
  deepEqual(held(store, [1, 2, 3]), want);
  equal(store.counts.matches, want.size);
});
