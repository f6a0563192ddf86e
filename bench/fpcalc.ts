/**
 * Chromaprint's `fpcalc` over the bench's WAV files, for the side-by-side figure of `bench/analyze_speed.ts`.
 *
 * The throughput counts only audio that fpcalc says it fingerprinted: fpcalc 1.5.1 built on FFmpeg 5 reports
 * "Error decoding audio frame (End of file)" at the end of every WAV and exits with status 3 (a non-critical
 * error: the fingerprint is whole, acoustid/chromaprint#122, #137), and without `-ignore-errors` it then stops
 * at the first file of its argument list. Dividing all files' audio by the CPU of a run that fingerprinted one
 * file in 50 gave 70,000-100,000x; here every file must come back with its duration and a fingerprint that
 * covers it, or the run fails.
 * @module
 */

/** Chromaprint's hop between fingerprint items: 1365 samples at 11,025 Hz (~124 ms). */
export const FPCALC_ITEM_S = 1365 / 11025;

/**
 * How much shorter than the audio a whole fingerprint may be: the first item needs a 4096-sample frame and 16
 * frames of the classifiers' window (~2.2 s at 11,025 Hz), plus the resampler's delay. Measured: 818 items
 * (101.3 s) for 103.93 s of 8 kHz audio.
 */
export const FPCALC_EDGE_S = 3;

/** What one fpcalc file result says: its decoded duration and how many fingerprint items it holds. */
export interface FpcalcResult {
  durationS: number;
  items: number;
}

/**
 * The number of items in a compressed Chromaprint fingerprint (base64url): byte 0 is the algorithm, bytes 1-3
 * the item count, big-endian.
 */
export function fingerprintItems(fp: string): number {
  const head = fp.slice(0, 8).replace(/-/g, "+").replace(/_/g, "/");
  if (head.length < 8) return 0;
  const b = atob(head);
  return (b.charCodeAt(1) << 16) | (b.charCodeAt(2) << 8) | b.charCodeAt(3);
}

/** Parses `fpcalc -json` output: one JSON object per file that fpcalc fingerprinted, in argument order. */
export function parseFpcalcJson(stdout: string): FpcalcResult[] {
  const out: FpcalcResult[] = [];
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    const o = JSON.parse(line) as { duration?: number; fingerprint?: string };
    if (typeof o.duration !== "number" || typeof o.fingerprint !== "string") {
      throw new Error(`fpcalc: unexpected output line ${line.slice(0, 120)}`);
    }
    out.push({ durationS: o.duration, items: fingerprintItems(o.fingerprint) });
  }
  return out;
}

/**
 * The audio seconds fpcalc fingerprinted, checked against the files' own durations (`expectedS`, in argument
 * order): a missing result, a duration off by more than 0.02 s (fpcalc prints two decimals) or a fingerprint
 * that stops short of the audio throws instead of counting audio fpcalc did not process.
 */
export function fpcalcAudioSeconds(expectedS: readonly number[], results: readonly FpcalcResult[]): number {
  if (results.length !== expectedS.length) {
    throw new Error(`fpcalc fingerprinted ${results.length} of ${expectedS.length} files`);
  }
  let total = 0;
  for (let i = 0; i < expectedS.length; i++) {
    const want = expectedS[i]!;
    const r = results[i]!;
    if (Math.abs(r.durationS - want) > 0.02) {
      throw new Error(`fpcalc file ${i + 1}: decoded ${r.durationS} s of ${want.toFixed(3)} s`);
    }
    const covered = r.items * FPCALC_ITEM_S;
    if (covered < want - FPCALC_EDGE_S) {
      throw new Error(
        `fpcalc file ${i + 1}: fingerprint of ${r.items} items covers ${covered.toFixed(1)} s of ${
          want.toFixed(1)
        } s (-length too small?)`,
      );
    }
    total += r.durationS;
  }
  return total;
}

/** The duration of a 16-bit mono PCM WAV as its header says (44-byte header as `encodeWav` writes). */
export function wavSeconds(header: Uint8Array): number {
  const v = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const rate = v.getUint32(24, true);
  const bytes = v.getUint32(40, true);
  return bytes / 2 / rate;
}

async function wavFileSeconds(path: string): Promise<number> {
  const f = await Deno.open(path);
  try {
    const h = new Uint8Array(44);
    let at = 0;
    while (at < 44) {
      const n = await f.read(h.subarray(at));
      if (n === null) throw new Error(`${path}: shorter than a WAV header`);
      at += n;
    }
    const size = (await f.stat()).size;
    if (size !== 44 + new DataView(h.buffer).getUint32(40, true)) {
      throw new Error(`${path}: the header's data size does not match the file's ${size} bytes`);
    }
    return wavSeconds(h);
  } finally {
    f.close();
  }
}

/** fpcalc's figure: CPU seconds (user + system of the fpcalc processes) and the audio it fingerprinted. */
export interface FpcalcSpeed {
  cpuS: number;
  audioS: number;
  xRealTime: number;
  files: number;
  /** How many files fpcalc flagged with its benign end-of-file decode error. */
  eofErrors: number;
}

/**
 * Runs `fpcalc -length 0 -ignore-errors -json` (the whole file, each file's fingerprint printed even after the
 * end-of-file error) over `wavs`, `batch` files per process, under `/usr/bin/time`; throws if any file was not
 * fingerprinted in full.
 */
export async function fpcalcSpeed(wavs: readonly string[], batch = 50): Promise<FpcalcSpeed> {
  let cpuS = 0;
  let audioS = 0;
  let eofErrors = 0;
  for (let i = 0; i < wavs.length; i += batch) {
    const files = wavs.slice(i, i + batch);
    const expected = await Promise.all(files.map(wavFileSeconds));
    const tf = await Deno.makeTempFile({ suffix: ".time" });
    try {
      const out = await new Deno.Command("/usr/bin/time", {
        args: ["-o", tf, "-f", "%U %S", "fpcalc", "-length", "0", "-ignore-errors", "-json", ...files],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      const errors = stderr.split("\n").filter((l) => l.startsWith("ERROR:"));
      const benign = errors.filter((l) => l.includes("Error decoding audio frame (End of file)"));
      eofErrors += benign.length;
      // Status 3 is fpcalc's "non-critical error, fingerprint computed"; anything else, or another error, fails.
      if ((out.code !== 0 && out.code !== 3) || benign.length !== errors.length) {
        throw new Error(`fpcalc failed (status ${out.code}): ${stderr.slice(-2000)}`);
      }
      audioS += fpcalcAudioSeconds(expected, parseFpcalcJson(new TextDecoder().decode(out.stdout)));
      const t = (await Deno.readTextFile(tf)).trim().split("\n").pop()!.split(" ").map(Number);
      cpuS += t[0]! + t[1]!;
    } finally {
      await Deno.remove(tf);
    }
  }
  return { cpuS, audioS, xRealTime: audioS / cpuS, files: wavs.length, eofErrors };
}

/** Whether `fpcalc` is on the PATH. */
export async function hasFpcalc(): Promise<boolean> {
  try {
    return (await new Deno.Command("fpcalc", { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
