/**
 * Runs the real `analyze` command line on capture files and reads what it wrote: the `--out` records and the
 * `--format json` summary.
 * @module
 */

/** A signature or match record as `analyze --out` writes it (the fields the tests read). */
export interface Rec {
  kind: "signature" | "match";
  measurement: string;
  signature_id: string;
  stage?: string;
  pod?: string;
  stream?: string;
  time_ns?: string;
  offset_ms?: number;
  ids: Record<string, string>;
  source: { pod: string; stream: string; time_ns: string; offset_ms: number };
  target: { pod: string; stream: string; time_ns: string; offset_ms: number };
  latency_s: number;
  ber: number;
}

/** What `analyze --format json` prints (the fields the tests read). */
export interface AnalyzeJson {
  rows: number;
  decode_errors: { measurement: string; stream: string; reason: string; count: number }[];
  measurements: { measurement: string; signatures: number; stages: { stage: string; matches: number }[] }[];
  /** Why a run was poor (report/diagnosis.ts): a stage without matches says how many rows it read. */
  diagnosis: { findings: { kind: string; text: string }[] };
}

/** What one run produced. */
export interface AnalyzeRun {
  records: Rec[];
  signatures: Rec[];
  matches: Rec[];
  summary: AnalyzeJson;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** `deno run main.ts analyze --config CONFIG --out DIR/records.jsonl --format json CAPTURES...`. */
export async function runAnalyze(config: string, captures: string[], outDir: string): Promise<AnalyzeRun> {
  const out = `${outDir}/records.jsonl`;
  const o = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      MAIN,
      "analyze",
      "--config",
      config,
      "--out",
      out,
      "--format",
      "json",
      ...captures,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { FSMPX_LOG_LEVEL: "warn" },
  }).output();
  const stdout = new TextDecoder().decode(o.stdout);
  if (!o.success) {
    throw new Error(`analyze failed (${o.code}): ${new TextDecoder().decode(o.stderr)}\n${stdout}`);
  }
  const records = (await Deno.readTextFile(out)).split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as Rec
  );
  return {
    records,
    signatures: records.filter((r) => r.kind === "signature"),
    matches: records.filter((r) => r.kind === "match"),
    summary: JSON.parse(stdout) as AnalyzeJson,
  };
}

/**
 * Rows `analyze` read on a stage that matched nothing, from its diagnosis ("stage m/s: 200 rows, 0 matches ..."); 0
 * when the stage read none. A negative stage's "no match" means something only when it read audio.
 */
export function rowsOfUnmatchedStage(run: AnalyzeRun, measurement: string, stage: string): number {
  const head = `stage ${measurement}/${stage}: `;
  const f = run.summary.diagnosis.findings.find((x) => x.kind === "no_matches" && x.text.startsWith(head));
  const m = f === undefined ? null : /^([\d,]+) rows, 0 matches/.exec(f.text.slice(head.length));
  return m === null ? 0 : Number(m[1]!.replaceAll(",", ""));
}
