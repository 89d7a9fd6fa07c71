// A sweep's trials table: parameters, state (a pruned trial's rung and the pruner's reason),
// the value with its interval over seeds, each rung's validation figure per seed, and the
// trial's runs: a link to each seed's experiment (sweep.js shows its loss curve on a click),
// and a button that overlays all of their curves.

import { $, el } from "./util.js";
import { fmtInterval, fmtObjective, fractionLabel, paramsText } from "./sweepdata.js";

function stateCell(sweep, t) {
  if (t.state !== "pruned") {
    return el("td", { class: "state", title: t.reason || "" }, el("span", { class: `status ${t.state}`, text: t.state }));
  }
  const rung = t.pruned_at_rung;
  const share = sweep.rungs[rung] !== undefined ? fractionLabel(sweep.rungs[rung]) : "?";
  return el("td", { class: "state", title: t.reason || "" },
    el("span", { class: "status pruned", text: `pruned at rung ${rung + 1}` }),
    el("span", { class: "muted", text: ` (${share} of its budget)` }));
}

// Why a trial was pruned or failed, on a line of its own under the trial's row.
function reasonRow(sweep, t) {
  if (!t.reason) { return null; }
  return el("tr", { class: "reason-row", dataset: { reasonOf: t.number } }, el("td", {}),
    el("td", { colspan: 4 + sweep.rungs.length, class: "reason", text: t.reason }));
}

// One rung's figures, seed by seed in the sweep's seed order ("–" where a seed has not got
// there); the seeds' mean first when all have.
function rungCell(sweep, t, index) {
  const figures = t.runs.map((r) => (r.rungs[index] || {})[sweep.objective]);
  if (figures.every((v) => !Number.isFinite(v))) { return el("td", { class: "muted", text: "" }); }
  const text = figures.map((v) => fmtObjective(sweep, v)).join(" · ");
  const seeds = t.runs.map((r) => `seed ${r.seed}`).join(" · ");
  return el("td", { class: "rung", title: `${seeds}: ${text}` }, text);
}

function runsCell(t, onOverlay) {
  const links = t.runs.map((r) => el("a", {
    href: `/experiments/${encodeURIComponent(r.experiment_id)}`,
    title: `seed ${r.seed}: experiment ${r.experiment_id} (${r.status}, step ${r.step}); click: its loss curve`,
    dataset: { experiment: r.experiment_id },
  }, `s${r.seed}`));
  const overlay = t.runs.length ? el("button", {
    type: "button", class: "link", title: "overlay this trial's loss curves (one per seed)",
    on: { click: () => onOverlay(t.runs.map((r) => r.experiment_id)) },
  }, "curves") : null;
  return el("td", { class: "runs" }, ...links.flatMap((a) => [a, " "]), overlay);
}

export function renderTrials(table, sweep, onOverlay) {
  const rungHeads = sweep.rungs.map((f, i) => el("th", { title: `validation ${sweep.objective.replace("validation_", "")} per seed at rung ${i + 1}` },
    `rung ${i + 1} (${fractionLabel(f)})`));
  $("thead", table).replaceChildren(el("tr", {},
    el("th", { class: "c-num", text: "#" }), el("th", { text: "parameters" }), el("th", { text: "state" }),
    el("th", { title: "the objective over the seeds' full runs, with its 95% CI", text: "validation [95% CI]" }),
    ...rungHeads, el("th", { text: "runs" })));
  const trials = [...sweep.trials].sort((a, b) => a.number - b.number);
  const rows = trials.flatMap((t) => [el("tr", {
    dataset: { number: t.number, state: t.state },
    class: sweep.best && sweep.best.number === t.number ? "selected" : "",
  },
  el("td", { text: String(t.number) }),
  el("td", { class: "params", text: paramsText(t.params) }),
  stateCell(sweep, t),
  el("td", { class: "value", text: t.value_interval ? fmtInterval(sweep, t.value_interval) : "" }),
  ...sweep.rungs.map((_, i) => rungCell(sweep, t, i)),
  runsCell(t, onOverlay)), reasonRow(sweep, t)]).filter(Boolean);
  $("tbody", table).replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 5 + sweep.rungs.length, class: "muted", text: "no trials asked yet" }))]));
}
