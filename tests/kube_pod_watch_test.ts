/**
 * PodWatch against a loopback API server that follows the Kubernetes list/watch contract: a list returns the
 * collection's resourceVersion; a watch from it streams newline-delimited events; a resourceVersion older than
 * the server keeps answers 410 Gone (as an HTTP status, or as an ERROR event inside the stream) and the client
 * must list again; the server closes watches at timeoutSeconds.
 */
import assert from "node:assert/strict";
import { PodWatch } from "../kube/pod_watch.ts";
import { setLogSink } from "../util/log.ts";

interface Pod {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
  spec: { nodeName: string; hostNetwork?: boolean; containers: { ports?: { containerPort: number }[] }[] };
  status: { podIP: string; phase: string };
}

class FakeApi {
  rv = 100;
  pods = new Map<string, Pod>();
  events: { rv: number; type: string; pod: Pod }[] = [];
  /** Oldest resourceVersion a watch may start from (older: 410). */
  compactedBelow = 0;
  watchers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  requests: string[] = [];
  enc = new TextEncoder();
  server: Deno.HttpServer;
  /** Send 410 as an in-stream ERROR event instead of an HTTP status. */
  goneInStream = false;

  constructor() {
    this.server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => this.handle(req));
  }
  get url() {
    return `http://127.0.0.1:${(this.server.addr as Deno.NetAddr).port}`;
  }
  handle(req: Request): Response {
    const u = new URL(req.url);
    this.requests.push(u.search);
    if (req.headers.get("authorization") !== "Bearer sekrit") return new Response("no", { status: 401 });
    const node = /spec\.nodeName=(.*)/.exec(u.searchParams.get("fieldSelector") ?? "")?.[1];
    const mine = (p: Pod) => p.spec.nodeName === node;
    if (u.searchParams.get("watch") !== "1") {
      return Response.json({
        kind: "PodList",
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.pods.values()].filter(mine),
      });
    }
    const from = Number(u.searchParams.get("resourceVersion"));
    if (from < this.compactedBelow) {
      if (!this.goneInStream) return Response.json({ code: 410, reason: "Expired" }, { status: 410 });
      const body = JSON.stringify({
        type: "ERROR",
        object: { kind: "Status", code: 410, message: "too old" },
      });
      return new Response(body + "\n");
    }
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        ctl = c;
        this.watchers.add(c);
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
      if (pod.spec.nodeName === "node-a") w.enqueue(this.line(type, pod));
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

function pod(name: string, ip: string, node = "node-a", extra: Partial<Pod["spec"]> = {}): Pod {
  return {
    metadata: { name, namespace: "voice", uid: `uid-${name}`, resourceVersion: "" },
    spec: { nodeName: node, containers: [{}], ...extra },
    status: { podIP: ip, phase: "Running" },
  };
}

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

Deno.test("PodWatch lists this node's pods, follows the watch, and resolves host-network pods by port", async () => {
  const api = new FakeApi();
  api.put("ADDED", pod("telephony-0", "10.1.0.5"));
  api.put("ADDED", pod("asr-0", "10.2.0.9", "node-b"));
  api.put(
    "ADDED",
    pod("sbc-0", "192.168.1.10", "node-a", {
      hostNetwork: true,
      containers: [{ ports: [{ containerPort: 5060 }, { containerPort: 40000 }] }],
    }),
  );
  const w = new PodWatch({ api: { baseUrl: api.url, token: "sekrit" }, node: "node-a", maxBackoffMs: 50 });
  try {
    await w.start();
    assert.equal(w.resolve("10.1.0.5", 1234), "voice/telephony-0");
    assert.equal(w.resolve("10.2.0.9", 1234), undefined, "another node's pod is not ours");
    assert.equal(w.resolve("192.168.1.10", 40000), "voice/sbc-0");
    assert.equal(w.resolve("192.168.1.10", 22), undefined, "host network: only declared ports name the pod");

    api.put("ADDED", pod("relay-0", "10.1.0.6"));
    await until(() => w.resolve("10.1.0.6", 1) === "voice/relay-0", "a watched ADDED pod");
    api.put("DELETED", api.pods.get("uid-telephony-0")!);
    await until(() => w.resolve("10.1.0.5", 1) === undefined, "a watched DELETED pod");
    assert.equal(w.stats.lists, 1);
  } finally {
    await w.stop();
    await api.close();
  }
});

for (const inStream of [false, true]) {
  Deno.test(`PodWatch resumes a closed watch and re-lists after 410 Gone (${inStream ? "in-stream ERROR" : "HTTP 410"})`, async () => {
    const api = new FakeApi();
    api.goneInStream = inStream;
    api.put("ADDED", pod("a", "10.1.0.1"));
    const w = new PodWatch({ api: { baseUrl: api.url, token: "sekrit" }, node: "node-a", maxBackoffMs: 50 });
    try {
      await w.start();
      await until(() => api.watchers.size === 1, "the first watch");
      // The server ends the watch; an event happens while no watch is open: the resume must not miss it.
      api.closeWatches();
      api.put("ADDED", pod("b", "10.1.0.2"));
      await until(() => w.resolve("10.1.0.2", 1) === "voice/b", "the event from the resumed watch");
      assert.equal(w.stats.lists, 1, "a resume from the last resourceVersion needs no list");

      // History compacted past our resourceVersion: 410, then a fresh list that sees the current state.
      api.closeWatches();
      api.put("ADDED", pod("c", "10.1.0.3"));
      api.compactedBelow = api.rv; // our resourceVersion is older; a fresh list's is not
      await until(() => w.stats.expired >= 1 && w.stats.lists === 2, "a re-list after 410");
      await until(() => w.resolve("10.1.0.3", 1) === "voice/c", "the re-listed pod");
    } finally {
      await w.stop();
      await api.close();
    }
  });
}

Deno.test("PodWatch says why a refused token fails and never logs it", async () => {
  const api = new FakeApi();
  const w = new PodWatch({
    api: { baseUrl: api.url, token: "wrong-token-value" },
    node: "node-a",
    maxBackoffMs: 20,
  });
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  try {
    void w.start();
    await until(() => w.stats.errors >= 2, "retries");
  } finally {
    setLogSink(prev);
    await w.stop();
    await api.close();
  }
  assert.ok(lines.some((l) => l.includes("token was refused")), lines.join("\n"));
  assert.ok(!lines.some((l) => l.includes("wrong-token-value")));
});
