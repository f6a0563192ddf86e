import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { GrpcCode, PixieClient, PixieClusterError, PixieRpcError } from "../pixie/client.ts";
import { PixieHealth } from "../pixie/health.ts";
import type { ClusterInfo } from "../pixie/messages.ts";
import { setLogSink } from "../util/log.ts";
import {
  FakeVizier,
  HTTP_RELATION,
  httpBatch,
  makeTestCert,
  TEST_TLS_CHANNEL,
} from "./support/fake_vizier.ts";

const API_KEY = "px-api-0f4c1a2b-7d3e-4e59-9b1a-clienttest";
const tls = await makeTestCert();

const CLUSTERS: ClusterInfo[] = [
  {
    id: "11111111-1111-4111-8111-111111111111",
    status: 1,
    clusterName: "prod",
    prettyClusterName: "Prod",
    vizierVersion: "0.14",
  },
  {
    id: "22222222-2222-4222-8222-222222222222",
    status: 1,
    clusterName: "dup",
    prettyClusterName: "dup",
    vizierVersion: "0.14",
  },
  {
    id: "33333333-3333-4333-8333-333333333333",
    status: 1,
    clusterName: "dup",
    prettyClusterName: "dup",
    vizierVersion: "0.14",
  },
  {
    id: "44444444-4444-4444-8444-444444444444",
    status: 3,
    clusterName: "gone",
    prettyClusterName: "gone",
    vizierVersion: "0.14",
  },
  {
    id: "66666666-6666-4666-8666-666666666666",
    status: 7,
    clusterName: "edge",
    prettyClusterName: "Edge",
    vizierVersion: "0.14",
  },
  {
    id: "55555555-5555-4555-8555-555555555555",
    status: 3,
    clusterName: "prod",
    prettyClusterName: "Prod",
    vizierVersion: "0.13",
  },
];

async function withCloud(
  fn: (fake: FakeVizier, connect: (key?: string) => Promise<PixieClient>) => Promise<void>,
): Promise<void> {
  const fake = await FakeVizier.start({ apiKey: API_KEY, tls, clusters: CLUSTERS, healthIntervalMs: 20 });
  const clients: PixieClient[] = [];
  const connect = async (key = API_KEY) => {
    const c = await PixieClient.connect({
      mode: "cloud",
      cloudAddr: fake.address,
      apiKey: key,
      caPem: tls.cert,
      channelOptions: TEST_TLS_CHANNEL,
    });
    clients.push(c);
    return c;
  };
  try {
    await fn(fake, connect);
  } finally {
    for (const c of clients) c.close();
    await fake.stop();
  }
}

Deno.test("cloud mode speaks TLS and sends the API key and client name as metadata", async () => {
  await withCloud(async (fake, connect) => {
    fake.onExecute = async (c) => {
      await c.meta("t", "m/s", []);
      c.end();
    };
    const client = await connect();
    ok(client.cloud);
    const got = [];
    for await (const r of client.execute({ queryStr: "import px", clusterId: CLUSTERS[0]!.id })) got.push(r);
    equal(got.length, 1);
    equal(got[0]!.metaData?.name, "m/s");
    const call = fake.calls.find((c) => c.method === "ExecuteScript")!;
    ok(call.authorized);
    equal(call.apiClient, "fsm-px");
    equal(call.execute?.clusterId, CLUSTERS[0]!.id);
  });
});

Deno.test("ca_file is read at connect; a CA that does not sign the server fails the handshake", async () => {
  const fake = await FakeVizier.start({ apiKey: API_KEY, tls, clusters: CLUSTERS });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/ca.pem`, tls.cert);
    const good = await PixieClient.connect({
      mode: "cloud",
      cloudAddr: fake.address,
      apiKey: API_KEY,
      caFile: `${dir}/ca.pem`,
      channelOptions: TEST_TLS_CHANNEL,
    });
    equal((await good.listClusters()).length, CLUSTERS.length);
    good.close();

    const other = await makeTestCert();
    const bad = await PixieClient.connect({
      mode: "cloud",
      cloudAddr: fake.address,
      apiKey: API_KEY,
      caPem: other.cert,
      channelOptions: TEST_TLS_CHANNEL,
    });
    await rejects(
      bad.listClusters(2_000),
      (e: unknown) => e instanceof PixieRpcError && e.code === GrpcCode.UNAVAILABLE,
    );
    bad.close();
    await rejects(
      PixieClient.connect({
        mode: "cloud",
        cloudAddr: fake.address,
        apiKey: API_KEY,
        caFile: `${dir}/missing.pem`,
      }),
      /pixie.ca_file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await fake.stop();
  }
});

Deno.test("a wrong API key fails with UNAUTHENTICATED and the key is masked even when the server echoes it", async () => {
  const wrong = "px-api-wrong-key-9f8e7d6c5b4a";
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    await withCloud(async (_fake, connect) => {
      const client = await connect(wrong);
      let err: unknown;
      try {
        for await (const _ of client.execute({ queryStr: "x", clusterId: "c" })) { /* none */ }
      } catch (e) {
        err = e;
      }
      ok(err instanceof PixieRpcError);
      equal(err.code, GrpcCode.UNAUTHENTICATED);
      ok(err.details.includes("[redacted]"), "the fake echoed the key");
      ok(!`${err.message} ${err.details} ${err.stack}`.includes(wrong));
      await rejects(client.resolveCluster("prod"), (e: unknown) => {
        ok(e instanceof PixieRpcError && e.code === GrpcCode.UNAUTHENTICATED);
        ok(!String(e).includes(wrong));
        return true;
      });
    });
  } finally {
    setLogSink(prev);
  }
  ok(lines.every((l) => !l.includes(wrong)));
});

Deno.test("pixie.cluster resolves a UUID or exactly one healthy cluster name", async () => {
  await withCloud(async (fake, connect) => {
    const client = await connect();
    equal(
      await client.resolveCluster("AAAAAAAA-1111-4111-8111-111111111111"),
      "aaaaaaaa-1111-4111-8111-111111111111",
    );
    equal(fake.calls.length, 0, "a UUID needs no lookup");
    equal(await client.resolveCluster("prod"), CLUSTERS[0]!.id, "the unhealthy 'prod' is ignored");
    equal(await client.resolveCluster("Prod"), CLUSTERS[0]!.id, "pretty names match too");

    await rejects(client.resolveCluster("dup"), (e: unknown) => {
      ok(e instanceof PixieClusterError);
      ok(e.message.includes("ambiguous"));
      ok(e.message.includes(CLUSTERS[1]!.id) && e.message.includes(CLUSTERS[2]!.id));
      return true;
    });
    await rejects(client.resolveCluster("nope"), (e: unknown) => {
      ok(e instanceof PixieClusterError);
      ok(e.message.includes('"nope" not found'));
      for (const c of CLUSTERS) ok(e.message.includes(c.id), `lists ${c.id}`);
      equal(e.clusters.length, CLUSTERS.length);
      return true;
    });
    await rejects(client.resolveCluster("gone"), /not healthy .*disconnected, status 3/);
    await rejects(client.resolveCluster(undefined), PixieClusterError);
  });
});

Deno.test("direct mode is plaintext, sends no API key and ignores the cluster", async () => {
  const fake = await FakeVizier.start();
  fake.onExecute = (c) => c.end();
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  try {
    equal(client.cloud, false);
    equal(await client.resolveCluster("whatever"), "whatever");
    for await (const _ of client.execute({ queryStr: "x", clusterId: "" })) { /* none */ }
    equal(fake.calls.length, 1);
    equal(fake.calls[0]!.method, "ExecuteScript");
  } finally {
    client.close();
    await fake.stop();
  }
});

Deno.test("PixieHealth follows the HealthCheck stream for /readyz", async () => {
  await withCloud(async (fake, connect) => {
    const client = await connect();
    const changes: boolean[] = [];
    let notify: (() => void) | undefined;
    const health = new PixieHealth({
      client,
      clusterId: CLUSTERS[0]!.id,
      onChange: (h) => {
        changes.push(h);
        notify?.();
      },
    });
    const next = () => new Promise<void>((resolve) => (notify = resolve));
    let change = next();
    health.start();
    await change;
    equal(health.healthy, true);
    change = next();
    fake.healthCode = GrpcCode.UNAVAILABLE;
    await change;
    equal(health.healthy, false);
    change = next();
    fake.healthCode = 0;
    await change;
    await health.stop();
    deepStrictEqual(changes, [true, false, true]);
    equal(health.healthy, false, "stopped reads as not ready");
    equal(fake.calls.find((c) => c.method === "HealthCheck")?.clusterId, CLUSTERS[0]!.id);
  });
});

Deno.test("a DEGRADED cluster is accepted by name with a warning (Pixie's proxy serves it)", async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  try {
    await withCloud(async (_fake, connect) => {
      const client = await connect();
      equal(await client.resolveCluster("edge"), "66666666-6666-4666-8666-666666666666");
      equal(await client.resolveCluster("Edge"), "66666666-6666-4666-8666-666666666666");
    });
  } finally {
    setLogSink(prev);
  }
  const warn = lines.find((l) => l.includes("DEGRADED"));
  ok(warn, "warned");
  ok(warn.includes("edge") && warn.includes("degraded, status 7"));
});

Deno.test("a standalone PEM's HealthCheck sends no status: ready once the call succeeds, re-checked", async () => {
  const fake = await FakeVizier.start({ standalone: true });
  const client = await PixieClient.connect({ mode: "direct", directAddr: fake.address });
  const changes: boolean[] = [];
  let notify: (() => void) | undefined;
  const health = new PixieHealth({
    client,
    clusterId: "",
    recheckMs: 20,
    onChange: (h) => {
      changes.push(h);
      notify?.();
    },
  });
  try {
    // Pixie's own stream really ends at once without a status.
    const statuses = [];
    for await (const s of client.healthCheck("")) statuses.push(s);
    deepStrictEqual(statuses, []);

    const changed = new Promise<void>((resolve) => (notify = resolve));
    health.start();
    await changed;
    equal(health.healthy, true);
    while (fake.calls.filter((c) => c.method === "HealthCheck").length < 4) {
      await new Promise((r) => setTimeout(r, 10));
    }
    equal(health.healthy, true, "stays ready while the PEM answers");
    // The PEM goes away: the next check fails and readiness drops.
    const down = new Promise<void>((resolve) => (notify = resolve));
    await fake.stop();
    await down;
    equal(health.healthy, false);
    deepStrictEqual(changes, [true, false]);
  } finally {
    await health.stop();
    client.close();
    await fake.stop();
  }
});

Deno.test("a cloud HealthCheck that ends OK without any status does not read as healthy", async () => {
  let ended = 0;
  const health = new PixieHealth({
    client: {
      cloud: true,
      healthCheck: async function* () {
        ended++;
        yield* [];
      },
    },
    clusterId: "c",
    backoff: { initialMs: 1, minMs: 1, maxMs: 1 },
  });
  health.start();
  while (ended < 3) await new Promise((r) => setTimeout(r, 5));
  equal(health.healthy, false);
  await health.stop();
});

/**
 * Bytes a fake Vizier gets onto the wire (counted by a TCP relay between it and the client) for a call whose reader
 * took two responses and then stopped: what HTTP/2 flow control lets Pixie send ahead of a stalled reader.
 */
async function bytesAheadOfStalledReader(channelOptions?: Record<string, number>): Promise<number> {
  const fake = await FakeVizier.start({ healthIntervalMs: 60_000 });
  const body = "x".repeat(4000);
  fake.onExecute = async (c) => {
    await c.meta("t", "voice/source", HTTP_RELATION);
    // ~16 MB: far more than any window.
    for (let i = 0; i < 4000 && !c.isCancelled(); i++) {
      await c.batch(httpBatch("t", [{ time: BigInt(i + 1), body }]));
    }
    await c.cancelled;
  };
  const [host, port] = fake.address.split(":");
  const relay = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let toClient = 0;
  const conns: Deno.Conn[] = [];
  const pumps: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const c of relay) {
      const s = await Deno.connect({ hostname: host!, port: Number(port) });
      conns.push(c, s);
      pumps.push(c.readable.pipeTo(s.writable).catch(() => {}));
      const count = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          toClient += chunk.length;
          ctl.enqueue(chunk);
        },
      });
      pumps.push(s.readable.pipeThrough(count).pipeTo(c.writable).catch(() => {}));
    }
  })();
  const client = await PixieClient.connect({
    mode: "direct",
    directAddr: `127.0.0.1:${(relay.addr as Deno.NetAddr).port}`,
    channelOptions,
  });
  try {
    const responses = client.execute({ queryStr: "stream", clusterId: "" });
    ok(!(await responses.next()).done);
    ok(!(await responses.next()).done);
    // The reader stalls: the client's queue fills and pauses the call; the server sends until the window is spent
    // (nothing more for a second).
    let before = -1;
    while (toClient !== before) {
      before = toClient;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await responses.return(undefined);
    return toClient;
  } finally {
    client.close();
    relay.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by its pump */ }
    }
    await accepting.catch(() => {});
    await Promise.all(pumps);
    await fake.stop();
  }
}

Deno.test("client: Pixie may send megabytes ahead of the reader, not HTTP/2's default 64 KiB", async () => {
  // With 64 KiB (~200 rows of audio) per WINDOW_UPDATE round trip, a sensor on a loaded node starved with its
  // backlog waiting in the peer (see client.ts); the window bounds what the client holds beyond its queue.
  const { DEFAULT_CHANNEL_OPTIONS, FLOW_CONTROL_WINDOW } = await import("../pixie/client.ts");
  const { RESPONSE_QUEUE_BOUNDS } = await import("../pixie/response_queue.ts");
  equal(DEFAULT_CHANNEL_OPTIONS["grpc-node.flow_control_window"], FLOW_CONTROL_WINDOW);
  ok(FLOW_CONTROL_WINDOW >= 1024 * 1024 && FLOW_CONTROL_WINDOW <= 16 * 1024 * 1024);
  // Measured on the wire: a client made with the defaults lets the window's worth through to a stalled reader...
  const ahead = await bytesAheadOfStalledReader();
  ok(
    ahead >= FLOW_CONTROL_WINDOW,
    `${ahead} bytes sent ahead of a stalled reader, window ${FLOW_CONTROL_WINDOW}`,
  );
  // ...and no more than the window beyond its queue (64 responses of ~4 KB here, plus the stream's own buffer).
  const responseBytes = 4200;
  const bound = FLOW_CONTROL_WINDOW + (RESPONSE_QUEUE_BOUNDS.highCount + 32) * responseBytes;
  ok(ahead <= bound, `${ahead} bytes sent ahead of a stalled reader, more than ${bound}`);
  // HTTP/2's default window, for contrast: the same stall lets far less through.
  const small = await bytesAheadOfStalledReader({ "grpc-node.flow_control_window": 65_535 });
  ok(small < 1024 * 1024, `${small} bytes ahead with a 64 KiB window`);
});
