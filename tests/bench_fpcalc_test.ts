import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import {
  fingerprintItems,
  FPCALC_ITEM_S,
  fpcalcAudioSeconds,
  fpcalcSpeed,
  hasFpcalc,
  parseFpcalcJson,
  wavSeconds,
} from "../bench/fpcalc.ts";
import { encodeWav } from "../fixtures/gen/wav.ts";

/** A compressed fingerprint header (algorithm 1, `items` items) in base64url, as fpcalc prints it. */
function fpHeader(items: number): string {
  const b = String.fromCharCode(1, (items >> 16) & 255, (items >> 8) & 255, items & 255, 0, 0);
  return btoa(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

Deno.test("fpcalc: item count from a compressed fingerprint's header", () => {
  // The head of a real fpcalc 1.5.1 fingerprint of 103.93 s of 8 kHz audio (818 items with -raw).
  assertEquals(fingerprintItems("AQADMkmyhJESJYrAOXugZ6nQ"), 818);
  assertEquals(fingerprintItems(fpHeader(70_000)), 70_000);
  assertEquals(fingerprintItems(""), 0);
});

Deno.test("fpcalc: audio counts only files fingerprinted in full, else the run fails", () => {
  const items = (s: number) => Math.floor((s - 2.6) / FPCALC_ITEM_S);
  const full = parseFpcalcJson(
    `{"duration": 103.93, "fingerprint": "${fpHeader(items(103.93))}"}\n` +
      `{"duration": 80.00, "fingerprint": "${fpHeader(items(80))}"}\n`,
  );
  ok(Math.abs(fpcalcAudioSeconds([103.929, 80], full) - 183.93) < 1e-9);
  // fpcalc stopped after the first file (what it does on its end-of-file error without -ignore-errors).
  throws(() => fpcalcAudioSeconds([103.929, 80, 90], full), /fingerprinted 2 of 3 files/);
  // A file decoded only in part.
  throws(() => fpcalcAudioSeconds([103.929, 95], full), /decoded 80 s of 95\.000 s/);
  // The whole file decoded but only its first 30 s fingerprinted (-length 30).
  const short = parseFpcalcJson(`{"duration": 103.93, "fingerprint": "${fpHeader(items(30))}"}`);
  throws(() => fpcalcAudioSeconds([103.929], short), /-length too small/);
});

Deno.test("fpcalc: the bench's WAV header says the samples' duration", () => {
  const w = encodeWav({ samples: new Float32Array(16_000 * 3 + 8), sampleRate: 16_000 });
  assertEquals(wavSeconds(w), 3.0005);
  assertEquals(w.length, 44 + 2 * (16_000 * 3 + 8));
});

Deno.test({
  name: "fpcalc: every file of one process is fingerprinted and counted (needs fpcalc)",
  ignore: !(await hasFpcalc()),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-fpcalc-test-" });
    try {
      const files: string[] = [];
      const seconds = [12, 9.5, 15];
      for (const [k, s] of seconds.entries()) {
        const n = Math.round(s * 8000);
        const samples = new Float32Array(n);
        // A few tones that change every 0.3 s, so the fingerprint is not empty.
        for (let i = 0; i < n; i++) {
          const f = 300 + 170 * ((Math.floor(i / 2400) * (k + 3)) % 11);
          samples[i] = 0.3 * Math.sin((2 * Math.PI * f * i) / 8000);
        }
        const path = `${dir}/t${k}.wav`;
        await Deno.writeFile(path, encodeWav({ samples, sampleRate: 8000 }));
        files.push(path);
      }
      const r = await fpcalcSpeed(files);
      assertEquals(r.files, 3);
      ok(Math.abs(r.audioS - 36.5) <= 0.03, `${r.audioS}`);
      assertEquals(r.xRealTime, r.audioS / r.cpuS);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
