// The confusion matrix of one finished experiment (metrics.confusion_matrix: rows are the
// true labels, columns the predictions), as a heatmap. Ticked experiments are offered first.

import { $, el, expLabel, state } from "./util.js";
import { drawHeatmap } from "./plots.js";

function choices() {
  const done = state.experiments.filter((e) => e.metrics && Array.isArray(e.metrics.confusion_matrix));
  const ticked = done.filter((e) => state.selected.has(e.id));
  return [...ticked, ...done.filter((e) => !state.selected.has(e.id))];
}

export function refreshConfusion() {
  const select = $("#confusion-pick");
  const options = choices();
  const current = select.value;
  const ids = options.map((e) => e.id).join();
  if (select.dataset.ids !== ids) {
    select.replaceChildren(...options.map((e) => el("option", { value: e.id }, `${expLabel(e)} · ${e.id.slice(0, 8)}`)));
    select.dataset.ids = ids;
    if (options.some((e) => e.id === current)) { select.value = current; }
  }
  const chosen = options.find((e) => e.id === select.value) || options[0];
  const canvas = $("#confusion");
  if (!chosen) {
    canvas.dataset.drawn = "0";
    $("#confusion-note").textContent = "no finished experiment with a confusion matrix yet";
    return;
  }
  if (canvas.dataset.shown === chosen.id && canvas.dataset.drawn !== "0") { return; }
  drawHeatmap(canvas, chosen.metrics.confusion_matrix);
  canvas.dataset.shown = chosen.id;
  const acc = chosen.metrics.test_accuracy;
  $("#confusion-note").textContent = `${expLabel(chosen)}: ${acc == null ? "" : (100 * acc).toFixed(2) + "% right; "}` +
    "shade = share of the true label's records";
  $("#confusion-png").dataset.name = `confusion-${chosen.id.slice(0, 8)}.png`;
}

export function initConfusion() {
  $("#confusion-pick").addEventListener("change", () => { $("#confusion").dataset.shown = ""; refreshConfusion(); });
}
