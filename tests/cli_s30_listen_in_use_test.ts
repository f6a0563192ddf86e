/**
 * A server that cannot listen (the port taken by another process, an address not this host's) is reported with
 * the address, why and what to do: at `metrics.listen`'s file:line:col for `run` (exit 2), naming the option for
 * `demo --ui`/`--listen` and `ui --listen` (exit 2). Before, each printed Deno's "Address already in use (os error
 * 98)" as a runtime failure (exit 1), naming neither the address nor the setting.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runMain } from "./support/sensor_process.ts";

const measurement = `measurements:
  - name: m
    signature_rules:
      stream_filter: |
        df = px.DataFrame(table='http_events', start_time='-30s')
`;

/** A port held by this test process for the duration of `body`. */
async function withBusyPort<T>(body: (port: number) => Promise<T>): Promise<T> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return await body((l.addr as Deno.NetAddr).port);
  } finally {
    l.close();
  }
}

async function withFiles<T>(files: Record<string, string>, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("run: metrics.listen on a port in use is a config error at its line naming the address and the fix", async () => {
  await withBusyPort((port) =>
    withFiles({
      "c.yaml": `node: n1\nmetrics:\n  listen: 127.0.0.1:${port}\n${measurement}`,
      "cap.jsonl": `{"capture":1,"node":"n1"}\n`,
    }, async (dir) => {
      const r = await runMain(["run", "--config", join(dir, "c.yaml"), "--capture", join(dir, "cap.jsonl")]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /c\.yaml:3:11: metrics\.listen: expected an address this sensor can listen on/);
      assert.match(r.stderr, new RegExp(`found 127\\.0\\.0\\.1:${port}: the port is in use`));
      assert.match(r.stderr, /set metrics\.listen to a free port/);
      assert.doesNotMatch(r.stderr, /os error/);
    })
  );
});

Deno.test("run: metrics.listen on an address of no interface here says so and how to listen on all", async () => {
  // 192.0.2.0/24 is TEST-NET-1: no host has it.
  await withFiles({
    "c.yaml": `node: n1\nmetrics:\n  listen: 192.0.2.7:9464\n${measurement}`,
    "cap.jsonl": `{"capture":1,"node":"n1"}\n`,
  }, async (dir) => {
    const r = await runMain(["run", "--config", join(dir, "c.yaml"), "--capture", join(dir, "cap.jsonl")]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /c\.yaml:3:11: metrics\.listen: .*192\.0\.2\.7:9464: no interface of this host/);
    assert.match(r.stderr, /0\.0\.0\.0:9464/);
  });
});

Deno.test("ui --listen on a port in use names the option, the address and the fix (exit 2)", async () => {
  await withBusyPort((port) =>
    withFiles({ "c.yaml": `node: n1\n${measurement}`, "r.jsonl": "" }, async (dir) => {
      const r = await runMain([
        "ui",
        "--config",
        join(dir, "c.yaml"),
        "--records",
        join(dir, "r.jsonl"),
        "--listen",
        `127.0.0.1:${port}`,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `--listen: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use.*--listen HOST:PORT`,
        ),
      );
    })
  );
});

Deno.test("demo: --ui and a node's metrics port in use name the option and the port taken (exit 2)", async () => {
  await withBusyPort(async (port) => {
    const ui = await runMain(["demo", "--ui", `127.0.0.1:${port}`, "--listen", "127.0.0.1:0", "--exit"]);
    assert.equal(ui.code, 2, ui.stderr);
    assert.match(ui.stderr, new RegExp(`--ui: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`));
    // The second node listens on the port after --listen's (the first must be free for it to get there).
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port - 1 }).close();
    } catch {
      return;
    }
    const m = await runMain(["demo", "--ui", "127.0.0.1:0", "--listen", `127.0.0.1:${port - 1}`, "--exit"]);
    assert.equal(m.code, 2, m.stderr);
    assert.match(
      m.stderr,
      new RegExp(`--listen: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`),
    );
    assert.match(m.stderr, /node node-b's metrics/);
  });
});
