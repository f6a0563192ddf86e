/**
 * Compares two `analyze --out` record files (JSON lines) of the same capture, for an engine change that is not
 * bit-exact: signatures keyed by (stream, time, offset) with the differing fingerprint and mask bits, matches
 * keyed by (signature's stream and instant, target stream) with the target instant's difference and the BER's.
 *
 * `deno run -A bench/records_diff.ts A.jsonl B.jsonl`
 * @module
 */

interface Rec {
  kind: string;
  stream?: string;
  time_ns?: string;
  offset_ms?: number;
  fingerprint_b64?: string;
  mask_b64?: string;
  envelope_b64?: string;
  stage?: string;
  source?: { stream: string; time_ns: string; offset_ms: number };
  target?: { stream: string; time_ns: string; offset_ms: number };
  ber?: number;
}

function read(path: string): Rec[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Rec);
}

function bitsDiff(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  const x = Uint8Array.from(atob(a ?? ""), (c) => c.charCodeAt(0));
  const y = Uint8Array.from(atob(b ?? ""), (c) => c.charCodeAt(0));
  let n = 8 * Math.abs(x.length - y.length);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    let v = x[i]! ^ y[i]!;
    while (v) {
      n += v & 1;
      v >>= 1;
    }
  }
  return n;
}

/** Instant in ms relative to an epoch near the capture (time_ns + offset_ms), exact enough for differences. */
function instantMs(t: { time_ns: string; offset_ms: number }): number {
  return Number(BigInt(t.time_ns) - 1_700_000_000_000_000_000n) / 1e6 + t.offset_ms;
}

function main(): void {
  const [pa, pb] = Deno.args;
  if (!pa || !pb) throw new Error("usage: records_diff.ts A.jsonl B.jsonl");
  const a = read(pa), b = read(pb);
  const sigKey = (r: Rec) => `${r.stream}|${r.time_ns}|${r.offset_ms}`;
  const matchKey = (r: Rec) =>
    `${r.source!.stream}|${r.source!.time_ns}|${r.source!.offset_ms}|${r.stage}|${r.target!.stream}`;
  const sa = new Map(a.filter((r) => r.kind === "signature").map((r) => [sigKey(r), r]));
  const sb = new Map(b.filter((r) => r.kind === "signature").map((r) => [sigKey(r), r]));
  let sigBoth = 0, sigSame = 0, fpBits = 0, fpSigs = 0, maskBits = 0, maskSigs = 0, envDiff = 0, maxFp = 0;
  for (const [k, r] of sa) {
    const o = sb.get(k);
    if (!o) continue;
    sigBoth++;
    const f = bitsDiff(r.fingerprint_b64, o.fingerprint_b64), m = bitsDiff(r.mask_b64, o.mask_b64);
    if (f) fpSigs++;
    if (m) maskSigs++;
    if (r.envelope_b64 !== o.envelope_b64) envDiff++;
    fpBits += f;
    maskBits += m;
    maxFp = Math.max(maxFp, f);
    if (!f && !m && r.envelope_b64 === o.envelope_b64) sigSame++;
  }
  console.log(
    `signatures: A ${sa.size}, B ${sb.size}, both ${sigBoth} (identical ${sigSame}); only A ${
      sa.size - sigBoth
    }, only B ${sb.size - sigBoth}`,
  );
  console.log(
    `  fingerprint bits differing: ${fpBits} in ${fpSigs} signatures (max ${maxFp} of 4096 in one); mask bits ` +
      `${maskBits} in ${maskSigs}; envelope differs in ${envDiff}`,
  );
  const ma = new Map(a.filter((r) => r.kind === "match").map((r) => [matchKey(r), r]));
  const mb = new Map(b.filter((r) => r.kind === "match").map((r) => [matchKey(r), r]));
  let both = 0, sameOffset = 0, maxOff = 0, berMax = 0, berSum = 0, berDiff = 0;
  const offs: number[] = [];
  for (const [k, r] of ma) {
    const o = mb.get(k);
    if (!o) continue;
    both++;
    const d = Math.abs(instantMs(r.target!) - instantMs(o.target!));
    if (r.target!.time_ns === o.target!.time_ns && r.target!.offset_ms === o.target!.offset_ms) sameOffset++;
    else offs.push(d);
    maxOff = Math.max(maxOff, d);
    const db = Math.abs(r.ber! - o.ber!);
    if (db) berDiff++;
    berSum += db;
    berMax = Math.max(berMax, db);
  }
  console.log(
    `matches: A ${ma.size}, B ${mb.size}, both ${both}; only A ${ma.size - both}, only B ${mb.size - both}`,
  );
  offs.sort((x, y) => x - y);
  console.log(
    `  same target instant ${sameOffset}/${both}; differing ${offs.length} (max ${
      maxOff.toFixed(3)
    } ms, median ${offs.length ? offs[offs.length >> 1]!.toFixed(3) : "-"} ms)`,
  );
  console.log(
    `  BER differs in ${berDiff}/${both} (mean |Δ| ${(berSum / Math.max(1, both)).toFixed(5)}, max ${
      berMax.toFixed(4)
    })`,
  );
  const show = (m: Map<string, Rec>, other: Map<string, Rec>, label: string) => {
    for (const [k, r] of m) if (!other.has(k)) console.log(`  only ${label}: ${k} ber ${r.ber}`);
  };
  show(ma, mb, "A");
  show(mb, ma, "B");
}

if (import.meta.main) main();
