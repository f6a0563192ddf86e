/**
 * `analyze --out` writes the same records on every run: every match whose previous stage was found carries its
 * hop, computed from all matches of the run (a live node can only add a hop when the previous stage came first).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain } from "./support/sensor_process.ts";

Deno.test("analyze --out: the same records on every run, a hop on every asr match whose relay match exists", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = ["node-a", "node-b", "node-c"].map((n) => join(ROOT, `fixtures/demo/${n}.jsonl`));
    const outs: string[] = [];
    for (let run = 0; run < 2; run++) {
      const out = join(dir, `r${run}.jsonl`);
      const r = await runMain([
        "analyze",
        "--config",
        join(ROOT, "fixtures/demo/config.yaml"),
        "--out",
        out,
        ...files,
      ]);
      assert.equal(r.code, 0, r.stderr);
      outs.push((await Deno.readTextFile(out)).trim().split("\n").sort().join("\n"));
    }
    assert.equal(outs[0], outs[1], "two runs, the same records");
    const recs = outs[0]!.split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const matches = recs.filter((r) => r.kind === "match");
    const relay = new Set(matches.filter((m) => m.stage === "relay").map((m) => m.signature_id));
    const asr = matches.filter((m) => m.stage === "asr");
    assert.ok(asr.length > 0);
    // Each match carries the target's level envelope at the matched instant: what the alignment compared. On the
    // relay (A-law, the same audio 150 ms later) it is the source's envelope, give or take a level.
    const sigEnv = new Map(
      recs.filter((r) => r.kind === "signature").map((r) => [r.signature_id, atob(r.envelope_b64 as string)]),
    );
    for (const m of matches.filter((m) => m.stage === "relay")) {
      const t = atob(m.target_envelope_b64 as string);
      const src = sigEnv.get(m.signature_id)!;
      assert.equal(t.length, src.length);
      let diff = 0;
      for (let i = 0; i < t.length; i++) diff += Math.abs(t.charCodeAt(i) - src.charCodeAt(i));
      assert.ok(diff / t.length < 1, `mean level difference ${diff / t.length} for ${m.signature_id}`);
    }
    for (const m of asr) {
      const hop = m.hop as { from_stage: string; latency_s: number } | undefined;
      if (relay.has(m.signature_id)) {
        assert.equal(hop?.from_stage, "relay", JSON.stringify(m));
        assert.ok(hop!.latency_s > 0);
      } else assert.equal(hop, undefined);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
