/**
 * Trace and span ids of an interval's journey, derived (not random) from what every node knows about a
 * signature, so that spans exported by different nodes (`run`, `demo`) for the same signature join one trace,
 * and a histogram exemplar can name the trace without asking anyone.
 *
 * One trace per measurement, interval id and signature; one root span at the source tap, whose id depends on the
 * trace only, and one span per match, whose id depends on the trace, the stage and where the match was captured
 * (node and stream): a signature found on several streams of one stage (the default `downstream` stage reaches
 * every stream after the source) gets a span for each, where one id per stage made trace stores such as Tempo
 * keep one of them and drop the rest. A hop span's parent is the span of the previous stage's match its hop was
 * measured from (the hop record names it), which any node can name without having seen that match.
 * @module
 */

const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-1a, 64 bits, from `seed`: fast, synchronous and stable across runtimes (ids, not security). */
function fnv1a64(text: string, seed: bigint): bigint {
  let h = seed;
  for (const b of new TextEncoder().encode(text)) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK64;
  }
  // A final avalanche (splitmix64's) so that near-identical inputs differ in every hex digit.
  h ^= h >> 30n;
  h = (h * 0xbf58476d1ce4e5b9n) & MASK64;
  h ^= h >> 27n;
  h = (h * 0x94d049bb133111ebn) & MASK64;
  h ^= h >> 31n;
  return h;
}

function hex64(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/** 16 hex digits of a text's hash (stable across nodes and runtimes; ids, not security). */
export function textHash(text: string): string {
  return hex64(fnv1a64(text, 0xcbf29ce484222325n));
}

/** The 32-hex-digit trace id of one signature's journey (never all zeros, which OTLP forbids). */
export function traceIdOf(measurement: string, signatureId: string, intervalId: string | undefined): string {
  const key = `${measurement}\u0000${intervalId ?? ""}\u0000${signatureId}`;
  const hi = fnv1a64(key, 0xcbf29ce484222325n);
  const lo = fnv1a64(key, 0x84222325cbf29ce4n);
  const id = hex64(hi) + hex64(lo);
  return /^0+$/.test(id) ? "0".repeat(31) + "1" : id;
}

/** The 16-hex-digit span id of the source tap (`source`) in a trace: the root span's. */
export function spanIdOf(traceId: string, tap: string): string {
  const id = hex64(fnv1a64(`${traceId}\u0000${tap}`, 0xcbf29ce484222325n));
  return id === "0000000000000000" ? "0000000000000001" : id;
}

/** The 16-hex-digit span id of a match at `stage` captured on `node` in `stream`, in a trace. */
export function matchSpanIdOf(traceId: string, stage: string, node: string, stream: string): string {
  return spanIdOf(traceId, `${stage}\u0000${node}\u0000${stream}`);
}

/** OpenMetrics limits an exemplar's label names and values to 128 UTF-8 characters in all. */
export const EXEMPLAR_MAX_CHARS = 128;

/**
 * Exemplar labels `{trace_id, signature_id, interval_id}` within the OpenMetrics limit: the interval id (the
 * only unbounded value) is shortened to fit.
 */
export function exemplarLabels(
  signatureId: string,
  intervalId: string | undefined,
  traceId: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (traceId) out["trace_id"] = traceId;
  out["signature_id"] = signatureId;
  let used = 0;
  for (const [k, v] of Object.entries(out)) used += k.length + v.length;
  if (intervalId) {
    // Whole code points (no surrogate half), counted in UTF-16 units as prom-client checks the limit (a
    // character outside the BMP is two): counted in code points, 48 letters and 4 emoji made 129, prom-client
    // threw, and every match of that signature crashed the exporter until the sensor gave up.
    let room = EXEMPLAR_MAX_CHARS - used - "interval_id".length, kept = "";
    for (const ch of intervalId) {
      if (ch.length > room) break;
      kept += ch;
      room -= ch.length;
    }
    if (kept !== "") out["interval_id"] = kept;
  }
  return out;
}
