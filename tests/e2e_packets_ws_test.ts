/**
 * WebSocket packet capture end to end, Deno's own WebSocket on every side on loopback under a real tcpdump: a
 * telephony client sends Twilio-style frames (a `start` event with the call's ids, then 20 ms μ-law `media`
 * messages, masked as clients must), a voice bot forwards the audio after a fixed delay as binary PCM16 messages
 * of 100 ms on a second connection to an ASR server; the bot sends text marks back to the client and the ASR
 * sends text transcripts back to the bot. The real `analyze` command reads the pcap with `packets:` taps.
 *
 * Truth: the bot logs which source samples each forwarded message carries; a message's time is the capture time
 * of the packet that completed it, read from the pcap by an independent parser (tests/support/ws_scenario.ts).
 */
import assert from "node:assert/strict";
import { runWsScenario, wsConfigYaml, wsTruth } from "./support/ws_scenario.ts";
import { runAnalyze } from "./support/analyze_cli.ts";
import { requireTools, toolGate } from "./support/tools.ts";

const gate = await toolGate(import.meta.url, ["root", "tcpdump"]);
const TALKER = new URL("../fixtures/demo_packets/talker_b.ul", import.meta.url).pathname;

Deno.test({
  name:
    "packets e2e: Twilio-style WebSocket → voice bot → binary PCM16 to ASR, captured by tcpdump, analyzed",
  ignore: gate.ignore,
  fn: async (t) => {
    requireTools(gate);
    const dir = await Deno.makeTempDir({ prefix: "fsmpx_e2e_ws_" });
    try {
      const sc = await runWsScenario({ dir, speech: TALKER });
      assert.equal(sc.kernelDrops, 0, "tcpdump lost packets: the truth would be incomplete");
      const truth = wsTruth(await Deno.readFile(sc.pcap), sc);
      const config = `${dir}/config.yaml`;
      await Deno.writeTextFile(config, wsConfigYaml(sc));
      const run = await runAnalyze(config, [sc.pcap], dir);
      const sigs = run.signatures;
      const asr = run.matches.filter((m) => m.stage === "asr");
      const figures: Record<string, unknown> = { signatures: sigs.length, media: sc.media };

      await t.step("the capture holds every message each side logged", () => {
        assert.equal(truth.media.length, sc.media);
        assert.equal(truth.forwarded.length, sc.chunks.length);
        assert.equal(truth.marks.length, sc.marks);
        assert.equal(truth.transcripts.length, sc.transcripts);
        assert.ok(sc.marks > 0 && sc.transcripts > 0);
      });

      await t.step("signatures carry the callSid of the start event (sticky ids)", () => {
        assert.ok(sigs.length >= 8, `signatures: ${sigs.length}`);
        for (const s of sigs) {
          assert.equal(s.ids["call_sid"], sc.callSid);
          assert.equal(s.pod, `127.0.0.1:${sc.botPort}`);
        }
        for (const m of asr) assert.equal(m.ids["call_sid"], sc.callSid);
      });

      await t.step("recall and exact latencies at the ASR", () => {
        const recall = new Set(asr.map((m) => m.signature_id)).size / sigs.length;
        const errors: number[] = [];
        let unknown = 0;
        for (const m of asr) {
          // Only the bot → ASR direction carries audio; the ASR's text replies are another stream.
          assert.match(m.target.stream, new RegExp(`>127\\.0\\.0\\.1:${sc.asrPort}$`));
          const want = truth.latency(m.source.time_ns, m.source.offset_ms);
          if (want === undefined) {
            // Two media messages completed by one packet, on both sides of a chunk boundary: ambiguous.
            assert.ok(
              (truth.mediaByTime.get(m.source.time_ns)?.length ?? 0) > 1,
              `no truth for ${m.signature_id}`,
            );
            unknown++;
            continue;
          }
          errors.push(Math.abs(m.latency_s - want) * 1000);
          assert.ok(
            m.latency_s * 1000 >= sc.delayMs,
            `latency ${m.latency_s * 1000} ms < delay ${sc.delayMs} (want ${
              want * 1000
            }) ${m.signature_id} ber ${m.ber}`,
          );
        }
        figures.asr = { matches: asr.length, recall, maxErrorMs: Math.max(0, ...errors), ambiguous: unknown };
        assert.ok(recall >= 0.95, `recall ${recall}`);
        assert.ok(errors.length >= 0.8 * asr.length, `${unknown} of ${asr.length} matches without truth`);
        const bad = errors.filter((e) => e > 1);
        assert.equal(bad.length, 0, `${bad.length} latencies off by more than 1 ms: ${bad}`);
      });

      await t.step("text replies are not decoded as audio", () => {
        // The ASR's transcripts are text messages on a binary PCM16 tap: each must be skipped and counted (as the
        // bot's marks are on the Twilio tap, where they lack media.payload), never decoded as PCM16. Today an
        // even-length one decodes silently and an odd-length one fails as odd_byte_count.
        const asrErrors = run.summary.decode_errors.filter((e) => e.stream === "asr");
        figures.asrDecodeErrors = asrErrors;
        assert.ok(
          asrErrors.every((e) => e.reason !== "odd_byte_count"),
          `text messages on the ASR tap were decoded as PCM16: ${JSON.stringify(asrErrors)}`,
        );
        assert.equal(
          asrErrors.reduce((n, e) => n + e.count, 0),
          sc.transcripts,
          "every transcript counted as not audio",
        );
      });

      console.log(`e2e_packets_ws: ${JSON.stringify(figures)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
