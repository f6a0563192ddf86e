/**
 * Copies the charting library's browser build from the pinned npm package (deno.json `uplot`) into
 * http/ui/vendor/, with its licence, so the UI is served with no CDN and no internet. The copies are committed;
 * run this after changing the pinned version: `deno run --allow-read --allow-write http/ui/vendor.ts`.
 * @module
 */
import { createRequire } from "node:module";

/** The files the UI serves, from the package's dist/ (and its licence). */
export const VENDORED = ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"] as const;

/** Copies the files; returns the paths written. */
export async function vendorUplot(outDir = new URL("./vendor/", import.meta.url)): Promise<string[]> {
  // Resolves through deno.json's import map and node_modules, like any import of the package.
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("uplot/package.json");
  const root = pkgJson.slice(0, -"package.json".length);
  const version = JSON.parse(await Deno.readTextFile(pkgJson)).version as string;
  const written: string[] = [];
  for (const f of VENDORED) {
    const name = f === "LICENSE" ? "uPlot.LICENSE" : f.slice("dist/".length);
    const to = new URL(name, outDir);
    await Deno.copyFile(root + f, to);
    written.push(to.pathname);
  }
  await Deno.writeTextFile(new URL("uPlot.VERSION", outDir), `uplot ${version} (npm)\n`);
  return written;
}

if (import.meta.main) {
  for (const p of await vendorUplot()) console.log(`wrote ${p}`);
}
