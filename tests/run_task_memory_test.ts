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
} from "../bench/capture_memory.ts";
import { taskV8Flags, v8FlagsArgs } from "../bench/deno_tasks.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Largest young generation (semi-space size, MB) the run task may leave V8: measured, see k8s/README.md. */
const MAX_SEMI_SPACE_MB = 4;
/**
 * The same for the analyze task (README "Speed and memory": once the merge hands rows on early, rows die young
 * and 4 MB semi-spaces cost no measurable CPU; with the 1 s window's rows held, 4 MB promoted more).
 */
const ANALYZE_MAX_SEMI_SPACE_MB = 4;

/**
 * Checks that `flags` cap V8's semi-spaces at 1..`maxMB` MB and that the cap takes effect: a process churning
 * short-lived objects keeps its new space near two semi-spaces (V8 also counts pages it holds during a scavenge:
 * 8.4-11.3 MB seen with 4 MB semi-spaces, 31-34 MB without the flag).
 */
async function checkSemiSpaceCap(task: string, flags: readonly string[], maxMB: number): Promise<void> {
  const semi = flags.map((f) => f.match(/^--max-semi-space-size=(\d+)$/)).find((m) => m !== null);
  ok(semi, `deno.json's ${task} task sets no --max-semi-space-size (flags: ${flags.join(" ")})`);
  const mb = Number(semi[1]);
  ok(mb >= 1 && mb <= maxMB, `semi-space ${mb} MB`);
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
}

Deno.test("run task: V8's semi-spaces are capped (the young generation was 56-64 MB of a 1,000-stream peak)", async () => {
  await checkSemiSpaceCap(
    "run",
    runTaskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`)),
    MAX_SEMI_SPACE_MB,
  );
});

Deno.test("analyze task: V8's semi-spaces are capped (the young generation was 57-61 MB of a 1,000-stream peak)", async () => {
  const flags = taskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`), "analyze");
  await checkSemiSpaceCap("analyze", flags, ANALYZE_MAX_SEMI_SPACE_MB);
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

Deno.test("analyze task: no allocation-site pretenuring (rows made as the merge hands them on die young)", async () => {
  // The merge holds its window's rows as bytes and makes each row as it hands it on (pixie/held_rows.ts,
  // line_arena.ts), so rows die in the step that handles them. V8 still tenured the site that makes them (its
  // feedback of the first steps), allocating every row in old space: 18-24 full collections an analyze of the
  // bench corpus, ~1 s of concurrent marking; without pretenuring 7 and 0.3 s (--trace-gc-nvp, README "Speed and
  // memory"). The run task sets it too.
  const deno = await Deno.readTextFile(`${ROOT}deno.json`);
  for (const task of ["analyze", "run"] as const) {
    const flags = taskV8Flags(deno, task);
    ok(flags.includes("--no-allocation-site-pretenuring"), `${task} task flags: ${flags.join(" ")}`);
  }
});

Deno.test("run task: ArrayBuffers of 32 KiB and more get pages of their own from the C allocator (given back when freed)", async () => {
  const env = runTaskEnv(await Deno.readTextFile(`${ROOT}deno.json`));
  const t = Number(env["MALLOC_MMAP_THRESHOLD_"]);
  ok(t > 0 && t <= 32768, `MALLOC_MMAP_THRESHOLD_=${env["MALLOC_MMAP_THRESHOLD_"]}`);
});

Deno.test("analyze task: V8's old generation grows by at most 1.3x before a full collection", async () => {
  // analyze replays a capture as fast as it reads it: the rows of a merge step, and before the merge handed rows
  // on early the 1 s reordering window's (~70,000 at 1,000 streams), outlive scavenges and reach old space, and
  // with V8's own growing factor (up to 4x the live heap) that garbage reached ~240 MB before a full collection.
  // The analyze task bounds the factor: 30% kept the 1,000-stream capture under 400 MB (README "Speed and
  // memory"; 100% left ~425 MB), its live heap being ~30 MB.
  const flags = taskV8Flags(await Deno.readTextFile(`${ROOT}deno.json`), "analyze");
  const growing = flags.map((f) => f.match(/^--heap-growing-percent=(\d+)$/)).find((m) => m !== null);
  ok(growing, `deno.json's analyze task sets no --heap-growing-percent (flags: ${flags.join(" ")})`);
  ok(Number(growing[1]) >= 20 && Number(growing[1]) <= 30, `heap growing ${growing[1]}%`);
  // The flags take effect: a window of held objects slid over 3 M rows peaks lower in old space (measured
  // 241 MB without the flags, 118 MB with 100% and 8 MB semi-spaces, 89 MB with 30% and 4 MB).
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    const window = new Array(150000);
    let max = 0;
    for (let i = 0; i < 3000000; i++) {
      window[i % window.length] = { i, t: BigInt(i), c: { a: "x" + i, b: new Uint8Array(8) } };
      if (i % 20000 === 0) {
        const o = getHeapSpaceStatistics().find((s) => s.space_name === "old_space");
        max = Math.max(max, o.space_used_size);
      }
    }
    console.log(window.length > 0 ? max : -1);`;
  const peakMB = async (v8: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", ...v8FlagsArgs(v8), script],
      stdout: "piped",
    })
      .output();
    ok(out.success);
    return Number(new TextDecoder().decode(out.stdout).trim()) / 1e6;
  };
  const [without, withFlags] = [await peakMB([]), await peakMB(flags)];
  ok(
    withFlags > 0 && withFlags < 0.45 * without,
    `old space peak ${withFlags.toFixed(1)} MB, without the flags ${without.toFixed(1)} MB`,
  );
});

Deno.test("capture_memory: the run task's V8 flags and variables are read from its command line", () => {
  const json = (run: string) => JSON.stringify({ tasks: { run } });
  deepEqual(runTaskEnv(json("A_=1 B=x deno run C=2 main.ts")), { A_: "1", B: "x" });
  deepEqual(runTaskEnv(json("deno run -A main.ts")), {});
  deepEqual(runTaskV8Flags(json("deno run --v8-flags=--a=1,--b -A main.ts run")), ["--a=1", "--b"]);
  deepEqual(runTaskV8Flags(json("deno run -A main.ts run")), []);
  // A task that installs first: only deno run's flags count.
  const tasks = JSON.stringify({
    tasks: { analyze: "deno install -q && deno run --v8-flags=--x=2 -A main.ts analyze" },
  });
  deepEqual(taskV8Flags(tasks, "analyze"), ["--x=2"]);
  deepEqual(taskV8Flags(tasks, "none"), []);
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
