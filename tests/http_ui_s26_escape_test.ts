/// <reference lib="dom" />
/**
 * Record fields are text in the page, never markup: a signature id from a records file (any string: only ids
 * decoded from JetStream are hex) is shown as written on the Interval / call page, and its link opens its
 * Signature page.
 * @module
 */
import { equal, ok } from "node:assert/strict";
import { launchChromium, watchPage } from "./support/browser.ts";
import { RecordStore } from "../http/ui/store.ts";
import { startUiServer } from "../http/ui_server.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { gatedTest } from "./support/tools.ts";

const chromiumTest = await gatedTest(import.meta.url, ["chromium"]);

const ID = `<b id="injected">5%</b>`;
const T0 = 1_763_910_000_000_000_000n;

chromiumTest({
  name: "web UI: a signature id with markup and '%' is shown as text on the interval page and links to it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const store = new RecordStore({ m: { asr: "source" } }, { m: ["asr"] });
    const sig: SignatureRecord = {
      kind: "signature",
      measurement: "m",
      signature_id: ID,
      node: "a",
      pod: "voice/telephony-0",
      stream: "call-1",
      time_ns: T0.toString(),
      offset_ms: 0,
      ids: { interval_id: "iv-1" },
      bytes: 600,
    };
    const match: MatchRecord = {
      kind: "match",
      measurement: "m",
      stage: "asr",
      signature_id: ID,
      ids: { interval_id: "iv-1" },
      source: { node: "a", pod: "voice/telephony-0", stream: "call-1", time_ns: T0.toString(), offset_ms: 0 },
      target: {
        node: "b",
        pod: "voice/asr-0",
        stream: "asr-1",
        time_ns: (T0 + 600_000_000n).toString(),
        offset_ms: 0,
      },
      latency_s: 0.6,
      ber: 0.01,
    };
    store.add(sig);
    store.add(match);
    const ui = startUiServer({ listen: "127.0.0.1:0", store, eventIntervalMs: 100 });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const { problems } = watchPage(page, new URL(ui.url).origin);
      await page.goto(`${ui.url}#/interval/iv-1`);
      await page.waitForSelector("a[href^='#/signature/']");
      equal(await page.evaluate(() => document.getElementById("injected") === null), true, "markup injected");
      equal(await page.$eval("a[href^='#/signature/'] code", (e) => e.textContent), ID);
      await page.click("a[href^='#/signature/']");
      await page.waitForSelector("h2 code");
      equal(await page.$eval("h2 code", (e) => e.textContent), ID);
      equal(await page.$$eval("table tbody tr", (rows) => rows.length), 1, "the signature's match");
      ok(problems.length === 0, problems.join("\n"));
    } finally {
      await browser.close();
      await ui.close();
    }
  },
});

chromiumTest({
  name: "web UI: a negative hop (the next stage's clock behind) is shown with its sign, not as +0 or +-",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const store = new RecordStore({ m: { relay: "source", asr: "relay" } }, { m: ["relay", "asr"] });
    const id = "00000000000000a1";
    const tap = (stream: string, ns: bigint) => ({
      node: "b",
      pod: `voice/${stream}-0`,
      stream,
      time_ns: ns.toString(),
      offset_ms: 0,
    });
    const source = tap("call-1", T0);
    store.add({
      kind: "signature",
      measurement: "m",
      signature_id: id,
      node: "a",
      pod: source.pod,
      stream: source.stream,
      time_ns: source.time_ns,
      offset_ms: 0,
      ids: { interval_id: "iv-1" },
      bytes: 600,
    });
    for (const [stage, ms] of [["relay", 300n], ["asr", 288n]] as const) {
      store.add({
        kind: "match",
        measurement: "m",
        stage,
        signature_id: id,
        ids: { interval_id: "iv-1" },
        source,
        target: tap(stage, T0 + ms * 1_000_000n),
        latency_s: Number(ms) / 1000,
        ber: 0.01,
      });
    }
    const ui = startUiServer({ listen: "127.0.0.1:0", store, eventIntervalMs: 100 });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const { problems } = watchPage(page, new URL(ui.url).origin);
      await page.goto(`${ui.url}#/overview`);
      await page.waitForSelector("[data-hop-stage='asr']");
      equal(
        await page.$eval("[data-hop-stage='asr']", (e) => e.getAttribute("title")),
        "relay → asr: -12.0 ms",
      );
      equal(await page.$eval("tr[data-stage='asr'] td:last-child", (e) => e.textContent), "-12.0");
      equal(await page.$eval("tr[data-stage='relay'] td:last-child", (e) => e.textContent), "+300.0");
      await page.goto(`${ui.url}#/waterfall`);
      await page.waitForSelector("[data-interval-id] [data-stage='asr']");
      equal(
        await page.$eval("[data-interval-id] [data-stage='asr']", (e) => e.getAttribute("title")),
        "asr: 288.0 ms from the source, -12.0 ms hop",
      );
      await page.goto(`${ui.url}#/interval/iv-1`);
      await page.waitForSelector("a[href^='#/signature/']");
      ok(
        (await page.textContent("table tbody"))!.includes("288.0 ms (-12.0)"),
        String(await page.textContent("table")),
      );
      await page.goto(`${ui.url}#/signature/${id}`);
      await page.waitForSelector("canvas.bits");
      ok(
        (await page.textContent("table tbody"))!.includes("-12.0 from relay"),
        String(await page.textContent("table")),
      );
      ok(problems.length === 0, problems.join("\n"));
    } finally {
      await browser.close();
      await ui.close();
    }
  },
});
