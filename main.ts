/**
 * fsm-px command line: `run`, `demo`, `analyze`, `record`, `replay`, `schema`. See README.md.
 * @module
 */
import { main } from "./cli/main.ts";
import { installCrashReport } from "./cli/crash_report.ts";

if (import.meta.main) {
  installCrashReport();
  Deno.exit(await main(Deno.args));
}
