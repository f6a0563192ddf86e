/**
 * CPU per match of two checkouts side by side in one process (issue 16: verification with its near-miss
 * re-scoring, and fine alignment): bench/matcher_ab.ts's "audio with matches" alone, without its non-matching
 * load (which needs the whole corpus), repeated `--rounds` times with the order of the two alternating, and the
 * matches of both compared (signature, target time, offset, BER). `--only after` runs one checkout alone (for
 * `--cpu-prof`).
 *
 * `deno run --allow-all bench/match_cost_ab.ts BEFORE_DIR [AFTER_DIR ...] [--seconds S] [--rounds N] [--only NAME]`
 * (one directory: it against this checkout, named before / after; more: each named by its directory).
 * @module
 */

import { cpuSeconds, MEASUREMENT } from "./accuracy.ts";
import { ACTIVE_SIGNATURES } from "./speed.ts";
import { FORMAT, messages, signaturesFrom, speech } from "./fingerprint_speed.ts";
import { type Engine, engine, type MatchCostTimers, timeMatchCost } from "./matcher_ab.ts";
import { initAudioEngine } from "../audio/pipeline.ts";

interface Message {
  timeNs: bigint;
  payload: Uint8Array;
}

interface Found {
  signatureId: string;
  target: { timeNs: bigint; offsetMs: number };
  ber: number;
}

/** One target pipeline of one engine, fed in chunks, with the CPU it took and what it found. */
class Feed {
  readonly pipeline: { push(m: Message): Found[] };
  cpuS = 0;
  readonly found: string[] = [];

  constructor(e: Engine, index: unknown) {
    this.pipeline = new e.pipeline.TargetPipeline({
      measurement: MEASUREMENT,
      stage: "ab",
      node: "node-b",
      pod: "voice/ab-0",
      stream: "related",
      format: FORMAT,
      index,
    });
  }

  run(order: readonly Message[], from: number, to: number): void {
    const c0 = cpuSeconds();
    for (let i = from; i < to; i++) {
      for (const x of this.pipeline.push(order[i]!)) {
        this.found.push(`${x.signatureId} ${x.target.timeNs} ${x.target.offsetMs} ${x.ber}`);
      }
    }
    this.cpuS += cpuSeconds() - c0;
  }
}

async function main(): Promise<void> {
  const args = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
  const opt = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  const oi = Deno.args.indexOf("--only");
  const only = oi >= 0 ? Deno.args[oi + 1] : undefined;
  if (args.length < 1) {
    throw new Error(
      "usage: match_cost_ab.ts BEFORE_DIR [AFTER_DIR ...] [--seconds S] [--rounds N] [--only NAME]",
    );
  }
  // The signatures are built with this checkout's modules, which need their own initialisation when this
  // checkout is not one of the engines.
  await initAudioEngine();
  const all = args.length === 1
    ? [await engine("before", args[0]!), await engine("after", ".")]
    : await Promise.all(args.map((dir) => engine(dir.replace(/\/$/, ""), dir)));
  const engines = all.filter((e) => only === undefined || e.name === only);
  const seconds = opt("--seconds", 120);
  const a = await speech(Math.max(seconds, 400), 0);
  const sigs = signaturesFrom(a, ACTIVE_SIGNATURES, 1);
  const order = messages(a.subarray(0, seconds * 8000));
  console.log(`Audio with matches: ${seconds} s of the speech the ${sigs.length} signatures come from`);
  const reference: string[][] = [];
  for (let round = 0; round < opt("--rounds", 3); round++) {
    const feeds: Feed[] = [];
    const timed: MatchCostTimers[] = [];
    for (const e of engines) {
      const index = new e.pipeline.SignatureIndex({ maxActive: sigs.length + 10 });
      for (const s of sigs) index.add(s);
      feeds.push(new Feed(e, index));
      timed.push(timeMatchCost(e));
    }
    // Chunks of 250 messages, the checkout that goes first alternating.
    for (let c = 0, k = round; c < order.length; c += 250, k++) {
      for (let j = 0; j < feeds.length; j++) feeds[(j + k) % feeds.length]!.run(order, c, c + 250);
    }
    for (const t of timed) t.restore();
    engines.forEach((e, i) => {
      const t = timed[i]!, n = feeds[i]!.found.length;
      const ms = (v: number) => `${((v / n) * 1e3).toFixed(3)} ms`;
      console.log(
        `  round ${round + 1} ${e.name}: ${n} matches; per match ${ms(t.verify.cpuS + t.align.cpuS)} ` +
          `(verification ${ms(t.verify.cpuS)} in ${t.verify.calls} calls, of which near-miss re-scoring ` +
          `${ms(t.rephase.cpuS)} in ${t.rephase.calls}; alignment ${
            ms(t.align.cpuS)
          } in ${t.align.calls}); ` +
          `pipeline ${feeds[i]!.cpuS.toFixed(2)} CPU s`,
      );
    });
    for (const f of feeds) reference.push(f.found);
  }
  const same = reference.every((f) => JSON.stringify(f) === JSON.stringify(reference[0]));
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(reference[0]!.join("\n"))),
  );
  console.log(
    `  matches ${same ? "identical" : "DIFFER"} (${reference[0]!.length}, sha-256 ${
      [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")
    })`,
  );
}

if (import.meta.main) await main();
