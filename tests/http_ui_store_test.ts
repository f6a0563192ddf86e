import { deepEqual, equal, ok } from "node:assert/strict";
import { RecordStore } from "../http/ui/store.ts";
import { events, loadRecordFiles, startUiServer } from "../http/ui_server.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";

const T0 = 1_763_910_000_000_000_000n;
const MS = 1_000_000n;

function records(calls: number): (SignatureRecord | MatchRecord)[] {
  const out: (SignatureRecord | MatchRecord)[] = [];
  for (let c = 0; c < calls; c++) {
    for (let k = 0; k < 3; k++) {
      const id = `${c}${k}`.padStart(16, "0");
      const src = T0 + BigInt(c * 10_000 + k * 1000) * MS;
      const stream = `call-${c}`;
      const interval = `iv-${c}-${k}`;
      out.push({
        kind: "signature",
        measurement: "m",
        signature_id: id,
        node: "a",
        pod: "voice/telephony-0",
        stream,
        time_ns: src.toString(),
        offset_ms: 0,
        ids: { interval_id: interval },
        bytes: 600,
      });
      const relay = src + 150n * MS, asr = relay + BigInt(500 + 100 * c + 300 * k) * MS;
      for (
        const [stage, t, pod] of [["relay", relay, "voice/relay-0"], [
          "asr",
          asr,
          `voice/asr-${c % 2}`,
        ]] as const
      ) {
        out.push({
          kind: "match",
          measurement: "m",
          stage,
          signature_id: id,
          ids: { interval_id: interval },
          source: { node: "a", pod: "voice/telephony-0", stream, time_ns: src.toString(), offset_ms: 0 },
          target: { node: "b", pod, stream: `${stage}-${c}`, time_ns: t.toString(), offset_ms: 0 },
          latency_s: Number(t - src) / 1e9,
          ber: 0.01,
        });
      }
    }
  }
  return out;
}

const PATHS = { m: { relay: "source", asr: "relay" } };

Deno.test("UI store: overview figures, waterfall paging, filters and sort, interval and signature", () => {
  const store = new RecordStore(PATHS, { m: ["relay", "asr"] });
  for (const r of records(4)) store.add(r);
  for (const r of records(1)) store.add(r); // repeats are held once
  deepEqual(store.counts, { signatures: 12, matches: 24 });
  const [ov] = store.overview();
  ok(ov);
  deepEqual(ov.stages.map((s) => [s.stage, s.fromStage, s.matches, s.p50Ms]), [
    ["relay", "source", 12, 150],
    ["asr", "relay", 12, 150 + 500 + 150 + 300],
  ]);
  equal(ov.stages[1]!.hopP50Ms, 950);
  equal(ov.stages[0]!.histogram.reduce((a, b) => a + b, 0), 12);
  equal(ov.growth?.stage, "asr");
  equal(ov.growth!.calls[0]!.points.length, 3);

  const page = store.waterfall({ limit: 5, offset: 5 })!;
  deepEqual([page.total, page.offset, page.rows.length], [12, 5, 5]);
  equal(page.rows[0]!.id, "iv-1-2");
  const slowest = store.waterfall({ sort: "total", limit: 1 })!;
  deepEqual([slowest.rows[0]!.id, slowest.rows[0]!.totalMs], ["iv-3-2", 150 + 500 + 300 + 600]);
  deepEqual(slowest.rows[0]!.stages.map((c) => c.hopMs), [150, 1400]);
  equal(store.waterfall({ pod: "asr-1" })!.total, 6);
  equal(store.waterfall({ id: "iv-2" })!.total, 3);
  equal(store.waterfall({ measurement: "nope" }), null);

  const iv = store.interval("iv-2-1")!;
  deepEqual(iv.signatures.map((s) => s.matches.length), [2]);
  equal(iv.calls[0]!.stream, "call-2");
  equal(store.interval("call-3")!.signatures.length, 3);
  equal(store.interval("nothing"), null);
  equal(store.signature("0000000000000021")!.matches.length, 2);
});

Deno.test("UI server: record files (bad lines skipped), JSON API, live update events", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/r.jsonl`;
  const recs = records(2);
  await Deno.writeTextFile(
    file,
    [...recs.slice(0, 6).map((r) => JSON.stringify(r)), "not json", '{"kind":"x"}'].join("\n"),
  );
  const store = new RecordStore(PATHS, { m: ["relay", "asr"] });
  equal(await loadRecordFiles(store, [file]), 6);
  equal(store.skipped, 2);
  const ui = startUiServer({ listen: "127.0.0.1:0", store, eventIntervalMs: 10 });
  try {
    const get = async (p: string) => {
      const res = await fetch(new URL(p, ui.url));
      return { status: res.status, body: await res.text(), type: res.headers.get("content-type") ?? "" };
    };
    const index = await get("/");
    equal(index.status, 200);
    ok(index.body.includes("/vendor/uPlot.iife.min.js"));
    ok((await get("/vendor/uPlot.iife.min.js")).body.length > 40_000);
    equal((await get("/nope")).status, 404);
    equal((await get("/api/interval?id=nope")).status, 404);
    const health = JSON.parse((await get("/api/health")).body);
    equal(health.skippedRecords, 2);
    deepEqual(health.unmatched.map((u: { unmatched: number }) => u.unmatched), [0, 0]);

    // Live: an open event stream hears about records added after it connected.
    const res = await fetch(new URL("/api/events", ui.url));
    ok((res.headers.get("content-type") ?? "").startsWith("text/event-stream"));
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes('"matches":4')) text += (await reader.read()).value ?? "";
    for (const r of recs.slice(6)) store.add(r);
    while (!text.includes('"matches":12')) text += (await reader.read()).value ?? "";
    await reader.cancel();
    const wf = JSON.parse((await get("/api/waterfall?sort=total&limit=2")).body);
    deepEqual([wf.total, wf.rows.length], [6, 2]);
  } finally {
    await ui.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UI events: a page that stops reading holds a few updates, not one per interval for ever", async () => {
  const store = new RecordStore(PATHS, { m: ["relay", "asr"] });
  const closers = new Set<() => void>();
  const res = events(store, 2, closers);
  const recs = records(40);
  // Records keep coming for ~120 intervals while nobody reads the stream.
  for (const r of recs) {
    store.add(r);
    await new Promise((r) => setTimeout(r, 3));
  }
  await new Promise((r) => setTimeout(r, 20));
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  // Read what was queued, then the update the page is owed now that it reads again.
  while (!text.includes(`"matches":${2 * recs.length / 3}`)) text += (await reader.read()).value ?? "";
  const updates = text.split("event: update").length - 1;
  ok(updates <= 6, `${updates} updates queued for a page that did not read`);
  await reader.cancel();
  equal(closers.size, 0, "a cancelled stream is forgotten");
});

Deno.test("store: records of a measurement or stage the config does not name are counted and left out", () => {
  // A publisher of records under thousands of stage names made each view a table of ids by thousands of stages
  // (4,000: 15 s and 2.4 GB for one waterfall page).
  const store = new RecordStore(PATHS, { m: ["relay", "asr"] });
  const all = records(2);
  for (const r of all) store.add(r);
  const match = all.find((r) => r.kind === "match")!;
  for (let i = 0; i < 3_000; i++) store.add({ ...match, stage: `st${i}`, signature_id: `x${i}` });
  store.add({ ...match, measurement: "other" });
  store.add({ ...all[0]!, measurement: "other" } as SignatureRecord);
  equal(store.skipped, 3_002);
  deepEqual(store.counts, { signatures: 6, matches: 12 });
  const t0 = performance.now();
  equal(store.waterfall({ limit: 10 })?.rows.length, 6);
  ok(performance.now() - t0 < 5_000);
  // Without a config (records files alone) every record is kept.
  const open = new RecordStore();
  open.add({ ...match, stage: "anything" });
  deepEqual(open.counts, { signatures: 0, matches: 1 });
});
