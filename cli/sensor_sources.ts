/**
 * The live row sources of a sensor, from its config: Pixie (rules with `stream_filter`) and the node's own
 * packets (rules with `packets:` and `packets.interface` set), run side by side under the reader's supervision;
 * this node's pod metadata for packet taps; and this node's pods as the Pixie queries' scope (`pixie.scope: pods`).
 * @module
 */
import type { RowSource } from "../actors/pixie_reader.ts";
import { configIssue } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { inClusterApi, PodWatch } from "../kube/pod_watch.ts";
import { bpfFilter } from "../packets/taps.ts";
import { LivePacketSource } from "../packets/live_source.ts";
import { isEthernetInterface } from "../packets/live_capture.ts";
import { PodScope, type PodScopeOptions } from "../pixie/live_source.ts";
import type { Row } from "../pixie/row.ts";
import { logger } from "../util/log.ts";
import { packetTapsFromConfig, usesPixie } from "./packet_taps.ts";

const log = logger("run");

/**
 * Runs several sources at once; the first failure stops the others and rejects (the supervisor restarts all). A
 * drained stop (util/drain_stop.ts) reaches each source as such (`AbortSignal.any` keeps its reason), and the run
 * resolves once every one has handed on what it held.
 */
export class CombinedRowSource implements RowSource {
  readonly #sources: readonly RowSource[];
  readonly skipTo?: RowSource["skipTo"];
  readonly inputBusy?: RowSource["inputBusy"];
  readonly responses?: RowSource["responses"];

  /**
   * Combines `sources`. What the reader's late rows use of a source (skipping ahead, how busy its input is) is
   * passed on from the sources that have it: without them a sensor reading Pixie beside packets could not skip
   * its Pixie backlog, and judged its reading by the thread's demand, which the run task's permissions cannot read
   * (thread_demand.ts), so it never shed: its lag and memory grew without bound, as Pixie alone's did before both.
   */
  constructor(sources: readonly RowSource[]) {
    this.#sources = sources;
    const skipping = sources.filter((s) => s.skipTo !== undefined);
    if (skipping.length > 0) this.skipTo = (t) => skipping.forEach((s) => s.skipTo!(t));
    // One thread reads them all: input waiting in one of them waits for the same thread as the others'.
    const metered = sources.filter((s) => s.inputBusy !== undefined);
    if (metered.length > 0) this.inputBusy = () => Math.max(...metered.map((s) => s.inputBusy!()));
    // Pixie beside packets: a quiet node carries event time on while Pixie answers (its outage's rows come later).
    const answering = sources.filter((s) => s.responses !== undefined);
    if (answering.length > 0) this.responses = () => answering.reduce((n, s) => n + s.responses!(), 0);
  }

  /** Runs every source until `signal` aborts or one fails. */
  run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void> {
    return this.#all((s, all) => s.run(emit, all), signal);
  }

  /**
   * {@link run}, handing on each source's rows in the batches it makes (Pixie's responses); a source without
   * batches hands on each row as a batch of one. Without this the reader took Pixie's rows one message at a
   * time as soon as packets were captured beside it.
   */
  runBatches(emit: (rows: readonly Row[]) => Promise<void>, signal: AbortSignal): Promise<void> {
    return this.#all(
      (s, all) => s.runBatches ? s.runBatches(emit, all) : s.run((row) => emit([row]), all),
      signal,
    );
  }

  async #all(start: (s: RowSource, all: AbortSignal) => Promise<void>, signal: AbortSignal): Promise<void> {
    const inner = new AbortController();
    const all = AbortSignal.any([signal, inner.signal]);
    try {
      await Promise.all(this.#sources.map((s) =>
        start(s, all).catch((e) => {
          inner.abort();
          throw e;
        })
      ));
    } finally {
      inner.abort();
    }
  }
}

/** What the packet side of a sensor needs at run time. */
export interface PacketSide {
  source: LivePacketSource;
  pods?: PodWatch;
  stop(): Promise<void>;
}

/**
 * The live packet source of the config, or undefined when no rule reads packets or no interface is set (a rule
 * with `packets:` and no `packets.interface` is a configuration for pcap files only; said once at start).
 */
export async function packetSide(config: Config, metrics: FsmMetrics): Promise<PacketSide | undefined> {
  const taps = packetTapsFromConfig(config);
  if (taps.length === 0) return undefined;
  const p = config.packets;
  if (p.interface === "") {
    log.warn("packets: taps are configured but packets.interface is empty: nothing is captured live", {
      taps: taps.map((t) => t.query),
    });
    return undefined;
  }
  let pods: PodWatch | undefined;
  let live: LivePacketSource | undefined;
  if (p.pod_metadata !== "off") {
    const api = await inClusterApi();
    if (api) {
      pods = new PodWatch({ api, node: config.node, onChange: () => live?.invalidatePods() });
      // The first list normally takes milliseconds; a slow or failing API must not hold up the sensor (its
      // pods then arrive later, and taps are decided again).
      if (!(await pods.start(10_000))) {
        log.warn("no pod list from the Kubernetes API yet; capturing, pods are named once it answers", {});
      }
    } else if (p.pod_metadata === "kubernetes") {
      // A config error (exit 2) at the setting, as pixie.scope: pods without an API is (pixiePodScope).
      throw configIssue(
        config,
        ["packets", "pod_metadata"],
        "a sensor in a pod with its ServiceAccount token and get/list/watch on pods (k8s/packet-capture/)",
        "kubernetes, but there is no Kubernetes API here (KUBERNETES_SERVICE_HOST unset or the token unreadable)",
        "apply the k8s/packet-capture/ component, or set packets.pod_metadata: auto or off",
      );
    }
  }
  const needsPods = taps.filter((t) => t.pod !== undefined || t.direction !== "any");
  if (needsPods.length > 0 && !pods) {
    log.warn("packet taps filter on pods, but there is no pod metadata here: they match nothing", {
      taps: needsPods.map((t) => t.query),
    });
  }
  const filter = bpfFilter(taps, { vlanTags: await isEthernetInterface(p.interface) });
  const source = live = new LivePacketSource({
    capture: {
      tcpdump: p.tcpdump,
      iface: p.interface,
      filter,
      snaplen: p.snaplen,
      bufferMib: p.buffer_mib,
    },
    taps,
    node: config.node,
    pods: pods ? (addr, port) => pods!.resolve(addr, port) : undefined,
    reorderMs: p.reorder_ms,
    metrics: {
      frames: (n, bytes) => metrics.packetsRead(n, bytes),
      kernelDrops: (k, i) => metrics.packetsDropped(k, i),
      skipped: (reason, n) => metrics.packetsSkipped(reason, n),
    },
  });
  log.info("live packet capture configured", { iface: p.interface, filter, taps: taps.length });
  return { source, pods, stop: async () => await pods?.stop() };
}

/** Whether the config needs Pixie at all. */
export { usesPixie };

/** This node's pods as the scope of its Pixie queries, with the watch that keeps it current. */
export interface PixiePodScope {
  scope: PodScope;
  watch: PodWatch;
  stop(): Promise<void>;
}

/** What {@link pixiePodScope} may be given instead of the environment (tests). */
export interface PixiePodScopeOptions {
  /** How long to wait for the first pod list (ms; default 10,000). */
  waitMs?: number;
  /** The Kubernetes API's environment (default: the process's). */
  env?: (name: string) => string | undefined;
  /** Rate limit and linger of the scope (default 5 s and 30 s). */
  scope?: Pick<PodScopeOptions, "minIntervalMs" | "lingerMs">;
}

/**
 * With `pixie.scope: pods`, watches this node's pods and returns them as the Pixie queries' scope; undefined with
 * `pixie.scope: node`. Without a Kubernetes API (no ServiceAccount token), or with `pixie.direct_addr`, it is a
 * config error (exit 2); an API that gives no pod list in time (refused, forbidden, unreachable) fails the start
 * with its reason: a sensor that cannot tell its pods must not guess, nor fall back to the cluster-wide cost.
 */
export async function pixiePodScope(
  config: Config,
  opts: PixiePodScopeOptions = {},
): Promise<PixiePodScope | undefined> {
  if (config.pixie.scope !== "pods") return undefined;
  if (config.pixie.direct_addr !== "") {
    throw configIssue(
      config,
      ["pixie", "scope"],
      "node with pixie.direct_addr (a standalone PEM only sees its own node and has no pod metadata)",
      "pods",
    );
  }
  const api = await inClusterApi(opts.env);
  if (!api) {
    throw configIssue(
      config,
      ["pixie", "scope"],
      "a sensor in a pod with its ServiceAccount token and get/list/watch on pods (k8s/pixie-pod-scope/)",
      "pods, but there is no Kubernetes API here (KUBERNETES_SERVICE_HOST unset or the token unreadable)",
      "apply the k8s/pixie-pod-scope/ component, or set pixie.scope: node",
    );
  }
  // The scope is made from the first list; changes before that have nothing to update.
  const ref: { scope?: PodScope } = {};
  const watch = new PodWatch({ api, node: config.node, onChange: () => ref.scope?.update() });
  const waitMs = opts.waitMs ?? 10_000;
  if (!(await watch.start(waitMs))) {
    const why = watch.lastError ?? "no answer";
    await watch.stop();
    throw new Error(
      `pixie.scope is pods, but the Kubernetes API gave no pod list of node ${config.node} within ${waitMs} ms ` +
        `(${why}): the sensor needs its ServiceAccount token and get/list/watch on pods (k8s/pixie-pod-scope/)`,
    );
  }
  const scope = ref.scope = new PodScope({ pods: () => watch.pods(true), ...opts.scope });
  log.info("pixie queries scoped to this node's pods", { node: config.node, pods: scope.pods.length });
  return {
    scope,
    watch,
    stop: async () => {
      scope.close();
      await watch.stop();
    },
  };
}
