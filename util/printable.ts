/**
 * Text from traffic or peers made safe to print on a terminal. Stream keys (a JSON field of a message), context
 * ids, pod names and payload previews reach the human-readable outputs of `analyze`, `replay`, `discover` and
 * `check`; a message whose stream key held `\u001b[2J` cleared the operator's screen, and an OSC sequence can set
 * the window title or the clipboard. Control characters are shown escaped instead.
 * @module
 */

/**
 * C0 controls, DEL, C1 controls (U+009B is a one-character CSI to some terminals), the line and paragraph
 * separators, and the bidirectional overrides and isolates (which reorder what follows them on the line).
 */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same but line feeds and tabs: a whole rendered text's own layout. */
// deno-lint-ignore no-control-regex -- control characters are what it looks for
const CONTROL_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escape(c: string): string {
  if (Object.hasOwn(SHORT, c)) return SHORT[c]!;
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One value (a table cell, a name) on one line: every control character escaped (`\x1b`, `\n`, `\u202e`). */
export function printable(s: string): string {
  return s.replace(CONTROL, escape);
}

/** A rendered text for a terminal: control characters escaped, its line feeds and tabs kept. */
export function terminalText(s: string): string {
  return s.replace(CONTROL_BUT_LAYOUT, escape);
}
