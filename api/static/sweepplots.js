// A sweep's charts: its trials in parallel coordinates (SVG, one path per trial, so each line
// can say which trial it is), the best so far after each trial with its interval over seeds,
// and the parameter importances as bars. Like charts.js, each sets data-drawn to the marks it
// drew, and names its axes.

import { FONT, GRID, INK, MUTED, axisTitles, colorAt, drawLines, fmtTick, legend, prepare } from "./charts.js";
import { axesOf, bestSoFar, fmtObjective, fmtParam, maximizes, objectiveName, paramsText, plotted,
  position, trialObjective } from "./sweepdata.js";

const HEIGHT = 280;
const PAD = { l: 40, r: 60, t: 34, b: 26 };
// Complete trials run from light (worst) to dark (best); the rest keep one colour each.
const LIGHT = [159, 184, 214];
const DARK = [26, 68, 128];

// SVG elements in the namespace of the page's own <svg> (which the HTML parser gave it).
function svgEl(ns, tag, attrs = {}, ...children) {
  const node = document.createElementNS(ns, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) { node.setAttribute(key, String(value)); }
  }
  for (const child of children) {
    if (child) { node.append(typeof child === "string" ? document.createTextNode(child) : child); }
  }
  return node;
}

function shade(share) {
  const mix = LIGHT.map((c, i) => Math.round(c + (DARK[i] - c) * share));
  return `rgb(${mix.join(",")})`;
}

function tickLabels(sweep, axis) {
  if (axis.kind === "choice") { return axis.values.map((v) => [position(axis, JSON.parse(v)), fmtParam(JSON.parse(v))]); }
  const text = (v) => (axis.objective ? fmtObjective(sweep, v)
    : axis.kind === "log" || Math.abs(v) < 0.01 ? fmtParam(v) : fmtTick(v));
  return [[0, text(axis.lo)], [1, text(axis.hi)]];
}

// Every trial as one path across the axes; a pruned trial dashed and pale, its objective the
// seeds' mean at the rung it was stopped at; a trial still running ends at the last field.
export function drawParallel(svg, sweep) {
  const width = Math.max(360, Math.floor(svg.parentElement ? svg.parentElement.clientWidth - 24 : 700));
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(HEIGHT));
  svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  const ns = svg.namespaceURI;
  const axes = axesOf(sweep);
  const x = (i) => PAD.l + (axes.length === 1 ? 0 : (i * (width - PAD.l - PAD.r)) / (axes.length - 1));
  const y = (f) => HEIGHT - PAD.b - f * (HEIGHT - PAD.t - PAD.b);
  const parts = [];
  axes.forEach((axis, i) => {
    parts.push(svgEl(ns, "line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), class: "axis" }));
    parts.push(svgEl(ns, "text", { x: x(i), y: PAD.t - 18, class: "axis-title", "text-anchor": "middle" }, axis.label));
    for (const [at, label] of tickLabels(sweep, axis)) {
      parts.push(svgEl(ns, "text", { x: x(i) + 4, y: y(at) + 4, class: "tick" }, label));
    }
  });
  const objective = axes[axes.length - 1];
  const complete = sweep.trials.filter((t) => t.state === "complete" && Number.isFinite(t.value));
  const values = complete.map((t) => t.value);
  const worst = maximizes(sweep) ? Math.min(...values) : Math.max(...values);
  const best = maximizes(sweep) ? Math.max(...values) : Math.min(...values);
  const share = (t) => (best !== worst ? (t.value - worst) / (best - worst) : 1);
  // Complete trials drawn last and the best of them on top, so no other line covers it.
  const rank = (t) => (t.state === "complete" ? 1 + share(t) : 0);
  const lines = [...sweep.trials].sort((a, b) => rank(a) - rank(b)).map((t) => {
    const points = axes.map((axis) => position(axis, axis.objective ? trialObjective(sweep, t) : t.params[axis.path]));
    const cut = points.indexOf(null);
    const drawn = (cut < 0 ? points : points.slice(0, cut)).map((f, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(f).toFixed(1)}`);
    const value = trialObjective(sweep, t);
    const title = `trial ${t.number} (${t.state}${t.state === "pruned" ? ` at rung ${t.pruned_at_rung + 1}` : ""}): `
      + `${paramsText(t.params)}${value === null ? "" : `; ${objective.label} ${fmtObjective(sweep, value)}`}`;
    return svgEl(ns, "path", {
      d: drawn.join(" ") || `M${x(0)},${y(0.5)}`, class: `trial ${t.state}`,
      stroke: t.state === "complete" ? shade(share(t)) : null, "data-number": t.number, "data-state": t.state,
    }, svgEl(ns, "title", {}, title));
  });
  svg.replaceChildren(svgEl(ns, "g", { class: "axes" }, ...parts), svgEl(ns, "g", { class: "lines" }, ...lines));
  svg.dataset.trials = String(lines.length);
  svg.dataset.drawn = String(lines.length);
}

// Objective against trial number: each complete trial a dot, pruned ones (at their rung) in
// another colour, and the best so far as a line with its 95% interval over seeds as a band.
export function drawBest(canvas, legendBox, sweep) {
  const history = bestSoFar(sweep);
  const steps = history.map((h) => h.number);
  const byNumber = new Map(sweep.trials.map((t) => [t.number, t]));
  const at = (pick) => steps.map((n) => pick(byNumber.get(n)));
  const band = (h, key) => (h.best ? plotted(sweep, h.best.value_interval[key]) : null);
  const series = [
    { label: "best so far (band: 95% CI over seeds)", color: colorAt(0),
      values: history.map((h) => (h.best ? plotted(sweep, h.best.value) : null)),
      low: history.map((h) => band(h, "ci_low")), high: history.map((h) => band(h, "ci_high")) },
    { label: "complete trial", color: colorAt(2), dots: true,
      values: at((t) => (t.state === "complete" ? plotted(sweep, t.value) : null)) },
    { label: "pruned trial, at its rung", color: colorAt(1), dots: true,
      values: at((t) => (t.state === "pruned" ? plotted(sweep, trialObjective(sweep, t)) : null)) },
  ];
  drawLines(canvas, steps, series, {
    xTitle: "trial number", yTitle: objectiveName(sweep), empty: "no trial has reported yet", wholeX: true,
  });
  legend(legendBox, series);
}

// importances: {path: share}. Empty until two complete trials differ (the server says so by
// answering none), which the chart says in words.
export function drawImportance(canvas, importances, emptyText) {
  const rows = Object.entries(importances || {}).sort((a, b) => b[1] - a[1]);
  const { ctx, w, h } = prepare(canvas, 44 + Math.max(1, rows.length) * 24);
  ctx.font = FONT;
  const widest = Math.max(40, ...rows.map(([path]) => ctx.measureText(path).width));
  const labelWidth = Math.min(200, Math.floor(w * 0.3), Math.ceil(widest) + 8);
  const pad = { l: labelWidth + 24, r: 60, t: 8, b: 36 };
  axisTitles(canvas, ctx, w, h, pad, "importance (share of the objective's variance, PED-ANOVA)", "field");
  ctx.font = FONT;
  if (!rows.length) {
    ctx.fillStyle = MUTED;
    ctx.fillText(emptyText, pad.l, pad.t + 16);
    canvas.dataset.drawn = "0";
    return;
  }
  const span = w - pad.l - pad.r;
  ctx.strokeStyle = GRID;
  ctx.beginPath(); ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, h - pad.b); ctx.stroke();
  rows.forEach(([path, share], i) => {
    const y = pad.t + i * 24;
    ctx.fillStyle = INK;
    ctx.fillText(path.length > 28 ? `${path.slice(0, 27)}…` : path, 24, y + 15);
    ctx.fillStyle = colorAt(0);
    ctx.fillRect(pad.l, y + 4, Math.max(1, share * span), 16);
    ctx.fillStyle = MUTED;
    ctx.fillText(share.toFixed(2), pad.l + share * span + 6, y + 15);
  });
  canvas.dataset.drawn = String(rows.length);
}
