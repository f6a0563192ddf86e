/**
 * The Kubernetes deployment in k8s/: every manifest against the Kubernetes and Prometheus Operator schemas
 * (offline, npm:kubernetes-models), and the wiring between the manifests, the sensor's config and code, NATS,
 * the Dockerfile and the README.
 */
import { taskAllowsEnv } from "./support/deno_tasks.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../config/load.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { parseListen, startHttpServer } from "../http/server.ts";
import {
  dockerIgnored,
  EXPOSED_METRICS,
  formatProblem,
  type KeyPath,
  type ManifestDoc,
  type ManifestProblem,
  metricTypesFromExposition,
  parseManifests,
  podSpecProblems,
  readKustomization,
  validateManifest,
} from "./support/k8s_validate.ts";
import { natsServerBinary } from "./support/nats_server.ts";
import { gatedTest } from "./support/tools.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const K8S = join(ROOT, "k8s");
const NAMESPACE = "fsm-px";
/** The bus flush budget after the drain (ShutdownOptions.flushMs default in actors/runtime.ts). */
const SENSOR_FLUSH_S = 5;

/**
 * The sensor's drain deadline on SIGTERM: `DRAIN_DEADLINE_MS` of cli/run_cmd.ts, read from its source rather
 * than imported, so that this test does not load the whole sensor.
 */
async function sensorDrainSeconds(): Promise<number> {
  const src = await Deno.readTextFile(join(ROOT, "cli/run_cmd.ts"));
  const m = /export const DRAIN_DEADLINE_MS = ([\d_]+);/.exec(src);
  if (!m) throw new Error("cli/run_cmd.ts no longer exports DRAIN_DEADLINE_MS as a number literal");
  return Number((m[1] ?? "").replaceAll("_", "")) / 1000;
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v as Obj : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function at(v: unknown, ...path: KeyPath): unknown {
  let cur = v;
  for (const seg of path) cur = typeof seg === "number" ? arr(cur)[seg] : obj(cur)[seg];
  return cur;
}
function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

interface Manifests {
  docs: ManifestDoc[];
  parseProblems: ManifestProblem[];
  tree: Awaited<ReturnType<typeof readKustomization>>;
}

/** The patch files of a component (k8s/packet-capture, k8s/pixie-pod-scope), repo-relative. */
async function packetCapturePatches(component = "packet-capture"): Promise<string[]> {
  const text = await Deno.readTextFile(join(K8S, component, "kustomization.yaml"));
  const { docs } = parseManifests(text, `k8s/${component}/kustomization.yaml`);
  return arr(at(docs[0]?.value, "patches")).map((p) => `k8s/${component}/${str(at(p, "path"))}`);
}

let cached: Promise<Manifests> | undefined;
function manifests(): Promise<Manifests> {
  cached ??= (async () => {
    const tree = await readKustomization(ROOT, K8S);
    const docs: ManifestDoc[] = [];
    const parseProblems: ManifestProblem[] = [];
    for (const file of tree.resources) {
      const parsed = parseManifests(await Deno.readTextFile(join(ROOT, file)), file);
      docs.push(...parsed.docs);
      parseProblems.push(...parsed.problems);
    }
    return { docs, parseProblems, tree };
  })();
  return cached;
}

async function find(kind: string, name: string): Promise<ManifestDoc> {
  const { docs } = await manifests();
  const d = docs.find((x) => at(x.value, "kind") === kind && at(x.value, "metadata", "name") === name);
  if (!d) throw new Error(`no ${kind} ${name} in k8s/`);
  return d;
}

function container(d: ManifestDoc, name: string): { c: Obj; path: KeyPath } {
  const list = arr(at(d.value, "spec", "template", "spec", "containers"));
  const i = list.findIndex((c) => obj(c).name === name);
  if (i < 0) throw new Error(`${d.file}: no container ${name}`);
  return { c: obj(list[i]), path: ["spec", "template", "spec", "containers", i] };
}

/** The container's argv: command then args. */
function argv(c: Obj): string[] {
  return [...arr(c.command), ...arr(c.args)].map(String);
}

/** Port number of a container port given by name or number. */
function containerPort(c: Obj, port: unknown): number | undefined {
  if (typeof port === "number") return port;
  const p = arr(c.ports).find((x) => obj(x).name === port);
  return typeof obj(p).containerPort === "number" ? obj(p).containerPort as number : undefined;
}

/** Whether a label selector's matchLabels all hold in `labels`. */
function selects(selector: unknown, labels: unknown): boolean {
  const want = obj(obj(selector).matchLabels);
  const have = obj(labels);
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => have[k] === v);
}

async function denoJson(): Promise<{ version?: string; tasks: Record<string, string> }> {
  return JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
}

/** Environment a test gives the sensor: literal values as written, valueFrom sources as stand-in values. */
function containerEnv(c: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of arr(c.env).map(obj)) {
    const name = str(e.name);
    env[name] = typeof e.value === "string" ? e.value : `test-${name.toLowerCase().replaceAll("_", "-")}`;
  }
  env.NODE_NAME &&= "node-a";
  return env;
}

/** Kinds that live in a namespace (all the kinds k8s/ uses but Namespace). */
function namespaced(kind: unknown): boolean {
  return kind !== "Namespace";
}

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    clearEnv: opts.env !== undefined,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function haveCommand(cmd: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(dir, cmd)).isFile) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

Deno.test("k8s: every manifest validates against its Kubernetes schema, with no unknown keys", async () => {
  const { docs, parseProblems, tree } = await manifests();
  ok(docs.length >= 12, `expected the whole deployment, found ${docs.length} documents`);
  const problems = [...tree.problems, ...parseProblems, ...docs.flatMap(validateManifest)];
  deepEqual(problems.map(formatProblem), []);
});

Deno.test("k8s: kustomization applies every file in k8s/, and namespaces everything", async () => {
  const { docs, tree } = await manifests();
  // The packet-capture variant is an overlay of this deployment (tests/k8s_packet_capture_test.ts checks it).
  const overlay = await readKustomization(ROOT, join(K8S, "packet-capture"));
  const overlayPatches = await packetCapturePatches();
  // So is the pod-scope component (tests/k8s_pixie_pod_scope_test.ts checks it).
  const podScope = await readKustomization(ROOT, join(K8S, "pixie-pod-scope"));
  const used = new Set([
    ...podScope.kustomizations,
    ...podScope.resources,
    ...(await packetCapturePatches("pixie-pod-scope")),
    ...tree.kustomizations,
    ...tree.resources,
    ...tree.configMaps.flatMap((c) => [...c.files.values()]),
    ...overlay.kustomizations,
    ...overlay.resources,
    ...overlay.configMaps.flatMap((c) => [...c.files.values()]),
    ...overlayPatches,
    "k8s/README.md",
    "k8s/packet-capture/README.md",
  ]);
  const orphans: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (!used.has(relative(ROOT, p))) orphans.push(relative(ROOT, p));
    }
  };
  await walk(K8S);
  deepEqual(orphans, [], "files in k8s/ that kubectl apply -k k8s/ would not use");
  for (const d of docs) {
    const ns = at(d.value, "metadata", "namespace");
    ok(
      ns === undefined || ns === NAMESPACE,
      `${d.file}: namespace ${String(ns)} (kustomize sets ${NAMESPACE})`,
    );
  }
  const ns = await find("Namespace", NAMESPACE);
  equal(at(ns.value, "metadata", "labels", "pod-security.kubernetes.io/enforce"), "restricted");
});

Deno.test("k8s: no Secret values in git; every Secret reference is created in the README", async () => {
  const { docs } = await manifests();
  deepEqual(docs.filter((d) => at(d.value, "kind") === "Secret").map((d) => d.file), []);
  const readme = await Deno.readTextFile(join(K8S, "README.md"));
  const created = new Set<string>();
  for (
    const m of readme.matchAll(/create secret generic (\S+)((?:\s*\\?\n?\s*--from-literal=[\w.-]+=\S+)+)/g)
  ) {
    for (const k of (m[2] ?? "").matchAll(/--from-literal=([\w.-]+)=/g)) created.add(`${m[1]}/${k[1]}`);
  }
  const refs: string[] = [];
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (typeof v === "object" && v !== null) {
      const ref = obj((v as Obj).secretKeyRef);
      if (typeof ref.name === "string") refs.push(`${ref.name}/${String(ref.key)}`);
      Object.values(v).forEach(collect);
    }
  };
  docs.forEach((d) => collect(d.value));
  ok(refs.length >= 4, `expected the Pixie and NATS secret references, found ${refs.join(", ")}`);
  deepEqual(refs.filter((r) => !created.has(r)), [], `created in README: ${[...created].join(", ")}`);
});

Deno.test("k8s: workloads meet the restricted Pod Security Standard", async () => {
  const { docs } = await manifests();
  const workloads = docs.filter((d) => ["DaemonSet", "StatefulSet"].includes(str(at(d.value, "kind"))));
  equal(workloads.length, 2);
  deepEqual(
    workloads.flatMap((d) => podSpecProblems(d, ["spec", "template", "spec"])).map(formatProblem),
    [],
  );
  for (const d of workloads) {
    equal(at(d.value, "spec", "template", "spec", "automountServiceAccountToken"), false, d.file);
  }
  // The sensor needs no Kubernetes API access: its ServiceAccount has no token and no role binds it.
  const sa = await find("ServiceAccount", "fsm-px-sensor");
  equal(at(sa.value, "automountServiceAccountToken"), false);
  deepEqual(docs.filter((d) => /Role/.test(str(at(d.value, "kind")))).map((d) => d.file), []);
});

Deno.test("k8s: the DaemonSet runs `deno task run` with the ConfigMap's config, as the Dockerfile does", async () => {
  const ds = await find("DaemonSet", "fsm-px-sensor");
  const { c } = container(ds, "sensor");
  const args = argv(c);
  const t = args.indexOf("task");
  ok(t > 0 && args[t - 1] === "deno", `expected "deno task <name>" in ${JSON.stringify(args)}`);
  const task = args[t + 1] ?? "";
  const { tasks } = await denoJson();
  ok(task in tasks, `task "${task}" is not in deno.json (tasks: ${Object.keys(tasks).join(", ")})`);
  equal(task, "run");
  ok(/\bmain\.ts run\b/.test(tasks[task] ?? ""), "the run task starts the sensor: main.ts run");

  // --config names the file the ConfigMap volume provides.
  const configPath = args[args.indexOf("--config") + 1] ?? "";
  const mount = arr(c.volumeMounts).map(obj).find((m) => configPath.startsWith(`${str(m.mountPath)}/`));
  ok(mount, `no volume mounted over ${configPath}`);
  const volume = arr(at(ds.value, "spec", "template", "spec", "volumes")).map(obj).find((v) =>
    v.name === mount.name
  );
  const cmName = str(at(volume, "configMap", "name"));
  const { tree } = await manifests();
  const generated = tree.configMaps.find((g) => g.name === cmName);
  ok(generated, `ConfigMap ${cmName} is not generated by the kustomization`);
  equal(generated.files.get(configPath.slice(str(mount.mountPath).length + 1)), "k8s/config/config.yaml");
  ok(
    generated.hashed,
    "the config ConfigMap keeps kustomize's hash suffix, so a config change rolls the sensors",
  );

  // The image's default command is the same task.
  const dockerfile = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(dockerfile);
  ok(cmd, "Dockerfile has an exec-form CMD");
  deepEqual(JSON.parse(cmd[1] ?? "[]"), ["deno", "task", task]);
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  deepEqual(JSON.parse(entry?.[1] ?? "[]"), args.slice(0, t - 1), "DaemonSet command = image ENTRYPOINT");
});

Deno.test("k8s: the ConfigMap's config passes fsm-px's config validation with the DaemonSet's environment", async () => {
  const ds = await find("DaemonSet", "fsm-px-sensor");
  const { c } = container(ds, "sensor");
  const env = containerEnv(c);
  const nodeName = arr(c.env).map(obj).find((e) => e.name === "NODE_NAME");
  equal(
    at(nodeName, "valueFrom", "fieldRef", "fieldPath"),
    "spec.nodeName",
    "NODE_NAME from the downward API",
  );

  // Every ${VAR} of the config must be set by the DaemonSet and readable under the run task's permissions
  // (with --ignore-env, an unpermitted variable reads as unset).
  const text = await Deno.readTextFile(join(K8S, "config/config.yaml"));
  const vars = [
    ...new Set([...text.matchAll(/(?<!\$)\$\{([A-Za-z_]\w*)(:-[^}]*)?\}/g)].map((m) => m[1] ?? "")),
  ];
  const required = [...text.matchAll(/(?<!\$)\$\{([A-Za-z_]\w*)\}/g)].map((m) => m[1] ?? "");
  deepEqual(
    required.filter((v) => !(v in env)),
    [],
    "variables the config requires but the DaemonSet does not set",
  );
  const run = (await denoJson()).tasks.run ?? "";
  deepEqual(vars.filter((v) => !taskAllowsEnv(run, v)), [], "variables the run task cannot read");

  const { config } = await loadConfig(join(K8S, "config/config.yaml"), env);
  equal(config.node, "node-a");
  equal(config.pixie.api_key, env.PIXIE_API_KEY);
  equal(config.nats.password, env.NATS_PASSWORD);
  ok(config.measurements.length >= 1);

  const nats = await find("StatefulSet", "nats");
  equal(config.nats.replicas, at(nats.value, "spec", "replicas"), "stream replicas = NATS servers");
  const url = new URL(config.nats.url.split(",")[0] ?? "");
  const svc = await find("Service", url.hostname.split(".")[0] ?? "");
  equal(url.hostname, `${at(svc.value, "metadata", "name")}.${NAMESPACE}.svc`);
  ok(
    arr(at(svc.value, "spec", "ports")).some((p) => obj(p).port === Number(url.port)),
    `Service port ${url.port}`,
  );
});

Deno.test("k8s: probes, Service and PodMonitor use the port and paths the sensor really serves", async () => {
  const ds = await find("DaemonSet", "fsm-px-sensor");
  const { c } = container(ds, "sensor");
  const { config } = await loadConfig(join(K8S, "config/config.yaml"), containerEnv(c));
  const listenPort = parseListen(config.metrics.listen).port;

  const probes = {
    liveness: obj(c.livenessProbe),
    readiness: obj(c.readinessProbe),
    startup: obj(c.startupProbe),
  };
  equal(at(probes.liveness, "httpGet", "path"), "/healthz");
  equal(at(probes.readiness, "httpGet", "path"), "/readyz");
  for (const [name, probe] of Object.entries(probes)) {
    if (Object.keys(probe).length === 0) continue;
    equal(
      containerPort(c, at(probe, "httpGet", "port")),
      listenPort,
      `${name} probe port = metrics.listen port`,
    );
  }
  const svc = await find("Service", "fsm-px-metrics");
  ok(
    selects(
      { matchLabels: at(svc.value, "spec", "selector") },
      at(ds.value, "spec", "template", "metadata", "labels"),
    ),
  );
  equal(containerPort(c, at(svc.value, "spec", "ports", 0, "targetPort")), listenPort);
  const pm = await find("PodMonitor", "fsm-px-sensor");
  ok(selects(at(pm.value, "spec", "selector"), at(ds.value, "spec", "template", "metadata", "labels")));
  const endpoint = obj(at(pm.value, "spec", "podMetricsEndpoints", 0));
  equal(containerPort(c, endpoint.port), listenPort);
  // The alert rules select job="fsm-px" and use a node label: the PodMonitor must produce both.
  equal(
    at(ds.value, "spec", "template", "metadata", "labels", str(at(pm.value, "spec", "jobLabel"))),
    "fsm-px",
  );
  ok(
    arr(endpoint.relabelings).map(obj).some((r) =>
      r.targetLabel === "node" && arr(r.sourceLabels).includes("__meta_kubernetes_pod_node_name")
    ),
    "a relabeling sets node from the pod's node",
  );

  // Ask the sensor's real HTTP server for every path the manifests use.
  const metrics = new FsmMetrics({ version: "test" });
  metrics.pixieStreamOpened(); // as a sensor reading Pixie serves it
  const server = startHttpServer({
    listen: "127.0.0.1:0",
    metrics,
    healthz: () => ({ ok: true, detail: "test" }),
    readyz: () => ({ ok: true, detail: "test" }),
  });
  try {
    const paths = [
      str(at(probes.liveness, "httpGet", "path")),
      str(at(probes.readiness, "httpGet", "path")),
      str(at(probes.startup, "httpGet", "path")),
      str(endpoint.path) || "/metrics",
    ];
    for (const path of paths) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
      const body = await res.text();
      equal(res.status, 200, `GET ${path}: ${res.status} ${body}`);
      if (path === endpoint.path) {
        // The contract's metric list (used for the rules and the dashboard) against what the exporter exposes.
        const types = metricTypesFromExposition(body);
        const missing = [...EXPOSED_METRICS].filter(([n, t]) => types.get(n) !== t).map(([n, t]) =>
          `${n} (${t})`
        );
        deepEqual(missing, [], "metrics of the contract that the exporter does not expose with that type");
      }
    }
  } finally {
    await server.close();
  }
});

Deno.test("k8s: the sensor drains within its grace period, on every node, one node at a time", async () => {
  const ds = await find("DaemonSet", "fsm-px-sensor");
  const spec = obj(at(ds.value, "spec", "template", "spec"));
  const grace = Number(spec.terminationGracePeriodSeconds);
  const drain = await sensorDrainSeconds();
  ok(drain >= 1, `drain deadline ${drain} s`);
  ok(
    grace >= drain + SENSOR_FLUSH_S + 5,
    `terminationGracePeriodSeconds ${grace} must cover ${drain} s of drain`,
  );
  ok(
    arr(spec.tolerations).map(obj).some((t) =>
      t.operator === "Exists" && t.key === undefined && t.effect === undefined
    ),
    "a toleration of every taint, so that every node runs a sensor",
  );
  equal(spec.nodeSelector, undefined, "no nodeSelector: every node");
  equal(at(ds.value, "spec", "updateStrategy", "type"), "RollingUpdate");
  equal(
    at(ds.value, "spec", "updateStrategy", "rollingUpdate", "maxSurge"),
    0,
    "never two sensors on a node",
  );
  ok(selects(at(ds.value, "spec", "selector"), at(ds.value, "spec", "template", "metadata", "labels")));
  const { c } = container(ds, "sensor");
  ok(
    at(c, "resources", "limits", "cpu") !== undefined && at(c, "resources", "limits", "memory") !== undefined,
  );
  const tmp = arr(c.volumeMounts).map(obj).find((m) => m.mountPath === "/tmp");
  ok(tmp, "a writable /tmp next to the read-only root filesystem");
});

Deno.test("k8s: the sensor may reach only DNS, NATS and Pixie, and only Prometheus may reach it", async () => {
  const ds = await find("DaemonSet", "fsm-px-sensor");
  const { c } = container(ds, "sensor");
  const { config } = await loadConfig(join(K8S, "config/config.yaml"), containerEnv(c));
  const np = await find("NetworkPolicy", "fsm-px-sensor");
  const podLabels = at(ds.value, "spec", "template", "metadata", "labels");
  ok(selects(at(np.value, "spec", "podSelector"), podLabels));
  deepEqual(at(np.value, "spec", "policyTypes"), ["Ingress", "Egress"]);

  const ingress = arr(at(np.value, "spec", "ingress")).map(obj);
  equal(ingress.length, 1);
  const listenPort = parseListen(config.metrics.listen).port;
  deepEqual(arr(ingress[0]?.ports).map((p) => obj(p).port), [listenPort]);
  ok(
    arr(ingress[0]?.from).every((f) =>
      selects(obj(f).podSelector, { "app.kubernetes.io/name": "prometheus" })
    ),
  );

  const egress = arr(at(np.value, "spec", "egress")).map(obj);
  const portsOf = (rule: Obj | undefined) =>
    arr(rule?.ports).map((p) => `${str(obj(p).protocol) || "TCP"}/${String(obj(p).port)}`).sort();
  equal(egress.length, 3, "DNS, NATS, Pixie and nothing else");
  const dns = egress.find((r) =>
    arr(r.to).some((t) => selects(obj(t).podSelector, { "k8s-app": "kube-dns" }))
  );
  deepEqual(portsOf(dns), ["TCP/53", "UDP/53"]);
  const nats = await find("StatefulSet", "nats");
  const natsRule = egress.find((r) =>
    arr(r.to).some((t) =>
      selects(obj(t).podSelector, at(nats.value, "spec", "template", "metadata", "labels"))
    )
  );
  deepEqual(portsOf(natsRule), [`TCP/${new URL(config.nats.url).port}`]);
  const pixiePort = Number(config.pixie.cloud_addr.split(":").at(-1));
  const pixieRule = egress.find((r) => r !== dns && r !== natsRule);
  deepEqual(portsOf(pixieRule), [`TCP/${pixiePort}`]);
  const block = obj(at(pixieRule, "to", 0, "ipBlock"));
  ok(arr(block.except).includes("169.254.0.0/16"), "the cloud metadata service stays unreachable");
  ok(arr(block.except).includes("10.0.0.0/8"), "in-cluster and private addresses stay unreachable on 443");

  // And NATS lets the sensors in on its client port.
  const natsNp = await find("NetworkPolicy", "nats");
  const clientRule = arr(at(natsNp.value, "spec", "ingress")).map(obj).find((r) =>
    arr(r.from).some((f) => selects(obj(f).podSelector, podLabels))
  );
  deepEqual(portsOf(clientRule), [`TCP/${new URL(config.nats.url).port}`]);
});

Deno.test("k8s: NATS is a 3-server JetStream cluster of nats-server 2.14 with file storage, one per node", async () => {
  const sts = await find("StatefulSet", "nats");
  const spec = obj(at(sts.value, "spec"));
  equal(spec.replicas, 3);
  const { c } = container(sts, "nats");
  ok(/^nats:2\.14(\.\d+)?(-alpine)?$/.test(str(c.image)), `image ${str(c.image)}`);
  const anti = arr(
    at(
      spec,
      "template",
      "spec",
      "affinity",
      "podAntiAffinity",
      "requiredDuringSchedulingIgnoredDuringExecution",
    ),
  )
    .map(obj);
  ok(
    anti.some((t) =>
      t.topologyKey === "kubernetes.io/hostname" &&
      selects(t.labelSelector, at(spec, "template", "metadata", "labels"))
    ),
    "a required anti-affinity puts each server on its own node",
  );
  const headless = await find("Service", str(spec.serviceName));
  equal(at(headless.value, "spec", "clusterIP"), "None");
  const pdb = await find("PodDisruptionBudget", "nats");
  equal(at(pdb.value, "spec", "maxUnavailable"), 1, "drains keep a JetStream quorum (2 of 3)");

  // nats.conf agrees with the StatefulSet: routes to every server, store on the data claim.
  const conf = await Deno.readTextFile(join(K8S, "nats/nats.conf"));
  const clusterPort = containerPort(c, "cluster");
  const routes = [...conf.matchAll(/"nats:\/\/([^"]+)"/g)].map((m) => m[1]);
  deepEqual(
    routes,
    Array.from({ length: 3 }, (_, i) => `nats-${i}.${str(spec.serviceName)}.${NAMESPACE}.svc:${clusterPort}`),
  );
  const storeDir = /store_dir:\s*"([^"]+)"/.exec(conf)?.[1];
  const dataMount = arr(c.volumeMounts).map(obj).find((m) => m.mountPath === storeDir);
  ok(dataMount, `store_dir ${storeDir} is a mounted volume`);
  const claim = arr(spec.volumeClaimTemplates).map(obj).find((t) =>
    at(t, "metadata", "name") === dataMount.name
  );
  ok(claim, "the JetStream store is a PersistentVolumeClaim (file storage survives restarts)");
  const gib = (s: string) => {
    const m = /^(\d+)(Gi|GB|G)$/.exec(s);
    return m ? Number(m[1]) * (m[2] === "Gi" ? 1 : 1e9 / 2 ** 30) : NaN;
  };
  const maxFileStore = gib(/max_file_store:\s*(\S+)/.exec(conf)?.[1] ?? "");
  ok(
    maxFileStore <= gib(str(at(claim, "spec", "resources", "requests", "storage"))),
    "max_file_store fits the claim",
  );
  const { config } = await loadConfig(
    join(K8S, "config/config.yaml"),
    containerEnv(container(await find("DaemonSet", "fsm-px-sensor"), "sensor").c),
  );
  ok(config.nats.max_bytes <= maxFileStore * 2 ** 30, "the stream's max_bytes fits max_file_store");
  ok(
    Number(at(spec, "template", "spec", "terminationGracePeriodSeconds")) >= 40,
    "grace covers lame-duck mode",
  );
});

// Gated like every test of a tool CI installs: skipped here only outside CI, where a missing nats-server fails.
const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest({
  name: "k8s: nats.conf is a valid nats-server configuration",
  fn: async () => {
    const sts = await find("StatefulSet", "nats");
    const { c } = container(sts, "nats");
    // nats.conf reads $VARs from the environment: the StatefulSet must set each of them.
    const conf = await Deno.readTextFile(join(K8S, "nats/nats.conf"));
    const refs = [
      ...new Set([...conf.replace(/#[^\n]*/g, "").matchAll(/\$([A-Za-z_]\w*)/g)].map((m) => m[1] ?? "")),
    ];
    const stsEnv = containerEnv(c);
    deepEqual(
      refs.filter((r) => !(r in stsEnv)),
      [],
      "variables nats.conf reads that the StatefulSet does not set",
    );
    const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    for (const r of refs) env[r] = stsEnv[r] ?? "";
    const res = await run(await natsServerBinary(), ["-c", join(K8S, "nats/nats.conf"), "-t"], { env });
    equal(res.code, 0, res.stdout + res.stderr);
    ok(/is valid/.test(res.stdout + res.stderr));
  },
});

Deno.test("Dockerfile: the official Deno image the tests run on, dependencies cached at build, non-root", async () => {
  const dockerfile = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  const lines = dockerfile.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  const from = lines.filter((l) => /^FROM\s/.test(l));
  deepEqual(from, [`FROM denoland/deno:${Deno.version.deno}`]);
  const idx = (re: RegExp) => lines.findIndex((l) => re.test(l));
  const copyDeps = idx(/^COPY\s+deno\.json\s+deno\.lock\s/);
  const install = idx(/^RUN\s+deno install\b.*--frozen/);
  const copyAll = idx(/^COPY\s+\.\s/);
  const cache = idx(/^RUN\s+deno cache\b.*\bmain\.ts\b/);
  const user = idx(/^USER\s+(deno|1993)\s*$/);
  ok(
    copyDeps >= 0 && install > copyDeps && copyAll > install,
    "dependencies are installed before the sources come in",
  );
  ok(cache > copyAll, "the module graph of main.ts is cached at build time");
  ok(user > cache, "the image ends as the non-root deno user");
  ok(!lines.slice(user + 1).some((l) => /^USER\s/.test(l)), "no later USER");
  const ds = await find("DaemonSet", "fsm-px-sensor");
  equal(
    at(ds.value, "spec", "template", "spec", "securityContext", "runAsUser"),
    1993,
    "the deno user's uid",
  );
  const { c } = container(ds, "sensor");
  const denoDir = arr(c.env).map(obj).find((e) => e.name === "DENO_DIR");
  equal(denoDir?.value, "/deno-dir", "the image's baked dependency cache");

  // The kustomization deploys a pinned release: deno.json's version when it has one.
  const { tree } = await manifests();
  const tag = tree.images.find((i) => i.name === c.image)?.newTag ?? "";
  const version = (await denoJson()).version;
  if (version) equal(tag, version);
  else ok(/^\d+\.\d+\.\d+$/.test(tag), `image tag "${tag}" is a pinned version`);
});

Deno.test(".dockerignore keeps every module main.ts needs, and keeps local configs out", async () => {
  const ignore = await Deno.readTextFile(join(ROOT, ".dockerignore"));
  const info = await run(Deno.execPath(), ["info", "--json", "main.ts"]);
  equal(info.code, 0, info.stderr);
  const graph = JSON.parse(info.stdout) as { modules: { specifier: string }[] };
  const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://"))
    .map((s) => relative(ROOT, fileURLToPath(s)));
  ok(local.includes("main.ts"));
  // npm packages (node_modules/, deno.json's nodeModulesDir) are installed in the image by `deno install`, not
  // copied from the build context.
  const docker = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  ok(/RUN deno install --frozen/.test(docker), "the image installs the npm packages itself");
  const fromContext = local.filter((p) => !p.startsWith("node_modules/"));
  deepEqual(
    fromContext.filter((p) => dockerIgnored(ignore, p)),
    [],
    "modules of main.ts left out of the image",
  );
  for (const f of ["deno.json", "deno.lock", "main.ts"]) equal(dockerIgnored(ignore, f), false, f);
  for (const f of ["config.yaml", ".git/config", "node_modules/.deno/x", ".env"]) {
    equal(dockerIgnored(ignore, f), true, f);
  }
});

Deno.test({
  name: "k8s: kubectl kustomize renders the deployment, and the rendered objects validate",
  ignore: !haveCommand("kubectl"),
  fn: async () => {
    const res = await run("kubectl", ["kustomize", K8S]);
    equal(res.code, 0, res.stderr);
    const { docs, problems } = parseManifests(res.stdout, "kubectl kustomize k8s/");
    for (const d of docs) problems.push(...validateManifest(d));
    deepEqual(problems.map(formatProblem), []);
    const kinds = docs.map((d) => str(at(d.value, "kind")));
    for (const k of ["Namespace", "DaemonSet", "StatefulSet", "PodMonitor", "PrometheusRule", "ConfigMap"]) {
      ok(kinds.includes(k), `rendered ${k}`);
    }
    for (const d of docs) {
      if (namespaced(at(d.value, "kind"))) equal(at(d.value, "metadata", "namespace"), NAMESPACE, d.file);
    }
    const ds = docs.find((d) => at(d.value, "kind") === "DaemonSet");
    const volumes = arr(at(ds?.value, "spec", "template", "spec", "volumes")).map(obj);
    const cm = str(at(volumes.find((v) => v.name === "config"), "configMap", "name"));
    ok(/^fsm-px-config-[a-z0-9]{10}$/.test(cm), `the DaemonSet mounts the hash-named ConfigMap, got ${cm}`);
    ok(docs.some((d) => at(d.value, "metadata", "name") === cm), "and that ConfigMap is rendered");
    const dash = docs.find((d) => at(d.value, "metadata", "name") === "fsm-px-grafana-dashboard");
    equal(at(dash?.value, "metadata", "labels", "grafana_dashboard"), "1");
    const image = str(at(container(ds as ManifestDoc, "sensor").c, "image"));
    const { tree } = await manifests();
    equal(image, `fsm-px:${tree.images.find((i) => i.name === "fsm-px")?.newTag}`);
  },
});

Deno.test("k8s: the sensor's NetworkPolicy keeps an OTLP collector out; its commented rule, taken in, lets it in and validates", async () => {
  const file = join(K8S, "networkpolicy.yaml");
  const text = await Deno.readTextFile(file);
  const egress = (t: string) => {
    const { docs, problems } = parseManifests(t, "k8s/networkpolicy.yaml");
    deepEqual(problems, []);
    deepEqual(docs.flatMap(validateManifest).map(formatProblem), []);
    const spec = (docs[0]?.value as { spec: { egress: { ports?: { port?: number }[] }[] } }).spec;
    return spec.egress.flatMap((r) => (r.ports ?? []).map((p) => p.port));
  };
  // As shipped, no egress rule names the OTLP/HTTP port: README's `http://tempo.monitoring:4318` is refused.
  ok(!egress(text).includes(4318), "the shipped policy has no OTLP rule (k8s/README.md says to add one)");
  // The rule k8s/README.md points to: the commented block after "# Traces", uncommented.
  const start = text.indexOf("    # Traces (otlp.endpoint");
  ok(start > 0, "networkpolicy.yaml holds the commented OTLP rule");
  // Its two lines of prose, then the rule.
  const rule = text.slice(start).split("\n").slice(2).filter((l) => l.startsWith("    # "));
  const taken = text.slice(0, start) + rule.map((l) => "    " + l.slice(6)).join("\n") + "\n";
  ok(egress(taken).includes(4318), `the uncommented rule opens 4318:\n${taken.slice(start)}`);
  const readme = await Deno.readTextFile(join(K8S, "README.md"));
  ok(/otlp\.endpoint[^]*networkpolicy\.yaml/.test(readme), "k8s/README.md tells how to let traces out");
});
