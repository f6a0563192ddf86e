/**
 * The bundled packet demo (fixtures/demo_packets/, recorded by its record.sh with real ffmpeg, tcpdump and Deno
 * WebSocket peers) analyzed by the real `analyze` command and compared with its truth.json: exact latencies at the
 * scheduled relay and the ASR, ffmpeg's Opus hop positive and steady, no match on the other call, the callSid on
 * every WebSocket record. Needs no root and no tools: it runs everywhere. Also runs `demo --packets`.
 */
import assert from "node:assert/strict";
import { type CompactLeg, expandLeg, type RtpScenario, rtpTruth } from "./support/rtp_relay.ts";
import { type WsScenario, wsTruth } from "./support/ws_scenario.ts";
import { rowsOfUnmatchedStage, runAnalyze } from "./support/analyze_cli.ts";

const DIR = new URL("../fixtures/demo_packets/", import.meta.url).pathname;

interface DemoTruth {
  version: number;
  rtp: Omit<RtpScenario, "legs"> & { legs: CompactLeg[] };
  ws: WsScenario;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

Deno.test("packet demo fixtures: analyze matches truth.json (RTP relay exact, Opus hop steady, WebSocket exact)", async (t) => {
  const truth = JSON.parse(await Deno.readTextFile(`${DIR}truth.json`)) as DemoTruth;
  assert.equal(truth.version, 1);
  const rtp: RtpScenario = { ...truth.rtp, legs: truth.rtp.legs.map(expandLeg) };
  const rtpPcap = `${DIR}${truth.rtp.pcap}`;
  const wsPcap = `${DIR}${truth.ws.pcap}`;
  let total = 0;
  for await (const e of Deno.readDir(DIR)) if (e.isFile) total += (await Deno.stat(`${DIR}${e.name}`)).size;
  assert.ok(total < 1_500_000, `the bundle is ${total} bytes`);

  const out = await Deno.makeTempDir({ prefix: "fsmpx_demo_packets_" });
  try {
    const run = await runAnalyze(`${DIR}config.yaml`, [rtpPcap, wsPcap], out);
    const of = (measurement: string) => ({
      sigs: run.signatures.filter((s) => s.measurement === measurement),
      matches: (stage: string) =>
        run.matches.filter((m) => m.measurement === measurement && m.stage === stage),
    });

    await t.step("rtp_call: the relay's latencies are exact, recall ≥ 95%", async () => {
      const { sigs, matches } = of("rtp_call");
      assert.ok(sigs.length >= 12, `signatures ${sigs.length}`);
      const leg = rtp.legs[0]!;
      const tr = rtpTruth(await Deno.readFile(rtpPcap), rtp, leg);
      const ms = matches(leg.name);
      assert.ok(
        new Set(ms.map((m) => m.signature_id)).size >= 0.95 * sigs.length,
        `relay matches ${ms.length}`,
      );
      for (const m of ms) {
        const want = tr.latency(m.source.time_ns, m.source.offset_ms);
        assert.ok(want !== undefined, `truth for ${m.signature_id}`);
        assert.ok(
          Math.abs(m.latency_s - want) <= 0.001,
          `${m.signature_id}: ${m.latency_s} s, truth ${want} s`,
        );
      }
    });

    await t.step("rtp_call: ffmpeg's Opus hop is after the relay, bounded and steady", () => {
      const { sigs, matches } = of("rtp_call");
      const relay = new Map(matches("relay").map((m) => [m.signature_id, m.latency_s]));
      const opus = matches("opus");
      assert.ok(
        new Set(opus.map((m) => m.signature_id)).size >= 0.9 * sigs.length,
        `opus matches ${opus.length}`,
      );
      const hops = opus.filter((m) => relay.has(m.signature_id)).map((m) =>
        (m.latency_s - relay.get(m.signature_id)!) * 1000
      );
      for (const h of hops) assert.ok(h > 0 && h < 500, `hop ${h} ms`);
      assert.ok(quantile(hops, 0.75) - quantile(hops, 0.25) < 5, `hops ${hops}`);
    });

    await t.step("rtp_call: nothing matches the other call, whose audio was read", () => {
      assert.equal(of("rtp_call").matches("other_call").length, 0);
      // Its packets were read and decoded (so "no match" means something): a second of 20 ms packets at least.
      const rows = rowsOfUnmatchedStage(run, "rtp_call", "other_call");
      assert.ok(rows >= 50, `the other call's stage read ${rows} rows`);
      assert.deepEqual(run.summary.decode_errors.filter((e) => e.stream === "other_call"), []);
    });

    await t.step("ws_call: exact latencies at the ASR, callSid on every record", async () => {
      const { sigs, matches } = of("ws_call");
      assert.ok(sigs.length >= 8, `signatures ${sigs.length}`);
      for (const r of [...sigs, ...matches("asr")]) assert.equal(r.ids["call_sid"], truth.ws.callSid);
      const tr = wsTruth(await Deno.readFile(wsPcap), truth.ws);
      const ms = matches("asr");
      assert.ok(
        new Set(ms.map((m) => m.signature_id)).size >= 0.95 * sigs.length,
        `asr matches ${ms.length}`,
      );
      let known = 0;
      for (const m of ms) {
        const want = tr.latency(m.source.time_ns, m.source.offset_ms);
        if (want === undefined) continue; // two media messages in one packet across a chunk boundary
        known++;
        assert.ok(
          Math.abs(m.latency_s - want) <= 0.001,
          `${m.signature_id}: ${m.latency_s} s, truth ${want} s`,
        );
      }
      assert.ok(known >= 0.8 * ms.length);
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("demo --packets replays the bundled pcaps and prints both measurements", async () => {
  const o = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../main.ts", import.meta.url).pathname,
      "demo",
      "--packets",
      "--speed",
      "50",
      "--exit",
      "--listen",
      "127.0.0.1:0",
      "--ui",
      "127.0.0.1:0",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { FSMPX_LOG_LEVEL: "warn" },
  }).output();
  const text = new TextDecoder().decode(o.stdout);
  assert.ok(o.success, new TextDecoder().decode(o.stderr));
  assert.match(text, /2 nodes \(node-rtp, node-ws\)/);
  assert.match(text, /measurement rtp_call: \d+ signatures/);
  assert.match(text, /measurement ws_call: \d+ signatures/);
  assert.match(text, /ws_call\/asr .* CA[0-9a-f]+/);
});
