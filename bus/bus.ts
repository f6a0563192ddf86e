/**
 * The bus that carries signatures to every node and match records to storage. In-process for one process
 * (tests, `analyze`, `demo`), NATS JetStream across nodes.
 * @module
 */
import type { Signature } from "../audio/types.ts";
import type { MatchRecord } from "../report/records.ts";

/** Delivery handler; it must not throw for a single bad message (the bus counts and skips). */
export type Handler<T> = (msg: T) => void | Promise<void>;

/** What a node needs from the bus. */
export interface Bus {
  /**
   * Publishes a signature to every node (deduplicated by signature id). `encoded`: its wire form
   * (audio/fingerprint/signature.ts `encodeSignature`) when the caller already has it, so it is encoded once.
   */
  publishSignature(sig: Signature, encoded?: Uint8Array): Promise<void>;
  /**
   * Publishes a match record (deduplicated by signature id, stage and target stream). The record is the one the
   * exporter built for its sinks: each match is rendered once.
   */
  publishMatch(rec: MatchRecord): Promise<void>;
  /** Receives every signature of the given measurements (all when empty), including this node's own. */
  subscribeSignatures(
    measurements: readonly string[],
    handler: Handler<Signature>,
    opts?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Waits until everything published so far is acknowledged (or the deadline passes). */
  flush(deadlineMs: number): Promise<void>;
  /**
   * Waits until this bus's signature subscriptions have handed on every signature it has published and had
   * acknowledged so far, its own node's included (or the deadline passes; false then). Absent: a bus that delivers
   * within the publish (in-process), so {@link flush} is enough.
   */
  delivered?(deadlineMs: number): Promise<boolean>;
  /**
   * Why the bus's connection ended for good while the bus was open (its client gave up: nothing is published or
   * received again until the process restarts), or undefined while it stands. Absent: a bus that cannot lose one.
   */
  lost?(): string | undefined;
  close(): Promise<void>;
}

/** Where a signature subscription starts (the in-process bus has no history and ignores it). */
export interface SubscribeOptions {
  /** Wall-clock ms since the epoch of the oldest stored signature wanted; absent: only new ones. */
  startTimeMs?: number;
}

/** A live subscription. */
export interface Subscription {
  unsubscribe(): Promise<void>;
}
