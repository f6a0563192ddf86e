/**
 * Every config shipped in the repository (every *.yaml with `measurements:`, except the deliberately broken test
 * fixtures named bad_*.yaml) loads, and every stream_filter in it passes the PxL checker with no problem at all:
 * what a user copies from the repo compiles on a real Pixie.
 */
import { deepEqual, ok } from "node:assert/strict";
import { join, relative } from "node:path";
import { loadConfig } from "../config/load.ts";
import { checkStreamFilter } from "../pixie/pxl_check.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SKIP_DIRS = new Set(["node_modules", ".git", ".bench-cache", "vendor"]);

async function* yamlFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory && !SKIP_DIRS.has(e.name) && !e.name.startsWith(".")) yield* yamlFiles(path);
    else if (e.isFile && /\.ya?ml$/.test(e.name)) yield path;
  }
}

/** Shipped configs: YAML files with a top-level `measurements:` key, bad_* test fixtures excepted. */
async function shippedConfigs(): Promise<string[]> {
  const out: string[] = [];
  for await (const path of yamlFiles(ROOT)) {
    if (/(^|\/)bad_[^/]*$/.test(path)) continue;
    if (/^measurements:/m.test(await Deno.readTextFile(path))) out.push(path);
  }
  return out.sort();
}

/** Values of every variable the shipped configs need, as a deployment provides them. */
const ENV = {
  NODE_NAME: "node-a",
  PIXIE_API_KEY: "px-api-test",
  PIXIE_CLUSTER: "9b3c1e0a-52f4-4f7e-9a8e-1c2d3e4f5a6b",
  NATS_URL: "nats://nats:4222",
  NATS_USER: "fsmpx",
  NATS_PASSWORD: "",
  NATS_TOKEN: "",
};

Deno.test("every shipped config loads, and every stream_filter in it passes the PxL checker", async () => {
  const files = await shippedConfigs();
  for (
    const expected of [
      "example-config.yaml",
      "k8s/config/config.yaml",
      "fixtures/demo/config.yaml",
      "fixtures/e2e/config.yaml",
      "tests/fixtures_config/quickstart.yaml",
      "tests/fixtures_config/contract.yaml",
    ]
  ) {
    ok(
      files.includes(join(ROOT, expected)),
      `${expected} not found among ${files.map((f) => relative(ROOT, f))}`,
    );
  }

  const problems: string[] = [];
  for (const file of files) {
    const name = relative(ROOT, file);
    let config;
    try {
      config = (await loadConfig(file, ENV)).config;
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const filters = config.measurements.flatMap((m) => [
      [`${m.name}/source`, m.signature_rules.stream_filter] as const,
      ...m.match_rules.map((r) => [`${m.name}/${r.stage}`, r.stream_filter] as const),
    ]);
    for (const [query, filter] of filters) {
      if (filter === undefined) continue;
      for (const p of checkStreamFilter(filter).problems) {
        problems.push(
          `${name} ${query} ${p.line}:${p.col}: ${p.severity}: expected ${p.expected}, found ${p.found}`,
        );
      }
    }
  }
  deepEqual(problems, []);
});

Deno.test("the seed's Quick Start is kept as a bad fixture, and it does fail", async () => {
  let failed = false;
  try {
    await loadConfig(join(ROOT, "tests/fixtures_config/bad_seed_quickstart.yaml"), ENV);
  } catch {
    failed = true;
  }
  ok(failed);
});
