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
