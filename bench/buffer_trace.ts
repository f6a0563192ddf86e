/**
 * Preloaded into a measured process (`deno run --preload bench/buffer_trace.ts ...`): finds who allocates
 * ArrayBuffers (every typed array created with its own buffer is an external allocation, ~1.7 µs in Deno, and
 * waits for a collection to be freed). Typed-array and ArrayBuffer constructors, `TypedArray.prototype.slice`/
 * `map`/`filter` and `TextEncoder.prototype.encode` are wrapped; one call in `FSMPX_BUFFER_TRACE_EVERY` (default
 * 16) records its stack, and every 2 s the table (allocations and bytes per call site, scaled back up, most bytes
 * first) is written to the file named by `FSMPX_BUFFER_TRACE` (no variable: does nothing). Views on an existing
 * buffer (`subarray`, `new Uint8Array(buffer, ...)`) allocate no buffer and are not counted.
 *
 * `deno run -A --preload=bench/buffer_trace.ts main.ts run --capture ...` with `FSMPX_BUFFER_TRACE=/tmp/t.txt`.
 * @module
 */

/** Allocations seen at one call site (scaled: sampled counts times the sampling interval). */
export interface SiteCount {
  site: string;
  calls: number;
  bytes: number;
}

/** The call site of an allocation: the first frames outside this file, `file:line` each. */
export function callSite(stack: string, depth = 3): string {
  const frames: string[] = [];
  for (const line of stack.split("\n").slice(1)) {
    if (line.includes("buffer_trace.ts")) continue;
    const m = line.match(/\(?((?:file|ext|node):[^\s()]+?):(\d+):\d+\)?$/);
    if (!m) continue;
    frames.push(`${m[1]!.replace(/^.*\/(?=[^/]+\/[^/]+$)/, "")}:${m[2]}`);
    if (frames.length === depth) break;
  }
  return frames.join(" < ");
}

/** Sorts sites by bytes, most first, as lines "MB calls site". */
export function formatSites(sites: Iterable<SiteCount>, seconds: number): string {
  const rows = [...sites].sort((a, b) => b.bytes - a.bytes);
  return [
    `# ${seconds.toFixed(0)} s; MB allocated, allocations, call site`,
    ...rows.map((r) =>
      `${(r.bytes / 1e6).toFixed(1).padStart(9)} ${String(r.calls).padStart(10)}  ${r.site}`
    ),
  ].join("\n") + "\n";
}

const out = import.meta.main ? undefined : Deno.env.get("FSMPX_BUFFER_TRACE");
if (out) {
  const every = Math.max(1, Number(Deno.env.get("FSMPX_BUFFER_TRACE_EVERY") ?? 16));
  const sites = new Map<string, SiteCount>();
  let tick = 0;
  const record = (bytes: number) => {
    if (++tick % every !== 0) return;
    const site = callSite(new Error().stack ?? "");
    let s = sites.get(site);
    if (!s) sites.set(site, s = { site, calls: 0, bytes: 0 });
    s.calls += every;
    s.bytes += bytes * every;
  };
  const g = globalThis as unknown as Record<string, unknown>;
  const names = [
    "Uint8Array",
    "Int8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "ArrayBuffer",
  ];
  for (const name of names) {
    const Ctor = g[name] as new (...a: unknown[]) => ArrayBufferView | ArrayBuffer;
    g[name] = new Proxy(Ctor, {
      construct(target, args, newTarget) {
        const made = Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
        // A view on a buffer it was given allocates nothing.
        if (!(args[0] instanceof ArrayBuffer) && !(args[0] instanceof SharedArrayBuffer)) {
          record(made.byteLength);
        }
        return made;
      },
    });
  }
  const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as Record<string, unknown>;
  for (const method of ["slice", "map", "filter"]) {
    const f = typedProto[method] as (this: ArrayBufferView, ...a: unknown[]) => ArrayBufferView;
    typedProto[method] = function (this: ArrayBufferView, ...a: unknown[]) {
      const r = f.apply(this, a);
      record(r.byteLength);
      return r;
    };
  }
  const encode = TextEncoder.prototype.encode;
  TextEncoder.prototype.encode = function (this: TextEncoder, s?: string) {
    const r = encode.call(this, s);
    record(r.byteLength);
    return r;
  };
  const t0 = performance.now();
  const id = setInterval(() => {
    Deno.writeTextFileSync(out, formatSites(sites.values(), (performance.now() - t0) / 1000));
  }, 2000);
  Deno.unrefTimer(id);
}
