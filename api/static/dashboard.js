// The trainlab dashboard: lists, overlaid curves with live updates, a record's outputs and
// the ablation summary. Everything comes from the API beside it; nothing from elsewhere.
"use strict";

const { colorAt, drawLines, drawBars, drawDigit } = window.trainlabCharts;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const LIST_REFRESH_MS = 2000;
const CURVE_THROTTLE_MS = 1000;
const MAX_SELECTED = 8;

const state = {
  experiments: [],
  ablations: [],
  selected: new Set(),      // experiment ids overlaid in the curve view
  userPicked: false,        // until the user ticks something, follow the newest runs
  ablation: null,           // ablation id shown in the ablation card
  streams: new Map(),       // experiment id -> EventSource while it runs
  curveTimer: null,
  renders: 0,
};
window.trainlab = state;  // handy in the browser console and for tests

const $ = (sel) => document.querySelector(sel);

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) { throw new Error(`${url}: ${response.status}`); }
  return response.json();
}

function progressBar(done, total) {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  return `<div class="progress" title="${done} of ${total}"><div data-width="${pct.toFixed(1)}%"></div></div>`;
}

// The page's Content-Security-Policy refuses inline style attributes in markup; styles set
// through the DOM are allowed. Markup carries data-width / data-color, applied here.
function applyStyles(root) {
  root.querySelectorAll("[data-width]").forEach((el) => { el.style.width = el.dataset.width; });
  root.querySelectorAll("[data-color]").forEach((el) => { el.style.background = el.dataset.color; });
}

function statusTag(status) { return `<span class="status ${esc(status)}">${esc(status)}</span>`; }

function expLabel(e) {
  if (e.name) { return e.name; }
  const seed = e.spec && e.spec.seed !== undefined ? ` · seed ${e.spec.seed}` : "";
  return e.preset ? e.preset + seed : e.id.slice(0, 8);
}

// The list's label for an experiment when it is known, else what the answer carries.
function labelOf(id, fallback) {
  const known = state.experiments.find((e) => e.id === id);
  return known ? expLabel(known) : (fallback.name || fallback.preset || id.slice(0, 8));
}

function renderExperiments() {
  const rows = state.experiments.map((e) => {
    const acc = e.metrics && e.metrics.test_accuracy != null
      ? (100 * e.metrics.test_accuracy).toFixed(2) + "%" : "";
    const checked = state.selected.has(e.id) ? "checked" : "";
    return `<tr data-id="${esc(e.id)}" class="${checked ? "selected" : ""}">
      <td><input type="checkbox" ${checked} aria-label="overlay ${esc(e.id)}"></td>
      <td title="${esc(e.id)}">${esc(expLabel(e))} <span class="muted">${esc(e.id.slice(0, 8))}</span></td>
      <td>${statusTag(e.status)}</td><td>${progressBar(e.progress.step, e.progress.total)}</td>
      <td>${acc}</td></tr>`;
  });
  $("#experiments tbody").innerHTML = rows.join("") ||
    `<tr><td colspan="5" class="muted">no experiments yet</td></tr>`;
  applyStyles($("#experiments tbody"));
}

function renderAblations() {
  const rows = state.ablations.map((a) => {
    const counts = Object.entries(a.status_counts || {})
      .filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ");
    return `<tr data-id="${esc(a.id)}" class="${a.id === state.ablation ? "selected" : ""}">
      <td title="${esc(a.id)}">${esc(a.name || a.id.slice(0, 8))}</td><td>${esc(a.design)}</td>
      <td>${esc(counts)}</td><td>${progressBar(a.progress.step, a.progress.total)}</td></tr>`;
  });
  $("#ablations tbody").innerHTML = rows.join("") ||
    `<tr><td colspan="4" class="muted">no ablations yet</td></tr>`;
  applyStyles($("#ablations tbody"));
}

async function refreshLists() {
  try {
    const [exps, abls] = await Promise.all([
      getJSON("/experiments?limit=50"), getJSON("/ablations?limit=20"),
    ]);
    state.experiments = exps.items || exps.experiments || exps;
    state.ablations = abls.items || abls;
    if (!state.userPicked) {
      // Follow the newest runs that have points, so a fresh page shows something at once.
      const withPoints = state.experiments.filter((e) => e.progress.step > 0 || e.status === "succeeded");
      const before = [...state.selected].join();
      state.selected = new Set(withPoints.slice(0, 5).map((e) => e.id));
      if ([...state.selected].join() !== before) { scheduleCurves(); refreshRecord(); }
    }
    if (!state.ablation && state.ablations.length) { selectAblation(state.ablations[0].id); }
    renderExperiments();
    renderAblations();
    syncStreams();
    $("#connection").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("#connection").textContent = `cannot reach the server (${err.message})`;
  }
}

// Live updates: one event stream per selected experiment that has not finished. New loss
// points only trigger a (throttled) refetch of the aligned, smoothed curves from the server.
function syncStreams() {
  const live = new Set(state.experiments
    .filter((e) => state.selected.has(e.id) && !TERMINAL.has(e.status)).map((e) => e.id));
  for (const [id, source] of state.streams) {
    if (!live.has(id)) { source.close(); state.streams.delete(id); }
  }
  for (const id of live) {
    if (state.streams.has(id)) { continue; }
    const source = new EventSource(`/experiments/${encodeURIComponent(id)}/events`);
    source.addEventListener("loss", scheduleCurves);
    source.addEventListener("status", scheduleCurves);
    source.addEventListener("end", () => {
      source.close(); state.streams.delete(id); scheduleCurves(); refreshRecord();
    });
    state.streams.set(id, source);
  }
}

function scheduleCurves() {
  if (state.curveTimer) { return; }
  state.curveTimer = setTimeout(() => { state.curveTimer = null; refreshCurves(); }, CURVE_THROTTLE_MS);
}

function legend(el, items) {
  el.innerHTML = items.map((it) =>
    `<span><i data-color="${esc(it.color)}"></i>${esc(it.label)}</span>`).join("");
  applyStyles(el);
}

async function refreshCurves() {
  const ids = [...state.selected];
  const canvas = $("#curves");
  if (!ids.length) {
    drawLines(canvas, [], [], { empty: "tick experiments to overlay their loss curves" });
    legend($("#curves-legend"), []);
    return;
  }
  const smoothing = Number($("#smoothing").value);
  const width = canvas.clientWidth || Number(canvas.getAttribute("width"));
  try {
    const data = await getJSON(`/compare/loss?experiments=${ids.join(",")}` +
      `&max_points=${Math.min(2000, 2 * width)}&smoothing=${smoothing}`);
    const series = data.curves.map((c, i) => ({
      label: labelOf(c.experiment_id, c), color: colorAt(i), values: c.values,
    }));
    drawLines(canvas, data.steps, series);
    legend($("#curves-legend"), series);
    state.renders += 1;
  } catch (err) {
    drawLines(canvas, [], [], { empty: err.message });
  }
}

async function refreshRecord() {
  const record = Math.max(0, Number($("#record").value) || 0);
  const finished = state.experiments.filter((e) => state.selected.has(e.id) && e.status === "succeeded");
  const first = finished[0] || state.experiments[0];
  const dataset = (first && first.spec && first.spec.dataset) || "mnist";
  try {
    const image = await getJSON(`/datasets/${dataset}/records/${record}`);
    drawDigit($("#digit"), image.pixels);
    $("#digit-label").textContent = `record ${record}: a ${image.label}`;
  } catch (err) {
    $("#digit-label").textContent = `no image (${err.message})`;
  }
  const bars = $("#bars");
  if (!finished.length) {
    bars.innerHTML = `<p class="muted">outputs appear once a ticked experiment has finished</p>`;
    return;
  }
  try {
    const data = await getJSON(`/compare/predictions?experiments=` +
      `${finished.map((e) => e.id).join(",")}&records=${record}`);
    const row = data.records[0];
    bars.innerHTML = row.experiments.map((x, i) => `<figure><canvas id="bars-${i}" width="200" height="110"></canvas>
      <figcaption>${esc(labelOf(x.experiment_id, x))}: says ${x.predicted}</figcaption></figure>`).join("");
    row.experiments.forEach((x, i) => drawBars($(`#bars-${i}`), x.outputs, x.predicted, row.label));
  } catch (err) {
    bars.innerHTML = `<p class="muted">${esc(err.message)}</p>`;
  }
}

function pct(v) { return v == null ? "–" : (100 * v).toFixed(2); }
function ci(d) { return d.ci_low == null ? "–" : `[${pct(d.ci_low)}, ${pct(d.ci_high)}]`; }

async function selectAblation(id) {
  state.ablation = id;
  renderAblations();
  try {
    const [summary, curves] = await Promise.all([
      getJSON(`/ablations/${id}/summary`), getJSON(`/ablations/${id}/curves?max_points=600`),
    ]);
    $("#ablation-title").textContent = id.slice(0, 8);
    $("#summary tbody").innerHTML = summary.arms.map((a) => {
      const d = a.diff_to_reference;
      return `<tr><td>${a.arm} ${esc(a.label)}</td><td>${a.n}</td><td>${pct(a.test_accuracy.mean)}</td>
        <td>${ci(a.test_accuracy)}</td><td>${a.final_loss.mean == null ? "–" : a.final_loss.mean.toFixed(4)}</td>
        <td>${d.mean_diff == null ? "–" : pct(d.mean_diff)} ${ci(d)}</td>
        <td>${d.p_value == null ? "–" : d.p_value.toPrecision(3)}</td></tr>`;
    }).join("");
    $("#summary-method").textContent = summary.method;
    const series = curves.arms.map((a, i) => ({
      label: a.label, color: colorAt(i), values: a.mean, low: a.low, high: a.high,
    }));
    drawLines($("#arm-curves"), curves.steps, series);
    legend($("#arm-legend"), series);
  } catch (err) {
    $("#summary-method").textContent = err.message;
  }
}

function wire() {
  $("#experiments tbody").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (!row) { return; }
    const id = row.dataset.id;
    state.userPicked = true;
    if (state.selected.has(id)) { state.selected.delete(id); }
    else if (state.selected.size < MAX_SELECTED) { state.selected.add(id); }
    renderExperiments(); syncStreams(); refreshCurves(); refreshRecord();
  });
  $("#ablations tbody").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (row) { selectAblation(row.dataset.id); }
  });
  $("#smoothing").addEventListener("input", () => {
    $("#smoothing-value").textContent = Number($("#smoothing").value).toFixed(2);
    scheduleCurves();
  });
  $("#record").addEventListener("change", refreshRecord);
  window.addEventListener("resize", () => {
    scheduleCurves();
    if (state.ablation) { selectAblation(state.ablation); }
  });
}

wire();
refreshLists().then(() => { refreshCurves(); refreshRecord(); });
setInterval(refreshLists, LIST_REFRESH_MS);
setInterval(() => { if (state.ablation) { selectAblation(state.ablation); } }, 5 * LIST_REFRESH_MS);
