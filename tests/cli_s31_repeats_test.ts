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
import { isCopyStream, replayedLater } from "./support/replayed_later.ts";

const SHIFT_NS = 40_000_000_000n;

Deno.test("analyze: a recording replayed in later calls is matched once per signature, at its own call's latency", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files: string[] = [];
    for (const n of ["node-a", "node-b", "node-c"]) {
      const f = join(dir, `${n}.jsonl`);
      await Deno.writeTextFile(
        f,
        replayedLater(await Deno.readTextFile(join(ROOT, `fixtures/demo/${n}.jsonl`)), SHIFT_NS),
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
    for (const m of matches) {
      assert.equal(isCopyStream(m.target.stream), isCopyStream(m.source.stream), JSON.stringify(m.target));
    }
    assert.equal(matches.filter((m) => isCopyStream(m.source.stream)).length, 60);
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

Deno.test("analyze: calls replaying one recording 1.5 s apart keep each relay match in its own call (a later repeat is no cause)", async () => {
  // The later call's signatures also match the earlier call's relay audio at -1.4 s, within the search before
  // their instants: before, the guard kept those (the smaller latency) and dropped the earlier call's own matches.
  const dir = await Deno.makeTempDir();
  try {
    const files: string[] = [];
    for (const n of ["node-a", "node-b", "node-c"]) {
      const f = join(dir, `${n}.jsonl`);
      const text = await Deno.readTextFile(join(ROOT, `fixtures/demo/${n}.jsonl`));
      await Deno.writeTextFile(f, replayedLater(text, 1_500_000_000n));
      files.push(f);
    }
    const out = join(dir, "records.jsonl");
    const r = await runMain([
      "analyze",
      "--config",
      join(ROOT, "fixtures/demo/config.yaml"),
      "--out",
      out,
      "--format",
      "json",
      ...files,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const recs = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const relay = recs.filter((x) => x.kind === "match" && x.stage === "relay");
    assert.equal(relay.length, 60, "one relay match per signature");
    for (const m of relay) {
      assert.equal(isCopyStream(m.target.stream), isCopyStream(m.source.stream), JSON.stringify(m.target));
      assert.ok(m.latency_s > 0, `relay latency ${m.latency_s} s`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
