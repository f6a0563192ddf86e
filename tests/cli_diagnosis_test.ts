/**
 * A deliberately broken config (a typo in the audio path) on the bundled demo captures: `analyze` and
 * `run --capture` end by saying why there are no signatures, with the engine's count, an example row and the
 * field that was meant.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const DEMO = `${ROOT}fixtures/demo/`;
const tmp = await Deno.makeTempDir({ prefix: "fsmpx-diagnosis-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

const broken = `${tmp}/typo.yaml`;
await Deno.writeTextFile(
  broken,
  (await Deno.readTextFile(`${DEMO}config.yaml`)).replace("path: media.payload", "path: media.paylaod")
    // run serves /metrics: any free port.
    .replace("listen: 127.0.0.1:9464", "listen: 127.0.0.1:0"),
);
const captures = ["node-a", "node-b", "node-c"].map((n) => `${DEMO}${n}.jsonl`);
const dec = new TextDecoder();

Deno.test("cli diagnosis: analyze with a path typo says why there is nothing, with an example", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}main.ts`, "analyze", "--config", broken, ...captures],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { FSMPX_LOG_LEVEL: "error" },
  }).output();
  const text = dec.decode(out.stdout);
  assert.equal(out.code, 0, dec.decode(out.stderr));
  assert.match(
    text,
    /6414 rows from 3 capture\(s\); 0 malformed line\(s\) skipped; 4309 payload\(s\) failed to decode:/,
  );
  assert.match(text, /missing_path media\.paylaod in 4,309 rows of call_audio\/source \(100%\)/);
  assert.match(text, /example: node node-a, pod voice\/telephony-0, time_ \d+: \{"event":"media"/);
  assert.match(text, /did you mean media\.payload\?/);
  assert.match(
    text,
    new RegExp(`Why \\(call_audio: no signatures\\); config ${broken.replaceAll(".", "\\.")}:`),
  );
  assert.match(text, /stage call_audio\/relay: 1,438 rows, 0 matches: there were no signatures to find/);
  // The example never prints the audio itself.
  assert.doesNotMatch(text, /"payload":"[A-Za-z0-9+/]{40,}/);

  const json = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      "analyze",
      "--format",
      "json",
      "--config",
      broken,
      ...captures,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { FSMPX_LOG_LEVEL: "error" },
  }).output();
  const r = JSON.parse(dec.decode(json.stdout));
  assert.deepEqual(r.decode_errors, [
    { measurement: "call_audio", stream: "source", reason: "missing_path", count: 4309 },
  ]);
  assert.equal(r.diagnosis.poor, true);
  assert.equal(r.diagnosis.findings[0].kind, "decode_errors");
});

Deno.test("cli diagnosis: run --capture explains at the end of the replay", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}main.ts`,
      "run",
      "--config",
      broken,
      "--capture",
      captures[0]!,
      "--speed",
      "1000",
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { FSMPX_LOG_LEVEL: "error" },
  }).spawn();
  // The sensor keeps serving /metrics after the replay: read its stderr until the explanation is complete, then
  // stop it as the DaemonSet would.
  let text = "";
  const reader = child.stderr.getReader();
  while (!/did you mean media\.payload\?[^\n]*\n[\s\S]*0 signatures from/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  child.kill("SIGTERM");
  reader.releaseLock();
  await child.stderr.cancel();
  const status = await child.status;
  assert.match(text, /missing_path media\.paylaod in 4,309 rows of call_audio\/source \(100%\)/);
  assert.match(text, /did you mean media\.payload\?/);
  assert.match(
    text,
    /call_audio: 0 signatures from 4,309 source rows: every source message failed to decode/,
  );
  assert.equal(status.code, 0, "graceful stop after SIGTERM");
});
