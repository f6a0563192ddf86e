/** Settings a command cannot run without are configuration errors: exit 2, at file:line:col, naming the fix. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runMain } from "./support/sensor_process.ts";

const measurement = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
`;

async function withConfig(text: string, args: (path: string) => string[]) {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.yaml");
    await Deno.writeTextFile(path, text);
    return await runMain(args(path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("record with an empty pixie.api_key exits 2 and names the key and the alternative", async () => {
  const r = await withConfig(
    `pixie:\n  api_key: ""\n${measurement}`,
    (p) => ["record", "--config", p, "--out", p + ".jsonl"],
  );
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /c\.yaml:2:\d+: pixie\.api_key: expected a Pixie API key/);
  assert.match(r.stderr, /direct_addr/);
});

Deno.test("replay with an empty nats.url exits 2 and says why replay needs it", async () => {
  const r = await withConfig(`nats:\n  url: ""\n${measurement}`, (p) => ["replay", "--config", p]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /nats\.url: expected a NATS URL \(replay reads the JetStream stream/);
});

Deno.test("replay --measurement that is no measurement name is a usage error (exit 2) before any connection", async () => {
  // Before, 'a.b' reached the subject builder and failed there: exit 1, after loading and connecting.
  for (const bad of ["a.b", "m.>", "*", "M"]) {
    const r = await withConfig(`nats:\n  url: nats://127.0.0.1:1\n${measurement}`, (p) => [
      "replay",
      "--config",
      p,
      "--measurement",
      bad,
    ]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--measurement expects a measurement name/);
  }
});
