/**
 * The demo's Health page explains decode errors with an example each (the same lines as the end-of-run
 * explanation), not only counts: a demo whose config names a wrong JSON path serves them at /api/health.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, sleep } from "./support/sensor_process.ts";
import { freePort } from "./support/nats_server.ts";

Deno.test("demo: /api/health has the decode errors by reason with an example row", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const src = await Deno.readTextFile(join(ROOT, "fixtures/demo/config.yaml"));
  const config = join(dir, "config.yaml");
  // A typo in the relay's audio path: every relay message fails to decode (missing_path).
  await Deno.writeTextFile(config, src.replace("path: payload,", "path: paylaod,"));
  assert.notEqual(await Deno.readTextFile(config), src, "the relay's path was changed");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "main.ts",
      "demo",
      "--config",
      config,
      "--speed",
      "200",
      "--ui",
      `127.0.0.1:${port}`,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let out = "";
  const reading = (async () => {
    for await (
      const c of child.stdout.pipeThrough(new TextDecoderStream() as TransformStream<Uint8Array, string>)
    ) {
      out += c;
    }
  })();
  try {
    let health: { decodeErrors: { reason: string }[]; decodeExamples?: string[] } | undefined;
    for (let i = 0; i < 1200; i++) {
      await sleep(100);
      if (!out.includes("calls (source streams)")) continue; // the replay has not ended yet
      const r = await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined);
      if (!r?.ok) continue;
      const body = await r.json() as { counts?: typeof health } & typeof health;
      health = body.counts ?? body;
      if (health?.decodeExamples?.length) break;
    }
    assert.ok(health, out);
    assert.ok(
      health.decodeErrors.some((e) => e.reason === "missing_path"),
      JSON.stringify(health.decodeErrors),
    );
    const text = (health.decodeExamples ?? []).join("\n");
    assert.match(text, /missing_path paylaod/);
    assert.match(text, /example: node /);
  } finally {
    child.kill("SIGINT");
    await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
  }
});
