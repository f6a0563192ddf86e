/**
 * An error nobody catches (thrown in a timer, a promise rejected with nobody awaiting it) ends the process with
 * exit 1 and a log line with every registered secret masked. Deno's own report printed the message and stack as
 * they were, so a credential in one reached the pod's log.
 */
import { equal, ok } from "node:assert/strict";

const SECRET = "s3cr3t-pixie-key-0123456789";

/** Runs a child that registers SECRET, installs the report (or not) and fails as `how`; its exit and stderr. */
async function crash(
  how: "rejection" | "timer",
  install: boolean,
): Promise<{ code: number; stderr: string }> {
  const crashReport = new URL("../cli/crash_report.ts", import.meta.url).href;
  const log = new URL("../util/log.ts", import.meta.url).href;
  const fail = how === "rejection"
    ? `Promise.reject(new Error("connect to nats://fsm:${SECRET}@nats:4222 refused"));`
    : `setTimeout(() => { throw new Error("bad answer with key ${SECRET}"); }, 1);`;
  const code = `import { installCrashReport } from "${crashReport}";
import { registerSecret } from "${log}";
registerSecret("${SECRET}");
${install ? "installCrashReport();" : ""}
${fail}
await new Promise((r) => setTimeout(r, 200));
Deno.exit(7);
`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

for (const how of ["rejection", "timer"] as const) {
  Deno.test(`crash report: an uncaught ${how} is logged with its secret masked, and the process exits 1`, async () => {
    const bare = await crash(how, false);
    // What Deno does by itself: the secret in plain text (this is why the report exists).
    equal(bare.code, 1);
    ok(bare.stderr.includes(SECRET), bare.stderr);
    const r = await crash(how, true);
    equal(r.code, 1, r.stderr);
    ok(!r.stderr.includes(SECRET), r.stderr);
    const line = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    equal(line.level, "error");
    equal(line.component, "crash");
    ok(line.msg.startsWith(`uncaught ${how === "timer" ? "error" : "rejection"}`), line.msg);
    ok(line.error.includes("[redacted]") && line.error.includes("Error:"), line.error);
  });
}
