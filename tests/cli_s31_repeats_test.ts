/**
 * The same audio on several source streams (a load test replaying one recording): the demo's three calls played
 * again 40 s later, as new calls. Every later call's target audio also matched the earlier call's signatures,
 * which were still active, and those matches carried the 40 s between the calls as latency (90 matches for 60
 * signatures per stage, the relay's p90 at 40,160 ms). The repeat guard (audio/match/repeats.ts) credits each
 * target instant to the nearest earlier source instant: one match per signature and stage, at the latencies of
 * the demo alone, and the run's notes say what was dropped.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain } from "./support/sensor_process.ts";

const SHIFT_NS = 40_000_000_000n;

/** A demo capture with every row played again `SHIFT_NS` later on new streams (new stream ids and ports). */
function replayedLater(text: string): string {
  const [header, ...lines] = text.trim().split("\n");
  const rows = lines.map((l) => JSON.parse(l) as { query: string; row: Record<string, unknown> });
  const copies = rows.map((r) => {
    const row: Record<string, unknown> = {
      ...r.row,
      time_: String(BigInt(r.row["time_"] as string) + SHIFT_NS),
    };
    if (typeof row["req_body"] === "string") {
      row["req_body"] = (row["req_body"] as string).replace('"streamSid":"MZ', '"streamSid":"MY')
        .replace('"session":"asr-', '"session":"asx-');
    }
    if (typeof row["remote_port"] === "number") row["remote_port"] = (row["remote_port"] as number) + 1000;
    return { ...r, row };
  });
  const all = [...rows, ...copies].sort((a, b) => {
    const d = BigInt(a.row["time_"] as string) - BigInt(b.row["time_"] as string);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  return [header, ...all.map((r) => JSON.stringify(r))].join("\n") + "\n";
}

Deno.test("analyze: a recording replayed in later calls is matched once per signature, at its own call's latency", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files: string[] = [];
    for (const n of ["node-a", "node-b", "node-c"]) {
      const f = join(dir, `${n}.jsonl`);
      await Deno.writeTextFile(
        f,
        replayedLater(await Deno.readTextFile(join(ROOT, `fixtures/demo/${n}.jsonl`))),
      );
      files.push(f);
    }
    const config = join(ROOT, "fixtures/demo/config.yaml");
    const out = join(dir, "records.jsonl");
    const r = await runMain(["analyze", "--config", config, "--out", out, "--format", "json", ...files]);
    assert.equal(r.code, 0, r.stderr);
    const recs = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const sigs = recs.filter((x) => x.kind === "signature");
    const matches = recs.filter((x) => x.kind === "match");
    assert.equal(sigs.length, 60, "the demo's 30 signatures, twice");
    for (const stage of ["relay", "asr"]) {
      const found = matches.filter((m) => m.stage === stage);
      assert.equal(found.length, 60, `${stage}: one match per signature`);
      assert.equal(new Set(found.map((m) => m.signature_id)).size, 60);
      const slowest = Math.max(...found.map((m) => m.latency_s));
      assert.ok(slowest < 3, `${stage}: slowest ${slowest} s (the calls are 40 s apart)`);
    }
    // Each match is in its own call's target streams: a copy's signature in a copy's stream (its new port or
    // session), an original's in an original's.
    const copy = (stream: string) =>
      stream.includes("|MY") || /\|4[1-9]\d{3}$/.test(stream) || stream.includes("asx-");
    for (const m of matches) {
      assert.equal(copy(m.target.stream), copy(m.source.stream), JSON.stringify(m.target));
    }
    assert.equal(matches.filter((m) => copy(m.source.stream)).length, 60);
    const summary = JSON.parse(r.stdout);
    const notes = summary.diagnosis.findings.filter((f: { kind: string }) => f.kind === "repeated_audio");
    assert.deepEqual(
      notes.map((f: { text: string }) => f.text).sort(),
      [
        "stage call_audio/asr: 30 matches were of audio the source repeats; 30 dropped for a nearer repeat",
        "stage call_audio/relay: 30 matches were of audio the source repeats; 30 dropped for a nearer repeat",
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
