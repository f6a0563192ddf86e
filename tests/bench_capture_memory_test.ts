/**
 * bench/capture_memory.ts's printout states issue 16's bound for `analyze` of a 1,000-stream capture with its
 * verdict, so `deno task bench` shows the target beside its measured value.
 */
import { deepEqual } from "node:assert/strict";
import { type CaptureMemory, printCaptureMemory } from "../bench/capture_memory.ts";

/** The lines printCaptureMemory prints for `r`. */
function printed(r: CaptureMemory): string[] {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    printCaptureMemory([r]);
  } finally {
    console.log = log;
  }
  return lines;
}

const run = (streams: number, analyzePeakMB: number): CaptureMemory => ({
  streams,
  seconds: 35,
  captureMB: 967,
  runPeakMB: 392,
  runEndMB: 392,
  runCpuS: 23.1,
  analyzePeakMB,
});

Deno.test("capture_memory printout: analyze at 1,000 streams against 400 MB, with its verdict", () => {
  const verdict = (lines: string[]) => lines.filter((l) => l.includes("target (issue 16)"));
  deepEqual(verdict(printed(run(1000, 506))), [
    "    target (issue 16): analyze of 1,000 concurrent streams <= 400 MB peak RSS in all; measured 506 MB: not met",
  ]);
  deepEqual(verdict(printed(run(1000, 399.6))), [
    "    target (issue 16): analyze of 1,000 concurrent streams <= 400 MB peak RSS in all; measured 400 MB: met",
  ]);
  // Other stream counts, and runs without analyze (--run-only), have no verdict: the bound is stated for 1,000.
  deepEqual(verdict(printed(run(2000, 900))), []);
  deepEqual(verdict(printed(run(1000, NaN))), []);
});
