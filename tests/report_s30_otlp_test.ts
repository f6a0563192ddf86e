/**
 * What an OTLP exporter sends and counts, against collectors on loopback that decode and answer with the official
 * .proto definitions: spans a collector rejects in a partial success, a 200 whose body never ends, and string
 * attributes of any length from the messages (a target's stream key).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import protobuf from "protobufjs";
import { MAX_ATTRIBUTE_BYTES, OtlpExporter } from "../report/otlp.ts";
import type { MatchRecord } from "../report/records.ts";
import { matchSpanIdOf, traceIdOf } from "../report/trace_ids.ts";
import { setLogSink } from "../util/log.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { makeCaAndServerCert } from "./support/fake_kube_api.ts";
import { relayMatch } from "./support/otlp_records.ts";

const PROTO_ROOT = new URL("../report/otlp/proto/", import.meta.url).pathname;
const match = relayMatch;

async function responseType(): Promise<protobuf.Type> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => PROTO_ROOT + target;
  await root.load("opentelemetry/proto/collector/trace/v1/trace_service.proto", { keepCase: false });
  return root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse");
}

Deno.test("OTLP: spans a collector rejects in a partial success count failed, with its reason logged", async () => {
  const Res = await responseType();
  const protobufAnswer = (rejected: number, message: string) =>
    new Response(
      Res.encode(Res.create({ partialSuccess: { rejectedSpans: rejected, errorMessage: message } }))
        .finish() as Uint8Array<ArrayBuffer>,
      { headers: { "content-type": "application/x-protobuf" } },
    );
  const answers = [
    () => protobufAnswer(3, "3 spans older than the ingestion window"),
    // More rejected than sent: at most the batch.
    () => protobufAnswer(99, "x".repeat(5000)),
    // No partial success, and answers that are no protobuf response: accepted, as before.
    () => protobufAnswer(0, ""),
    () => new Response(new Uint8Array([1, 2, 3, 255, 0]), { status: 200 }),
    () => new Response('{"partialSuccess":{"rejectedSpans":"5"}}', { status: 200 }),
  ];
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    return answers[n++]!();
  });
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    const exp = new OtlpExporter({ endpoint: `http://127.0.0.1:${server.addr.port}`, batch: 5, flushMs: 5 });
    for (let b = 0; b < answers.length; b++) {
      for (let i = 0; i < 5; i++) exp.match(match(b * 5 + i));
      await exp.flush();
    }
    await exp.close();
    deepEqual(exp.stats(), { sent: 2 + 0 + 5 + 5 + 5, failed: 3 + 5, dropped: 0, requests: 5 });
    const rejected = lines.filter((l) => l.includes("rejected spans"));
    deepEqual(rejected.length, 2, lines.join("\n"));
    ok(rejected[0]!.includes("older than the ingestion window"), rejected[0]!);
    ok(rejected[1]!.length < 1000, "the collector's message is cut");
  } finally {
    setLogSink(prev);
    await server.shutdown();
  }
});

Deno.test("OTLP: a 200 whose body never ends counts its spans sent once the request times out", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    // Headers, then a body that never ends.
    const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array([0x0a])) });
    return new Response(body, { headers: { "content-type": "application/x-protobuf" } });
  });
  const prev = setLogSink(() => {});
  try {
    const exp = new OtlpExporter({
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      batch: 2,
      flushMs: 5,
      timeoutMs: 300,
    });
    exp.match(match(0));
    exp.match(match(1));
    await exp.close();
    deepEqual(exp.stats(), { sent: 2, failed: 0, dropped: 0, requests: 1 });
  } finally {
    setLogSink(prev);
    await server.shutdown();
  }
});

Deno.test("OTLP: a target stream key of any length is cut in the span's attributes, not in its ids", async () => {
  const rx = await startOtlpReceiver();
  const prev = setLogSink(() => {});
  try {
    // A stream_key [pod, "$.session"] whose sender wrote a 200 KB session id: every span of that stream carried
    // it whole (2 MB for ten spans), and a batch of 512 went past a collector's request limit.
    const stream = `voice/asr-0|asr-${"X".repeat(200_000)}`;
    const long = (i: number): MatchRecord => {
      const m = match(i);
      return { ...m, target: { ...m.target, stream, pod: `voice/${"é".repeat(400)}` } };
    };
    const exp = new OtlpExporter({ endpoint: rx.endpoint, batch: 10, flushMs: 5 });
    for (let i = 0; i < 10; i++) exp.match(long(i));
    await exp.close();
    deepEqual(exp.stats(), { sent: 10, failed: 0, dropped: 0, requests: 1 });
    equal(rx.spans.length, 10);
    const enc = new TextEncoder();
    for (const s of rx.spans) {
      for (const [k, v] of Object.entries(s.attributes)) {
        if (typeof v === "string") ok(enc.encode(v).length <= MAX_ATTRIBUTE_BYTES, `${k}: ${v.length} chars`);
      }
      const kept = String(s.attributes["fsmpx.stream"]);
      ok(stream.startsWith(kept.slice(0, kept.lastIndexOf("~"))), "a prefix of the stream is kept");
      ok(String(s.attributes["k8s.pod.name"]).startsWith("voice/éé"), "cut on a character boundary");
    }
    // The span id still names the whole stream: a later stage's hop from this match finds it as its parent.
    const m = long(0);
    const trace = traceIdOf(m.measurement, m.signature_id, m.ids["interval_id"]);
    ok(rx.spans.some((s) => s.spanId === matchSpanIdOf(trace, "relay", "node-a", stream)));
  } finally {
    setLogSink(prev);
    await rx.close();
  }
});

Deno.test("OTLP: an https collector whose certificate is not trusted: the log says why, not only 'fetch failed'", async () => {
  const { cert, key } = await makeCaAndServerCert();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {}, onError: () => new Response("") },
    () => new Response(""),
  );
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    const exp = new OtlpExporter({ endpoint: `https://127.0.0.1:${server.addr.port}`, flushMs: 5 });
    exp.match(match(0));
    await exp.close();
    deepEqual(exp.stats(), { sent: 0, failed: 1, dropped: 0, requests: 1 });
    const failed = lines.find((l) => l.includes("OTLP export failed"));
    ok(failed?.includes("certificate"), failed ?? lines.join("\n"));
  } finally {
    setLogSink(prev);
    await server.shutdown();
  }
});

Deno.test("OTLP: a collector rate-limiting with 429 and Retry-After gets no request until then; the queue waits", async () => {
  // A rate limiter: every request within 1 s of the first refusal is refused again.
  const seen: { ms: number; status: number }[] = [];
  let limitedUntil = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    const now = Date.now();
    if (limitedUntil === 0) limitedUntil = now + 1000;
    const status = now < limitedUntil ? 429 : 200;
    seen.push({ ms: now, status });
    return new Response(null, { status, headers: status === 429 ? { "retry-after": "1" } : {} });
  });
  const prev = setLogSink(() => {});
  try {
    const exp = new OtlpExporter({ endpoint: `http://127.0.0.1:${server.addr.port}`, flushMs: 5 });
    for (let i = 0; i < 2000; i++) exp.match(match(i));
    await exp.flush();
    // Before: the four batches went within 0.1 s, each refused, and all 2,000 spans were lost.
    deepEqual(exp.stats(), { sent: 1488, failed: 512, dropped: 0, requests: 4 });
    deepEqual(seen.map((s) => s.status), [429, 200, 200, 200]);
    ok(
      seen[1]!.ms - seen[0]!.ms >= 950,
      `${seen[1]!.ms - seen[0]!.ms} ms between refusal and the next request`,
    );
    // Closing does not wait out a pause: what is queued goes at once.
    limitedUntil = Date.now() + 60_000;
    exp.match(match(2000));
    await exp.flush();
    const t0 = Date.now();
    for (let i = 2001; i < 2010; i++) exp.match(match(i));
    await exp.close();
    ok(Date.now() - t0 < 1000, `close took ${Date.now() - t0} ms`);
    deepEqual(exp.stats(), { sent: 1488, failed: 522, dropped: 0, requests: 6 });
  } finally {
    setLogSink(prev);
    await server.shutdown();
  }
});

Deno.test("OTLP: a stop gives a collector that never answers its budget, then counts what it did not take", async () => {
  const stop = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, signal: stop.signal },
    () => new Promise<Response>(() => {}),
  );
  const prev = setLogSink(() => {});
  try {
    const exp = new OtlpExporter({
      endpoint: `http://127.0.0.1:${server.addr.port}`,
      batch: 2,
      flushMs: 60_000,
      timeoutMs: 10_000,
    });
    for (let i = 0; i < 6; i++) exp.match(match(i));
    const t0 = performance.now();
    await exp.close(300);
    const took = performance.now() - t0;
    // Before: the stop waited out the request's 10 s timeout and each batch after it (the sensor's 5 s flush
    // deadline cut it short, the spans neither sent nor counted).
    ok(took < 2_000, `the close took ${took} ms`);
    const st = exp.stats();
    equal(st.sent, 0);
    equal(st.failed, 2, "the request in flight");
    equal(st.dropped, 4, "the queue behind it");
  } finally {
    setLogSink(prev);
    stop.abort();
    await server.finished.catch(() => {});
  }
});
