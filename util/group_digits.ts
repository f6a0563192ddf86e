/**
 * Counts printed with thousands separators, as `Intl.NumberFormat("en-US")` prints integers, without loading the
 * engine's ICU data: constructing the formatter cost ~45 ms of every command's start-up (an analyze of an empty
 * capture spent 0.44 CPU s in all; `deno run -A --cpu-prof main.ts analyze ...`).
 * @module
 */

/** `x` with a comma between groups of three digits ("1,234,567"); a non-integer keeps its fraction ("1,234.5"). */
export function groupDigits(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const s = String(Math.abs(x));
  // Exponent notation (|x| >= 1e21 or tiny fractions) is left as the engine prints it.
  if (s.includes("e")) return String(x);
  const dot = s.indexOf(".");
  const int = dot < 0 ? s : s.slice(0, dot);
  let out = "";
  for (let i = int.length; i > 0; i -= 3) out = int.slice(Math.max(0, i - 3), i) + (out ? "," + out : "");
  return (x < 0 ? "-" : "") + out + (dot < 0 ? "" : s.slice(dot));
}
