// The ablation card: the summary table and its forest plot (each arm against the one before,
// or against arm 0), the mean loss curve per arm with its seed band, and the CSV downloads.

import { $, el, getJSON, pValue, pct, state } from "./util.js";
import { colorAt, drawLines, legend } from "./charts.js";
import { drawForest } from "./plots.js";

// The compared figure: a classifier's test accuracy (a share: shown in percent, differences in
// points), or another kind's (a GAN's label entropy in bits: shown as it is).
const view = { metric: "test_accuracy", fmt: pct };

function raw(v) { return v == null ? "–" : v.toFixed(3); }

function interval(d) { return d && d.ci_low != null ? `[${view.fmt(d.ci_low)}, ${view.fmt(d.ci_high)}]` : ""; }

function cell(text, title) { return el("td", { title, text }); }

function summaryRow(arm, comparison) {
  const acc = arm[view.metric];
  const d = comparison ? comparison[view.metric] : null;
  const loss = arm.final_loss.mean == null ? "–" : arm.final_loss.mean.toFixed(4);
  return el("tr", {},
    cell(`${arm.arm} ${arm.label}`, `${arm.label} (loss: ${arm.loss_function})`),
    cell(String(arm.n)),
    cell(`${view.fmt(acc.mean)} ${interval(acc)}`),
    cell(loss, comparison && comparison.final_loss_note ? comparison.final_loss_note : ""),
    cell(d ? `${view.fmt(d.mean_diff)} ${interval(d)}` : "", d ? `vs arm ${comparison.baseline}` : ""),
    cell(d ? pValue(d.p_value) : ""),
    cell(d ? pValue(d.p_holm) : ""),
    cell(d && d.cohen_dz != null ? d.cohen_dz.toFixed(2) : ""),
    cell(d && d.seeds_needed != null ? String(d.seeds_needed) : "", d ? d.seeds_needed_note || "" : ""));
}

function forestRows(summary) {
  return summary.comparisons.map((c) => {
    const d = c[view.metric];
    const records = (c.records || []).map((r) => ({ mean: r.accuracy_diff, low: r.ci_low, high: r.ci_high }));
    let note = d.p_holm != null ? `p=${pValue(d.p_holm)} Holm` : "";
    if (!note && records.length) { note = `McNemar p=${pValue(c.records[0].p_holm)}`; }
    if (!note) { note = d.n_pairs < 2 ? `n=${d.n_pairs}` : "no spread"; }
    return { label: `${c.arm} ${c.label} − ${c.baseline}`, mean: d.mean_diff, low: d.ci_low, high: d.ci_high, records, note };
  });
}

function renderSummary(id, summary) {
  view.metric = summary.metric || "test_accuracy";
  const accuracy = view.metric === "test_accuracy";
  view.fmt = accuracy ? pct : raw;
  $("#summary-metric").textContent = accuracy ? "accuracy %" : view.metric;
  $("#summary-unit").textContent = accuracy ? "pp" : "";
  const by = new Map(summary.comparisons.map((c) => [c.arm, c]));
  $("#summary tbody").replaceChildren(...summary.arms.map((a) => summaryRow(a, by.get(a.arm))));
  $("#summary-vs").textContent = summary.compare === "successive" ? "vs arm before" : `vs arm ${summary.reference}`;
  const notes = [...summary.notes];
  if (summary.comparisons.some((c) => c.records)) { notes.push(summary.records_rule); }
  $("#summary-notes").replaceChildren(...notes.map((n) => el("li", { text: n })));
  $("#summary-method").textContent = summary.method;
  drawForest($("#forest"), forestRows(summary), accuracy ? {}
    : { scale: 1, xTitle: `difference in ${view.metric}, 95% CI` });
  const query = `compare=${summary.compare}`;
  $("#summary-csv").href = `/ablations/${encodeURIComponent(id)}/summary.csv?${query}`;
  $("#arm-curves-csv").href = `/ablations/${encodeURIComponent(id)}/curves.csv`;
  $("#forest-png").dataset.name = `forest-${id.slice(0, 8)}-${summary.compare}.png`;
}

export async function showAblation(id) {
  state.ablation = id;
  document.querySelectorAll("#ablations tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === id));
  try {
    const [summary, curves] = await Promise.all([
      getJSON(`/ablations/${encodeURIComponent(id)}/summary?compare=${state.compare}`),
      getJSON(`/ablations/${encodeURIComponent(id)}/curves?max_points=600`),
    ]);
    if (state.ablation !== id) { return; }  // another one was picked meanwhile
    const known = state.ablations.find((a) => a.id === id);
    $("#ablation-title").textContent = known && known.name ? `${known.name} (${id.slice(0, 8)})` : id.slice(0, 8);
    renderSummary(id, summary);
    const series = curves.arms.map((a, i) => ({ label: a.label, color: colorAt(i), values: a.mean, low: a.low, high: a.high }));
    drawLines($("#arm-curves"), curves.steps, series, { yTitle: "mean loss over seeds (band: min–max)" });
    legend($("#arm-legend"), series);
  } catch (err) {
    $("#summary-method").textContent = err.message;
  }
}

export function initAblation() {
  for (const radio of document.querySelectorAll("input[name=compare]")) {
    radio.checked = radio.value === state.compare;
    radio.addEventListener("change", () => {
      state.compare = radio.value;
      if (state.ablation) { showAblation(state.ablation); }
    });
  }
}
