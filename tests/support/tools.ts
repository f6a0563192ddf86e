/**
 * The one gate of tests that need a system tool (nats-server, tcpdump, ffmpeg, promtool, Prometheus, Chromium,
 * root...). Where a tool is missing a test is skipped, and the file says so once on the console; in CI
 * (`CI=true`: root, tools installed by `scripts/setup.sh test`) it runs anyway and fails on the missing tool,
 * so CI can never pass by running less.
 *
 * ```ts
 * const natsTest = gatedTest(import.meta.url, ["nats-server"]);
 * natsTest("bus: ...", async () => { ... });
 * ```
 *
 * Log lines of the project are held back while such a test runs and printed only if it fails.
 * @module
 */
import { setLogSink } from "../../util/log.ts";

/** What a test may need. */
export type Tool =
  | "root"
  | "nats-server"
  | "tcpdump"
  | "ffmpeg"
  | "ffmpeg with libopus"
  | "promtool"
  | "prometheus"
  | "chromium"
  | "openssl"
  | "python3-prometheus-client";

/** True where a missing tool must fail rather than skip. */
export const CI = Deno.env.get("CI") === "true";

async function runs(cmd: string, args: string[], want?: RegExp): Promise<boolean> {
  try {
    const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "null" }).output();
    return o.success && (want === undefined || want.test(new TextDecoder().decode(o.stdout)));
  } catch {
    return false;
  }
}

async function anyRuns(cmds: string[], args: string[], want?: RegExp): Promise<boolean> {
  for (const c of cmds) if (await runs(c, args, want)) return true;
  return false;
}

// Debian puts some daemons in /usr/sbin, which is not on an ordinary user's PATH.
const PROBES: Record<Tool, () => Promise<boolean>> = {
  root: () => Promise.resolve(Deno.uid() === 0),
  "nats-server": () => anyRuns(["/usr/sbin/nats-server", "nats-server"], ["--version"]),
  tcpdump: () => anyRuns(["/usr/bin/tcpdump", "/usr/sbin/tcpdump", "tcpdump"], ["--version"]),
  ffmpeg: () => runs("ffmpeg", ["-hide_banner", "-version"]),
  "ffmpeg with libopus": () => runs("ffmpeg", ["-hide_banner", "-encoders"], /libopus/),
  promtool: () => runs("promtool", ["--version"]),
  prometheus: () => runs("prometheus", ["--version"]),
  chromium: () => runs("/usr/bin/chromium", ["--version"]),
  openssl: () => runs("openssl", ["version"]),
  "python3-prometheus-client": () => runs("/usr/bin/python3", ["-c", "import prometheus_client"]),
};

const known = new Map<Tool, Promise<boolean>>();

/** The tools of `tools` that are missing here (each probed once per process). */
export async function missingTools(tools: readonly Tool[]): Promise<Tool[]> {
  const out: Tool[] = [];
  for (const t of tools) {
    let p = known.get(t);
    if (!p) known.set(t, p = PROBES[t]());
    if (!(await p)) out.push(t);
  }
  return out;
}

/** Whether the tests of a file that need some tools run here. */
export interface ToolGate {
  /** Every tool is there. */
  run: boolean;
  /** The missing ones. */
  missing: Tool[];
  /** Skip (Deno.test's `ignore`): tools missing and not in CI. */
  ignore: boolean;
}

/** Probes `tools` for the tests of `file`; when some are missing outside CI, says once which tests skip and why. */
export async function toolGate(file: string, tools: readonly Tool[]): Promise<ToolGate> {
  const missing = await missingTools(tools);
  const ignore = missing.length > 0 && !CI;
  if (ignore) {
    const name = file.startsWith("file:") ? new URL(file).pathname.replace(/^.*\/tests\//, "tests/") : file;
    console.log(
      `${name}: skipping the tests that need ${missing.join(", ")} (missing here; ` +
        `as root, 'bash scripts/setup.sh test' installs them; with CI=true they fail instead)`,
    );
  }
  return { run: missing.length === 0, missing, ignore };
}

/** Throws when the gate is closed: in CI a test that cannot run fails and says what is missing. */
export function requireTools(g: ToolGate): void {
  if (!g.run) {
    throw new Error(`this test needs ${g.missing.join(", ")} (CI installs them with scripts/setup.sh test)`);
  }
}

/**
 * Runs `fn` with the project's log lines held back: these tests provoke failures on purpose (a server
 * restarted, a publish refused) and the warnings they log are expected. The lines are printed only when `fn`
 * fails, where they help.
 */
export async function withLogsOnFailure(fn: () => void | Promise<void>): Promise<void> {
  const lines: string[] = [];
  const prev = setLogSink((line) => void lines.push(line));
  try {
    await fn();
  } catch (e) {
    for (const l of lines) console.error(l);
    throw e;
  } finally {
    setLogSink(prev);
  }
}

/** `Deno.test` with the same call forms, for tests that need `tools`. */
export type GatedTest = {
  (name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void;
  (def: Deno.TestDefinition): void;
};

/**
 * A `Deno.test` for the tests of `file` that need `tools`: skipped (and said so once) where they are missing,
 * failing with the list of missing tools in CI.
 */
export async function gatedTest(file: string, tools: readonly Tool[]): Promise<GatedTest> {
  const gate = await toolGate(file, tools);
  const wrap = (fn: (t: Deno.TestContext) => void | Promise<void>) => async (t: Deno.TestContext) => {
    requireTools(gate);
    await withLogsOnFailure(() => fn(t));
  };
  return ((a: string | Deno.TestDefinition, fn?: (t: Deno.TestContext) => void | Promise<void>) => {
    if (typeof a === "string") Deno.test({ name: a, ignore: gate.ignore, fn: wrap(fn!) });
    else Deno.test({ ...a, ignore: (a.ignore ?? false) || gate.ignore, fn: wrap(a.fn) });
  }) as GatedTest;
}

/** `Deno.test` for tests that provoke logged failures on purpose: their log lines show only if they fail. */
export const quietTest: GatedTest =
  ((a: string | Deno.TestDefinition, fn?: (t: Deno.TestContext) => void | Promise<void>) => {
    const wrap = (f: (t: Deno.TestContext) => void | Promise<void>) => (t: Deno.TestContext) =>
      withLogsOnFailure(() => f(t));
    if (typeof a === "string") Deno.test(a, wrap(fn!));
    else Deno.test({ ...a, fn: wrap(a.fn) });
  }) as GatedTest;
