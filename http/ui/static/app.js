// fsm-px web UI: plain JS, no framework. Every figure comes aggregated from the server's /api; charts are
// uPlot (vendored, global `uPlot`). Pages: #/overview, #/waterfall, #/interval/<id>, #/signature/<id>, #/health.

const uPlot = globalThis.uPlot;
const COLORS = ["#2f6fde", "#e8772e", "#2ca58d", "#c23b7a", "#7a5af5", "#8a8f98", "#d4a017"];
const page = document.getElementById("page");
const info = document.getElementById("info");
let charts = [];
const stageColors = new Map();

/** Escapes text for HTML. */
function esc(s) {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

function fmt(v, digits = 1) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits);
}

/** A hop with its sign: "+12.0", or "-12.0" when the next stage's capture came first (its clock behind). */
function signed(v, digits = 1) {
  return v === null || v === undefined ? "-" : (v < 0 ? "" : "+") + fmt(v, digits);
}

function colorOf(stage) {
  if (!stageColors.has(stage)) stageColors.set(stage, COLORS[stageColors.size % COLORS.length]);
  return stageColors.get(stage);
}

/** Thrown instead of an answer a page must not be built from (see {@link api}). */
const PASSED = Symbol("passed");
/** The last render started, and the last one a live update started. */
let renderSeq = 0;
let liveSeq = -1;

/** True while the user is in one of the page's fields or lists (typing a waterfall filter, a list open). */
function editing() {
  const a = document.activeElement;
  return a !== null && page.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT");
}

/**
 * An API answer for the render under way (each page asks first thing, before it awaits anything else). It
 * throws {@link PASSED} when the page must stay: a later render started meanwhile (its answer could come first,
 * and this one then put back what the user left), or a live update's answer came while the user is in a field
 * (the page is built anew: the typed text was cut off at the update and the focus taken away).
 */
async function api(path, forPage = true) {
  const seq = renderSeq;
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  const body = await res.json();
  if (forPage && (seq !== renderSeq || (seq === liveSeq && editing()))) throw PASSED;
  return body;
}

function clearCharts() {
  for (const c of charts) c.destroy();
  charts = [];
}

function chart(el, opts, data) {
  const width = Math.max(300, el.clientWidth || 600);
  const c = new uPlot({ width, height: 220, ...opts }, data, el);
  charts.push(c);
  return c;
}

function legend(stages) {
  return `<div class="legend">${
    stages.map((s) => `<span><i style="background:${colorOf(s)}"></i>${esc(s)}</span>`).join("")
  }</div>`;
}

// ---------------------------------------------------------------------------------------------- Overview

async function overview() {
  const data = await api("/api/overview");
  if (data.length === 0) {
    page.innerHTML = `<h2>Overview</h2><p class="muted">No records yet.</p>`;
    return;
  }
  page.innerHTML = data.map((m, i) => `
    <section data-measurement="${esc(m.measurement)}">
      <h2>${esc(m.measurement)} <span class="muted">${m.signatures} signatures, ${m.intervals} intervals,
        ${m.calls} calls</span></h2>
      <table class="stages">
        <thead><tr><th>stage</th><th>after</th><th>matches</th><th>recall</th><th>p50 ms</th><th>p90 ms</th>
          <th>p99 ms</th><th>max ms</th><th>hop p50 ms</th></tr></thead>
        <tbody>${
    m.stages.map((s) => `
          <tr data-stage="${esc(s.stage)}" data-p50-ms="${s.p50Ms ?? ""}" data-p99-ms="${s.p99Ms ?? ""}"
              data-matches="${s.matches}">
            <td><i style="display:inline-block;width:.8em;height:.8em;background:${colorOf(s.stage)}"></i>
              ${esc(s.stage)}</td><td>${esc(s.fromStage)}</td><td>${s.matches}</td>
            <td>${fmt(s.recall * 100)}%</td><td>${fmt(s.p50Ms)}</td><td>${fmt(s.p90Ms)}</td><td>${
      fmt(s.p99Ms)
    }</td>
            <td>${fmt(s.maxMs)}</td><td>${signed(s.hopP50Ms)}</td>
          </tr>`).join("")
  }</tbody>
      </table>
      <h3>Where the time goes (median hop per stage)</h3>
      <div class="stack" id="stack-${i}"></div>
      <div class="grid">
        <div class="card"><h3>Latency over time (p50, band to p99)</h3><div id="time-${i}"></div>
          ${legend(m.stages.map((s) => s.stage))}</div>
        <div class="card"><h3>Latency histogram (ms, log scale)</h3><div id="hist-${i}"></div></div>
        ${
    m.growth
      ? `<div class="card"><h3>Within calls: ${esc(m.growth.stage)} latency against call time (s)</h3>
        <div id="growth-${i}"></div><div class="legend">${
        m.growth.calls.map((c, k) =>
          `<span><i style="background:${COLORS[k % COLORS.length]}"></i>${esc(c.stream.slice(-24))}</span>`
        ).join("")
      }</div></div>`
      : ""
  }
      </div>
    </section>`).join("");
  data.forEach((m, i) => {
    drawStack(document.getElementById(`stack-${i}`), m.stages);
    drawBands(document.getElementById(`time-${i}`), m);
    drawHistogram(document.getElementById(`hist-${i}`), m);
    if (m.growth) drawGrowth(document.getElementById(`growth-${i}`), m.growth);
  });
}

function drawStack(el, stages) {
  const total = stages.reduce((a, s) => a + Math.max(0, s.hopP50Ms ?? 0), 0);
  if (total <= 0) {
    el.innerHTML = `<span class="muted">no hops known</span>`;
    return;
  }
  el.innerHTML = stages.map((s) => {
    // The bar spans what the hop adds (none when negative); the text says what it is.
    const v = Math.max(0, s.hopP50Ms ?? 0);
    return `<div data-hop-stage="${esc(s.stage)}" title="${esc(s.fromStage)} → ${esc(s.stage)}: ${
      signed(s.hopP50Ms ?? 0)
    } ms"
      style="width:${(v / total) * 100}%;background:${colorOf(s.stage)}">${esc(s.stage)} ${
      signed(s.hopP50Ms ?? 0, 0)
    } ms</div>`;
  }).join("");
}

function drawBands(el, m) {
  const b = m.bands;
  if (b.t.length === 0) return;
  const data = [b.t];
  const series = [{}];
  const bands = [];
  for (const s of m.stages) {
    const st = b.stages[s.stage];
    const c = colorOf(s.stage);
    const p50 = data.length;
    data.push(st.p50, st.p99);
    series.push(
      { label: `${s.stage} p50`, stroke: c, width: 2, spanGaps: true, points: { show: false } },
      { label: `${s.stage} p99`, stroke: c + "66", width: 1, spanGaps: true, points: { show: false } },
    );
    bands.push({ series: [p50 + 1, p50], fill: c + "22" });
  }
  chart(el, { series, bands, legend: { show: false }, axes: [{}, { label: "ms", size: 60 }] }, data);
}

function drawGrowth(el, g) {
  const ts = [...new Set(g.calls.flatMap((c) => c.points.map((p) => p.t)))].sort((a, b) => a - b);
  if (ts.length === 0) return;
  const data = [ts];
  const series = [{}];
  g.calls.forEach((c, k) => {
    const at = new Map(c.points.map((p) => [p.t, p.ms]));
    data.push(ts.map((t) => at.get(t) ?? null));
    series.push({
      label: c.stream,
      stroke: COLORS[k % COLORS.length],
      width: 2,
      spanGaps: true,
      points: { size: 5 },
    });
  });
  chart(el, {
    series,
    legend: { show: false },
    scales: { x: { time: false } },
    axes: [{ label: "call time s" }, { label: "ms", size: 60 }],
  }, data);
}

function drawHistogram(el, m) {
  const edges = Array.from({ length: 65 }, (_, i) => 2 ** (i / 4));
  const data = [edges];
  const series = [{}];
  for (const s of m.stages) {
    data.push(s.histogram);
    series.push({
      label: s.stage,
      stroke: colorOf(s.stage),
      fill: colorOf(s.stage) + "55",
      paths: uPlot.paths.bars({ size: [0.9, 40], align: 1 }),
      points: { show: false },
    });
  }
  chart(el, {
    series,
    legend: { show: false },
    scales: { x: { time: false, distr: 3 } },
    axes: [{ label: "latency ms" }, { label: "matches", size: 50 }],
  }, data);
}

// --------------------------------------------------------------------------------------------- Waterfall

const wf = { sort: "time", stage: "", pod: "", id: "", offset: 0, limit: 100, measurement: "" };

async function waterfall() {
  const q = new URLSearchParams(
    Object.entries(wf).filter(([, v]) => v !== "" && v !== null).map(([k, v]) => [k, String(v)]),
  );
  const data = await api(`/api/waterfall?${q}`);
  if (!data) {
    page.innerHTML = `<h2>Waterfall</h2><p class="muted">No records yet.</p>`;
    return;
  }
  const scale = Math.max(1, ...data.rows.map((r) => r.totalMs ?? 0));
  const first = data.offset + 1, last = data.offset + data.rows.length;
  page.innerHTML = `
    <h2>Waterfall <span class="muted">${esc(data.measurement)}: one row per ${
    esc(data.idType ?? "id")
  }, a bar per
      hop (stacked: where the time goes)</span></h2>
    <div class="controls">
      ${
    data.measurements.length > 1
      ? `<label>measurement <select id="wf-measurement">${
        data.measurements.map((m) => `<option value="${esc(m)}">${esc(m)}</option>`).join("")
      }</select></label>`
      : ""
  }
      <label>sort <select id="wf-sort"><option value="time">by time</option><option value="total">by total latency</option></select></label>
      <label>stage <select id="wf-stage"><option value="">any</option>${
    data.stages.map((s) => `<option>${esc(s)}</option>`).join("")
  }</select></label>
      <label>pod <input id="wf-pod" size="14" value="${esc(wf.pod)}"></label>
      <label>id <input id="wf-id" size="20" value="${esc(wf.id)}"></label>
      <button id="wf-prev" ${data.offset === 0 ? "disabled" : ""}>◀</button>
      <span class="muted">${data.total ? `${first}–${last} of ${data.total}` : "none"}</span>
      <button id="wf-next" ${last >= data.total ? "disabled" : ""}>▶</button>
      ${legend(data.stages)}
    </div>
    <div id="wf-rows">${data.rows.map((r) => wfRow(r, scale)).join("")}</div>`;
  const sel = (id) => document.getElementById(id);
  sel("wf-sort").value = wf.sort;
  sel("wf-stage").value = wf.stage;
  const reload = () => {
    wf.offset = 0;
    void render();
  };
  const measurement = sel("wf-measurement");
  if (measurement) {
    measurement.value = data.measurement;
    // Stages differ between measurements: a stage filter of the last one would hide every row.
    measurement.onchange = (e) => (wf.measurement = e.target.value, wf.stage = "", reload());
  }
  sel("wf-sort").onchange = (e) => (wf.sort = e.target.value, reload());
  sel("wf-stage").onchange = (e) => (wf.stage = e.target.value, reload());
  sel("wf-pod").onchange = (e) => (wf.pod = e.target.value, reload());
  sel("wf-id").onchange = (e) => (wf.id = e.target.value, reload());
  sel("wf-prev").onclick = () => (wf.offset = Math.max(0, wf.offset - wf.limit), void render());
  sel("wf-next").onclick = () => (wf.offset += wf.limit, void render());
}

function wfRow(r, scale) {
  let prev = 0;
  const segs = r.stages.map((c) => {
    // The bar of a stage spans what it adds: its hop when known, else what its latency adds to the bar so far.
    const add = c.latencyMs === null ? 0 : Math.max(0, c.hopMs ?? c.latencyMs - prev);
    if (c.latencyMs !== null) prev = Math.max(prev, c.latencyMs);
    const title = c.latencyMs === null
      ? `${c.stage}: not seen`
      : `${c.stage}: ${fmt(c.latencyMs)} ms from the source` +
        (c.hopMs === null ? "" : `, ${signed(c.hopMs)} ms hop`);
    return `<span class="seg" data-stage="${esc(c.stage)}" data-latency-ms="${c.latencyMs ?? ""}"
      ${c.hopMs === null ? "" : `data-hop-ms="${c.hopMs}"`} title="${esc(title)}"
      style="width:${(add / scale) * 100}%;background:${colorOf(c.stage)}"></span>`;
  }).join("");
  return `<div class="wf-row" data-interval-id="${esc(r.id)}">
    <a href="#/interval/${encodeURIComponent(r.id)}">${esc(r.id)}</a>
    <div class="wf-bar">${segs}</div>
    <span class="wf-total">${fmt(r.totalMs)} ms</span></div>`;
}

// ------------------------------------------------------------------------------------------ Interval/call

async function interval(id) {
  const d = await api(`/api/interval?id=${encodeURIComponent(id)}`);
  const rows = d.signatures.map((g) => {
    const cells = d.stages.map((st) => {
      const ms = g.matches.filter((m) => m.stage === st);
      if (ms.length === 0) return `<td class="muted">-</td>`;
      return `<td>${
        ms.map((m) =>
          `${fmt(m.latency_s * 1000)} ms${
            m.hop ? ` (${signed(m.hop.latency_s * 1000)})` : ""
          }<br><span class="muted">BER ${fmt(m.ber, 3)} · ${esc(m.target.node)} · ${esc(m.target.pod)}</span>`
        ).join("<br>")
      }</td>`;
    }).join("");
    return `<tr><td><a href="#/signature/${encodeURIComponent(g.signature_id)}"><code>${
      esc(g.signature_id)
    }</code></a></td>
      <td>${new Date(Number(BigInt(g.time_ns) / 1000000n)).toISOString().slice(11, 23)}</td>${cells}</tr>`;
  }).join("");
  page.innerHTML = `
    <h2>${esc(d.idType ?? "id")} <code>${esc(id)}</code> <span class="muted">${esc(d.measurement)}</span></h2>
    ${
    d.calls.map((c, i) =>
      `<div class="card"><h3>Call ${esc(c.stream)} <span class="muted">${
        fmt(c.duration_s)
      } s, ${c.signatures} signatures: latency per stage against call time</span></h3><div id="call-${i}"></div>${
        legend(d.stages)
      }</div>`
    ).join("")
  }
    ${
    d.callsTotal > d.calls.length
      ? `<p class="muted" data-calls-total="${d.callsTotal}">The first ${d.calls.length} of ${d.callsTotal} calls.</p>`
      : ""
  }
    <h3>Signatures of this ${esc(d.idType ?? "id")}${
    d.signaturesTotal > d.signatures.length
      ? ` <span class="muted" data-signatures-total="${d.signaturesTotal}">(the first ${d.signatures.length} of ${d.signaturesTotal})</span>`
      : ""
  }</h3>
    <table><thead><tr><th>signature</th><th>source time</th>${
    d.stages.map((s) => `<th>${esc(s)}</th>`).join("")
  }</tr></thead><tbody>${rows}</tbody></table>`;
  d.calls.forEach((c, i) => drawCall(document.getElementById(`call-${i}`), c, d.stages));
}

function drawCall(el, call, stages) {
  const ts = [...new Set(stages.flatMap((s) => (call.points[s] ?? []).map((p) => p.t_s)))].sort((a, b) =>
    a - b
  );
  if (ts.length === 0) return;
  const data = [ts];
  const series = [{}];
  for (const s of stages) {
    const at = new Map((call.points[s] ?? []).map((p) => [p.t_s, p.latency_s * 1000]));
    data.push(ts.map((t) => at.get(t) ?? null));
    series.push({ label: s, stroke: colorOf(s), width: 2, spanGaps: true, points: { show: true, size: 6 } });
  }
  chart(el, {
    series,
    legend: { show: false },
    scales: { x: { time: false } },
    axes: [{ label: "call time s" }, { label: "latency ms", size: 60 }],
  }, data);
}

// --------------------------------------------------------------------------------------------- Signature

function b64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function signature(id) {
  const d = await api(`/api/signature?id=${encodeURIComponent(id)}`);
  const g = d.signature;
  page.innerHTML = `
    <h2>Signature <code>${esc(id)}</code> <span class="muted">${
    g ? esc(g.measurement) + " · " + esc(g.pod) : ""
  }</span></h2>
    <div class="grid">
      <div class="card"><h3>Fingerprint bits (a row per 16 ms frame, 32 bits; grey: ignored as too quiet)</h3>
        <canvas class="bits" id="bits"></canvas></div>
      <div class="card"><h3>Level envelope at the source and at each match (1 ms steps, 0 = the instant)</h3>
        <div id="env"></div>
        <p class="muted">What the fine alignment compared: the source's envelope, and each target's at the matched
        offset (older records carry no target envelope).</p></div>
    </div>
    <h3>Matches</h3>
    <table><thead><tr><th>stage</th><th>latency ms</th><th>hop</th><th>BER</th><th>target node</th><th>pod</th>
      <th>offset ms</th></tr></thead><tbody>${
    d.matches.map((m) =>
      `<tr><td>${esc(m.stage)}</td><td>${fmt(m.latency_s * 1000)}</td>
      <td>${m.hop ? `${signed(m.hop.latency_s * 1000)} from ${esc(m.hop.from_stage)}` : "-"}</td><td>${
        fmt(m.ber, 3)
      }</td>
      <td>${esc(m.target.node)}</td><td>${esc(m.target.pod)}</td><td>${fmt(m.target.offset_ms, 3)}</td></tr>`
    ).join("")
  }</tbody></table>`;
  if (g?.fingerprint_b64) drawBits(document.getElementById("bits"), g);
  if (g?.envelope_b64) {
    const env = [...b64(g.envelope_b64)];
    const targets = d.matches.filter((m) => m.target_envelope_b64);
    chart(document.getElementById("env"), {
      series: [
        {},
        { label: "source", stroke: COLORS[0], width: 1.5, points: { show: false } },
        ...targets.map((m, i) => ({
          label: m.stage,
          stroke: COLORS[(i + 1) % COLORS.length],
          width: 1,
          points: { show: false },
        })),
      ],
      legend: { show: targets.length > 0 },
      scales: { x: { time: false } },
      axes: [{ label: "ms from the instant" }, { label: "level (0-7)", size: 50 }],
    }, [env.map((_, i) => i - 64), env, ...targets.map((m) => [...b64(m.target_envelope_b64)])]);
  }
}

function drawBits(canvas, g) {
  const bytes = b64(g.fingerprint_b64);
  const view = new DataView(bytes.buffer);
  const frames = bytes.length / 4;
  const mask = g.mask_b64 ? b64(g.mask_b64) : null;
  const scale = 4;
  canvas.width = 32 * scale;
  canvas.height = frames * scale;
  const ctx = canvas.getContext("2d");
  for (let f = 0; f < frames; f++) {
    const w = view.getUint32(f * 4, true);
    const quiet = mask && (mask[f >> 3] >> (f & 7)) & 1;
    for (let b = 0; b < 32; b++) {
      const on = (w >>> (31 - b)) & 1;
      ctx.fillStyle = quiet ? (on ? "#999" : "#ddd") : on ? "#1d2330" : "#f4f6fa";
      ctx.fillRect(b * scale, f * scale, scale, scale);
    }
  }
}

// ------------------------------------------------------------------------------------------------ Health

async function health() {
  const d = await api("/api/health");
  const c = d.counts;
  const table = (head, rows) =>
    rows.length === 0
      ? `<p class="muted">none</p>`
      : `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${
        rows.map((r) => `<tr>${r.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`).join("")
      }</tbody></table>`;
  page.innerHTML = `<h2>Health</h2>
    <h3>Signatures not found at a stage</h3>
    ${
    table(
      ["measurement", "stage", "signatures", "unmatched", "examples"],
      d.unmatched.map((u) => [u.measurement, u.stage, u.signatures, u.unmatched, u.examples.join(" ")]),
    )
  }
    ${
    c
      ? `<h3>Decode errors by reason</h3>${
        table(
          ["measurement", "stream", "reason", "payloads"],
          c.decodeErrors.map((e) => [e.measurement, e.stream, e.reason, e.count]),
        )
      }${
        c.decodeExamples?.length
          ? `<h3>An example of each</h3><pre class="examples">${esc(c.decodeExamples.join("\n"))}</pre>`
          : ""
      }
    <h3>Truncated or removed payloads</h3>${
        table(["query", "payloads"], c.truncated.map((e) => [e.query, e.count]))
      }
    <h3>Mailbox drops</h3>${
        table(["actor", "reason", "messages"], c.drops.map((e) => [e.actor, e.reason, e.count]))
      }`
      : `<p class="muted">Decode errors, truncated payloads and drops are counted by the nodes: see their /metrics
      (fsmpx_payload_decode_errors_total, fsmpx_payloads_truncated_total, fsmpx_mailbox_dropped_total). This page
      shows them when the nodes run in this process (demo).</p>`
  }
    <p class="muted">${d.skippedRecords} input line(s) that were not records were skipped.</p>`;
}

// ------------------------------------------------------------------------------------------------ Router

async function render(live = false) {
  const seq = ++renderSeq;
  if (live) liveSeq = seq;
  clearCharts();
  const [, name = "overview", ...rest] = location.hash.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
  try {
    if (name === "waterfall") await waterfall();
    else if (name === "interval") await interval(arg);
    else if (name === "signature") await signature(arg);
    else if (name === "health") await health();
    else await overview();
    document.body.dataset.ready = String(Date.now());
  } catch (e) {
    if (e === PASSED) {
      // A live update passed over waits for the user to leave the field.
      if (seq === renderSeq && seq === liveSeq) held = true;
      return;
    }
    page.innerHTML = `<p>Could not load: ${esc(e.message)}</p>`;
  }
}

async function updateInfo(counts) {
  const c = counts ?? await api("/api/info", false);
  info.textContent = `${c.signatures} signatures · ${c.matches} matches`;
}

globalThis.addEventListener("hashchange", () => void render());

// A live update waits while the user is in one of the page's fields (see api): the page is built anew.
let held = false;
function liveRender() {
  held = editing();
  if (!held) void render(true);
}
page.addEventListener("focusout", () => {
  // After the focus moved (to another field of the page, it waits on).
  if (held) setTimeout(liveRender, 0);
});
// Live tail: the server says when records arrived; the page re-reads its aggregates (not the records).
const events = new EventSource("/api/events");
let seen = null;
events.addEventListener("update", (e) => {
  const c = JSON.parse(e.data);
  void updateInfo(c);
  if (seen !== null && c.version !== seen && !location.hash.startsWith("#/signature")) liveRender();
  seen = c.version;
});
void updateInfo();
void render();
