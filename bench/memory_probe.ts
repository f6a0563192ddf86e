/**
 * Preloaded into a measured process (`deno run --preload bench/memory_probe.ts ...`, by bench/capture_memory.ts):
 * samples its memory every 250 ms and, each time RSS reaches a new peak, writes that sample as a JSON line to
 * the file named by `FSMPX_MEMORY_PROBE` (no variable: does nothing). The last line says what the peak RSS was
 * made of: V8's heap (committed and used), ArrayBuffers and WebAssembly memories outside it ("external"), and the
 * rest (the runtime itself, allocator fragmentation).
 * @module
 */
import { getHeapSpaceStatistics } from "node:v8";

/** One sample, MB (1e6 bytes). */
export interface ProbeSample {
  /** ms since the probe started. */
  t: number;
  rss: number;
  /** V8 heap committed, and used by objects (live or garbage not yet collected). */
  heapTotal: number;
  heapUsed: number;
  /** ArrayBuffer backing stores and WebAssembly memories. */
  external: number;
  /** Committed size of V8's young generation (new space), part of heapTotal. */
  newSpace: number;
  /** RSS split: anonymous memory, and file-backed pages (the deno binary's code, shared with other processes). */
  rssAnon?: number;
  rssFile?: number;
}

const MB = 1e6;

/** Reads the probe file's last sample (the peak); undefined when there is none. */
export function readPeakSample(path: string): ProbeSample | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
  const lines = text.trim().split("\n").filter((l) => l !== "");
  return lines.length === 0 ? undefined : JSON.parse(lines[lines.length - 1]!) as ProbeSample;
}

/** "V8 heap 250 MB (208 used), external 445 MB, rest 183 MB". */
export function describeSample(s: ProbeSample): string {
  const rest = s.rss - s.heapTotal - s.external;
  return `V8 heap ${s.heapTotal.toFixed(0)} MB (${s.heapUsed.toFixed(0)} used, young generation ` +
    `${s.newSpace.toFixed(0)}), ArrayBuffers/WASM ${s.external.toFixed(0)} MB, rest ${rest.toFixed(0)} MB` +
    (s.rssFile === undefined
      ? ""
      : ` (RSS: ${s.rssAnon?.toFixed(0)} MB anonymous, ${s.rssFile.toFixed(0)} MB file-backed)`);
}

/** A `/proc/self/status` field, MB. */
function statusMB(status: string, field: string): number | undefined {
  const m = status.match(new RegExp(`${field}:\\s+(\\d+) kB`));
  return m ? (Number(m[1]) * 1024) / MB : undefined;
}

function sample(t0: number): ProbeSample {
  const m = Deno.memoryUsage();
  let status = "";
  try {
    status = Deno.readTextFileSync("/proc/self/status");
  } catch { /* not Linux */ }
  const young = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  return {
    t: Math.round(performance.now() - t0),
    rss: m.rss / MB,
    heapTotal: m.heapTotal / MB,
    heapUsed: m.heapUsed / MB,
    external: m.external / MB,
    newSpace: (young?.space_size ?? 0) / MB,
    rssAnon: statusMB(status, "RssAnon"),
    rssFile: statusMB(status, "RssFile"),
  };
}

const out = import.meta.main ? undefined : Deno.env.get("FSMPX_MEMORY_PROBE");
if (out) {
  const file = Deno.openSync(out, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const t0 = performance.now();
  let peak = 0;
  const id = setInterval(() => {
    const s = sample(t0);
    if (s.rss <= peak) return;
    peak = s.rss;
    file.writeSync(enc.encode(JSON.stringify(s) + "\n"));
  }, 250);
  // The probe must not keep the measured process alive.
  Deno.unrefTimer(id);
}
