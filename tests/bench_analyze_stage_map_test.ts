import { ok } from "node:assert/strict";
import { profileStages, stageOfUrl } from "../bench/analyze_speed.ts";

/** Every source file under `dir` (relative to the repository root), recursively. */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(`../${dir}/`, import.meta.url))) {
    if (e.isDirectory) out.push(...await sources(`${dir}/${e.name}`));
    else if (e.name.endsWith(".ts")) out.push(`${dir}/${e.name}`);
  }
  return out;
}

Deno.test("analyze bench: every engine file is in a stage of the CPU breakdown (the map follows the tree)", async () => {
  const files = [
    ...await sources("audio"),
    ...await sources("actors"),
    "pixie/capture.ts",
    "pixie/replay.ts",
  ];
  // Types only: no code runs there.
  const unmapped = files.filter((f) => !f.endsWith("/types.ts") && !stageOfUrl(`file:///repo/${f}`));
  ok(unmapped.length === 0, `files in no stage: ${unmapped.join(", ")}`);
  ok(stageOfUrl("file:///repo/audio/decode/stream_decoder.ts") === "decode");
  ok(stageOfUrl("file:///repo/audio/decode/resample.ts") === "resample");
  ok(stageOfUrl("file:///repo/audio/fingerprint/fft_simd.ts") === "fingerprint");
  ok(stageOfUrl("file:///repo/audio/decode/sample_ring.ts") === "sample ring");
  ok(stageOfUrl("file:///repo/audio/decode/adpcm4.ts") === "sample ring");
  ok(stageOfUrl("file:///repo/audio/align/level_envelope.ts") === "align");
});

Deno.test("analyze bench: the hottest functions name their file from the repository root, in any checkout", () => {
  const root = new URL("../", import.meta.url).href;
  const profile = {
    nodes: [
      { id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: -1 }, children: [2] },
      {
        id: 2,
        callFrame: { functionName: "analyze", url: `${root}audio/fingerprint/fingerprint.ts`, lineNumber: 9 },
      },
    ],
    samples: [2, 2],
    timeDeltas: [5, 5],
  };
  const { stages, hottest } = profileStages(profile);
  ok(hottest[0]?.fn === "analyze audio/fingerprint/fingerprint.ts:10", String(hottest[0]?.fn));
  ok(stages.fingerprint === 1);
});
