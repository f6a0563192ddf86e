/**
 * Whether the tests that capture real traffic can run here: root, `tcpdump`, and `ffmpeg` with libopus. In CI
 * (`CI=true`: root, tools installed by `scripts/setup.sh test`) a missing tool is a failure, elsewhere a skip with
 * a note.
 * @module
 */

/** The gate of a capture test. */
export interface CaptureGate {
  /** Run the test. */
  run: boolean;
  /** Why not (empty when it runs). */
  missing: string[];
  /** In CI a missing tool fails instead of skipping. */
  ci: boolean;
}

async function ok(cmd: string, args: string[], want?: RegExp): Promise<boolean> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return o.success && (want === undefined || want.test(new TextDecoder().decode(o.stdout)));
  } catch {
    return false;
  }
}

/** Checks root and the tools (`ffmpeg` only when `needFfmpeg`). */
export async function captureGate(file: string, needFfmpeg: boolean): Promise<CaptureGate> {
  const missing: string[] = [];
  if (Deno.uid() !== 0) missing.push("root");
  if (!(await ok("tcpdump", ["--version"]))) missing.push("tcpdump");
  if (needFfmpeg && !(await ok("ffmpeg", ["-hide_banner", "-encoders"], /libopus/))) {
    missing.push("ffmpeg with libopus");
  }
  const ci = Deno.env.get("CI") === "true";
  if (missing.length > 0 && !ci) console.log(`${file}: skipped (needs ${missing.join(", ")})`);
  return { run: missing.length === 0, missing, ci };
}

/** Throws in CI when the gate is closed (call at the start of the test body). */
export function requireGate(g: CaptureGate): void {
  if (!g.run) {
    throw new Error(`this test needs ${g.missing.join(", ")} (CI installs them with scripts/setup.sh test)`);
  }
}
