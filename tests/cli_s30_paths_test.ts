/**
 * Paths a new user gets wrong: `deno task` runs in the repository's folder whatever folder it is started from, so
 * `--config config.yaml` typed beside the file in a subfolder was "config.yaml: expected a readable config file,
 * found NotFound" with nothing about where it was looked for; a capture likewise. And `analyze --out` (or
 * `replay --out`) into a folder that does not exist failed only after the whole run, with "No such file or
 * directory (os error 2): writefile ...", exit 1, and no summary printed: it is now a usage error before the run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runMain } from "./support/sensor_process.ts";

Deno.test("a relative --config that is not there says where it was looked for and what to do", async () => {
  const r = await runMain(["check", "--config", "no_such_dir/config.yaml"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `no_such_dir/config\\.yaml: expected a readable config file, found NotFound \\(looked for ${
        join(ROOT, "no_such_dir/config.yaml").replaceAll(".", "\\.")
      }: a relative path is read from where the command runs.*absolute path\\)`,
    ),
  );
});

Deno.test("a relative capture that is not there says where it was looked for", async () => {
  const r = await runMain([
    "analyze",
    "--config",
    "fixtures/demo/config.yaml",
    "node-a.jsonl",
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot read capture node-a\.jsonl: .*a relative path is read from .*absolute path/);
});

Deno.test("analyze --out into a missing folder is refused before the run (exit 2), naming the path", async () => {
  const started = performance.now();
  const r = await runMain([
    "analyze",
    "--config",
    "fixtures/demo/config.yaml",
    "--out",
    "no_such_dir/records.jsonl",
    "fixtures/demo/node-a.jsonl",
    "fixtures/demo/node-b.jsonl",
    "fixtures/demo/node-c.jsonl",
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /--out no_such_dir\/records\.jsonl: cannot write it \(its folder does not exist; a relative path is read from/,
  );
  // Refused before anything was analysed: no summary, no engine log.
  assert.equal(r.stdout, "");
  assert.ok(performance.now() - started < 20_000);
  const dir = await Deno.makeTempDir();
  try {
    const folder = await runMain([
      "analyze",
      "--config",
      "fixtures/demo/config.yaml",
      "--out",
      dir,
      "x.jsonl",
    ]);
    assert.equal(folder.code, 2, folder.stderr);
    assert.match(folder.stderr, /cannot write it \(it is a folder: give a file name in it\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay --out into a missing folder is refused before connecting", async () => {
  const r = await runMain([
    "replay",
    "--config",
    "fixtures/demo/config.yaml",
    "--out",
    "/no_such_dir/r.jsonl",
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--out \/no_such_dir\/r\.jsonl: cannot write it \(its folder does not exist\)/);
});
