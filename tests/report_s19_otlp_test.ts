import { deepEqual, equal, ok } from "node:assert/strict";
import { OtlpExporter } from "../report/otlp.ts";
import { setLogSink } from "../util/log.ts";
import { relayMatch } from "./support/otlp_records.ts";

setLogSink(() => {});

const match = relayMatch;

/** A collector stand-in on loopback whose answers the test scripts; `hold` keeps requests waiting. */
function collector(answer: (n: number) => Response | Promise<Response>) {
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    return await answer(n++);
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    requests: () => n,
    close: () => server.shutdown(),
  };
}

Deno.test("OTLP: spans queued while a slow collector holds a request join the running send, not one pending flush each", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const rx = collector(async () => {
    await held;
    return new Response(null, { status: 200 });
  });
  try {
    const exp = new OtlpExporter({ endpoint: rx.endpoint, batch: 1, maxQueue: 100_000, flushMs: 10 });
    exp.match(match(0)); // starts a send that the collector holds
    for (let i = 0; i < 200 && rx.requests() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    equal(rx.requests(), 1);
    // Every span below fills a batch while that send is in flight. Before the fix each one chained another
    // flush onto the pending send (one promise per span for as long as the collector is slow: unbounded).
    const then = Promise.prototype.then;
    let chained = 0;
    Promise.prototype.then = function (this: Promise<unknown>, ...args: Parameters<typeof then>) {
      chained++;
      return then.apply(this, args);
    } as typeof then;
    try {
      for (let i = 1; i <= 5000; i++) exp.match(match(i));
    } finally {
      Promise.prototype.then = then;
    }
    ok(chained <= 2, `${chained} promises chained for 5000 spans queued behind one request`);
    release();
    await exp.close();
    deepEqual(exp.stats(), { sent: 5001, failed: 0, dropped: 0, requests: 5001 });
  } finally {
    release();
    await rx.close();
  }
});

Deno.test("OTLP: refusals (429 with Retry-After, 5xx, 4xx) count their spans failed, garbage 200s count sent, and export goes on", async () => {
  const answers = [
    () => new Response("slow down", { status: 429, headers: { "retry-after": "3600" } }),
    () => new Response("x", { status: 503 }),
    () => new Response("x", { status: 400 }),
    () => new Response(new Uint8Array([1, 2, 3, 255, 0]), { status: 200 }),
    () => new Response("y".repeat(1_000_000), { status: 200 }),
  ];
  const rx = collector((n) => answers[n % answers.length]!());
  try {
    // (429 and 503 pause export: kept short here, see report_s30_otlp_test.ts.)
    const exp = new OtlpExporter({ endpoint: rx.endpoint, batch: 1, flushMs: 5, maxPauseMs: 20 });
    for (let i = 0; i < answers.length; i++) {
      exp.match(match(i));
      await exp.flush();
    }
    await exp.close();
    deepEqual(exp.stats(), { sent: 2, failed: 3, dropped: 0, requests: 5 });
  } finally {
    await rx.close();
  }
});

Deno.test("OTLP: a collector that never answers: sends time out, the queue stays bounded, and every span is sent, failed or dropped", async () => {
  const stop = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, signal: stop.signal },
    () => new Promise<Response>(() => {}),
  );
  try {
    const exp = new OtlpExporter({
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      batch: 2,
      maxQueue: 4,
      flushMs: 5,
      timeoutMs: 200,
    });
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) exp.match(match(i)); // returns at once: nothing waits on the collector
    ok(performance.now() - t0 < 100);
    await exp.close();
    const st = exp.stats();
    equal(st.sent, 0);
    equal(st.failed + st.dropped, 10, JSON.stringify(st));
    ok(st.dropped > 0, "the queue is bounded");
    // A record that arrives after close is dropped too, and counted as such.
    exp.match(match(10));
    equal(exp.stats().dropped, st.dropped + 1);
  } finally {
    stop.abort();
    await server.finished.catch(() => {});
  }
});

Deno.test("OTLP: credentials in the endpoint URL (user:password@) are never written to the log", async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  let logged = "";
  const rx = collector(() => new Response(null, { status: 503 }));
  try {
    const endpoint = rx.endpoint.replace("http://", "http://tenant-7:s3cr3t-t0ken@");
    const exp = new OtlpExporter({ endpoint, flushMs: 5 });
    exp.match(match(1));
    await exp.close();
    const down = new OtlpExporter({ endpoint: "http://tenant-7:s3cr3t-t0ken@127.0.0.1:9", flushMs: 5 });
    down.match(match(2));
    await down.close();
    equal(exp.stats().failed + down.stats().failed, 2);
    logged = lines.join("\n");
  } finally {
    setLogSink(prev);
    await rx.close();
  }
  ok(logged.includes("OTLP export failed"), logged);
  ok(logged.includes("127.0.0.1"), "the log still says where");
  ok(!logged.includes("s3cr3t-t0ken"), logged);
});
