/**
 * fsm-px command line: `run`, `demo`, `analyze`, `record`, `replay`, `schema`. See README.md.
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
