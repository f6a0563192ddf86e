/**
 * Watches Vizier's HealthCheck stream and keeps one boolean for `/readyz`: healthy while the latest status is OK
 * and fresh. A broken stream, or one quiet for the stale time, reads as unhealthy and is re-opened with backoff.
 *
 * A standalone PEM (`client.cloud === false`) answers HealthCheck with OK at once and sends no status at all
 * (pixie-io/pixie src/experimental/standalone_pem/vizier_server.h), so there a call that ends OK counts as healthy
 * and is repeated every `recheckMs`.
 * @module
 */

import { logger, redact } from "../util/log.ts";
import { QuietTimer } from "../util/quiet_timer.ts";
import type { PixieStatus } from "./messages.ts";
import { backoffDelay, type BackoffOptions, type StreamClock, systemClock } from "./stream.ts";

const log = logger("pixie");

/** What {@link PixieHealth} needs from a client ({@link PixieClient} has it). */
export interface HealthSource {
  /** False for a standalone PEM (its HealthCheck sends no status). */
  readonly cloud?: boolean;
  healthCheck(clusterId: string, signal?: AbortSignal): AsyncIterable<PixieStatus>;
}

/** Options of {@link PixieHealth}. */
export interface PixieHealthOptions {
  client: HealthSource;
  clusterId: string;
  /** Called on every change of the healthy flag. */
  onChange?: (healthy: boolean, reason: string) => void;
  /** A status older than this no longer counts (Vizier sends one every 5 s). */
  staleMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** A standalone PEM's HealthCheck is called again after this long (ms; default 5,000, Vizier's interval). */
  recheckMs?: number;
  clock?: StreamClock;
  random?: () => number;
}

/** Vizier health for `/readyz`. */
export class PixieHealth {
  readonly #opts: PixieHealthOptions;
  readonly #clock: StreamClock;
  readonly #abort = new AbortController();
  #healthy = false;
  #lastOkMs = -Infinity;
  #done: Promise<void> | undefined;

  /** Creates the watcher; call {@link start}. */
  constructor(opts: PixieHealthOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** True while the latest status is OK and younger than `staleMs` (default 15 s). */
  get healthy(): boolean {
    return this.#healthy && this.#clock.nowMs() - this.#lastOkMs < (this.#opts.staleMs ?? 15_000);
  }

  #set(healthy: boolean, reason: string): void {
    if (healthy) this.#lastOkMs = this.#clock.nowMs();
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    log.info("pixie health", { healthy, reason });
    this.#opts.onChange?.(healthy, reason);
  }

  /** Starts watching in the background (idempotent). */
  start(): void {
    this.#done ??= this.#loop();
  }

  /** Stops watching; resolves when the stream is closed. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = { initialMs: 1_000, maxMs: 30_000, minMs: 250, stableMs: 30_000, ...this.#opts.backoff };
    const random = this.#opts.random ?? Math.random;
    let attempt = 0;
    const standalone = this.#opts.client.cloud === false;
    while (!signal.aborted) {
      const since = this.#clock.nowMs();
      let reason = "health stream ended";
      let statuses = 0;
      let failed = false;
      // A stream can go quiet without failing (a proxy that keeps the call open after its upstream went away):
      // no status for the stale time ends the call, which is then opened again like a failed one.
      const call = new AbortController();
      const onAbort = () => call.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      const staleMs = this.#opts.staleMs ?? 15_000;
      let stalled = false;
      const quiet = new QuietTimer(staleMs, () => {
        stalled = true;
        call.abort();
      });
      try {
        for await (const status of this.#opts.client.healthCheck(this.#opts.clusterId, call.signal)) {
          quiet.touch();
          statuses++;
          this.#set(
            status.code === 0,
            status.code === 0 ? "ok" : redact(`status ${status.code} ${status.message}`),
          );
        }
      } catch (e) {
        failed = true;
        reason = redact(e instanceof Error ? e.message : String(e));
      } finally {
        quiet.stop();
        signal.removeEventListener("abort", onAbort);
      }
      if (signal.aborted) break;
      if (stalled) {
        failed = true;
        reason = `no status for ${staleMs} ms`;
      }
      if (standalone && !failed && statuses === 0) {
        // The standalone PEM's answer: the call itself succeeding is all the health it reports.
        this.#set(true, "standalone PEM answered HealthCheck");
        attempt = 0;
        await this.#clock.sleep(this.#opts.recheckMs ?? 5_000, signal);
        continue;
      }
      this.#set(false, reason);
      if (this.#clock.nowMs() - since >= backoff.stableMs) attempt = 0;
      await this.#clock.sleep(backoffDelay(attempt++, backoff, random), signal);
    }
    this.#healthy = false;
  }
}
