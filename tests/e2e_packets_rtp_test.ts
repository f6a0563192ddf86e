/**
 * Packet capture end to end with real parts on loopback: ffmpeg sends μ-law RTP speech (a sender no one here
 * wrote), a scheduled relay (tests/support/rtp_relay.ts) transcodes and re-chunks it into three legs (L16/16000
 * in 40 ms, clean; A-law in 60 ms with 2% loss and 3% neighbour swaps; A-law in 20 ms), ffmpeg's libopus relay
 * re-encodes the first leg, ffmpeg `-c:a copy` relays the third, a second ffmpeg sends unrelated speech on a
 * negative port, and a real `tcpdump -i lo` captures it all.
 * Then the real `analyze` command reads the pcap with `packets:` taps.
 *
 * Truth: the relay logs which source samples each of its packets carries; the true latency of an instant is the
 * capture time of the relay packet carrying it minus that of the talker packet carrying it, both from the pcap.
 * ffmpeg's Opus hop is measured (its truth is unknown): it must be positive, bounded and steady. The copy relay's
 * truth comes from identical payload bytes: its n-th packet is a copy of its input's n-th.
 */
import assert from "node:assert/strict";
import { copyTruth, rtpConfigYaml, rtpTruth, runRtpScenario } from "./support/rtp_relay.ts";
import { rowsOfUnmatchedStage, runAnalyze } from "./support/analyze_cli.ts";
import { requireTools, toolGate } from "./support/tools.ts";

const gate = await toolGate(import.meta.url, ["root", "tcpdump", "ffmpeg with libopus"]);
const TALKER = new URL("../fixtures/demo_packets/talker_a.ul", import.meta.url).pathname;
const NEGATIVE = new URL("../fixtures/audio_fp/other_8k.ul", import.meta.url).pathname;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

Deno.test({
  name:
    "packets e2e: ffmpeg RTP → scheduled relay (L16, lossy A-law, A-law) → ffmpeg Opus and copy relays, tcpdump, analyze",
  ignore: gate.ignore,
  fn: async (t) => {
    requireTools(gate);
    const dir = await Deno.makeTempDir({ prefix: "fsmpx_e2e_rtp_" });
    try {
      const sc = await runRtpScenario({
        dir,
        speech: TALKER,
        negative: NEGATIVE,
        opus: true,
        copyFrom: "copy_in",
      });
      assert.equal(sc.kernelDrops, 0, "tcpdump lost packets: the truth would be incomplete");
      assert.ok(sc.opusRtpmap, "ffmpeg printed the Opus SDP");
      const bytes = await Deno.readFile(sc.pcap);
      const config = `${dir}/config.yaml`;
      await Deno.writeTextFile(config, rtpConfigYaml(sc));
      const run = await runAnalyze(config, [sc.pcap], dir);
      const sigs = run.signatures;
      const byStage = (stage: string) => run.matches.filter((m) => m.stage === stage);
      const recall = (stage: string) => new Set(byStage(stage).map((m) => m.signature_id)).size / sigs.length;
      const figures: Record<string, unknown> = { signatures: sigs.length };

      await t.step("the capture holds every packet the relay logged as sent", () => {
        for (const leg of sc.legs) {
          const truth = rtpTruth(bytes, sc, leg);
          const sent = leg.chunks.filter((c) => c.fate !== "dropped");
          assert.equal(truth.relayBySeq.size, sent.length, `${leg.name}: captured vs sent`);
          for (const c of sent) assert.ok(truth.relayBySeq.has(c.seq), `${leg.name}: seq ${c.seq} captured`);
        }
        const lossy = sc.legs.find((l) => l.name === "lossy")!;
        figures.lossy = {
          packets: lossy.chunks.length,
          dropped: lossy.chunks.filter((c) => c.fate === "dropped").length,
          swapped: lossy.chunks.filter((c) => c.fate === "swapped").length,
        };
        assert.ok(
          lossy.chunks.some((c) => c.fate === "dropped") && lossy.chunks.some((c) => c.fate === "swapped"),
        );
      });

      await t.step("signatures come from the talker's RTP stream, named by address", () => {
        assert.ok(sigs.length >= 12, `signatures: ${sigs.length}`);
        for (const s of sigs) {
          assert.equal(s.pod, `127.0.0.1:${sc.ports.source}`);
          assert.match(s.stream ?? "", new RegExp(`>127\\.0\\.0\\.1:${sc.ports.source} ssrc=0x`));
        }
      });

      for (const leg of sc.legs) {
        await t.step(
          `stage ${leg.name} (${leg.codec}, ${leg.chunkMs} ms): recall and exact latencies`,
          () => {
            const truth = rtpTruth(bytes, sc, leg);
            const ms = byStage(leg.name);
            const errors: number[] = [];
            let inLostPacket = 0;
            for (const m of ms) {
              assert.equal(m.target.pod, `127.0.0.1:${leg.port}`);
              const want = truth.latency(m.source.time_ns, m.source.offset_ms);
              if (want === undefined) {
                // The instant's own relay packet was dropped: there is no right answer to compare with.
                const pos = truth.position(m.source.time_ns, m.source.offset_ms);
                assert.ok(pos !== undefined, `source time ${m.source.time_ns} is a talker packet`);
                assert.equal(truth.chunkAt(pos)?.fate, "dropped", `no truth for ${m.signature_id}`);
                inLostPacket++;
                continue;
              }
              errors.push(Math.abs(m.latency_s - want) * 1000);
            }
            figures[leg.name] = {
              ...(figures[leg.name] as object),
              matches: ms.length,
              recall: recall(leg.name),
              maxErrorMs: Math.max(0, ...errors),
              inLostPacket,
              p50Ms: ms.length ? quantile(ms.map((m) => m.latency_s * 1000), 0.5) : undefined,
            };
            const bad = errors.filter((e) => e > 1);
            assert.equal(bad.length, 0, `${leg.name}: ${bad.length} latencies off by more than 1 ms: ${bad}`);
            assert.ok(
              recall(leg.name) >= (leg.dropRate > 0 ? 0.9 : 0.95),
              `${leg.name} recall ${recall(leg.name)}`,
            );
            // Every latency is at least the relay's fixed delay (the packet can only leave after it).
            for (const m of ms) assert.ok(m.latency_s * 1000 >= leg.delayMs, `${m.latency_s}`);
          },
        );
      }

      await t.step(
        "a reordered packet takes its place: no audio of the lossy leg is thrown away as overlap",
        () => {
          const overlaps = run.summary.decode_errors.filter((e) =>
            e.stream === "lossy" && e.reason === "media_overlap"
          );
          assert.deepEqual(overlaps, [], "swapped packets must be put back in RTP order, not dropped");
        },
      );

      await t.step("ffmpeg's Opus hop: found, after the relay, bounded and steady", () => {
        const relay = new Map(byStage("relay").map((m) => [m.signature_id, m.latency_s]));
        const opus = byStage("opus");
        assert.ok(recall("opus") >= 0.9, `opus recall ${recall("opus")}`);
        const hops: number[] = [];
        for (const m of opus) {
          const r = relay.get(m.signature_id);
          if (r === undefined) continue;
          assert.ok(m.latency_s > r, `opus ${m.latency_s} after relay ${r}`);
          hops.push((m.latency_s - r) * 1000);
        }
        assert.ok(hops.length >= 0.9 * opus.length);
        for (const h of hops) assert.ok(h > 0 && h < 500, `hop ${h} ms`);
        const iqr = quantile(hops, 0.75) - quantile(hops, 0.25);
        figures.opus = {
          matches: opus.length,
          recall: recall("opus"),
          hopP50Ms: quantile(hops, 0.5),
          hopMinMs: Math.min(...hops),
          hopMaxMs: Math.max(...hops),
          hopIqrMs: iqr,
        };
        // The interquartile range, not the full spread: a scheduling hiccup of the shared machine may delay one
        // ffmpeg packet; a wrong alignment would move many by a packet (20-40 ms).
        assert.ok(iqr < 5, `Opus hop interquartile range ${iqr} ms`);
      });

      await t.step(
        "ffmpeg's copy relay: every packet copied, latencies exact by identical payload bytes",
        () => {
          const leg = sc.legs.find((l) => l.name === "copy_in")!;
          const truth = copyTruth(bytes, sc, leg);
          assert.ok(truth.output.length > 0);
          assert.equal(truth.mismatched, 0, "ffmpeg -c:a copy sent the same payloads, one per packet");
          // ffmpeg may lose the first packet while it opens its input; it copies every other one.
          assert.ok(truth.uncopied <= 2, `${truth.uncopied} input packets not copied`);
          const ms = byStage("copy");
          const errors = ms.map((m) => {
            const want = truth.latency(m.source.time_ns, m.source.offset_ms);
            assert.ok(want !== undefined, `truth for ${m.signature_id}`);
            return Math.abs(m.latency_s - want) * 1000;
          });
          figures.copy = {
            matches: ms.length,
            recall: recall("copy"),
            maxErrorMs: Math.max(0, ...errors),
            uncopied: truth.uncopied,
            p50Ms: ms.length ? quantile(ms.map((m) => m.latency_s * 1000), 0.5) : undefined,
          };
          assert.ok(recall("copy") >= 0.95, `copy recall ${recall("copy")}`);
          const bad = errors.filter((e) => e > 1);
          assert.equal(bad.length, 0, `copy: ${bad.length} latencies off by more than 1 ms: ${bad}`);
          // The copy comes after its input: every copy latency exceeds the copy_in leg's for the same signature.
          const input = new Map(byStage("copy_in").map((m) => [m.signature_id, m.latency_s]));
          for (const m of ms) assert.ok(m.latency_s >= (input.get(m.signature_id) ?? 0));
        },
      );

      await t.step("nothing matches the negative stream, whose audio was read", () => {
        assert.equal(byStage("negative").length, 0);
        for (const m of run.matches) assert.notEqual(m.target.pod, `127.0.0.1:${sc.ports.negative}`);
        // Its packets were read and decoded (so "no match" means something): a second of 20 ms packets at least.
        const rows = rowsOfUnmatchedStage(run, "rtp_call", "negative");
        assert.ok(rows >= 50, `the negative stage read ${rows} rows`);
        assert.deepEqual(run.summary.decode_errors.filter((e) => e.stream === "negative"), []);
      });
      console.log(`e2e_packets_rtp: ${JSON.stringify(figures)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
