/**
 * CPU per split search (audio/match/split.ts Splitter.best, tried for ~9,000 of the ~38,000 verifications of the
 * analyze corpus) of one or more checkouts, interleaved run by run in one process: 64 synthetic blocks of 128
 * frames on random target frames, a third of them unrelated, the rest copies with bit errors and a lost stretch
 * (so that some splits win), a fifth of the frames masked in half of them. Prints the median and the least CPU
 * per block of each checkout and a digest of their answers (must agree).
 *
 * `deno run --allow-all bench/split_speed.ts DIR [DIR ...] [--blocks N] [--rounds N]`
 * @module
 */

import process from "node:process";
import type { FrameStore } from "../audio/fingerprint/fingerprint.ts";
import type { Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";

interface Splitter {
  best(
    sig: Signature,
    best: number,
    store: FrameStore,
  ): { a: number; b: number; k: number; ber: number; z: number } | undefined;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main(): Promise<void> {
  const dirs = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
  const opt = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  if (dirs.length === 0) throw new Error("usage: split_speed.ts DIR [DIR ...] [--blocks N] [--rounds N]");
  const blocks = opt("--blocks", 20000), rounds = opt("--rounds", 7);
  const engines = await Promise.all(dirs.map(async (dir) => {
    const root = new URL(`${dir.replace(/\/$/, "")}/`, `file://${Deno.cwd()}/`);
    const fp = await import(new URL("audio/fingerprint/fingerprint.ts", root).href);
    const split = await import(new URL("audio/match/split.ts", root).href);
    return {
      dir,
      FrameStore: fp.FrameStore,
      splitter: new split.Splitter() as Splitter,
      times: [] as number[],
    };
  }));
  let s = 3;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const r32 = () => ((Math.floor(rnd() * 65536) << 16) | Math.floor(rnd() * 65536)) >>> 0;
  const frames = Array.from({ length: 3000 }, () => [r32(), r32() & r32()] as const);
  const stores = engines.map((e) => {
    const store = new e.FrameStore(4096) as FrameStore;
    for (const [b, m] of frames) store.push(b, 0, 0, m);
    return store;
  });
  const sigs: Signature[] = [];
  const at: number[] = [];
  for (let k = 0; k < 64; k++) {
    const a = 100 + Math.floor(rnd() * 2700);
    const fp = new Uint32Array(128);
    const loss = Math.floor(rnd() * 100) + 10, d = 1 + Math.floor(rnd() * 8), noise = rnd() * 0.4;
    for (let j = 0; j < 128; j++) {
      let v = frames[a + j - (j > loss ? d : 0)]![0];
      for (let b = 0; b < 32; b++) if (rnd() < noise) v ^= 1 << b;
      fp[j] = k % 3 === 0 ? r32() : v >>> 0;
    }
    const mask = new Uint8Array(16);
    for (let j = 0; j < 128; j++) if (rnd() < 0.2) mask[j >> 3]! |= 1 << (j & 7);
    const source = { node: "a", pod: "p", stream: "s", timeNs: 0n, offsetMs: 0 };
    sigs.push(
      signatureOf({
        id: `${k}`,
        measurement: "m",
        source,
        fingerprint: fp,
        mask: k % 2 ? mask : undefined,
        ids: {},
      }),
    );
    at.push(a);
  }
  const answers: string[] = [];
  for (let r = -1; r < rounds; r++) {
    engines.forEach((e, i) => {
      const out: string[] = [];
      const c0 = cpuSeconds();
      for (let b = 0; b < blocks; b++) {
        const x = e.splitter.best(sigs[b & 63]!, at[b & 63]!, stores[i]!);
        if (b < 64) out.push(x ? `${x.a},${x.b},${x.k},${x.ber},${x.z}` : "-");
      }
      // The first round warms up.
      if (r >= 0) e.times.push((cpuSeconds() - c0) / blocks * 1e6);
      answers[i] = out.join("\n");
    });
  }
  for (const e of engines) {
    const t = e.times.sort((a, b) => a - b);
    console.log(`${e.dir}: ${t[t.length >> 1]!.toFixed(2)} us a block (least ${t[0]!.toFixed(2)})`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(answers[0]!)));
  console.log(
    `answers ${answers.every((a) => a === answers[0]) ? "identical" : "DIFFER"} (sha-256 ${
      [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")
    })`,
  );
}

if (import.meta.main) await main();
