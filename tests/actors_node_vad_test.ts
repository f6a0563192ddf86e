/** A node loads the WebRTC VAD's WebAssembly (~6 MB) only when a measurement asks for it (actors/node.ts). */
import { equal } from "node:assert/strict";
import { SensorNode } from "../actors/node.ts";
import { webRtcVadReady } from "../audio/detect/vad.ts";
import { InProcessBus } from "../bus/in_process.ts";
import type { Config } from "../config/schema.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { e2eConfig } from "./support/actor_fixtures.ts";

async function startAndStop(config: Config): Promise<void> {
  const node = await SensorNode.start({
    config,
    node: "node-b",
    bus: new InProcessBus(),
    metrics: new FsmMetrics(),
    mode: "replay",
  });
  await node.shutdown(30_000);
}

Deno.test("node: the WebRTC VAD is loaded only for a config whose measurements use it", async () => {
  const config = await e2eConfig();
  equal(config.measurements.some((m) => m.signature_rules.audio_criteria.vad_mode === "webrtc"), false);
  await startAndStop(config);
  equal(webRtcVadReady(), false, "energy VAD only: not loaded");
  const webrtc: Config = {
    ...config,
    measurements: config.measurements.map((m) => ({
      ...m,
      signature_rules: {
        ...m.signature_rules,
        audio_criteria: { ...m.signature_rules.audio_criteria, vad_mode: "webrtc" },
      },
    })),
  };
  await startAndStop(webrtc);
  equal(webRtcVadReady(), true);
});
