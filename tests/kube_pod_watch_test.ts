/**
 * PodWatch against a loopback API server that follows the Kubernetes list/watch contract: a list returns the
 * collection's resourceVersion; a watch from it streams newline-delimited events; a resourceVersion older than
 * the server keeps answers 410 Gone (as an HTTP status, or as an ERROR event inside the stream) and the client
 * must list again; the server closes watches at timeoutSeconds.
 */
import assert, { equal, ok } from "node:assert/strict";
import { inClusterApi, PodWatch } from "../kube/pod_watch.ts";
import { setLogSink } from "../util/log.ts";
import { FakeKubeApi as FakeApi, pod } from "./support/fake_kube_api.ts";

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

Deno.test("PodWatch backs off exponentially while every watch fails after a good list (not every 250-500 ms)", async () => {
  const api = new FakeApi();
  api.put("ADDED", pod("a", "10.1.0.1"));
  api.watchStatus = 503;
  const w = new PodWatch({ api: { baseUrl: api.url, token: "sekrit" }, node: "node-a" });
  const prev = setLogSink(() => {});
  try {
    await w.start();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const watches = api.requests.filter((q) => q.includes("watch=1")).length;
    // Delays of 250 ms x 2^attempt x [0.5, 1): the attempts start at 0, >= 0.25, >= 0.75, >= 1.75, >= 3.75 s, so
    // at most 4 in 3 s. A backoff that restarts at every try retries every 250-500 ms: 7 or more.
    ok(watches >= 2 && watches <= 4, `${watches} watch requests in ${Math.round(performance.now() - t0)} ms`);
    equal(w.stats.lists, 1, "the list stays good: no re-list while only the watch fails");
  } finally {
    setLogSink(prev);
    await w.stop();
    await api.close();
  }
});

Deno.test("PodWatch reads the rotated ServiceAccount token from its file, as the kubelet rotates it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fsmpx-sa-" });
  const api = new FakeApi({ token: "first-token-value" });
  const lines: string[] = [];
  const prev = setLogSink((l) => void lines.push(l));
  let w: PodWatch | undefined;
  try {
    await Deno.writeTextFile(`${dir}/token`, "first-token-value\n");
    await Deno.writeTextFile(`${dir}/ca.crt`, "unused here");
    const env: Record<string, string> = {
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: "6443",
    };
    const inCluster = await inClusterApi((n) => env[n], dir);
    equal(inCluster?.token, "first-token-value");
    equal(inCluster?.tokenFile, `${dir}/token`);
    // The in-cluster settings, against the loopback fake (plain HTTP: the CA is another test's).
    w = new PodWatch({
      api: { ...inCluster!, baseUrl: api.url, caCert: undefined },
      node: "node-a",
      maxBackoffMs: 50,
    });
    api.put("ADDED", pod("a", "10.1.0.1"));
    await w.start();
    equal(w.resolve("10.1.0.1", 1), "voice/a");

    // The kubelet writes a new token; the API server stops accepting the old one; the watch ends (timeoutSeconds).
    await Deno.writeTextFile(`${dir}/token`, "second-token-value\n");
    api.token = "second-token-value";
    api.closeWatches();
    api.put("ADDED", pod("b", "10.1.0.2"));
    await until(() => w!.resolve("10.1.0.2", 1) === "voice/b", "the watch resumed with the rotated token");
  } finally {
    setLogSink(prev);
    await w?.stop();
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(!lines.some((l) => l.includes("second-token-value")), "the new token is a secret too");
});

Deno.test("PodWatch abandons a watch that stays open and silent past its timeout, and resumes it", async () => {
  const api = new FakeApi();
  api.put("ADDED", pod("a", "10.1.0.1"));
  const w = new PodWatch({
    api: { baseUrl: api.url, token: "sekrit" },
    node: "node-a",
    maxBackoffMs: 50,
    watchTimeoutSeconds: 1,
  });
  const prev = setLogSink(() => {});
  try {
    api.blackholeWatches = true;
    await w.start();
    await until(() => api.requests.some((q) => q.includes("watch=1")), "the first watch");
    // The connection is dead: this event never reaches the open watch.
    api.put("ADDED", pod("b", "10.1.0.2"));
    api.blackholeWatches = false;
    // A liveness bound (the watch is overdue after 2 s), not a timing assertion.
    for (let i = 0; i < 100 && w.resolve("10.1.0.2", 1) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    equal(w.resolve("10.1.0.2", 1), "voice/b", "the event, from the resumed watch");
    equal(w.stats.lists, 1, "resumed from its resourceVersion, no re-list");
  } finally {
    setLogSink(prev);
    await w.stop();
    await api.close();
  }
});
