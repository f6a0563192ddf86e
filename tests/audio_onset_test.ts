import { deepStrictEqual } from "node:assert/strict";
import { type Anchor, OnsetDetector } from "../audio/detect/onset.ts";

/** Runs a pattern of 10 ms frames: 'S' speech, '.' silence; returns the anchors with their frame numbers. */
function run(
  pattern: string,
  criteria: { min_duration_ms: number; min_silence_ms: number; reanchor_ms: number },
) {
  const det = new OnsetDetector(criteria);
  const out: { frame: number; kind: Anchor["kind"]; at: number }[] = [];
  [...pattern].forEach((c, k) => {
    const a = det.push(k, c === "S");
    if (a) out.push({ frame: a.sample / 80, kind: a.kind, at: k });
  });
  return out;
}

const BASE = { min_duration_ms: 50, min_silence_ms: 100, reanchor_ms: 0 };

Deno.test("an onset after enough silence becomes an anchor once min_duration of speech followed", () => {
  // 12 frames of silence, then speech at frame 12; confirmed at the 5th speech frame (frame 16).
  deepStrictEqual(run("............SSSSSSSS", BASE), [{ frame: 12, kind: "onset", at: 16 }]);
});

Deno.test("speech shorter than min_duration is not an onset, and counts as silence for the next one", () => {
  // A 3-frame blip, then 7 frames of silence (short gap tolerance is 6 frames): the blip is dropped; the next
  // speech comes after 3 + 7 + 10 frames of "silence" so it is an onset.
  deepStrictEqual(run("..........SSS.......SSSSSS", BASE), [{ frame: 20, kind: "onset", at: 24 }]);
});

Deno.test("pauses shorter than 60 ms inside the first min_duration do not break the onset", () => {
  deepStrictEqual(run("..........SS....SSSSS", BASE), [{ frame: 10, kind: "onset", at: 18 }]);
});

Deno.test("speech after a pause shorter than min_silence continues the utterance: no new onset", () => {
  deepStrictEqual(run("..........SSSSSSSS.....SSSSSSSS", BASE), [{ frame: 10, kind: "onset", at: 14 }]);
  // A pause of min_silence (10 frames) separates utterances.
  deepStrictEqual(run("..........SSSSSSSS..........SSSSSS", BASE), [
    { frame: 10, kind: "onset", at: 14 },
    { frame: 28, kind: "onset", at: 32 },
  ]);
});

Deno.test("the stream's start counts as silence: speech from the first frame is an onset", () => {
  deepStrictEqual(run("SSSSSS", BASE), [{ frame: 0, kind: "onset", at: 4 }]);
});

Deno.test("long continuous speech is re-anchored every reanchor_ms after the last anchor", () => {
  const speech = "S".repeat(70);
  deepStrictEqual(run(".........." + speech, { ...BASE, reanchor_ms: 200 }), [
    { frame: 10, kind: "onset", at: 14 },
    { frame: 30, kind: "reanchor", at: 30 },
    { frame: 50, kind: "reanchor", at: 50 },
    { frame: 70, kind: "reanchor", at: 70 },
  ]);
  // reanchor_ms 0 disables it.
  deepStrictEqual(run(".........." + speech, BASE), [{ frame: 10, kind: "onset", at: 14 }]);
});

Deno.test("silence that is not preceded by enough silence never makes an onset", () => {
  deepStrictEqual(run("SSSSSSSSSS..SSSSSSS...SSSSS", { ...BASE, min_silence_ms: 50 }), [
    { frame: 0, kind: "onset", at: 4 },
  ]);
});
