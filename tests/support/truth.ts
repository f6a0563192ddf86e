/**
 * Checks `analyze` records against the ground truth of a generated scenario (fixtures/gen/scenario_truth.ts):
 * for every match, the source instant in call time (source message start + offset), the target message that
 * must carry it and the offset there, and the exact latency from the two capture times.
 * @module
 */
import type { AnyRecord, MatchRecord, SignatureRecord } from "../../report/records.ts";
import {
  locate,
  type ScenarioTruth,
  TruthIndex,
  type TruthStream,
} from "../../fixtures/gen/scenario_truth.ts";

/** Per-stage tallies. */
export interface StageCheck {
  matches: number;
  /** Distinct signatures matched at this stage. */
  matchedSignatures: number;
  /** matchedSignatures / signatures. */
  recall: number;
}

/** What {@link checkMatches} found. */
export interface TruthCheck {
  /** Match records checked against the truth (those whose source and target taps are known). */
  checked: number;
  signatures: number;
  /** Matches reported on a message other than the one carrying the source instant. */
  wrongMessage: number;
  /** Matches whose target carries another call's audio (a false match on a real stream). */
  wrongCall: number;
  /** Matches on decoy streams (audio no source carries): always false matches. */
  decoyMatches: number;
  /** Matches whose source instant fell in a lost target message or outside the target stream. */
  instantMissing: number;
  /** Reported target instant minus the true one, in call time, ms (one per match on a known target stream). */
  offsetErrorsMs: number[];
  /** Reported latency minus the exact one, seconds (one per match on the right message). */
  latencyErrorsS: number[];
  /** Records without the interval id, or with one other than the interval of the source instant. */
  missingIds: number;
  wrongIds: number;
  /** The same signature matched more than once at a stage. */
  duplicates: number;
  /** Records naming a stream, message or signature the truth does not know (each with a reason). */
  unknown: string[];
  stages: Record<string, StageCheck>;
  /** Interval ids of the signatures, in order of first appearance. */
  signatureIntervals: string[];
}

function sourceInstant(
  idx: TruthIndex,
  tap: { node: string; stream: string; time_ns: string; offset_ms: number },
): { stream: TruthStream; message: number; instantS: number } | string {
  const stream = idx.stream(tap.node, tap.stream);
  if (stream === undefined) return `unknown stream ${tap.node}/${tap.stream}`;
  const message = idx.messageAt(stream, tap.time_ns);
  if (message === undefined) return `no message at ${tap.time_ns} in ${tap.node}/${tap.stream}`;
  return { stream, message, instantS: stream.messages[message]![1] + tap.offset_ms / 1000 };
}

/**
 * Checks every signature and match record against the truth. The expected interval id of a record is the one
 * of the source message carrying its instant (the engine takes ids from the message at the anchor).
 */
export function checkMatches(truth: ScenarioTruth, records: readonly AnyRecord[]): TruthCheck {
  const idx = new TruthIndex(truth);
  const idType = truth.idType;
  const sigs = records.filter((r): r is SignatureRecord => r.kind === "signature");
  const matches = records.filter((r): r is MatchRecord => r.kind === "match");
  const out: TruthCheck = {
    checked: 0,
    signatures: sigs.length,
    wrongMessage: 0,
    wrongCall: 0,
    decoyMatches: 0,
    instantMissing: 0,
    offsetErrorsMs: [],
    latencyErrorsS: [],
    missingIds: 0,
    wrongIds: 0,
    duplicates: 0,
    unknown: [],
    stages: {},
    signatureIntervals: [],
  };
  const checkId = (ids: Record<string, string>, expected: string | undefined) => {
    const id = ids[idType];
    if (id === undefined) out.missingIds++;
    else if (id !== expected) out.wrongIds++;
  };
  const sigIds = new Set<string>();
  for (const s of sigs) {
    sigIds.add(s.signature_id);
    const src = sourceInstant(idx, { ...s, stream: s.stream });
    if (typeof src === "string") {
      out.unknown.push(`signature ${s.signature_id}: ${src}`);
      continue;
    }
    if (src.stream.stage !== "source") {
      out.unknown.push(`signature ${s.signature_id} on a ${src.stream.stage} tap`);
    }
    const expected = idx.intervalId(src.stream, src.message);
    checkId(s.ids, expected);
    if (expected !== undefined && !out.signatureIntervals.includes(expected)) {
      out.signatureIntervals.push(expected);
    }
  }
  const seen = new Map<string, Set<string>>();
  for (const m of matches) {
    const stage = out.stages[m.stage] ??= { matches: 0, matchedSignatures: 0, recall: 0 };
    stage.matches++;
    const matched = seen.get(m.stage) ?? new Set<string>();
    if (matched.has(m.signature_id)) out.duplicates++;
    matched.add(m.signature_id);
    seen.set(m.stage, matched);
    if (!sigIds.has(m.signature_id)) out.unknown.push(`match of unknown signature ${m.signature_id}`);

    const src = sourceInstant(idx, m.source);
    if (typeof src === "string") {
      out.unknown.push(`match ${m.signature_id} source: ${src}`);
      continue;
    }
    checkId(m.ids, idx.intervalId(src.stream, src.message));
    const target = idx.stream(m.target.node, m.target.stream);
    if (target === undefined) {
      out.unknown.push(`match ${m.signature_id}: unknown target stream ${m.target.node}/${m.target.stream}`);
      continue;
    }
    if (target.stage !== m.stage) {
      out.unknown.push(`match ${m.signature_id} at ${m.stage} on a ${target.stage} tap`);
    }
    out.checked++;
    if (target.decoy) {
      out.decoyMatches++;
      continue;
    }
    if (target.call !== src.stream.call) {
      out.wrongCall++;
      continue;
    }
    const reportedMsg = idx.messageAt(target, m.target.time_ns);
    if (reportedMsg !== undefined) {
      out.offsetErrorsMs.push((target.messages[reportedMsg]![1] - src.instantS) * 1000 + m.target.offset_ms);
    } else {
      out.unknown.push(`match ${m.signature_id}: no message at ${m.target.time_ns} in ${target.key}`);
    }
    const at = locate(target, src.instantS);
    if (at.kind !== "present") {
      out.instantMissing++;
      continue;
    }
    if (at.timeNs.toString() !== m.target.time_ns) {
      out.wrongMessage++;
      continue;
    }
    out.latencyErrorsS.push(m.latency_s - Number(at.timeNs - BigInt(m.source.time_ns)) / 1e9);
  }
  for (const [name, st] of Object.entries(out.stages)) {
    st.matchedSignatures = seen.get(name)?.size ?? 0;
    st.recall = sigs.length ? st.matchedSignatures / sigs.length : 0;
  }
  return out;
}

/** Largest absolute value (0 for none). */
export function maxAbs(values: readonly number[]): number {
  return values.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
}
