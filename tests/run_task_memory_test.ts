/**
 * The sensor's memory settings where users run it: deno.json's `run` task (the DaemonSet's and the image's
 * command) caps V8's young generation, and bench/capture_memory.ts measures with the same flags (`--task`).
 */
import { deepEqual, ok } from "node:assert/strict";
import { cpuUsage } from "node:process";
import {
  cpuSeconds,
  daemonSetMemoryEnv,
  inMemoryLimit,
  runTaskEnv,
  runTaskV8Flags,
  v8FlagsArgs,
} from "../bench/capture_memory.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Largest young generation (semi-space size, MB) the run task may leave V8: measured, see k8s/README.md. */
const MAX_SEMI_SPACE_MB = 4;

Deno.test("run task: V8's semi-spaces are capped (the young generation was 56-64 MB of a 1,000-stream peak)", async () => {
  const flags = runTaskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`));
  const semi = flags.map((f) => f.match(/^--max-semi-space-size=(\d+)$/)).find((m) => m !== null);
  ok(semi, `deno.json's run task sets no --max-semi-space-size (flags: ${flags.join(" ")})`);
  const mb = Number(semi[1]);
  ok(mb >= 1 && mb <= MAX_SEMI_SPACE_MB, `semi-space ${mb} MB`);
  // The flags take effect: a process churning short-lived objects keeps its new space near two semi-spaces (V8
  // also counts pages it holds during a scavenge: 8.4-11.3 MB seen with 4 MB semi-spaces, 31-34 MB without the flag).
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    let max = 0, keep = [];
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 20000; j++) keep.push({ j, s: "x" + j });
      keep = keep.slice(-1000);
      const n = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
      max = Math.max(max, n.space_size);
    }
    console.log(max);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...v8FlagsArgs(flags), script],
    stdout: "piped",
  }).output();
  ok(out.success);
  const newSpaceMB = Number(new TextDecoder().decode(out.stdout).trim()) / 1e6;
  ok(
    newSpaceMB > 0 && newSpaceMB <= 4 * mb,
    `new space ${newSpaceMB.toFixed(1)} MB with ${mb} MB semi-spaces`,
  );
});

Deno.test("run task: no allocation-site pretenuring (a site once long-lived put every later row in old space)", async () => {
  const flags = runTaskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`));
  // A site whose objects outlived scavenges for a while (rows queued at start-up), then die young: V8's
  // pretenuring goes on allocating them in old space (45 MB of old space for 4,000,000 short-lived objects here;
  // `run --capture` of 1,000 streams promoted 17-22 MB/s, a full GC every ~0.4 s), without it they stay young.
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    const make = (i) => ({ i, a: [i, i + 1], s: { t: i } });
    let keep = [];
    for (let r = 0; r < 40; r++) {
      for (let j = 0; j < 50000; j++) keep.push(make(j));
      if (keep.length > 200000) keep = keep.slice(-100000);
    }
    keep = [];
    const old = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space").space_used_size;
    let sink = 0, grown = 0, last = old();
    for (let r = 0; r < 200; r++) {
      for (let j = 0; j < 20000; j++) sink += make(j).s.t;
      const now = old();
      if (now > last) grown += now - last;
      last = now;
    }
    console.log(sink > 0 ? grown : -1);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...v8FlagsArgs(flags), script],
    stdout: "piped",
  }).output();
  ok(out.success);
  const grownMB = Number(new TextDecoder().decode(out.stdout).trim()) / 1e6;
  ok(grownMB >= 0 && grownMB < 10, `old space grew ${grownMB.toFixed(1)} MB (flags: ${flags.join(" ")})`);
});

Deno.test("run task: ArrayBuffers of 32 KiB and more get pages of their own from the C allocator (given back when freed)", async () => {
  const env = runTaskEnv(await Deno.readTextFile(`${ROOT}deno.json`));
  const t = Number(env["MALLOC_MMAP_THRESHOLD_"]);
  ok(t > 0 && t <= 32768, `MALLOC_MMAP_THRESHOLD_=${env["MALLOC_MMAP_THRESHOLD_"]}`);
});

Deno.test("capture_memory: the run task's V8 flags and variables are read from its command line", () => {
  const json = (run: string) => JSON.stringify({ tasks: { run } });
  deepEqual(runTaskEnv(json("A_=1 B=x deno run C=2 main.ts")), { A_: "1", B: "x" });
  deepEqual(runTaskEnv(json("deno run -A main.ts")), {});
  deepEqual(runTaskV8Flags(json("deno run --v8-flags=--a=1,--b -A main.ts run")), ["--a=1", "--b"]);
  deepEqual(runTaskV8Flags(json("deno run -A main.ts run")), []);
  deepEqual(v8FlagsArgs([]), []);
  deepEqual(v8FlagsArgs(["--a=1", "--b"]), ["--v8-flags=--a=1,--b"]);
});

Deno.test("capture_memory: the DaemonSet's memory variables are the literal MALLOC_/V8 ones", () => {
  const yaml = `
spec:
  template:
    spec:
      containers:
        - name: sensor
          env:
            - { name: MALLOC_ARENA_MAX, value: "2" }
            - { name: NODE_NAME, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
            - { name: DENO_V8_FLAGS, value: "--x" }
            - { name: FSMPX_LOG_LEVEL, value: info }
`;
  deepEqual(daemonSetMemoryEnv(yaml), { MALLOC_ARENA_MAX: "2", DENO_V8_FLAGS: "--x" });
});

Deno.test("capture_memory: a process's CPU seconds are read from /proc", {
  ignore: Deno.build.os !== "linux",
}, () => {
  let x = 0;
  for (let i = 0; i < 3e7; i++) x += Math.sqrt(i);
  const own = cpuUsage();
  const read = cpuSeconds(Deno.pid);
  const mine = (own.user + own.system) / 1e6;
  // /proc counts in 10 ms ticks.
  ok(x > 0 && mine > 0.02 && Math.abs(read - mine) < 0.05, `/proc ${read} s, process.cpuUsage ${mine} s`);
  ok(Number.isNaN(cpuSeconds(2 ** 30)));
});

Deno.test(
  "capture_memory: a run under --limit-mib sees the container limit as deno does with DENO_USE_CGROUPS",
  {
    // unshare -m needs root; the bench says so when it cannot.
    ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
  },
  async () => {
    const limit = async (argv: string[]) => {
      const [cmd, ...args] = argv;
      const out = await new Deno.Command(cmd!, {
        args,
        env: { DENO_USE_CGROUPS: "1" },
        stdout: "piped",
      }).output();
      ok(out.success);
      return Number(new TextDecoder().decode(out.stdout)) / 1e6;
    };
    const eval_ = [
      Deno.execPath(),
      "eval",
      'import { getHeapStatistics } from "node:v8"; console.log(getHeapStatistics().heap_size_limit)',
    ];
    const limited = await limit(inMemoryLimit(768, eval_));
    // V8 gets about half of the container's limit (428 MB of 768 MiB with deno 2.9), not the host's memory.
    ok(limited > 300 && limited < 600, `heap limit ${limited} MB under a 768 MiB limit`);
    ok(await limit(inMemoryLimit(1024, eval_)) > limited);
  },
);
