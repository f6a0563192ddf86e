/// <reference lib="dom" />
/**
 * Session 30's review of the web UI, in headless Chromium over records crafted here:
 * - with two measurements, the one carrying no ids (an RTP call's) first by name, the waterfall showed that one's
 *   (no rows) and offered no way to the other's (`demo --packets`: ws_call's call_sid row was unreachable);
 * - a live update rebuilt the waterfall's controls under a user typing a filter (the text cut off, focus lost);
 * - an interval or call holding every record (an id type whose value every call shares, a long-lived source
 *   stream) sent every signature and match, and the page froze for many seconds.
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { launchChromium, watchPage } from "./support/browser.ts";
import { INTERVAL_CALLS_SHOWN, INTERVAL_SIGNATURES_SHOWN, RecordStore } from "../http/ui/store.ts";
import { startUiServer } from "../http/ui_server.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { gatedTest } from "./support/tools.ts";

const chromiumTest = await gatedTest(import.meta.url, ["chromium"]);

const T0 = 1_763_910_000_000_000_000n;

/** A signature and its match at `stage`, `n` seconds into `stream`, with `ids`. */
function pair(
  measurement: string,
  stage: string,
  n: number,
  stream: string,
  ids: Record<string, string>,
): [SignatureRecord, MatchRecord] {
  const id = `${measurement.length}${n.toString(16)}`.padStart(16, "0");
  const t = T0 + BigInt(n) * 1_000_000_000n;
  const source = { node: "a", pod: "voice/tel-0", stream, time_ns: t.toString(), offset_ms: 0 };
  return [
    { kind: "signature", measurement, signature_id: id, ...source, ids, bytes: 600 },
    {
      kind: "match",
      measurement,
      stage,
      signature_id: id,
      ids,
      source,
      target: {
        node: "b",
        pod: `voice/${stage}-0`,
        stream: `${stage}-1`,
        time_ns: (t + 300_000_000n).toString(),
        offset_ms: 0,
      },
      latency_s: 0.3,
      ber: 0.01,
    },
  ];
}

Deno.test("UI store: the waterfall without a measurement named is the first with rows, and lists them all", () => {
  const store = new RecordStore(
    { rtp_call: { relay: "source" }, ws_call: { asr: "source" } },
    { rtp_call: ["relay"], ws_call: ["asr"] },
  );
  for (const r of pair("rtp_call", "relay", 1, "rtp-1", {})) store.add(r);
  for (const r of pair("ws_call", "asr", 2, "ws-1", { call_sid: "CA1" })) store.add(r);
  const page = store.waterfall({})!;
  equal(page.measurement, "ws_call");
  deepEqual(page.measurements, ["rtp_call", "ws_call"]);
  deepEqual(page.rows.map((r) => r.id), ["CA1"]);
  equal(store.waterfall({ measurement: "rtp_call" })!.total, 0);
});

chromiumTest({
  name: "web UI: the waterfall shows the measurement with rows and lets the user choose another",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const store = new RecordStore(
      { rtp_call: { relay: "source" }, ws_call: { asr: "source" } },
      { rtp_call: ["relay"], ws_call: ["asr"] },
    );
    for (const r of pair("rtp_call", "relay", 1, "rtp-1", {})) store.add(r);
    for (const r of pair("ws_call", "asr", 2, "ws-1", { call_sid: "CA1" })) store.add(r);
    const ui = startUiServer({ listen: "127.0.0.1:0", store, eventIntervalMs: 100 });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const { problems } = watchPage(page, new URL(ui.url).origin);
      await page.goto(`${ui.url}#/waterfall`);
      await page.waitForSelector("[data-interval-id='CA1'] [data-stage='asr']");
      deepEqual(await page.$$eval("#wf-measurement option", (o) => o.map((e) => e.textContent)), [
        "rtp_call",
        "ws_call",
      ]);
      equal(await page.$eval("#wf-measurement", (e) => (e as HTMLSelectElement).value), "ws_call");
      await page.selectOption("#wf-measurement", "rtp_call");
      await page.waitForFunction(() => document.querySelector("#page h2")?.textContent?.includes("rtp_call"));
      equal(await page.$$eval("[data-interval-id]", (e) => e.length), 0);
      await page.selectOption("#wf-measurement", "ws_call");
      await page.waitForSelector("[data-interval-id='CA1']");
      ok(problems.length === 0, problems.join("\n"));
    } finally {
      await browser.close();
      await ui.close();
    }
  },
});

chromiumTest({
  name: "web UI: live updates wait while the user types a waterfall filter, then go on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const store = new RecordStore({ m: { asr: "source" } }, { m: ["asr"] });
    let n = 0;
    const add = () => {
      for (const r of pair("m", "asr", n, "call-1", { interval_id: `iv-${n}` })) store.add(r);
      n++;
    };
    for (let i = 0; i < 5; i++) add();
    const ui = startUiServer({ listen: "127.0.0.1:0", store, eventIntervalMs: 100 });
    // Records keep arriving (a live tail): an update every ~200 ms.
    const timer = setInterval(add, 200);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const { problems } = watchPage(page, new URL(ui.url).origin);
      await page.goto(`${ui.url}#/waterfall`);
      await page.waitForSelector("[data-interval-id]");
      await page.focus("#wf-pod");
      await page.keyboard.type("voice/asr", { delay: 150 });
      equal(await page.$eval("#wf-pod", (e) => (e as HTMLInputElement).value), "voice/asr");
      equal(await page.evaluate(() => document.activeElement?.id), "wf-pod");
      // Leaving the field applies the filter, and the page follows the records again.
      await page.keyboard.press("Tab");
      const shown = () => page.$$eval("[data-interval-id]", (e) => e.length);
      const before = await shown();
      await page.waitForFunction((k) => document.querySelectorAll("[data-interval-id]").length > k, before);
      equal(await page.$eval("#wf-pod", (e) => (e as HTMLInputElement).value), "voice/asr");
      ok(problems.length === 0, problems.join("\n"));
    } finally {
      clearInterval(timer);
      await browser.close();
      await ui.close();
    }
  },
});

/** 3,000 signatures over 25 calls, every one carrying the same id (an account's: every call shares it). */
function sharedIdStore(): RecordStore {
  const store = new RecordStore({ m: { asr: "source" } }, { m: ["asr"] });
  for (let n = 0; n < 3000; n++) {
    for (const r of pair("m", "asr", n, `call-${n % 25}`, { account: "AC1" })) store.add(r);
  }
  return store;
}

Deno.test("UI store: an interval every record shares answers its first signatures and calls with the totals", () => {
  const iv = sharedIdStore().interval("AC1")!;
  deepEqual([iv.signatures.length, iv.signaturesTotal], [INTERVAL_SIGNATURES_SHOWN, 3000]);
  deepEqual([iv.calls.length, iv.callsTotal], [INTERVAL_CALLS_SHOWN, 25]);
  // The first by source time, each with its match.
  equal(iv.signatures[0]!.time_ns, T0.toString());
  ok(iv.signatures.every((g, i) => i === 0 || BigInt(g.time_ns) > BigInt(iv.signatures[i - 1]!.time_ns)));
  ok(iv.signatures.every((g) => g.matches.length === 1));
  ok(JSON.stringify(iv).length < 2_000_000, "the answer stays small");
});

chromiumTest({
  name: "web UI: the interval page of an id every call shares lists its first signatures and says how many",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ui = startUiServer({ listen: "127.0.0.1:0", store: sharedIdStore(), eventIntervalMs: 100 });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const { problems } = watchPage(page, new URL(ui.url).origin);
      // The waterfall's one row leads to it.
      await page.goto(`${ui.url}#/waterfall`);
      await page.click("[data-interval-id='AC1'] a");
      await page.waitForSelector("[data-signatures-total]", { timeout: 15_000 });
      equal(
        await page.$eval("[data-signatures-total]", (e) => e.getAttribute("data-signatures-total")),
        "3000",
      );
      equal(await page.$eval("[data-calls-total]", (e) => e.getAttribute("data-calls-total")), "25");
      equal(await page.$$eval("table tbody tr", (e) => e.length), INTERVAL_SIGNATURES_SHOWN);
      await page.waitForFunction(
        (n) => document.querySelectorAll(".uplot").length === n,
        INTERVAL_CALLS_SHOWN,
      );
      ok(problems.length === 0, problems.join("\n"));
    } finally {
      await browser.close();
      await ui.close();
    }
  },
});
