/**
 * How the web UI's server-side aggregation scales: 100,000 match records (plus their signatures) of 2,000 calls
 * through relay → asr, loaded into the UI's store, then the time to build each page's data (the first call
 * computes hops and the summary; later calls reuse it until a record arrives) and the size of what is sent.
 * @module
 */
import { RecordStore } from "../http/ui/store.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";

/** Figures of one run. */
export interface UiStoreFigures {
  matches: number;
  signatures: number;
  loadMs: number;
  overviewFirstMs: number;
  overviewCachedMs: number;
  waterfallPageMs: number;
  waterfallSortedMs: number;
  intervalMs: number;
  overviewBytes: number;
  waterfallPageBytes: number;
}

function time<T>(f: () => T): [T, number] {
  const t = performance.now();
  const v = f();
  return [v, performance.now() - t];
}

/** Builds the records and measures. */
export function benchUiStore(matchesWanted = 100_000): UiStoreFigures {
  const store = new RecordStore(
    { m: { relay: "source", asr: "relay" } },
    { m: ["relay", "asr"] },
  );
  const t0 = 1_763_910_000_000_000_000n;
  const sigs: SignatureRecord[] = [];
  const ms: MatchRecord[] = [];
  const perCall = 25;
  for (let i = 0; ms.length < matchesWanted; i++) {
    const call = Math.floor(i / perCall);
    const interval = `${call.toString(16).padStart(8, "0")}-0000-4000-8000-${Math.floor((i % perCall) / 5)}`;
    const src = t0 + BigInt(call) * 7_000_000_000n + BigInt(i % perCall) * 900_000_000n;
    const id = i.toString(16).padStart(16, "0");
    const stream = `voice/telephony-${call % 8}|MZ${call}`;
    sigs.push({
      kind: "signature",
      measurement: "m",
      signature_id: id,
      node: "node-a",
      pod: `voice/telephony-${call % 8}`,
      stream,
      time_ns: src.toString(),
      offset_ms: 0,
      ids: { interval_id: interval },
      bytes: 600,
    });
    const relay = src + 150_000_000n + BigInt(i % 7) * 1_000_000n;
    const asr = relay + 600_000_000n + BigInt(i % perCall) * 80_000_000n;
    for (const [stage, t] of [["relay", relay], ["asr", asr]] as const) {
      ms.push({
        kind: "match",
        measurement: "m",
        stage,
        signature_id: id,
        ids: { interval_id: interval },
        source: {
          node: "node-a",
          pod: `voice/telephony-${call % 8}`,
          stream,
          time_ns: src.toString(),
          offset_ms: 0,
        },
        target: {
          node: "node-b",
          pod: `voice/${stage}-0`,
          stream: `${stage}|${call}`,
          time_ns: t.toString(),
          offset_ms: 0,
        },
        latency_s: Number(t - src) / 1e9,
        ber: 0.05,
      });
    }
  }
  const [, loadMs] = time(() => {
    for (const s of sigs) store.add(s);
    for (const m of ms) store.add(m);
  });
  const [ov, overviewFirstMs] = time(() => store.overview());
  const [, overviewCachedMs] = time(() => store.overview());
  const [page, waterfallPageMs] = time(() => store.waterfall({ limit: 100 }));
  const [, waterfallSortedMs] = time(() => store.waterfall({ limit: 100, sort: "total", offset: 500 }));
  const [, intervalMs] = time(() => store.interval(page!.rows[0]!.id));
  return {
    matches: ms.length,
    signatures: sigs.length,
    loadMs,
    overviewFirstMs,
    overviewCachedMs,
    waterfallPageMs,
    waterfallSortedMs,
    intervalMs,
    overviewBytes: JSON.stringify(ov).length,
    waterfallPageBytes: JSON.stringify(page).length,
  };
}

if (import.meta.main) {
  const f = benchUiStore();
  for (const [k, v] of Object.entries(f)) {
    console.log(`${k.padEnd(20)} ${typeof v === "number" ? v.toFixed(1) : v}`);
  }
}
