/**
 * A response to HEAD has no body, whatever its Content-Length says (RFC 9112 6.3): the response parser did not
 * know its request was HEAD, so it waited for the announced body, counted a spurious `http_bad_message` for every
 * HEAD on a tapped port (a load balancer's health check: one each check, in fsmpx_packets_skipped_total), and on a
 * keep-alive connection took the responses after it for that body (their bodies lost, or, with response bodies
 * emitted, another response's head emitted as one). The two directions of a connection now share which requests
 * are outstanding. Real parts: TcpSource over hand-built segments of both directions; a Deno client and server on
 * loopback captured by tcpdump.
 */
import assert from "node:assert/strict";
import { TcpSource } from "../packets/tcp_source.ts";
import { parseFrames } from "../packets/pcap.ts";
import { PacketSource } from "../packets/packet_source.ts";
import type { AppMessage, Packet } from "../packets/types.ts";
import { TcpFlag } from "../packets/types.ts";
import { Conn, MS } from "./support/tcp_segments.ts";
import { rtpTap } from "./support/packet_build.ts";
import { startTcpdump } from "./support/tcp_capture.ts";
import { gatedTest } from "./support/tools.ts";

/** One conversation: each step is bytes from the client (`c`) or the server (`s`), in the order sent. */
type Step = ["c" | "s", string];

/** Runs `steps` through a TcpSource (HTTP on both directions); with `syn` false the capture begins midstream. */
function converse(steps: Step[], opts: { syn?: boolean; responses?: boolean } = {}) {
  const msgs: AppMessage[] = [];
  const src = new TcpSource({
    protocolFor: () => "http",
    emit: (m) => msgs.push(m),
    httpResponses: opts.responses,
  });
  const c = new Conn();
  let cs = 1000, ss = 5000;
  let t = MS;
  const push = (p: Packet) => {
    src.push(p);
    t += MS;
  };
  if (opts.syn !== false) {
    push(c.seg(cs++, "", t, TcpFlag.SYN));
    push(c.back(ss++, "", t, TcpFlag.SYN | TcpFlag.ACK));
  }
  for (const [who, text] of steps) {
    const b = new TextEncoder().encode(text);
    if (who === "c") push(c.seg(cs, b, t)), cs += b.length;
    else push(c.back(ss, b, t)), ss += b.length;
  }
  push(c.seg(cs, "", t, TcpFlag.FIN | TcpFlag.ACK));
  push(c.back(ss, "", t, TcpFlag.FIN | TcpFlag.ACK));
  src.finish();
  const text = (m: AppMessage) => new TextDecoder().decode(m.payload);
  return {
    requests: msgs.filter((m) => m.meta?.method !== undefined).map(text),
    responses: msgs.filter((m) => m.meta?.status !== undefined).map((m) => `${m.meta!.status} ${text(m)}`),
    skips: src.skips.toJSON(),
  };
}

const ok = (body: string, length = body.length) =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n${body}`;
const post = (body: string) =>
  `POST /asr HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const head = "HEAD /audio.wav HTTP/1.1\r\nHost: a\r\n\r\n";

Deno.test("HTTP: a HEAD's response has no body though it announces one; the responses after it are read", () => {
  const steps: Step[] = [
    ["c", head],
    ["s", ok("", 320_044)],
    ["c", post("AUDIO-1")],
    ["s", ok('{"text":"one"}')],
    ["c", "GET /audio.wav HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["s", ok("RIFF")],
  ];
  const r = converse(steps, { responses: true });
  assert.deepEqual(r.requests, ["AUDIO-1"]);
  // Before: the HEAD's response took the next response whole as its body (never complete, so nothing emitted).
  assert.deepEqual(r.responses, ['200 {"text":"one"}', "200 RIFF"]);
  assert.deepEqual(r.skips, {});
  // Counted only (the default): both bodies, nothing lost.
  assert.deepEqual(converse(steps).skips, { http_response: 2 });
});

Deno.test("HTTP: a HEAD alone on its connection (a health check) counts nothing lost", () => {
  // Before: http_bad_message 1 at the connection's end, for every check.
  assert.deepEqual(converse([["c", head], ["s", ok("", 5)]]).skips, {});
});

Deno.test("HTTP: pipelined HEAD and GET, interim 100 and 103 responses, a 304", () => {
  const get = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  const expect = "POST /asr HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  const r = converse([
    ["c", head + get + head],
    ["s", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok("", 9) + ok("bbb") + ok("", 7)],
    ["c", expect],
    ["s", "HTTP/1.1 100 Continue\r\n\r\n"],
    ["c", "hello"],
    ["s", ok("heard")],
    ["c", "GET /c HTTP/1.1\r\nIf-None-Match: x\r\n\r\n"],
    ["s", "HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n"],
    ["c", head],
    ["s", ok("", 3)],
  ], { responses: true });
  assert.deepEqual(r.requests, ["hello"]);
  assert.deepEqual(r.responses, ["200 bbb", "200 heard"]);
  assert.deepEqual(r.skips, {});
});

Deno.test("HTTP: without both directions' starts, responses are framed by their own headers as before", () => {
  // A capture begun mid-connection cannot pair responses with requests it never saw.
  const r = converse([["c", post("x")], ["s", ok("y")], ["c", post("z")], ["s", ok("w")]], {
    syn: false,
    responses: true,
  });
  assert.deepEqual(r.responses, ["200 y", "200 w"]);
  assert.deepEqual(r.requests, ["x", "z"]);
  // A response with no request read (the request direction not captured, say) turns pairing off, and a later
  // HEAD's response is read by its headers again: its "body" is the next bytes.
  const unpaired = converse([["s", ok("early")], ["c", post("x")], ["s", ok("y")]], { responses: true });
  assert.deepEqual(unpaired.responses, ["200 early", "200 y"]);
});

const test = await gatedTest(import.meta.url, ["root", "tcpdump"]);

test("HTTP: HEAD then POST on one keep-alive connection, Deno client and server on loopback, tcpdump", async () => {
  const port = 18_000 + Math.floor(Math.random() * 1000);
  const dir = await Deno.makeTempDir();
  const file = `${dir}/head.pcap`;
  const audio = new Uint8Array(32_000).fill(0x7f);
  const ac = new AbortController();
  const server = Deno.serve(
    { port, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    async (req) => {
      if (req.method === "POST") {
        const n = (await req.arrayBuffer()).byteLength;
        return new Response(JSON.stringify({ bytes: n }), {
          headers: { "content-type": "application/json" },
        });
      }
      return new Response(audio, { headers: { "content-type": "audio/basic" } });
    },
  );
  const client = Deno.createHttpClient({ http2: false, poolMaxIdlePerHost: 1 });
  try {
    const td = await startTcpdump(file, `tcp port ${port}`);
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 3; i++) {
      const h = await fetch(`${url}/audio`, { method: "HEAD", client });
      assert.equal(h.headers.get("content-length"), "32000");
      await h.body?.cancel();
      const p = await fetch(`${url}/asr`, { method: "POST", body: new Uint8Array(1600).fill(i), client });
      assert.deepEqual(await p.json(), { bytes: 1600 });
    }
    client.close();
    await td.stop();
  } finally {
    ac.abort();
    await server.finished;
  }
  const { frames } = parseFrames(await Deno.readFile(file));
  await Deno.remove(dir, { recursive: true });
  const src = new PacketSource({
    taps: [rtpTap({ protocol: "http", ports: [port], query: "m/asr" })],
    node: "n",
  });
  const rows = [...frames.flatMap((f) => src.push(f)), ...src.finish()];
  assert.equal(rows.length, 3, "every POST body");
  // Before: http_bad_message 1 and the first two POSTs' responses taken for the first HEAD's body.
  assert.deepEqual(src.skipReport(), { http_response: 3 });
});
