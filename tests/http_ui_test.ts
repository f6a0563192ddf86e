/// <reference lib="dom" />
/**
 * The web UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core): `deno task ui`
 * over the records `analyze --out` wrote for the bundled demo captures. The waterfall and overview contract
 * attributes must equal `analyze --format json`, charts must be drawn, the console must stay clean, and no
 * request may leave the page's origin.
 *
 * `FSMPX_UPDATE_SCREENSHOTS=1` also writes docs/ui-overview.png and docs/ui-waterfall.png (committed for the
 * README).
 */
import { equal, ok } from "node:assert/strict";
import type { Page } from "playwright-core";
import { CHROMIUM, launchChromium, watchPage } from "./support/browser.ts";
import type { MeasurementSummary } from "../report/summary.ts";
import { gatedTest } from "./support/tools.ts";

const chromiumTest = await gatedTest(import.meta.url, ["chromium"]);

const ROOT = new URL("../", import.meta.url);

async function demoConfigWithPath(dir: string): Promise<string> {
  // The demo's ASR sits behind the relay: the demo config states it, so hops are relay → asr.
  const withAfter = await Deno.readTextFile(new URL("fixtures/demo/config.yaml", ROOT));
  ok(
    /- stage: asr\n(?:\s*#.*\n)*\s*after: relay\n/.test(withAfter),
    "the demo config's asr follows the relay",
  );
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, withAfter);
  return path;
}

async function deno(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT.pathname, stderr: "piped" }).output();
  const err = new TextDecoder().decode(out.stderr);
  equal(out.code, 0, err);
  return new TextDecoder().decode(out.stdout);
}

/** Starts `main.ts ui` on a free port; resolves with its URL once it serves. */
async function startUi(config: string, records: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "ui", "--config", config, "--records", records, "--listen", "127.0.0.1:0"],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!/UI at (http:\S+)/.test(buf)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`ui ended before serving: ${buf}`);
    buf += value;
  }
  const url = /UI at (http:\S+)/.exec(buf)![1]!;
  // Keep draining stdout so the child never blocks on a full pipe.
  const drain = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  return {
    url,
    async stop() {
      child.kill("SIGINT");
      equal((await child.status).code, 0);
      await drain;
    },
  };
}

/** Non-transparent pixels of every canvas in the page (a drawn chart has many). */
function canvasInk(page: Page, selector: string): Promise<number[]> {
  return page.$$eval(selector, (els) =>
    els.map((c) => {
      const cv = c as HTMLCanvasElement;
      if (cv.width === 0 || cv.height === 0) return 0;
      const d = cv.getContext("2d")!.getImageData(0, 0, cv.width, cv.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
      return n;
    }));
}

chromiumTest({
  name:
    "web UI in headless Chromium: waterfall and overview equal analyze --format json, charts drawn, offline",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh test does)`);
    }
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-ui-" });
    const config = await demoConfigWithPath(dir);
    const records = `${dir}/records.jsonl`;
    const captures = ["node-a", "node-b", "node-c"].map((n) => `fixtures/demo/${n}.jsonl`);
    const json = JSON.parse(
      await deno([
        "run",
        "-A",
        "main.ts",
        "analyze",
        "--config",
        config,
        "--format",
        "json",
        "--out",
        records,
        ...captures,
      ]),
    ) as { measurements: MeasurementSummary[] };
    const summary = json.measurements[0]!;
    ok(summary.waterfall.length > 5, "the demo has intervals");

    const ui = await startUi(config, records);
    const origin = new URL(ui.url).origin;
    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const { problems, foreign } = watchPage(page, origin);
    try {
      // Overview: one element per stage with its figures, equal to analyze's.
      await page.goto(`${ui.url}#/overview`);
      await page.waitForSelector("tr[data-stage][data-p50-ms]");
      await page.waitForFunction(() => document.querySelectorAll(".uplot canvas").length >= 3);
      const stages = await page.$$eval("[data-stage][data-p50-ms]", (els) =>
        els.map((e) => ({
          stage: e.getAttribute("data-stage"),
          p50: Number(e.getAttribute("data-p50-ms")),
          p99: Number(e.getAttribute("data-p99-ms")),
          matches: Number(e.getAttribute("data-matches")),
        })));
      equal(stages.length, summary.stages.length);
      for (const st of summary.stages) {
        const got = stages.find((s) => s.stage === st.stage);
        ok(got, `overview shows stage ${st.stage}`);
        equal(got.matches, st.matches);
        ok(Math.abs(got.p50 - st.latency_s!.p50 * 1000) < 1e-6, `${st.stage} p50 ${got.p50}`);
        ok(Math.abs(got.p99 - st.latency_s!.p99 * 1000) < 1e-6, `${st.stage} p99 ${got.p99}`);
      }
      const ink = await canvasInk(page, ".uplot canvas");
      ok(ink.length >= 3 && ink.every((n) => n > 500), `charts drawn: ${ink}`);
      // The hop breakdown names the stage that adds most: the ASR.
      const hops = await page.$$eval("[data-hop-stage]", (els) => els.map((e) => e.getAttribute("title")));
      ok(hops.some((t) => t?.startsWith("relay → asr: +")), hops.join(", "));
      if (Deno.env.get("FSMPX_UPDATE_SCREENSHOTS") === "1") {
        await page.screenshot({ path: new URL("docs/ui-overview.png", ROOT).pathname, fullPage: true });
      }

      // Waterfall: a row per interval id, per stage the median latency from the source, as analyze reports.
      await page.goto(`${ui.url}#/waterfall`);
      await page.waitForSelector("[data-interval-id] [data-stage]");
      const rows: { id: string; stages: { stage: string; ms: string }[] }[] = await page.$$eval(
        "[data-interval-id]",
        (els) =>
          els.map((r) => ({
            id: r.getAttribute("data-interval-id")!,
            stages: [...r.querySelectorAll("[data-stage]")].map((s) => ({
              stage: s.getAttribute("data-stage")!,
              ms: s.getAttribute("data-latency-ms")!,
            })),
          })),
      );
      equal(rows.length, summary.waterfall.length);
      for (const want of summary.waterfall) {
        const got = rows.find((r) => r.id === want.id);
        ok(got, `waterfall row ${want.id}`);
        equal(got.stages.length, Object.keys(want.latency_s_by_stage).length);
        for (const [stage, v] of Object.entries(want.latency_s_by_stage)) {
          const cell: { stage: string; ms: string } = got.stages.find((s) => s.stage === stage)!;
          if (v === null) equal(cell.ms, "");
          else {ok(
              Math.abs(Number(cell.ms) - v * 1000) < 1e-6,
              `${want.id}/${stage}: ${cell.ms} vs ${v}`,
            );}
        }
      }
      // Sorted by total latency, the slowest interval comes first.
      await page.selectOption("#wf-sort", "total");
      await page.waitForFunction(
        (id) => document.querySelector("[data-interval-id]")?.getAttribute("data-interval-id") === id,
        [...summary.waterfall].sort((a, b) =>
          (b.latency_s_by_stage["asr"] ?? 0) - (a.latency_s_by_stage["asr"] ?? 0)
        )[0]!
          .id,
      );
      if (Deno.env.get("FSMPX_UPDATE_SCREENSHOTS") === "1") {
        await page.screenshot({ path: new URL("docs/ui-waterfall.png", ROOT).pathname, fullPage: true });
      }

      // Click through to the interval: its call's timeline is drawn, its signatures listed.
      await page.click("[data-interval-id] a");
      await page.waitForSelector("a[href^='#/signature/']");
      await page.waitForFunction(() => document.querySelectorAll(".uplot canvas").length >= 1);
      ok((await canvasInk(page, ".uplot canvas")).every((n) => n > 200), "call timeline drawn");

      // A signature: its fingerprint bits as an image and its envelope.
      await page.click("a[href^='#/signature/']");
      await page.waitForSelector("canvas.bits");
      await page.waitForFunction(() => document.querySelectorAll(".uplot canvas").length >= 1);
      const bits = await canvasInk(page, "canvas.bits");
      ok(bits[0]! > 1000, `fingerprint image drawn: ${bits}`);
      ok((await canvasInk(page, ".uplot canvas"))[0]! > 200, "envelope drawn");
      // The targets' envelopes at the matched offsets are drawn beside the source's (one series per match).
      const series = await page.evaluate(() => [...document.querySelectorAll(".u-legend .u-series")].length);
      ok(series >= 3, `source and target envelopes in the legend: ${series} entries`);

      await page.goto(`${ui.url}#/health`);
      await page.waitForSelector("text=Signatures not found at a stage");
      await page.waitForTimeout(200); // late console errors, if any, arrive before the assertions below
    } finally {
      await browser.close();
      await ui.stop();
      await Deno.remove(dir, { recursive: true });
    }
    equal(problems.join("\n"), "", "no console errors or warnings");
    equal(foreign.join("\n"), "", "no request leaves the page's origin");
  },
});
