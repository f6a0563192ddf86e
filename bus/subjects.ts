/**
 * The NATS subject layout of fsm-px (a contract between nodes of different versions):
 *
 * ```
 * fsmpx.sig.<measurement>                 signature (binary codec), Nats-Msg-Id = signature id    (in the stream)
 * fsmpx.match.<measurement>.<stage>       match record (JSON), Nats-Msg-Id = matchDedupeId        (in the stream)
 *                                         (both ids as jetstream.ts wireMsgId sends them)
 * fsmpx.clock.n.<node>                    clock-skew request/reply (core NATS, not stored; node %-encoded)
 * fsmpx.clock.hello                       clock-skew peer discovery (core NATS, not stored)
 * ```
 * @module
 */
import type { MatchRecord } from "../report/records.ts";

/** Prefix of every signature subject. */
export const SIG_PREFIX = "fsmpx.sig";
/** Prefix of every match subject. */
export const MATCH_PREFIX = "fsmpx.match";
/** Prefix of the clock-skew subjects (never captured by the stream: a request there must reach the peer). */
export const CLOCK_PREFIX = "fsmpx.clock";
/** Peer discovery for the clock-skew estimator. */
export const CLOCK_HELLO_SUBJECT = `${CLOCK_PREFIX}.hello`;

/** Subjects the stream captures. */
export const STREAM_SUBJECTS: readonly string[] = [`${SIG_PREFIX}.>`, `${MATCH_PREFIX}.>`];

/** Message kinds on the stream (metric label values). */
export type MessageKind = "signature" | "match";

/**
 * A token that may stand in a subject as it is: measurement and stage names already follow
 * `^[a-z][a-z0-9_]*$` (config/schema.ts), which this accepts.
 */
const PLAIN_TOKEN = /^[A-Za-z0-9_-]+$/;

/** True if `s` can be one subject token as it is (no dots, wildcards, spaces or empty). */
export function isSubjectToken(s: string): boolean {
  return PLAIN_TOKEN.test(s);
}

/**
 * Encodes an arbitrary name (a Kubernetes node name has dots) as one subject token: bytes outside
 * [A-Za-z0-9_-] become `%XX`. Reversible, and stable across nodes.
 */
export function encodeToken(s: string): string {
  if (s !== "" && isSubjectToken(s)) return s;
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(b);
    out += PLAIN_TOKEN.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out === "" ? "%" : out;
}

/** Thrown for a name that cannot be a subject token (counted by the publisher as `bad_subject`). */
export class SubjectError extends Error {
  override name = "SubjectError";
}

function token(kind: string, s: string): string {
  if (!isSubjectToken(s)) {
    throw new SubjectError(`${kind} ${JSON.stringify(s)} cannot be a NATS subject token`);
  }
  return s;
}

/** `fsmpx.sig.<measurement>` */
export function signatureSubject(measurement: string): string {
  return `${SIG_PREFIX}.${token("measurement", measurement)}`;
}

/** `fsmpx.match.<measurement>.<stage>` */
export function matchSubject(measurement: string, stage: string): string {
  return `${MATCH_PREFIX}.${token("measurement", measurement)}.${token("stage", stage)}`;
}

/** The filter subject of a consumer of all matches of one measurement. */
export function matchFilter(measurement: string): string {
  return `${MATCH_PREFIX}.${token("measurement", measurement)}.>`;
}

/** `fsmpx.clock.n.<node>`: where a node answers clock requests (`n.` keeps a node named "hello" apart). */
export function clockSubject(node: string): string {
  return `${CLOCK_PREFIX}.n.${encodeToken(node)}`;
}

/** What a stream subject names. */
export type ParsedSubject =
  | { kind: "signature"; measurement: string }
  | { kind: "match"; measurement: string; stage: string };

/** Parses a stream subject; null for anything else. */
export function parseSubject(subject: string): ParsedSubject | null {
  const parts = subject.split(".");
  if (parts[0] !== "fsmpx") return null;
  if (parts[1] === "sig" && parts.length === 3) return { kind: "signature", measurement: parts[2]! };
  if (parts[1] === "match" && parts.length === 4) {
    return { kind: "match", measurement: parts[2]!, stage: parts[3]! };
  }
  return null;
}

/** Dedupe key of a match record (also its JetStream message id): signature id, stage and target stream. */
export function matchDedupeId(m: Pick<MatchRecord, "signature_id" | "stage" | "target">): string {
  return `${m.signature_id}:${m.stage}:${m.target.node}:${m.target.stream}`;
}
