// The trainlab dashboard: lists, overlaid curves with live updates, a record's outputs, the
// ablation and sweep cards, a GAN run's card, a confusion matrix, a drawing pad and the "New run"
// forms. Everything comes from the API beside it; nothing from elsewhere.

import { $, TERMINAL, el, expLabel, getJSON, isClassifier, labelOf, state } from "./util.js";
import { colorAt, drawBars, drawDigit, drawLines, legend } from "./charts.js";
import { showAblation, initAblation } from "./ablation.js";
import { initConfusion, refreshConfusion } from "./confusion.js";
import { wireDownloads, wirePngButtons } from "./export.js";
import { initForms } from "./forms.js";
import { initGan, refreshGan } from "./gan.js";
import { initKeys } from "./keys.js";
import { initPad } from "./pad.js";
import { openStream } from "./stream.js";
import { initSweeps, refreshSweeps, showSweep } from "./sweep.js";

// The lists follow the server's change feed (GET /changes): they are fetched again when
// something in them changed, and not at all while nothing does. Only while the feed is down do
// they fall back to a slow poll. An ablation's card is heavier: it is fetched again when a run
// ends, or at most every ABLATION_REFRESH_MS while runs train.
const FALLBACK_REFRESH_MS = 15000;
const ABLATION_REFRESH_MS = 10000;
const CURVE_THROTTLE_MS = 1000;
const MAX_SELECTED = 8;
const MAX_STREAMS = 3;

function progress(done, total) {
  return el("progress", { max: Math.max(1, total), value: Math.min(done, total), title: `${done} of ${total}` });
}

function statusTag(status) { return el("span", { class: `status ${status}`, text: status }); }

function renderExperiments() {
  const rows = state.experiments.map((e) => {
    const acc = e.metrics && e.metrics.test_accuracy != null ? (100 * e.metrics.test_accuracy).toFixed(2) + "%" : "";
    const ticked = state.selected.has(e.id);
    return el("tr", { dataset: { id: e.id }, class: ticked ? "selected" : "" },
      el("td", {}, el("input", { type: "checkbox", checked: ticked, "aria-label": `overlay ${e.id}` })),
      el("td", { class: "name", title: `${expLabel(e)} (${e.id})${e.owner ? ", " + e.owner + "'s" : ""}` }, expLabel(e), " ",
        expLabel(e) === e.id.slice(0, 8) ? null : el("span", { class: "muted", text: e.id.slice(0, 8) }),
        e.owner ? el("span", { class: "owner", text: e.owner }) : null),
      el("td", {}, statusTag(e.status)),
      el("td", {}, progress(e.progress.step, e.progress.total)),
      el("td", { class: "num accuracy", text: acc }));
  });
  $("#experiments tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no experiments match" }))]));
  state.listDrawnAt = performance.now();  // when this page of the list was drawn (benchmarks)
}

function renderAblations() {
  const rows = state.ablations.map((a) => {
    const counts = Object.entries(a.status_counts || {}).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ");
    return el("tr", { dataset: { id: a.id }, class: a.id === state.ablation ? "selected" : "" },
      el("td", { class: "name", title: a.owner ? `${a.id}, ${a.owner}'s` : a.id }, a.name || a.id.slice(0, 8),
        a.owner ? el("span", { class: "owner", text: a.owner }) : null),
      el("td", { text: a.design }),
      el("td", { class: "counts", title: counts, text: counts }),
      el("td", {}, progress(a.progress.step, a.progress.total)),
      el("td", {}, statusTag(a.status)));
  });
  $("#ablations tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no ablations yet" }))]));
}

function listQuery() {
  const params = new URLSearchParams({ limit: "50", sort: $("#sort").value });
  const text = $("#search").value.trim();
  if (text) { params.set("q", text.slice(0, 100)); }
  if (state.cursor) { params.set("cursor", state.cursor); }
  return `/experiments?${params}`;
}

function renderPager() {
  $("#exp-prev").disabled = state.pages.length === 0;
  $("#exp-next").disabled = !state.nextCursor;
  $("#exp-page").textContent = `page ${state.pages.length + 1}`;
}

// A new sort or search starts again at the first page: a cursor belongs to its query.
function firstPage() {
  state.pages = [];
  state.cursor = null;
  return refreshLists({ ablations: false });
}

function turnPage(forward) {
  if (forward && state.nextCursor) {
    state.pages.push(state.cursor);
    state.cursor = state.nextCursor;
  } else if (!forward && state.pages.length) {
    state.cursor = state.pages.pop();
  } else { return; }
  refreshLists({ ablations: false });
}

// A sort, a search or a page of the experiments list reads that list alone (ablations: false).
async function refreshLists({ ablations = true } = {}) {
  try {
    const [exps, abls] = await Promise.all([getJSON(listQuery()), ablations ? getJSON("/ablations?limit=20") : null]);
    state.experiments = exps.items;
    state.nextCursor = exps.next_cursor || null;
    if (abls) { state.ablations = abls.items; }
    if (!state.userPicked) {
      // Follow the newest runs that have points, so a fresh page shows something at once.
      const newest = [...state.experiments].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      const withPoints = newest.filter((e) => e.progress.step > 0 || e.status === "succeeded");
      const before = [...state.selected].join();
      state.selected = new Set(withPoints.slice(0, 5).map((e) => e.id));
      if ([...state.selected].join() !== before) { scheduleCurves(); refreshRecord(); }
    }
    if (!state.ablation && state.ablations.length) { showAblation(state.ablations[0].id); }
    renderExperiments();
    renderPager();
    renderAblations();
    refreshConfusion();
    refreshGan();
    syncStreams();
    refreshSweeps();
    $("#connection").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("#connection").textContent = `cannot reach the server (${err.message})`;
  }
}

// Live updates: one event stream per selected experiment that has not finished, up to
// MAX_STREAMS. New loss points only trigger a (throttled) refetch of the aligned, smoothed
// curves from the server. A browser holds 6 connections per server over HTTP/1.1: with the
// change feed and 5 runs' streams open, every other request of the page waited forever (the
// list, its sort, its pages). The selected runs past the cap follow the change feed instead.
function syncStreams() {
  const live = new Set(state.experiments.filter((e) => state.selected.has(e.id) && !TERMINAL.has(e.status)).map((e) => e.id));
  for (const [id, source] of state.streams) {
    if (!live.has(id)) { source.close(); state.streams.delete(id); }
  }
  let unstreamed = false;
  for (const id of live) {
    if (state.streams.has(id)) { continue; }
    if (state.streams.size >= MAX_STREAMS) { unstreamed = true; continue; }
    const source = openStream(`/experiments/${encodeURIComponent(id)}/events`, {
      loss: scheduleCurves,
      status: scheduleCurves,
      end: () => { source.close(); state.streams.delete(id); scheduleCurves(); refreshRecord(); },
    });
    state.streams.set(id, source);
  }
  if (unstreamed) { scheduleCurves(); }  // called on each change the feed reports
}

const feed = { source: null, fallback: null, ended: null, ablationAt: 0 };

function refreshAblation(force) {
  if (!state.ablation) { return; }
  if (force || Date.now() - feed.ablationAt >= ABLATION_REFRESH_MS) {
    feed.ablationAt = Date.now();
    showAblation(state.ablation);
  }
}

function onChanges(change) {
  stopFallback();
  state.changeEvents = (state.changeEvents || 0) + 1;
  const ended = feed.ended !== null && change.ended !== feed.ended;
  feed.ended = change.ended;
  refreshLists();
  refreshAblation(ended);
}

function startFallback() {
  if (feed.fallback) { return; }
  $("#connection").textContent = "live updates interrupted; refreshing every 15 s";
  feed.fallback = setInterval(() => { refreshLists(); refreshAblation(true); }, FALLBACK_REFRESH_MS);
}

function stopFallback() {
  if (feed.fallback) { clearInterval(feed.fallback); feed.fallback = null; }
}

function followChanges() {
  if (feed.source) { feed.source.close(); }
  feed.source = openStream("/changes", { changes: onChanges, error: startFallback });
}

function scheduleCurves() {
  if (state.curveTimer) { return; }
  state.curveTimer = setTimeout(() => { state.curveTimer = null; refreshCurves(); }, CURVE_THROTTLE_MS);
}

async function refreshCurves() {
  const ids = [...state.selected];
  const canvas = $("#curves");
  const smoothing = Number($("#smoothing").value);
  $("#loss-csv").href = ids.length ? `/compare/loss.csv?experiments=${ids.join(",")}&smoothing=${smoothing}` : "#";
  if (!ids.length) {
    drawLines(canvas, [], [], { empty: "tick experiments to overlay their loss curves" });
    legend($("#curves-legend"), []);
    return;
  }
  const width = canvas.clientWidth || Number(canvas.getAttribute("width"));
  try {
    const data = await getJSON(`/compare/loss?experiments=${ids.join(",")}&max_points=${Math.min(2000, 2 * width)}&smoothing=${smoothing}`);
    const series = data.curves.map((c, i) => ({ label: labelOf(c.experiment_id, c), color: colorAt(i), values: c.values }));
    drawLines(canvas, data.steps, series, { yTitle: smoothing > 0 ? `loss (EMA ${smoothing.toFixed(2)})` : "loss" });
    legend($("#curves-legend"), series);
    state.renders += 1;
  } catch (err) {
    drawLines(canvas, [], [], { empty: err.message });
  }
}

async function refreshRecord() {
  const record = Math.max(0, Number($("#record").value) || 0);
  const finished = state.experiments.filter((e) => state.selected.has(e.id) && e.status === "succeeded" && isClassifier(e));
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
    bars.replaceChildren(el("p", { class: "muted", text: "outputs appear once a ticked experiment has finished" }));
    return;
  }
  try {
    const data = await getJSON(`/compare/predictions?experiments=${finished.map((e) => e.id).join(",")}&records=${record}`);
    const row = data.records[0];
    const figures = row.experiments.map((x, i) => {
      const canvas = el("canvas", { id: `bars-${i}`, width: 220, height: 130 });
      return { canvas, x, figure: el("figure", {}, canvas, el("figcaption", { text: `${labelOf(x.experiment_id, x)}: says ${x.predicted}` })) };
    });
    bars.replaceChildren(...figures.map((f) => f.figure));
    figures.forEach((f) => drawBars(f.canvas, f.x.outputs, f.x.predicted, row.label));
  } catch (err) {
    bars.replaceChildren(el("p", { class: "muted", text: err.message }));
  }
}

function toggle(id) {
  state.userPicked = true;
  if (state.selected.has(id)) { state.selected.delete(id); } else if (state.selected.size < MAX_SELECTED) { state.selected.add(id); }
  renderExperiments(); syncStreams(); refreshCurves(); refreshRecord(); refreshConfusion(); refreshGan();
}

// A sweep trial's runs (one per seed) as the overlaid loss curves.
function overlay(ids) {
  state.userPicked = true;
  state.selected = new Set(ids.slice(0, MAX_SELECTED));
  renderExperiments(); syncStreams(); refreshCurves(); refreshRecord(); refreshConfusion(); refreshGan();
  $("#curves").scrollIntoView({ block: "center" });
}

async function openAblation(id, scroll) {
  state.ablation = id;
  await refreshLists();
  showAblation(id);
  if (scroll) { $("#summary").scrollIntoView({ block: "center" }); }
}

function wire() {
  $("#experiments tbody").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (row) { toggle(row.dataset.id); }
  });
  $("#ablations tbody").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (row) { showAblation(row.dataset.id); }
  });
  $("#smoothing").addEventListener("input", () => {
    $("#smoothing-value").textContent = Number($("#smoothing").value).toFixed(2);
    scheduleCurves();
  });
  $("#record").addEventListener("change", refreshRecord);
  $("#search").addEventListener("input", firstPage);
  $("#sort").addEventListener("change", firstPage);
  $("#exp-next").addEventListener("click", () => turnPage(true));
  $("#exp-prev").addEventListener("click", () => turnPage(false));
  window.addEventListener("resize", () => { scheduleCurves(); if (state.ablation) { showAblation(state.ablation); } });
  wirePngButtons();
  wireDownloads();
  initAblation();
  initConfusion();
  initGan();
  initPad();
  initSweeps({ onOverlay: overlay, onAblation: openAblation });
  initForms({
    onCreated: async ({ ablation, sweep }) => {
      if (ablation) { state.ablation = ablation; }
      if (sweep) { showSweep(sweep); }
      await refreshLists();
      if (ablation) { showAblation(ablation); }
    },
  });
}

wire();
initKeys(() => { followChanges(); refreshLists().then(() => { refreshCurves(); refreshRecord(); }); });
refreshLists().then(() => { refreshCurves(); refreshRecord(); });
followChanges();
