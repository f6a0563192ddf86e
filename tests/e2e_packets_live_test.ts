/**
 * Two sensors (`run`, as in the DaemonSet) capture live RTP on loopback with their own tcpdump children, name
 * pods from a Kubernetes API (host-network pods by their declared ports), and share signatures and matches over
 * a real nats-server: node-a's SBC pod receives a call's RTP, node-b's relay pod receives the same audio 300 ms
 * later (a relay that copies payloads into a new RTP stream), and node-b's voice-bot pod gets the same call as
 * Twilio-style WebSocket media frames from a real WebSocket client. Truth for the relay comes from our own
 * tcpdump of the same traffic: identical payload bytes give each relayed packet's exact latency.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { NatsServer } from "./support/nats_server.ts";
import { requireTools, toolGate } from "./support/tools.ts";
import { FakeKubeApi, makeCaAndServerCert, pod } from "./support/fake_kube_api.ts";
import { replayRecords, ROOT, sleep } from "./support/sensor_process.ts";
import { parseFrames } from "../packets/pcap.ts";
import { FrameDecoder } from "../packets/ip.ts";
import { parseRtp, RtpHeader } from "../packets/rtp.ts";

const gate = await toolGate(import.meta.url, ["root", "tcpdump", "nats-server", "openssl"]);

/** Sends speech as 20 ms μ-law RTP to P0 in real time; relays each packet to P1 after 300 ms with its own SSRC. */
const SENDER = `
import socket, sys, time, threading
speech = open(sys.argv[1], 'rb').read()
p0, p1 = int(sys.argv[2]), int(sys.argv[3])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(('127.0.0.1', p0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
relay_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def relay():
    seq = 5000
    rx.settimeout(2.0)
    while True:
        try:
            data, _ = rx.recvfrom(2048)
        except socket.timeout:
            return
        due = time.time() + 0.300
        payload = data[12:]
        hdr = bytes([0x80, 0]) + (seq & 0xffff).to_bytes(2, 'big') + ((seq - 5000) * 160).to_bytes(4, 'big') + (0x5e1a).to_bytes(4, 'big')
        seq += 1
        threading.Timer(max(0, due - time.time()), lambda b=hdr + payload: relay_tx.sendto(b, ('127.0.0.1', p1))).start()
t = threading.Thread(target=relay); t.start()
print('started', flush=True)
start = time.time()
for rep in range(2):
    for i in range(0, len(speech) - 160, 160):
        n = rep * (len(speech) // 160) + i // 160
        hdr = bytes([0x80, 0]) + (n & 0xffff).to_bytes(2, 'big') + (n * 160).to_bytes(4, 'big') + (0xcafe).to_bytes(4, 'big')
        tx.sendto(hdr + speech[i:i + 160], ('127.0.0.1', p0))
        target = start + (n + 1) * 0.020
        time.sleep(max(0, target - time.time()))
t.join()
`;

Deno.test({
  name:
    "live packet capture on two nodes over JetStream: RTP relay hop exact, WebSocket bot hop found, pods named",
  ignore: gate.ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    requireTools(gate);
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-live-" });
    const p0 = 41000 + Math.floor(Math.random() * 1000) * 2;
    const p1 = p0 + 1;
    const pWs = p0 + 2000; // the voice bot's WebSocket (TCP)
    const nats = await NatsServer.start();
    const { ca, cert, key } = await makeCaAndServerCert();
    const api = new FakeKubeApi({ token: "live-test-token", tls: { cert, key } });
    api.put(
      "ADDED",
      pod("sbc-0", "127.0.0.1", "node-a", {
        hostNetwork: true,
        containers: [{ ports: [{ containerPort: p0 }] }],
      }),
    );
    api.put(
      "ADDED",
      pod("relay-0", "127.0.0.1", "node-b", {
        hostNetwork: true,
        containers: [{ ports: [{ containerPort: p1 }] }],
      }),
    );
    api.put(
      "ADDED",
      pod("bot-0", "127.0.0.1", "node-b", {
        hostNetwork: true,
        containers: [{ ports: [{ containerPort: pWs }] }],
      }),
    );
    await Deno.writeTextFile(join(dir, "token"), "live-test-token");
    await Deno.writeTextFile(join(dir, "ca.crt"), ca);
    const configPath = join(dir, "config.yaml");
    await Deno.writeTextFile(
      configPath,
      `log_level: info
node: \${NODE_NAME:-replay}
metrics: { listen: "127.0.0.1:0" }
nats: { url: "${nats.url}", stream: FSMPX_LIVE }
packets: { interface: lo, pod_metadata: kubernetes, buffer_mib: 8 }
measurements:
  - name: call_media
    signature_rules:
      packets: { protocol: rtp, port: ${p0}, pod: voice/sbc-*, direction: to_pod }
    match_rules:
      - stage: relay
        packets: { protocol: rtp, port: ${p1}, pod: voice/relay-*, direction: to_pod }
      - stage: bot
        packets: { protocol: websocket, port: ${pWs}, pod: voice/bot-*, direction: to_pod }
        audio: { envelope: json, path: media.payload, encoding: base64, codec: mulaw, sample_rate: 8000 }
    metadata_extraction:
      id_patterns:
        - { pattern: '"callSid":"(CA[0-9a-f]+)"', id_type: call_sid }
`,
    );
    const truthPcap = join(dir, "truth.pcap");
    const truthCap = new Deno.Command("tcpdump", {
      args: [
        "-i",
        "lo",
        "-U",
        "--immediate-mode",
        "--time-stamp-precision=nano",
        "-Z",
        "root",
        "-w",
        truthPcap,
        `udp port ${p0} or udp port ${p1}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const sensors = ["node-a", "node-b"].map((node) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "main.ts", "run", "--config", configPath],
        cwd: ROOT,
        env: {
          NODE_NAME: node,
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: String(api.port),
          FSMPX_SERVICE_ACCOUNT_DIR: dir,
        },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn()
    );
    const logs = ["", ""];
    const readers = sensors.map((s, i) =>
      (async () => {
        for await (
          const c of s.stderr.pipeThrough(new TextDecoderStream() as TransformStream<Uint8Array, string>)
        ) {
          logs[i] += c;
        }
      })()
    );
    const spawnedAt = performance.now();
    const exited: (number | undefined)[] = [undefined, undefined];
    sensors.forEach((s, i) => s.status.then((st) => exited[i] = st.code));
    try {
      // Both sensors listed their pods and started capturing. A cold start under a parallel suite on two cores
      // can take tens of seconds; a sensor that exits fails at once, with what it said.
      const started = () => logs.every((l) => l.includes("live capture started"));
      for (let i = 0; i < 1200 && !started() && exited.every((c) => c === undefined); i++) await sleep(100);
      const state = () =>
        logs.map((l, i) =>
          `node-${"ab"[i]} after ${((performance.now() - spawnedAt) / 1000).toFixed(1)} s, exit ${
            exited[i] ?? "none"
          }; last lines:\n${l.trimEnd().split("\n").slice(-8).join("\n")}`
        ).join("\n---\n");
      assert.ok(started(), state());
      assert.ok(logs.every((l) => l.includes("pods of this node listed")), state());
      await sleep(500);
      const speech = join(ROOT, "fixtures/audio_fp/speech_8k.ul");
      // A voice bot (a real Deno WebSocket server on node-b's pod port) gets the same call as Twilio-style
      // media frames from a real WebSocket client, 400 ms behind the RTP sender: counted from the sender's own
      // start line, since python's start-up on a loaded machine can take longer than that.
      const send = new Deno.Command("python3", {
        args: ["-c", SENDER, speech, String(p0), String(p1)],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const senderOut = send.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const rtpStarted = (async () => {
        let seen = "";
        while (!seen.includes("started\n")) {
          const { value, done } = await senderOut.read();
          if (done) throw new Error(`RTP sender ended before it started: ${seen}`);
          seen += value;
        }
      })();
      const bot = Deno.serve({ hostname: "127.0.0.1", port: pWs, onListen() {} }, (req) => {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onmessage = () => {};
        return response;
      });
      const wsLeg = (async () => {
        const audio = await Deno.readFile(speech);
        const ws = new WebSocket(`ws://127.0.0.1:${pWs}/media`);
        await new Promise((r, j) => (ws.onopen = r, ws.onerror = j));
        ws.send(JSON.stringify({ event: "start", start: { callSid: "CA0123abcd", streamSid: "MZ1" } }));
        await rtpStarted;
        const start = performance.now() + 400;
        let n = 0;
        for (let rep = 0; rep < 2; rep++) {
          for (let i = 0; i + 160 < audio.length; i += 160, n++) {
            const wait = start + n * 20 - performance.now();
            if (wait > 0) await sleep(wait);
            const payload = btoa(String.fromCharCode(...audio.subarray(i, i + 160)));
            ws.send(JSON.stringify({ event: "media", streamSid: "MZ1", media: { payload } }));
          }
        }
        ws.close();
      })();
      await wsLeg;
      const [status, errText] = await Promise.all([
        send.status,
        new Response(send.stderr).text(),
        (async () => {
          while (!(await senderOut.read()).done);
        })(),
      ]);
      assert.equal(status.code, 0, errText);
      await bot.shutdown();
      await sleep(3000); // the last relayed packets, the reorder window, matching and publishing
    } finally {
      for (const s of sensors) {
        try {
          s.kill("SIGTERM");
        } catch { /* gone */ }
      }
      await Promise.all(sensors.map((s) => s.status));
      await Promise.all(readers);
      try {
        truthCap.kill("SIGINT");
      } catch { /* gone */ }
      await truthCap.status;
    }
    try {
      // Truth: relayed packets carry the source packets' payloads byte for byte.
      const { frames } = parseFrames(await Deno.readFile(truthPcap));
      const fd = new FrameDecoder();
      const h = new RtpHeader();
      // The same payload recurs (the speech is sent twice; silence repeats): the relayed packet's source is the
      // latest one with its bytes captured before it.
      const sourceAt = new Map<string, bigint[]>();
      const relayLatency = new Map<bigint, number>();
      for (const f of frames) {
        const p = fd.decode(f);
        if (!p || parseRtp(p.payload, 0, p.payload.length, h) !== undefined) continue;
        const key = Array.from(p.payload.subarray(h.payloadStart, h.payloadEnd)).join(",");
        if (p.dstPort === p0) sourceAt.set(key, [...(sourceAt.get(key) ?? []), p.timeNs]);
        if (p.dstPort === p1) {
          const src = (sourceAt.get(key) ?? []).filter((t) => t <= p.timeNs).at(-1);
          if (src !== undefined) relayLatency.set(p.timeNs, Number(p.timeNs - src) / 1e9);
        }
      }
      assert.ok(relayLatency.size > 500, `relayed packets seen: ${relayLatency.size}`);

      const stored = await replayRecords(configPath);
      const sigs = stored.signatures;
      const matches = stored.matches.filter((m) => m.stage === "relay");
      assert.ok(sigs.length >= 3, `signatures: ${sigs.length}\n${logs[0]}`);
      assert.ok(sigs.every((s) => s.node === "node-a" && s.pod === "voice/sbc-0"), JSON.stringify(sigs[0]));
      assert.ok(
        matches.length >= Math.ceil(sigs.length * 0.95),
        `matches ${matches.length} of ${sigs.length}`,
      );
      for (const m of matches) {
        assert.equal(m.target.node, "node-b");
        assert.equal(m.target.pod, "voice/relay-0");
        assert.equal(m.source.pod, "voice/sbc-0");
        const truth = relayLatency.get(BigInt(m.target.time_ns));
        assert.ok(truth !== undefined, `match at ${m.target.time_ns} is not at a relayed packet`);
        assert.ok(Math.abs(m.latency_s - truth) < 0.001, `latency ${m.latency_s} vs truth ${truth}`);
        assert.ok(m.latency_s > 0.29 && m.latency_s < 0.5, `latency ${m.latency_s}`);
      }
      // The WebSocket hop, live: found at the bot's pod on node-b, the same offset for every instant (the client
      // sends on its own 20 ms schedule ~400 ms after the RTP sender said it started; both pace in real time).
      const bot = stored.matches.filter((m) => m.stage === "bot");
      assert.ok(bot.length >= Math.ceil(sigs.length * 0.9), `bot matches ${bot.length} of ${sigs.length}`);
      assert.ok(bot.every((m) => m.target.pod === "voice/bot-0" && m.target.node === "node-b"));
      const lat = bot.map((m) => m.latency_s).sort((a, b) => a - b);
      const med = lat[lat.length >> 1]!;
      assert.ok(med > 0 && med < 1, `bot latency median ${med}`);
      assert.ok(lat.every((l) => Math.abs(l - med) < 0.06), `bot latencies ${lat.join(", ")}`);
    } finally {
      await nats.stop();
      await api.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
