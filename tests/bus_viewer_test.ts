/**
 * The read-only NATS user of k8s/nats/nats.conf (`fsm-px-viewer`) is enough for `replay` and `ui`: a real
 * nats-server given that file's authorization block, sensor processes publishing the demo captures as the sensor
 * user (cut in two at 15 s of capture time), and as the viewer:
 * - `replay --format records` prints what the admin (no restrictions) reads, hops included, also with
 *   `--measurement` (one consumer per filter subject);
 * - `deno task ui` holds, after the first part, the stored history, and after the second part (its live tail,
 *   across a restart of nats-server), every record replay prints.
 * No process logs a permissions violation.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { natsConfAuthorization, NatsServer } from "./support/nats_server.ts";
import { killAll, ROOT, type SensorProcess, sleep, writeSensorConfig } from "./support/sensor_process.ts";
import {
  compareUiToReplay,
  DEMO_CONFIG,
  DEMO_NODES,
  publishWithSensors,
  replayStored,
  splitCaptures,
  startUiTask,
  type UiProcess,
  uiRecords,
  withNatsUser,
} from "./support/ui_jetstream.ts";
import { gatedTest } from "./support/tools.ts";

const test = await gatedTest(import.meta.url, ["nats-server"]);

const PW = {
  NATS_USER: "fsm-px",
  NATS_PASSWORD: "s-pw",
  NATS_VIEWER_PASSWORD: "v-pw",
  NATS_ADMIN_PASSWORD: "a-pw",
};
const CUT_NS = 1_763_910_015_000_000_000n;

const authorization = () => natsConfAuthorization(ROOT, PW);

test({
  name: "nats.conf viewer user: replay and ui (history and live tail) read everything, hops included",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-viewer-" });
    const sensors: SensorProcess[] = [];
    let nats: NatsServer | undefined;
    let ui: UiProcess | undefined;
    try {
      const parts = await splitCaptures(dir, CUT_NS);
      nats = await NatsServer.start({ configLines: await authorization() });
      const configs: string[] = [];
      for (const node of DEMO_NODES) {
        const plain = await writeSensorConfig({ base: DEMO_CONFIG, dir, node, natsUrl: nats.url });
        configs.push(await withNatsUser(plain, PW.NATS_USER, PW.NATS_PASSWORD, `${dir}/${node}.sensor.yaml`));
      }
      const base = await writeSensorConfig({ base: DEMO_CONFIG, dir, node: "reader", natsUrl: nats.url });
      const viewer = await withNatsUser(base, "fsm-px-viewer", PW.NATS_VIEWER_PASSWORD, `${dir}/viewer.yaml`);
      const admin = await withNatsUser(base, "fsm-px-admin", PW.NATS_ADMIN_PASSWORD, `${dir}/admin.yaml`);

      const published = await publishWithSensors(configs, parts.first, 10, sensors);
      const before = await replayStored(viewer);
      deepEqual(before, await replayStored(admin), "the viewer's replay is the admin's");
      ok(before.matches.some((m) => m.hop?.from_stage === "relay"), "relay → asr hops");

      ui = await startUiTask(viewer);
      deepEqual(compareUiToReplay(await uiRecords(ui.url), before), [], "the viewer's UI history");

      // A server restart drops the UI's consumer: the viewer must be allowed to make a new one.
      await nats.restart();
      published.push(...await publishWithSensors(configs, parts.second, 10, sensors));
      const all = await replayStored(viewer);
      ok(all.matches.length > before.matches.length, "the second part added matches");
      deepEqual(all, await replayStored(admin), "the viewer's replay is the admin's");
      deepEqual(
        all,
        await replayStored(viewer, ["--measurement", "call_audio"]),
        "one measurement's consumers",
      );

      // The live tail delivers the second part (polled: the UI reads it as the sensors publish).
      let counts = { signatures: -1, matches: -1 };
      for (let i = 0; i < 600; i++) {
        counts = (await uiRecords(ui.url)).counts;
        if (counts.signatures === all.signatures.length && counts.matches === all.matches.length) break;
        await sleep(100);
      }
      deepEqual(compareUiToReplay(await uiRecords(ui.url), all), [], "the viewer's UI after its live tail");
      equal(await ui.stop(), 0, ui.output());
      const logs = [ui.output(), ...published.map((s) => s.stderr)].join("\n");
      ui = undefined;
      ok(!/permission/i.test(logs), `a permissions violation was logged:\n${logs}`);
    } finally {
      await ui?.stop();
      await killAll(sensors);
      await nats?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
