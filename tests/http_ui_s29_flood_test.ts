/**
 * The web UI's server under a connection flood. It ran on `Deno.serve`, which keeps every connection as long as
 * its peer does (an idle one, or a head sent a byte at a time, for ever) and ends the process when accepting
 * fails: ~230 idle connections under a 256 open-file limit ended `ui` with "Too many open files" (an uncaught
 * error in Deno's server). It now runs on the metrics server's bounded server (at most 64 connections, the oldest
 * idle one closed to make room, head and idle timeouts), and event streams take at most half the connections.
 */
import { equal, ok } from "node:assert/strict";
import { RecordStore } from "../http/ui/store.ts";
import { startUiServer } from "../http/ui_server.ts";
import { ROOT, sleep } from "./support/sensor_process.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** `main.ts ui` under `ulimit -n 256` over an empty records file; its URL read from its output. */
class LimitedUi {
  #stderr = "";
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  exited: Deno.CommandStatus | null = null;
  readonly url: Promise<string>;

  constructor(records: string) {
    const cmd = `ulimit -n 256 && exec "${Deno.execPath()}" run --allow-all main.ts ui ` +
      `--config fixtures/e2e/config.yaml --records "${records}" --listen 127.0.0.1:0`;
    const child = new Deno.Command("sh", {
      args: ["-c", cmd],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    this.status = child.status.then((s) => this.exited = s);
    void (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) this.#stderr += chunk;
    })();
    this.url = (async () => {
      let out = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      while (!/UI at (http:\S+)/.test(out)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`ui ended before serving: ${out} ${this.#stderr}`);
        out += value;
      }
      void (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return /UI at (http:\S+)/.exec(out)![1]!;
    })();
  }

  get stderr(): string {
    return this.#stderr;
  }

  kill(): Promise<Deno.CommandStatus> {
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    return this.status;
  }
}

function connect(url: string): Promise<Deno.TcpConn> {
  const u = new URL(url);
  return Deno.connect({ hostname: u.hostname, port: Number(u.port) });
}

async function info(url: string): Promise<number> {
  const res = await fetch(new URL("/api/info", url), { signal: AbortSignal.timeout(20_000) });
  await res.body?.cancel();
  return res.status;
}

/** Reads until the server closes the connection (or `until` matches, or `ms` pass); what arrived and why it ended. */
async function readUntil(
  conn: Deno.Conn,
  ms: number,
  until?: (text: string) => boolean,
): Promise<{ text: string; end: "closed" | "matched" | "timeout" }> {
  const buf = new Uint8Array(16 * 1024);
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf).catch(() => null), timeout]);
      if (n === "timeout") return { text, end: "timeout" };
      if (n === null) return { text, end: "closed" };
      text += dec.decode(buf.subarray(0, n));
      if (until?.(text)) return { text, end: "matched" };
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "ui under ulimit -n 256 survives 300 idle connections, still answers, and closes a slow head",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-ui-flood-" });
    const records = `${dir}/records.jsonl`;
    await Deno.writeTextFile(records, "");
    const ui = new LimitedUi(records);
    const flood: Deno.TcpConn[] = [];
    try {
      const url = await ui.url;
      equal(await info(url), 200);
      // More idle sockets than the process may have files open: before the fix it exited at ~230.
      for (let i = 0; i < 300; i++) flood.push(await connect(url));
      equal(await info(url), 200, `answers during the flood; ${ui.stderr}`);
      equal(ui.exited, null, ui.stderr);
      for (const c of flood.splice(0)) c.close();
      equal(await info(url), 200, ui.stderr);
      ok(!ui.stderr.includes("Too many open files"), ui.stderr);

      // A head sent a byte now and then is cut off at the head timeout (5 s); before, it was held for ever.
      const slow = await connect(url);
      flood.push(slow);
      const t0 = performance.now();
      const head = "GET /api/info HTTP/1.1\r\nHost: x\r\n";
      let closed = false;
      for (let i = 0; i < head.length && performance.now() - t0 < 15_000; i++) {
        try {
          await slow.write(enc.encode(head[i]!));
        } catch {
          closed = true;
          break;
        }
        const r = await readUntil(slow, 500);
        if (r.end === "closed") {
          closed = true;
          break;
        }
      }
      ok(closed, "the slow head's connection was closed");
      ok(performance.now() - t0 < 10_000, `closed after ${Math.round(performance.now() - t0)} ms`);
      equal(await info(url), 200);
      equal(ui.exited, null, ui.stderr);
    } finally {
      for (const c of flood) c.close();
      await ui.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ui: event streams take at most half the connections; a page that went away frees its stream",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ui = startUiServer({ listen: "127.0.0.1:0", store: new RecordStore(), eventIntervalMs: 50 });
    const conns: Deno.TcpConn[] = [];
    const openStream = async () => {
      const c = await connect(ui.url);
      conns.push(c);
      await c.write(enc.encode("GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"));
      return { conn: c, first: await readUntil(c, 5_000, (t) => t.includes("\n\n") && t.includes("event:")) };
    };
    try {
      // 32 streams (half of 64) are streams: the comment, then the counts.
      for (let i = 0; i < 32; i++) {
        const { first } = await openStream();
        equal(first.end, "matched", `stream ${i}: ${first.text}`);
        ok(first.text.startsWith("HTTP/1.1 200"), first.text);
        ok(first.text.includes(": fsm-px"), first.text);
      }
      // The next one is told to come back later (an EventSource does, after `retry`), and ends; before the fix
      // every stream was held open.
      const c = await connect(ui.url);
      conns.push(c);
      await c.write(enc.encode("GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n"));
      const refused = await readUntil(c, 5_000);
      equal(refused.end, "closed", refused.text);
      ok(refused.text.startsWith("HTTP/1.1 200"), refused.text);
      ok(refused.text.includes("text/event-stream"), refused.text);
      ok(/\r\n\r\nretry: \d+\n\n$/.test(refused.text), refused.text);
      // Pages' requests still get in.
      equal(await info(ui.url), 200);

      // The pages go away while no event is due: their streams end at once, and as many new ones are streams.
      for (const s of conns.splice(0)) s.close();
      await sleep(200);
      for (let i = 0; i < 32; i++) {
        const { first } = await openStream();
        equal(first.end, "matched", `new stream ${i}: ${first.text}`);
        ok(first.text.includes(": fsm-px"), first.text);
      }
    } finally {
      for (const c of conns) c.close();
      await ui.close();
    }
  },
});
