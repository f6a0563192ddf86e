/// <reference lib="dom" />
/**
 * The web UI over JetStream with real parts: a nats-server, sensor processes (`main.ts run --capture`, one per
 * node of the demo captures, at --speed 10) and `deno task ui` with nats.url, watched in headless Chromium.
 *
 * The demo captures are cut at 15 s of capture time. The first part is published, then the UI starts: its
 * history (`--since 1h`) must hold every stored record, hops included (relay → asr), equal to what `replay
 * --format records` prints. With the waterfall open, the second part is published: the page must gain rows without a
 * reload (server-sent events), and end with every record, its waterfall cells equal to the medians of replay's
 * records; no console errors, no request off the page's origin.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { launchChromium, watchPage } from "./support/browser.ts";
import { NatsServer } from "./support/nats_server.ts";
import { killAll, type SensorProcess, writeSensorConfig } from "./support/sensor_process.ts";
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
} from "./support/ui_jetstream.ts";
import type { Analyzed } from "./support/sensor_process.ts";
import { quantile } from "../report/summary.ts";
import { gatedTest } from "./support/tools.ts";

const test = await gatedTest(import.meta.url, ["nats-server", "chromium"]);

/** Where the captures are cut: 15 s after the demo's first call starts. */
const CUT_NS = 1_763_910_015_000_000_000n;
const STAGES = ["relay", "asr"];

/** Per interval id, per stage: the median latency from the source in ms ("" when not seen), as the page shows. */
function expectedWaterfall(recs: Analyzed): Record<string, Record<string, string>> {
  const ids = new Set<string>();
  for (const s of recs.signatures) if (s.ids["interval_id"]) ids.add(s.ids["interval_id"]);
  for (const m of recs.matches) if (m.ids["interval_id"]) ids.add(m.ids["interval_id"]);
  const out: Record<string, Record<string, string>> = {};
  for (const id of ids) {
    out[id] = {};
    for (const stage of STAGES) {
      const v = recs.matches.filter((m) => m.ids["interval_id"] === id && m.stage === stage).map((m) =>
        m.latency_s
      ).sort((a, b) => a - b);
      out[id][stage] = v.length === 0 ? "" : String(quantile(v, 0.5) * 1000);
    }
  }
  return out;
}

test({
  name:
    "web UI over nats-server with sensor processes: history equals replay, live tail adds rows in Chromium",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-ui-js-" });
    const sensors: SensorProcess[] = [];
    let nats: NatsServer | undefined;
    let ui: UiProcess | undefined;
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      const parts = await splitCaptures(dir, CUT_NS);
      nats = await NatsServer.start();
      const configs: string[] = [];
      for (const node of DEMO_NODES) {
        configs.push(await writeSensorConfig({ base: DEMO_CONFIG, dir, node, natsUrl: nats.url }));
      }
      // The UI's config: the demo's (stage paths: asr after relay) with the server's URL.
      const uiConfig = await writeSensorConfig({ base: DEMO_CONFIG, dir, node: "viewer", natsUrl: nats.url });

      await publishWithSensors(configs, parts.first, 10, sensors);
      const before = await replayStored(uiConfig);
      ok(before.matches.some((m) => m.hop?.from_stage === "relay"), "relay → asr hops stored before the UI");

      ui = await startUiTask(uiConfig);
      // History: every stored record, hops included, as replay prints it.
      const history = await uiRecords(ui.url);
      deepEqual(compareUiToReplay(history, before), [], "the UI's history is replay's records");

      browser = await launchChromium();
      const origin = new URL(ui.url).origin;
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const { problems, foreign } = watchPage(page, origin);
      await page.goto(`${ui.url}#/waterfall`);
      await page.waitForSelector("[data-interval-id] [data-stage]");
      const rowsBefore = await page.$$eval(
        "[data-interval-id]",
        (els) => els.map((e) => e.getAttribute("data-interval-id")!),
      );
      deepEqual(
        rowsBefore.sort(),
        [...history.intervals].sort(),
        "the waterfall shows the history's intervals",
      );
      // A reload would lose this mark.
      await page.evaluate(() => {
        (globalThis as unknown as { fsmpxMark: number }).fsmpxMark = 42;
      });

      // Live: the rest of the captures is published while the page is open.
      const grew = page.waitForFunction(
        (n) => document.querySelectorAll("[data-interval-id]").length > n,
        rowsBefore.length,
        { timeout: 0 },
      );
      let rowsAdded = false;
      void grew.then(() => rowsAdded = true, () => {});
      await publishWithSensors(configs, parts.second, 10, sensors);
      // At most 30 s more once every sensor has published and left (a bound on a failure, not a timed assert).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([grew, new Promise((r) => timer = setTimeout(r, 30_000))]);
      clearTimeout(timer);
      ok(rowsAdded, "the waterfall gained rows while the page stayed open");
      const all = await replayStored(uiConfig);
      ok(all.matches.length > before.matches.length, "the second part added matches");
      const want = expectedWaterfall(all);
      ok(Object.keys(want).length > rowsBefore.length, "the second part added intervals");

      // The page converges on every record (it re-reads its aggregates on each update event), without a reload.
      await page.waitForFunction(
        (w) => {
          const rows = [...document.querySelectorAll("[data-interval-id]")];
          if (rows.length !== Object.keys(w).length) return false;
          return rows.every((r) => {
            const cells = w[r.getAttribute("data-interval-id")!];
            return cells !== undefined &&
              [...r.querySelectorAll("[data-stage]")].every((c) =>
                cells[c.getAttribute("data-stage")!] === c.getAttribute("data-latency-ms")
              );
          });
        },
        want,
        { timeout: 60_000 },
      );
      equal(
        await page.evaluate(() => (globalThis as unknown as { fsmpxMark?: number }).fsmpxMark),
        42,
        "no reload",
      );
      const info = await page.textContent("#info");
      equal(info, `${all.signatures.length} signatures · ${all.matches.length} matches`);

      // The overview, per stage: the matches and the median of replay's records.
      await page.goto(`${ui.url}#/overview`);
      await page.waitForSelector("tr[data-stage][data-p50-ms]");
      const stages = await page.$$eval(
        "tr[data-stage][data-p50-ms]",
        (els) =>
          els.map((
            e,
          ) => [e.getAttribute("data-stage"), e.getAttribute("data-matches"), e.getAttribute("data-p50-ms")]),
      );
      deepEqual(
        stages,
        STAGES.map((s) => {
          const v = all.matches.filter((m) => m.stage === s).map((m) => m.latency_s).sort((a, b) => a - b);
          return [s, String(v.length), String(quantile(v, 0.5) * 1000)];
        }),
      );
      await page.waitForTimeout(200); // late console errors, if any, arrive before the assertions below
      equal(problems.join("\n"), "", "no console errors or warnings");
      equal(foreign.join("\n"), "", "no request leaves the page's origin");

      // Everything the UI holds now (history + tail) is what replay prints, hops included.
      deepEqual(compareUiToReplay(await uiRecords(ui.url), all), [], "the UI's records are replay's");
      ok(all.matches.filter((m) => m.hop?.from_stage === "relay").length > 0, "relay → asr hops");
      equal(await ui.stop(), 0, ui.output());
      ui = undefined;
    } finally {
      await browser?.close();
      await ui?.stop();
      await killAll(sensors);
      await nats?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
