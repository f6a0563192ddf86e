/**
 * Every branch of the direct capture line reader (capture_line_fast.ts) taken a few times when the capture module
 * loads, before any capture is read. V8 optimizes the reader once it is hot, with the branches taken so far; a
 * branch first taken later (the first base64 cell, a negative number, a new key order: rows of a tap that starts
 * minutes into a capture) has no type feedback, throws the optimized code away and has the reader compiled again.
 * On the bench corpus that was three or more optimizing compiles of the reader, each ~0.1-0.4 s of a compiler
 * thread's CPU. The lines cover the reader's branches both from a capture file's bytes (in a string cell
 * kernel's memory, as a capture reader holds them) and from text; the rows they give are dropped.
 * @module
 */
import { type ByteSlab, lineEnd, parseCaptureLineFast, readCaptureLine } from "./capture_line_fast.ts";
import { cellKernelBuffer } from "./string_cell_simd.ts";
import { SlabCarver } from "./capture_slabs.ts";

/** Times each line is read: enough for type feedback, far from what makes V8 optimize. */
const ROUNDS = 3;

/** Lines for every branch: cells of each kind, escapes the kernel leaves, times of every length, key orders. */
function warmupLines(): string[] {
  const long = "x".repeat(300);
  const body = `{\\"event\\":\\"media\\",\\"media\\":{\\"payload\\":\\"${
    "QUJD".repeat(40)
  }\\"},\\"s\\":\\"\\u0041\\/\\t\\"}`;
  return [
    `{"query":"warmup/a","row":{"time_":"1763900000390647160","pod":"ns/p-0","addr":"10.1.0.7","port":20018,"req_body":"${body}"}}`,
    `{"query":"warmup/a","row":{"time_":"1763900000390647161","pod":"ns/p-0","addr":"10.1.0.7","port":20018,"req_body":"${body}"}}`,
    `{"query":"warmup/b","row":{"time_":"1763900000390647162","pod":"ns/p-1","port":-7,"big":12345678901234567,"req_body":{"base64":"QUJDRA=="}}}`,
    `{"query":"warmup/b","row":{"time_":"17639000003906471","req_body":{"base64":"QUJDREU="},"t":true,"f":false}}`,
    `{"query":"warmup/b","row":{"time_":"-5","req_body":{"base64":"QUJDREVG"},"e":""}}`,
    `{"query":"warmup/c","row":{"time_":"123456789012345678901234","req_body":{"base64":"QU JD"},"n":0}}`,
    `{"query":"warmup/c","row":{"req_body":"${long}","time_":"42","w":"${long}\\u00e9"}}`,
    `{ "query" : "warmup/c" , "row" : { "time_" : "43" , "a" : "b" } }\r`,
    `{"query":"warmup/c","row":{"time_":"44","a":"caf\u00e9"}}`,
    // A run the JS reader copies after a kernel's stop, a word at a time.
    `{"query":"warmup/c","row":{"time_":"48","a":"\\u0041${long}"}}`,
    `{"query":"warmup/c","row":{"time_":"45","a":1.5}}`,
    `{"query":"warmup/c","row":{"time_":"46","a":"b","a":"c"}}`,
    `{"query":"nope","row":{"time_":"47"}}`,
    `not a capture line`,
  ];
}

/** Reads the warm-up lines through both entries of the reader (see the module doc). */
export function warmUpLineReader(base64: (b64: string) => Uint8Array, textSlab: ByteSlab): void {
  const lines = warmupLines();
  const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
  const buffer = cellKernelBuffer(bytes.length + 64);
  buffer.set(bytes);
  const carver = new SlabCarver();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (let at = 0; at < bytes.length;) {
        const row = readCaptureLine(buffer, at, bytes.length, true, "warmup", carver, base64);
        const nl = buffer.indexOf(0x0a, at);
        at = (row !== undefined ? lineEnd() : nl) + 1;
      }
      for (const line of lines) parseCaptureLineFast(line.trim(), "warmup", textSlab, base64);
      carver.seal();
    }
  } finally {
    carver.close();
  }
}
