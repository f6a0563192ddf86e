/**
 * The pods of this node, from the Kubernetes API: list, then watch with `fieldSelector=spec.nodeName=<node>`,
 * resumed from the last resourceVersion after a dropped watch and re-listed when the server answers 410 Gone.
 * Maps pod IPs (and, for host-network pods, host IP + declared container ports) to `namespace/pod`, so packets
 * can be labelled with the pod on either side. Needs a ServiceAccount with get/list/watch on pods only.
 * Config-free: the caller passes the API address, token and CA.
 * @module
 */
import { forgetSecret, logger, registerSecret } from "../util/log.ts";

const log = logger("kube");

/** Where the API is and how to authenticate. */
export interface KubeApi {
  /** `https://host:port` (or `http://` for a local test server). */
  baseUrl: string;
  /** Bearer token (a Secret: never logged). */
  token?: string;
  /**
   * A file holding the token, read again before every list and watch (then `token` is only the first value). The
   * kubelet rotates a pod's projected ServiceAccount token (about hourly) and the API server refuses an expired
   * one, so a watch that runs for days must not keep the token it started with.
   */
  tokenFile?: string;
  /** PEM CA bundle for the API server's certificate. */
  caCert?: string;
}

/**
 * The in-cluster API from the environment and the ServiceAccount mount (`FSMPX_SERVICE_ACCOUNT_DIR` moves the
 * mount, for a sensor outside a pod); undefined outside a pod.
 */
export async function inClusterApi(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
  dir = env("FSMPX_SERVICE_ACCOUNT_DIR") || "/var/run/secrets/kubernetes.io/serviceaccount",
): Promise<KubeApi | undefined> {
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT") ?? "443";
  if (!host) return undefined;
  try {
    const token = (await Deno.readTextFile(`${dir}/token`)).trim();
    const caCert = await Deno.readTextFile(`${dir}/ca.crt`);
    const h = host.includes(":") ? `[${host}]` : host;
    return { baseUrl: `https://${h}:${port}`, token, tokenFile: `${dir}/token`, caCert };
  } catch (e) {
    log.warn("in a pod but the ServiceAccount token is not readable; pods will be addresses", {
      error: (e as Error).message,
    });
    return undefined;
  }
}

/** The parts of a Pod object this module reads. */
interface PodObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  spec?: {
    hostNetwork?: boolean;
    nodeName?: string;
    containers?: { ports?: { containerPort?: number; hostPort?: number; protocol?: string }[] }[];
  };
  status?: { podIP?: string; podIPs?: { ip?: string }[]; hostIP?: string; phase?: string };
}

interface WatchEvent {
  type?: string;
  object?: PodObject & { code?: number; message?: string };
}

/** Counters of the watch, for metrics and tests. */
export interface PodWatchStats {
  pods: number;
  lists: number;
  watches: number;
  /** Watches that ended with 410 Gone (history compacted): answered by a fresh list. */
  expired: number;
  errors: number;
}

/** Options of {@link PodWatch}. */
export interface PodWatchOptions {
  api: KubeApi;
  node: string;
  /** Longest wait between reconnects. */
  maxBackoffMs?: number;
  /** Server-side watch timeout (the API closes the watch after it; we resume). */
  watchTimeoutSeconds?: number;
  /** Called after the set of pods changed (a list or a watch event). */
  onChange?: () => void;
}

/** A live map from addresses to this node's pods. */
export class PodWatch {
  readonly #opts: PodWatchOptions;
  readonly #pods = new Map<string, PodObject>();
  #byIp = new Map<string, string>();
  #byIpPort = new Map<string, string>();
  #resourceVersion = "";
  /**
   * Failed lists and watches since the API last answered one with success (a list, or a watch's 200): the
   * exponent of the retry delay. Not reset merely because a list is no longer needed: with a good list and every
   * watch failing (API server down, proxy refusing), each retry must wait longer, not 250-500 ms for ever.
   */
  #failures = 0;
  #currentToken: string | undefined;
  #previousToken: string | undefined;
  #client: Deno.HttpClient | undefined;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #ready: Promise<void>;
  #markReady!: () => void;
  readonly stats: PodWatchStats = { pods: 0, lists: 0, watches: 0, expired: 0, errors: 0 };
  /** Why the last list or watch failed (with its cause), until one succeeds; for a caller that must say why. */
  lastError: string | undefined;

  /** Creates the watch; {@link start} runs it. */
  constructor(opts: PodWatchOptions) {
    this.#opts = opts;
    registerSecret(opts.api.token);
    this.#currentToken = opts.api.token;
    this.#ready = new Promise((r) => this.#markReady = r);
    if (opts.api.caCert) this.#client = Deno.createHttpClient({ caCerts: [opts.api.caCert] });
  }

  /**
   * Starts listing and watching (retried with backoff until {@link stop}); resolves once the first list is in,
   * or after `waitMs` (then the pods arrive later, through `onChange`): a slow API must not hold up a sensor.
   */
  async start(waitMs = Infinity): Promise<boolean> {
    this.#running ??= this.#loop();
    if (waitMs === Infinity) {
      await this.#ready;
      return true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((r) => timer = setTimeout(() => r(false), waitMs));
    const ok = await Promise.race([this.#ready.then(() => true as const), late]);
    clearTimeout(timer);
    return ok;
  }

  /** Stops the watch. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running?.catch(() => {});
    this.#client?.close();
  }

  /**
   * The pod that owns `addr` (and `port`): a host-network pod by host IP and declared port, else the pod whose IP
   * it is. Undefined when no pod of this node has it (another node's pod, a Service IP, the outside world).
   */
  resolve(addr: string, port: number): string | undefined {
    return this.#byIpPort.get(`${addr}|${port}`) ?? this.#byIp.get(addr);
  }

  /**
   * Pods known now, as `namespace/pod`; with `running`, without those that have finished (phase Succeeded or
   * Failed: they send nothing more).
   */
  pods(running = false): string[] {
    return [...this.#pods.values()]
      .filter((p) => !running || (p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed"))
      .map(podName).filter((n): n is string => n !== undefined);
  }

  async #loop(): Promise<void> {
    let expiredInRow = 0;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === "") {
          // A server that answers 410 even to a fresh list's version (a lagging watch cache) must not spin us.
          if (expiredInRow > 1) {
            await sleep(Math.min(this.#opts.maxBackoffMs ?? 30_000, 100 * expiredInRow), signal);
          }
          await this.#list();
        }
        this.#markReady();
        this.lastError = undefined;
        const expiredBefore = this.stats.expired;
        await this.#watch();
        expiredInRow = this.stats.expired > expiredBefore ? expiredInRow + 1 : 0;
      } catch (e) {
        if (signal.aborted) return;
        this.stats.errors++;
        const attempt = ++this.#failures;
        const wait = Math.min(this.#opts.maxBackoffMs ?? 30_000, 250 * 2 ** Math.min(attempt, 8));
        const err = e as Error & { cause?: unknown };
        const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
        this.lastError = `${err.message}${cause}`;
        log.warn("pod watch failed; retrying", { error: `${err.message}${cause}`, retry_ms: wait });
        await sleep(wait * (0.5 + Math.random() / 2), signal);
      }
    }
  }

  #url(watch: boolean): string {
    const q = new URLSearchParams({ fieldSelector: `spec.nodeName=${this.#opts.node}` });
    if (watch) {
      q.set("watch", "1");
      q.set("allowWatchBookmarks", "true");
      q.set("resourceVersion", this.#resourceVersion);
      q.set("timeoutSeconds", String(this.#opts.watchTimeoutSeconds ?? 300));
    }
    return `${this.#opts.api.baseUrl}/api/v1/pods?${q}`;
  }

  async #init(): Promise<RequestInit & { client?: Deno.HttpClient }> {
    const headers: Record<string, string> = { accept: "application/json" };
    const token = await this.#token();
    if (token) headers.authorization = `Bearer ${token}`;
    return { headers, signal: this.#abort.signal, client: this.#client };
  }

  /** The current token: the token file as it is now (rotated by the kubelet), else the last one read. */
  async #token(): Promise<string | undefined> {
    const file = this.#opts.api.tokenFile;
    if (file) {
      try {
        const t = (await Deno.readTextFile(file)).trim();
        if (t !== "" && t !== this.#currentToken) {
          registerSecret(t);
          // The one before stays masked (a request may still be on its way with it); older ones are no longer sent.
          forgetSecret(this.#previousToken);
          this.#previousToken = this.#currentToken;
          this.#currentToken = t;
        }
      } catch (e) {
        // Mid-rotation (the kubelet swaps a symlink) or gone: keep the last token; a refusal says the rest.
        log.debug("ServiceAccount token file unreadable; keeping the last token", {
          error: (e as Error).message,
        });
      }
    }
    return this.#currentToken;
  }

  async #list(): Promise<void> {
    const res = await fetch(this.#url(false), await this.#init());
    if (!res.ok) {
      const body = await res.text().catch(() => "");
      throw new Error(`listing pods: HTTP ${res.status}${hint(res.status)} ${body.slice(0, 200)}`);
    }
    const list = await res.json() as { metadata?: { resourceVersion?: string }; items?: PodObject[] };
    this.#pods.clear();
    for (const p of list.items ?? []) {
      const uid = p.metadata?.uid ?? `${p.metadata?.namespace}/${p.metadata?.name}`;
      this.#pods.set(uid, p);
    }
    this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    this.#failures = 0;
    this.stats.lists++;
    this.#reindex();
    log.info("pods of this node listed", { node: this.#opts.node, pods: this.#pods.size });
  }

  async #watch(): Promise<void> {
    // The server ends a watch at timeoutSeconds. One still open well past that is a dead connection (a NAT or load
    // balancer that dropped it without a reset): the read would wait for ever and every later event be lost, so it
    // is abandoned and resumed from the last resourceVersion.
    const timeoutS = this.#opts.watchTimeoutSeconds ?? 300;
    const overdue = new AbortController();
    const timer = setTimeout(() => overdue.abort(), (timeoutS + Math.min(30, timeoutS)) * 1000);
    try {
      await this.#watchUntil(AbortSignal.any([this.#abort.signal, overdue.signal]));
    } catch (e) {
      if (!overdue.signal.aborted || this.#abort.signal.aborted) throw e;
      log.warn("pod watch open past its timeout without ending; resuming", { timeout_s: timeoutS });
    } finally {
      clearTimeout(timer);
    }
  }

  async #watchUntil(signal: AbortSignal): Promise<void> {
    const res = await fetch(this.#url(true), { ...await this.#init(), signal });
    if (res.status === 410) {
      this.stats.expired++;
      this.#resourceVersion = "";
      await res.body?.cancel();
      return;
    }
    if (!res.ok || !res.body) {
      const body = await res.text().catch(() => "");
      throw new Error(`watching pods: HTTP ${res.status}${hint(res.status)} ${body.slice(0, 200)}`);
    }
    this.stats.watches++;
    this.#failures = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== "") this.#event(line);
          if (this.#resourceVersion === "") return; // 410 inside the stream: re-list
        }
      }
    } finally {
      reader.releaseLock();
      await res.body.cancel().catch(() => {});
    }
  }

  #event(line: string): void {
    let ev: WatchEvent;
    try {
      ev = JSON.parse(line) as WatchEvent;
    } catch {
      this.stats.errors++;
      return;
    }
    const o = ev.object;
    if (ev.type === "ERROR") {
      if (o?.code === 410) {
        this.stats.expired++;
        this.#resourceVersion = "";
        return;
      }
      throw new Error(`watch error: ${o?.message ?? "unknown"}`);
    }
    if (o?.metadata?.resourceVersion) this.#resourceVersion = o.metadata.resourceVersion;
    if (ev.type === "BOOKMARK" || !o) return;
    const uid = o.metadata?.uid ?? `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (ev.type === "DELETED") this.#pods.delete(uid);
    else if (ev.type === "ADDED" || ev.type === "MODIFIED") this.#pods.set(uid, o);
    this.#reindex();
  }

  #reindex(): void {
    const byIp = new Map<string, string>();
    const byIpPort = new Map<string, string>();
    for (const p of this.#pods.values()) {
      const name = podName(p);
      if (!name || p.status?.phase === "Succeeded" || p.status?.phase === "Failed") continue;
      const ips = new Set<string>();
      if (p.status?.podIP) ips.add(p.status.podIP);
      for (const i of p.status?.podIPs ?? []) if (i.ip) ips.add(i.ip);
      if (p.spec?.hostNetwork) {
        // A host-network pod shares the node's addresses: only its declared ports tell it apart.
        for (const c of p.spec.containers ?? []) {
          for (const port of c.ports ?? []) {
            const n = port.hostPort ?? port.containerPort;
            if (n === undefined) continue;
            for (const ip of ips) byIpPort.set(`${ip}|${n}`, name);
          }
        }
      } else {
        for (const ip of ips) byIp.set(ip, name);
      }
    }
    this.#byIp = byIp;
    this.#byIpPort = byIpPort;
    this.stats.pods = this.#pods.size;
    this.#opts.onChange?.();
  }
}

function podName(p: PodObject): string | undefined {
  const ns = p.metadata?.namespace;
  const name = p.metadata?.name;
  return ns && name ? `${ns}/${name}` : undefined;
}

function hint(status: number): string {
  if (status === 401) return " (the ServiceAccount token was refused)";
  if (status === 403) {
    return " (the ServiceAccount needs get/list/watch on pods: see k8s/packet-capture/ or k8s/pixie-pod-scope/)";
  }
  return "";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
