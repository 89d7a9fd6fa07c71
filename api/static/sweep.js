// The sweeps list and the sweep card (a sweep's page: #sweep=<id> in the address): status and
// budget, the trials in parallel coordinates, the best so far, the parameter importances, the
// trials table, the CSV, cancel, and "confirm", which runs the best trials again on fresh
// seeds and the test set as an ablation. Everything a sweep decides on is a validation figure;
// only the confirmation ablation's are test figures, and the card says which is which.
//
// Reads are conditional (getFresh: ETag, 304 while nothing changed), so following a running
// sweep costs little: the lists' refresh (the change feed) asks again, and while a sweep shown
// or listed is still running, so does a slow poll, since a sweep's own decisions (a trial
// judged complete, the sweep ending) can land a moment after the runs' last change.

import { $, el, errorLines, getFresh, sendJSON, state } from "./util.js";
import { drawBest, drawImportance, drawParallel } from "./sweepplots.js";
import { renderTrials } from "./sweeptable.js";
import { fmtInterval, objectiveName, paramsText } from "./sweepdata.js";

const POLL_MS = 3000;
const ACTIVE = new Set(["running", "cancelling"]);

const page = { view: null, completeSeen: -1, timer: null, busy: false, hooks: { onOverlay: () => {}, onAblation: () => {} } };

function listRow(s) {
  const best = s.best ? fmtInterval(s, s.best[s.objective]) : "–";
  const counts = Object.entries(s.trial_counts || {}).map(([k, n]) => `${n} ${k}`).join(", ");
  return el("tr", { dataset: { id: s.id }, class: s.id === state.sweep ? "selected" : "" },
    el("td", { class: "name", title: s.owner ? `${s.id}, ${s.owner}'s` : s.id },
      el("a", { href: `#sweep=${s.id}`, text: s.name || s.id.slice(0, 8) }),
      s.owner ? el("span", { class: "owner", text: s.owner }) : null),
    el("td", {}, el("span", { class: `status ${s.status}`, text: s.status })),
    el("td", { class: "best", title: s.best ? `trial ${s.best.number}: ${paramsText(s.best.params)} (validation, 95% CI over seeds)` : "", text: best }),
    el("td", { class: "trials", title: counts, text: `${s.budget.trials} / ${s.max_trials}` }));
}

function renderList() {
  const rows = state.sweeps.map(listRow);
  $("#sweeps tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no sweeps yet" }))]));
}

function budgetText(v) {
  const b = v.budget;
  const share = b.steps_if_full ? ` (${Math.round((100 * b.steps) / b.steps_if_full)}% of the steps a full run of every trial would take)` : "";
  return `${b.trials} of ${v.max_trials} trials, ${v.seeds.length} seeds each, ${v.parallel} at a time; ${v.sampler} sampler, ${v.pruner} pruner${share}`;
}

function renderConfirmed(v) {
  const box = $("#sweep-confirmed");
  if (!v.confirm_ablation_id) { box.replaceChildren(); return; }
  const id = v.confirm_ablation_id;
  box.replaceChildren("Confirmed on fresh seeds: ",
    el("a", { href: `#ablation=${id}`, id: "sweep-ablation-link", dataset: { ablation: id }, text: `ablation ${id.slice(0, 8)}` }),
    " (test figures, in the Ablation card).");
}

function render(v) {
  const complete = v.trials.filter((t) => t.state === "complete").length;
  $("#sweep-empty").hidden = true;
  $("#sweep-body").hidden = false;
  $("#sweep-title").textContent = v.name ? `${v.name} (${v.id.slice(0, 8)})` : v.id.slice(0, 8);
  $("#sweep-status").replaceChildren(el("span", { class: `status ${v.status}`, text: v.status }));
  $("#sweep-budget").textContent = budgetText(v);
  $("#sweep-note").textContent = v.note || "";
  const held = v.base && v.base.validation_records ? `${v.base.validation_records} held-out` : "held-out";
  const gan = v.base && v.base.kind === "gan";
  $("#sweep-figures").textContent = (gan
    ? "Every figure on this card is the judge's, over each trial's generated images (its Fréchet distance to "
      + "training images): the sweep chose on these."
    : `Every figure on this card is a ${v.figures} figure, on ${held} records of the `
      + "training set that no trial trains on: the sweep chose on these.")
    + " The test set is read only by the confirmation below, an ablation on fresh seeds, whose figures are test figures.";
  $("#sweep-best-text").textContent = v.best
    ? `Best so far: trial ${v.best.number} (${paramsText(v.best.params)}), ${objectiveName(v)} ${fmtInterval(v, v.best[v.objective])} (95% CI over ${v.seeds.length} seeds).`
    : "No complete trial yet.";
  $("#sweep-csv").href = `/sweeps/${encodeURIComponent(v.id)}/trials.csv`;
  $("#sweep-cancel").hidden = v.status !== "running";
  $("#sweep-confirm").disabled = complete === 0;
  drawParallel($("#sweep-parallel"), v);
  drawBest($("#sweep-best"), $("#sweep-best-legend"), v);
  renderTrials($("#sweep-trials"), v, page.hooks.onOverlay);
  renderConfirmed(v);
  document.querySelectorAll("#sweeps tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === v.id));
}

// Importances change only when a trial completes: asked again then, not on every refresh.
async function refreshImportance(v) {
  const complete = v.trials.filter((t) => t.state === "complete").length;
  if (complete === page.completeSeen) { return; }
  page.completeSeen = complete;
  const empty = complete < 2 ? `not enough complete trials yet (${complete} of the 2 it needs)`
    : "no importances: the complete trials' values do not differ";
  try {
    const { body } = await getFresh(`/sweeps/${encodeURIComponent(v.id)}/importance`);
    if (state.sweep === v.id) { drawImportance($("#sweep-importance"), body.importances, empty); }
  } catch (err) {
    drawImportance($("#sweep-importance"), {}, err.message);
  }
}

async function refreshShown() {
  const id = state.sweep;
  if (!id) { return; }
  const { body, changed } = await getFresh(`/sweeps/${encodeURIComponent(id)}`);
  if (state.sweep !== id) { return; }  // another one was picked meanwhile
  page.view = body;
  if (changed) {
    state.sweepRenders = (state.sweepRenders || 0) + 1;
    render(body);
  }
  await refreshImportance(body);
}

// The lists' refresh (change feed, fallback poll, a new key) and the poll below come here.
export async function refreshSweeps() {
  if (page.busy) { return; }
  page.busy = true;
  try {
    const { body, changed } = await getFresh("/sweeps?limit=20");
    state.sweeps = body.items;
    if (changed) { renderList(); }
    if (!state.sweep && state.sweeps.length) { state.sweep = state.sweeps[0].id; }
    await refreshShown();
  } catch (err) {
    say(err.message);
  } finally {
    page.busy = false;
    schedulePoll();
  }
}

// A failed read: said on the card, or in place of "no sweep yet" while none is shown.
function say(text) {
  $($("#sweep-body").hidden ? "#sweep-empty" : "#sweep-note").textContent = text;
}

function schedulePoll() {
  const active = (page.view && ACTIVE.has(page.view.status)) || state.sweeps.some((s) => ACTIVE.has(s.status));
  if (page.timer || !active) { return; }
  page.timer = setTimeout(() => { page.timer = null; refreshSweeps(); }, POLL_MS);
}

// The card brought into view when a sweep is picked, unless its top is on screen already.
function reveal() {
  const top = $("#sweep-card").getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.8) { $("#sweep-card").scrollIntoView({ block: "start" }); }
}

export function showSweep(id, { scroll = false } = {}) {
  if (!id) { return; }
  if (scroll) { reveal(); }
  state.sweep = id;
  page.completeSeen = -1;
  if (location.hash !== `#sweep=${id}`) { history.replaceState(null, "", `#sweep=${id}`); }
  $("#sweep-result").replaceChildren();
  refreshShown().catch((err) => say(err.message)).finally(schedulePoll);
}

function report(lines, ok) {
  const box = $("#sweep-result");
  box.replaceChildren(...lines.map((line) => (line instanceof Node ? line : el("div", { text: line }))));
  box.className = ok ? "result ok" : "result error";
}

async function cancel() {
  try {
    await sendJSON("POST", `/sweeps/${encodeURIComponent(state.sweep)}/cancel`, {});
    report(["cancelling: no new trials; the running ones are stopped"], true);
  } catch (err) { report(errorLines(err), false); }
  refreshSweeps();
}

async function confirm() {
  const body = { top: Number($("#confirm-top").value), seeds: Number($("#confirm-seeds").value) };
  try {
    const made = await sendJSON("POST", `/sweeps/${encodeURIComponent(state.sweep)}/confirm`, body);
    const link = el("a", { href: `#ablation=${made.ablation_id}`, dataset: { ablation: made.ablation_id }, text: `ablation ${made.ablation_id.slice(0, 8)}` });
    report([el("div", {}, "Started ", link, `: ${made.arms.map((a) => a.label).join(" vs ")} on seeds ${made.seeds.join(", ")}, `
      + `on the ${made.figures} set.`)], true);
    page.hooks.onAblation(made.ablation_id, false);
  } catch (err) { report(errorLines(err), false); }
  refreshSweeps();
}

function fromHash() {
  const found = /^#sweep=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (found) { showSweep(found[1], { scroll: true }); }
}

export function initSweeps(hooks) {
  page.hooks = { ...page.hooks, ...hooks };
  $("#sweeps tbody").addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (row) { ev.preventDefault(); showSweep(row.dataset.id, { scroll: true }); }
  });
  $("#sweep-card").addEventListener("click", (ev) => {
    const link = ev.target.closest("a[data-ablation]");
    if (link) { ev.preventDefault(); page.hooks.onAblation(link.dataset.ablation, true); }
    // A seed's run: its loss curve on this page (the link itself is the run's JSON answer,
    // for a new tab where no key is needed).
    const run = ev.target.closest("a[data-experiment]");
    if (run && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey) { ev.preventDefault(); page.hooks.onOverlay([run.dataset.experiment]); }
  });
  $("#sweep-cancel").addEventListener("click", cancel);
  $("#sweep-confirm").addEventListener("click", confirm);
  window.addEventListener("hashchange", fromHash);
  window.addEventListener("resize", () => { if (page.view) { render(page.view); } });
  fromHash();
}
