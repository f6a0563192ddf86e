/** A fake Kubernetes API for pods, for the pod watch and the live packet-capture tests. */
/** The parts of a Pod the fake serves. */
export interface Pod {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
  spec: { nodeName: string; hostNetwork?: boolean; containers: { ports?: { containerPort: number }[] }[] };
  status: { podIP: string; phase: string };
}

/**
 * A loopback Kubernetes API server for pods that follows the list/watch contract: a list returns the collection's
 * resourceVersion; a watch from it streams newline-delimited events; a resourceVersion older than the server keeps
 * answers 410 Gone (as an HTTP status, or as an ERROR event inside the stream); `fieldSelector spec.nodeName`
 * selects a node's pods; a bearer token is required. Optionally over TLS.
 */
export class FakeKubeApi {
  rv = 100;
  pods = new Map<string, Pod>();
  events: { rv: number; type: string; pod: Pod }[] = [];
  /** Oldest resourceVersion a watch may start from (older: 410). */
  compactedBelow = 0;
  watchers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  requests: string[] = [];
  readonly #watchNode = new Map<ReadableStreamDefaultController<Uint8Array>, string | undefined>();
  enc = new TextEncoder();
  server: Deno.HttpServer;
  /** Send 410 as an in-stream ERROR event instead of an HTTP status. */
  goneInStream = false;
  /** Watches opened now send nothing and never end (a connection dropped on the way without a reset). */
  blackholeWatches = false;
  /** Answer every watch (not the list) with this HTTP status, as an API server or proxy in trouble does. */
  watchStatus: number | undefined;

  /** The one token accepted (change it to rotate: the old one is then refused, as an expired token is). */
  token: string;
  readonly #tls: boolean;

  /** Starts the server; with `tls`, HTTPS with that certificate. */
  constructor(opts: { token?: string; tls?: { cert: string; key: string } } = {}) {
    this.token = opts.token ?? "sekrit";
    this.#tls = opts.tls !== undefined;
    this.server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {}, ...(opts.tls ?? {}) },
      (req) => this.handle(req),
    );
  }
  /** The server's port. */
  get port(): number {
    return (this.server.addr as Deno.NetAddr).port;
  }
  /** Base URL. */
  get url(): string {
    return `${this.#tls ? "https" : "http"}://127.0.0.1:${this.port}`;
  }
  handle(req: Request): Response {
    const u = new URL(req.url);
    this.requests.push(u.search);
    if (req.headers.get("authorization") !== `Bearer ${this.token}`) {
      return new Response("no", { status: 401 });
    }
    const node = /spec\.nodeName=(.*)/.exec(u.searchParams.get("fieldSelector") ?? "")?.[1];
    const mine = (p: Pod) => p.spec.nodeName === node;
    if (u.searchParams.get("watch") !== "1") {
      return Response.json({
        kind: "PodList",
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.pods.values()].filter(mine),
      });
    }
    if (this.watchStatus !== undefined) return new Response("unavailable", { status: this.watchStatus });
    const from = Number(u.searchParams.get("resourceVersion"));
    if (from < this.compactedBelow) {
      if (!this.goneInStream) return Response.json({ code: 410, reason: "Expired" }, { status: 410 });
      const body = JSON.stringify({
        type: "ERROR",
        object: { kind: "Status", code: 410, message: "too old" },
      });
      return new Response(body + "\n");
    }
    if (this.blackholeWatches) return new Response(new ReadableStream<Uint8Array>());
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        ctl = c;
        this.watchers.add(c);
        this.#watchNode.set(c, node);
        for (const e of this.events) {
          if (e.rv > from && mine(e.pod)) c.enqueue(this.line(e.type, e.pod));
        }
      },
      cancel: () => void this.watchers.delete(ctl),
    });
    return new Response(stream);
  }
  line(type: string, pod: Pod) {
    return this.enc.encode(JSON.stringify({ type, object: pod }) + "\n");
  }
  put(type: "ADDED" | "MODIFIED" | "DELETED", pod: Pod) {
    this.rv++;
    pod.metadata.resourceVersion = String(this.rv);
    if (type === "DELETED") this.pods.delete(pod.metadata.uid);
    else this.pods.set(pod.metadata.uid, pod);
    this.events.push({ rv: this.rv, type, pod });
    for (const w of this.watchers) {
      if (this.#watchNode.get(w) === pod.spec.nodeName) w.enqueue(this.line(type, pod));
    }
  }
  /** Ends every open watch (as the server does at timeoutSeconds or on restart). */
  closeWatches() {
    for (const w of this.watchers) w.close();
    this.watchers.clear();
  }
  async close() {
    this.closeWatches();
    await this.server.shutdown();
  }
}

/** A pod for the fake. */
export function pod(name: string, ip: string, node = "node-a", extra: Partial<Pod["spec"]> = {}): Pod {
  return {
    metadata: { name, namespace: "voice", uid: `uid-${name}`, resourceVersion: "" },
    spec: { nodeName: node, containers: [{}], ...extra },
    status: { podIP: ip, phase: "Running" },
  };
}

/**
 * A CA and a server certificate it signed for 127.0.0.1, as a cluster's API server has (rustls, under Deno's
 * fetch, refuses a self-signed certificate used as the server's own).
 */
export async function makeCaAndServerCert(): Promise<{ ca: string; cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-kube-cert-" });
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  try {
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
        "extendedKeyUsage=serverAuth\n",
    );
    await run([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=fsm-px test cluster CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    ]);
    await run([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
    ]);
    await run([
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "leaf.ext",
      "-out",
      "leaf.crt",
    ]);
    return {
      ca: await Deno.readTextFile(`${dir}/ca.crt`),
      cert: await Deno.readTextFile(`${dir}/leaf.crt`),
      key: await Deno.readTextFile(`${dir}/leaf.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
