/**
 * `.ci/run`, the CI entry point, with a stand-in `npx` on PATH (the real run takes minutes of both cores): what it
 * hands the test task, and the verdict it prints and returns for what the test task printed and returned.
 */
import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs `.ci/run` with an `npx` that records its environment, prints `output` and exits with `code`. */
async function ciRun(output: string, code: number): Promise<{ code: number; last: string; env: string }> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-ci-" });
  try {
    await Deno.writeTextFile(
      join(dir, "npx"),
      `#!/bin/sh\necho "CI=\${CI-unset}" > ${dir}/env\ncat <<'OUT'\n${output}\nOUT\nexit ${code}\n`,
    );
    await Deno.chmod(join(dir, "npx"), 0o755);
    // A CI host that sets nothing of its own: only PATH (with the stand-in first) and HOME.
    const out = await new Deno.Command("bash", {
      args: [join(ROOT, ".ci/run")],
      clearEnv: true,
      env: { PATH: `${dir}:/usr/local/bin:/usr/bin:/bin`, HOME: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    return {
      code: out.code,
      last: lines.at(-1) ?? "",
      env: (await Deno.readTextFile(join(dir, "env"))).trim(),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(".ci/run: runs the tests with CI=true, so a test whose tool is missing fails instead of being skipped", async () => {
  const r = await ciRun("ok | 3 passed | 0 failed (1s)", 0);
  equal(r.env, "CI=true");
  equal(r.last, "3 passed, 0 failed");
  equal(r.code, 0);
});

Deno.test(".ci/run: a failed run is red, whatever it printed", async () => {
  const failed = await ciRun("FAILED | 3 passed | 2 failed (1s)", 1);
  equal(failed.last, "3 passed, 2 failed");
  equal(failed.code, 1);
  const noSummary = await ciRun("error: Type checking failed.", 1);
  equal(noSummary.last, "0 passed, 1 failed");
  equal(noSummary.code, 1);
  match((await ciRun("", 0)).last, /0 passed, 1 failed/, "no summary at all is a failure");
});
