/**
 * The real browser the UI tests drive: Debian's Chromium through playwright-core, started as this machine
 * allows (no background networking: the closed network refuses it), and a page watcher that collects console
 * errors and every request that leaves the page's origin.
 * @module
 */
import { type Browser, chromium, type Page } from "playwright-core";

/** Debian's Chromium (playwright's own download does not work here). */
export const CHROMIUM = "/usr/bin/chromium";

/** Headless, sandbox off (root), no background networking, GPU, sync or QUIC. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Starts the browser. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
}

/** Records a page's console errors and warnings, page errors, and requests to any other origin than `origin`. */
export function watchPage(page: Page, origin: string): { problems: string[]; foreign: string[] } {
  const problems: string[] = [];
  const foreign: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol !== "data:" && u.origin !== origin) foreign.push(r.url());
  });
  return { problems, foreign };
}
