// The edge-agent web dashboard: one EventSource, one state a second at most, drawn with uPlot.
// The server does all the arithmetic (page_state in web.py); this file only draws. Every text
// that comes from MQTT (device names, creative ids, error messages) goes in as textContent,
// never as HTML.
"use strict";

const MIN_RENDER_GAP_MS = 1000; // a second guard behind the server's: one draw a second at most
const COLORS = {
  female: "#c2185b", male: "#1565c0", other: "#9e9e9e", viewers: "#ef6c00",
  passers: "#455a64", dwell: "#00897b", attention: "#ef6c00",
};

// What a measuring script or a test reads: how many states came and when each chart was drawn
// (performance.now() milliseconds).
const dashboard = (window.dashboard = {
  states: 0, renders: 0, chartUpdates: {}, lastState: null, connected: false,
});

const $ = (id) => document.getElementById(id);
const fmt = (n, digits = 0) =>
  n === null || n === undefined ? "–" : Number(n).toLocaleString("en", {
    maximumFractionDigits: digits, minimumFractionDigits: digits,
  });

function ago(ms, now) {
  if (!ms) return "–";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

// -- charts ------------------------------------------------------------------------------------

const charts = {};

function width(container) {
  return Math.max(240, container.clientWidth || 600);
}

function makeChart(name, options, data) {
  const container = $(name);
  const chart = new uPlot(
    { width: width(container), height: container.classList.contains("small") ? 180 : 220,
      ...options },
    data, container);
  charts[name] = {
    chart, key: JSON.stringify(data), container, labels: [], last: -Infinity, pending: null,
    timer: null,
  };
  dashboard.chartUpdates[name] = [];
  return chart;
}

// Redraw a chart only when its own data changed, and never twice within a second (the draws
// are a second apart already, but a draw takes some milliseconds: this holds per chart).
function update(name, data, labels = null) {
  const entry = charts[name];
  const key = JSON.stringify([data, labels]);
  entry.pending = entry.key === key ? null : { key, data, labels };
  flush(name);
}

function flush(name) {
  const entry = charts[name];
  if (entry.pending === null || entry.timer !== null) return;
  const wait = entry.last + MIN_RENDER_GAP_MS - performance.now();
  if (wait > 0) {
    entry.timer = setTimeout(() => { entry.timer = null; flush(name); }, wait);
    return;
  }
  const { key, data, labels } = entry.pending;
  entry.pending = null;
  entry.key = key;
  entry.last = performance.now();
  if (labels !== null) entry.labels.splice(0, entry.labels.length, ...labels);
  entry.chart.setData(data);
  const times = dashboard.chartUpdates[name];
  times.push(entry.last);
  if (times.length > 200) times.shift();
}

const bars = (align, size = [0.45, 28]) => uPlot.paths.bars({ size, align });

// The time axis: at least the last 20 minutes up to now, so that a few buckets are not stretched
// over the whole width (uPlot's own range would span years around a single point).
const MIN_SPAN_S = 20 * 60;
let timeRange = [0, 1];
const timeScale = { time: true, range: () => timeRange };

function timeCharts() {
  makeChart("chart-audience", {
    series: [
      {},
      { label: "passers-by", fill: COLORS.passers, stroke: COLORS.passers, paths: bars(-1) },
      { label: "viewers", fill: COLORS.viewers, stroke: COLORS.viewers, paths: bars(1) },
    ],
    axes: [{}, { label: "people per bucket" }],
    scales: { x: timeScale, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
  }, [[], [], []]);
  makeChart("chart-dwell", {
    series: [
      {},
      { label: "dwell (passers-by)", stroke: COLORS.dwell, width: 2, points: { show: true } },
      { label: "attention (viewers)", stroke: COLORS.attention, width: 2, points: { show: true } },
    ],
    axes: [{}, { label: "seconds" }],
    scales: { x: timeScale, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
  }, [[], [], []]);
}

// A bar chart over categories (age brackets, creatives): x is the category's index.
function categoryChart(name, seriesList) {
  const labels = []; // the chart's categories, replaced in place when its data is
  const chart = makeChart(name, {
    series: [{}, ...seriesList],
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] },
      y: { range: (u, min, max) => [0, Math.max(1, max)] },
    },
    axes: [
      { splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => labels[i] ?? "") },
      {},
    ],
    legend: { live: false },
  }, [[], ...seriesList.map(() => [])]);
  charts[name].labels = labels;
  return chart;
}

function mixCharts() {
  for (const name of ["chart-mix-window", "chart-mix-span", "chart-mix-today"]) {
    categoryChart(name, [
      { label: "female", fill: COLORS.female, stroke: COLORS.female, paths: bars(-1, [0.4, 40]) },
      { label: "male", fill: COLORS.male, stroke: COLORS.male, paths: bars(1, [0.4, 40]) },
      { label: "other / unknown", fill: COLORS.other, stroke: COLORS.other,
        paths: bars(0, [0.4, 40]) },
    ]);
  }
  categoryChart("chart-plays", [
    { label: "people", fill: COLORS.passers, stroke: COLORS.passers, paths: bars(-1, [0.4, 40]) },
    { label: "viewers", fill: COLORS.viewers, stroke: COLORS.viewers, paths: bars(1, [0.4, 40]) },
  ]);
}

// -- drawing one state ---------------------------------------------------------------------------

function drawMix(prefix, mix, brackets) {
  // Categories: the age brackets in age order, then other and unknown.
  const labels = [...brackets];
  const female = brackets.map(() => null);
  const male = brackets.map(() => null);
  const rest = brackets.map(() => null);
  const table = $(`mix-${prefix}-table`);
  table.replaceChildren();
  for (const s of mix.segments) {
    const viewers = s.viewers === null ? "" : ` (${s.viewers} viewers)`;
    table.append(row([s.gender ? `${s.gender} ${s.bracket}` : s.name, `${s.passers_by}${viewers}`]));
    if (s.gender) {
      const at = brackets.indexOf(s.bracket);
      (s.gender === "female" ? female : male)[at] = s.passers_by;
    } else {
      labels.push(s.name);
      female.push(null);
      male.push(null);
      rest.push(s.passers_by);
    }
  }
  update(`chart-mix-${prefix}`, [labels.map((_, i) => i), female, male, rest], labels);
}

function drawDevices(state) {
  const body = $("devices").tBodies[0];
  body.replaceChildren();
  for (const d of state.devices) {
    const stateCell = el("td", d.state, `state-${d.state}`);
    const error = d.last_error ? `${d.last_error.kind}: ${d.last_error.message}` : "";
    const tr = row([
      d.name, stateCell, d.since_ms ? ago(d.since_ms, state.taken_ms) : "",
      fmt(d.fps, 1), d.outbox_pending === null ? "–" : `${d.outbox_pending} waiting`,
      d.present === null ? "–" : `${d.present} present · ${d.viewers_now} looking`,
      d.today_passers_by === null ? "–" : `${d.today_passers_by} / ${d.today_viewers}`,
      d.playing ?? "–", error,
    ]);
    tr.dataset.device = d.name;
    body.append(tr);
  }
}

function drawCreatives(state) {
  const body = $("creatives").tBodies[0];
  body.replaceChildren();
  for (const c of state.creatives) {
    const who = c.segments.map(([name, n]) => `${name} ${n}`).join(", ");
    const tr = row([
      c.creative_id, el("td", fmt(c.plays), "num"), el("td", `${fmt(c.duration_s)} s`, "num"),
      el("td", fmt(c.people), "num"), el("td", fmt(c.viewers), "num"),
      el("td", `${fmt(c.attention_s, 1)} s`, "num"), who,
    ]);
    tr.dataset.creative = c.creative_id;
    body.append(tr);
  }
  const top = state.creatives.slice(0, 12);
  const names = top.map((c) => c.creative_id);
  update("chart-plays", [names.map((_, i) => i), top.map((c) => c.people),
    top.map((c) => c.viewers)], names);
  $("plays-note").textContent = `(finished plays, last ${state.history_hours} h)`;
}

function drawErrors(state) {
  const list = $("errors");
  list.replaceChildren();
  if (!state.errors.length) list.append(el("li", "none", "muted"));
  for (const e of state.errors) {
    const item = el("li");
    const where = e.file ? ` (${e.file}${e.line ? `:${e.line}` : ""})` : "";
    item.append(el("span", `${clock(e.ts_ms)} ${e.device} `, "muted"), el("span", e.kind, "err-kind"),
      document.createTextNode(`: ${e.message}${where}`));
    list.append(item);
  }
}

function drawScopes(state) {
  const select = $("scope");
  const wanted = ["", ...state.sites, ...state.all_devices];
  const have = [...select.options].map((o) => o.value);
  if (JSON.stringify(wanted) === JSON.stringify(have)) return;
  const current = select.value || state.scope;
  select.replaceChildren(el("option", "all displays"));
  select.options[0].value = "";
  for (const site of state.sites) select.append(new Option(`site ${site}`, site));
  for (const device of state.all_devices) select.append(new Option(device, device));
  if (!wanted.includes(current)) select.append(new Option(current, current));
  select.value = current;
}

function draw(state) {
  dashboard.renders += 1;
  dashboard.lastState = state;
  document.body.dataset.state = state.connected ? "connected" : "disconnected";
  const fleet = state.fleet;
  $("fleet").textContent = `${fleet.online}/${fleet.devices} online`;
  $("present-now").textContent = fmt(fleet.present);
  $("viewers-now").textContent = fmt(fleet.viewers_now);
  $("broker").textContent = state.connected
    ? `broker ${state.broker}` : `broker ${state.broker}: ${state.connection_note ?? "not connected"}`;
  $("updated").textContent = `updated ${new Date(state.taken_ms).toLocaleTimeString()}`;
  $("bucket-note").textContent = `(per ${state.bucket_s / 60} min, last ${state.history_hours} h)`;

  const s = state.series;
  const centre = state.bucket_s / 2;
  const now = state.taken_ms / 1000;
  timeRange = [Math.min(s.t[0] ?? now, now - MIN_SPAN_S), now + state.bucket_s];
  update("chart-audience", [s.t.map((t) => t + centre), s.passers_by, s.viewers]);
  update("chart-dwell", [s.t.map((t) => t + centre), s.dwell_mean_s, s.attention_mean_s]);

  $("window-passers").textContent = fmt(state.window.passers_by);
  $("window-viewers").textContent = fmt(state.window.viewers);
  $("window-when").textContent = state.window.end_ms
    ? `ended ${clock(state.window.end_ms)} (${state.window.windows} display${state.window.windows === 1 ? "" : "s"})` : "";
  $("mix-passers").textContent = fmt(state.mix.passers_by);
  $("mix-viewers").textContent = fmt(state.mix.viewers);
  $("mix-when").textContent = state.mix.end ? `ended ${clock(Date.parse(state.mix.end))}` : "none yet";
  $("today-passers").textContent = fmt(state.today.passers_by);
  $("today-viewers").textContent = fmt(state.today.viewers);
  $("today-date").textContent = state.today.dates.join(", ");
  drawMix("window", state.window, state.brackets);
  drawMix("span", state.mix, state.brackets);
  drawMix("today", state.today, state.brackets);
  drawCreatives(state);
  drawDevices(state);
  drawErrors(state);
  drawScopes(state);
  document.body.dataset.updated = String(state.taken_ms);
}

// -- the live feed ---------------------------------------------------------------------------

let pending = null;
let lastDraw = 0;
let timer = null;

function schedule() {
  if (timer !== null) return;
  const wait = Math.max(0, lastDraw + MIN_RENDER_GAP_MS - performance.now());
  timer = setTimeout(() => {
    timer = null;
    if (performance.now() - lastDraw < MIN_RENDER_GAP_MS) {
      schedule(); // a timer may fire a little early: never two draws within the second
      return;
    }
    lastDraw = performance.now();
    const state = pending;
    pending = null;
    if (state) draw(state);
  }, wait);
}

let source = null;

function connect(scope) {
  if (source) source.close();
  source = new EventSource(`/events?scope=${encodeURIComponent(scope)}`);
  source.addEventListener("state", (event) => {
    dashboard.states += 1;
    pending = JSON.parse(event.data);
    schedule();
  });
  source.onopen = () => { dashboard.connected = true; };
  source.onerror = () => {
    dashboard.connected = false;
    document.body.dataset.state = "disconnected";
    $("updated").textContent = "dashboard process not reachable; retrying";
  };
}

function scopeFromUrl() {
  return new URLSearchParams(location.search).get("scope") ?? "";
}

window.addEventListener("DOMContentLoaded", () => {
  timeCharts();
  mixCharts();
  const select = $("scope");
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    if (select.value) url.searchParams.set("scope", select.value);
    else url.searchParams.delete("scope");
    history.replaceState(null, "", url);
    connect(select.value);
  });
  const scope = scopeFromUrl();
  if (scope) select.append(new Option(scope, scope));
  select.value = scope;
  connect(scope);
  window.addEventListener("resize", () => {
    for (const { chart, container } of Object.values(charts)) {
      chart.setSize({ width: width(container), height: chart.height });
    }
  });
});
