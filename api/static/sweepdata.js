// What the sweep views read off GET /sweeps/{id}: a trial's objective (a complete trial's
// value, or a pruned one's seed mean at the rung it was stopped at), the best so far after
// each trial with its interval over seeds, the axes of the parallel-coordinates plot, and
// how the figures are written. No figure of a sweep reads the test set.

import { pct } from "./util.js";

// The server says which way is better and how the objective is called (GET /sweeps/{id}:
// `maximize`, `objective_label`); a share (accuracy, labelled as asked) is written in percent.
const PERCENT = new Set(["validation_accuracy", "as_requested"]);

export function maximizes(sweep) {
  return typeof sweep.maximize === "boolean" ? sweep.maximize : sweep.objective !== "validation_loss";
}

function percent(sweep) { return PERCENT.has(sweep.objective); }

export function objectiveName(sweep) {
  const name = sweep.objective_label || sweep.objective.replace(/_/g, " ");
  return percent(sweep) ? `${name} %` : name;
}

// A share in percent (as the ablation card writes accuracy), any other figure to four places.
export function fmtObjective(sweep, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) { return "–"; }
  return percent(sweep) ? pct(v) : v.toFixed(4);
}

// The number drawn on a chart: a share in percent, any other figure as it is.
export function plotted(sweep, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) { return null; }
  return percent(sweep) ? 100 * v : v;
}

export function fmtInterval(sweep, band) {
  if (!band || band.mean === null || band.mean === undefined) { return "–"; }
  const ci = band.ci_low !== null && band.ci_low !== undefined
    ? ` [${fmtObjective(sweep, band.ci_low)}, ${fmtObjective(sweep, band.ci_high)}]` : "";
  return `${fmtObjective(sweep, band.mean)}${ci}`;
}

// A rung's share of the budget as a fraction: 1/9, 1/3, "full".
export function fractionLabel(f) {
  if (f >= 1 - 1e-9) { return "full"; }
  for (let d = 2; d <= 729; d += 1) {
    const n = Math.round(f * d);
    if (n > 0 && Math.abs(f * d - n) < 1e-6) { return `${n}/${d}`; }
  }
  return f.toFixed(3);
}

// The seeds' mean of the objective at rung `index`, when every seed has reported it.
export function rungMean(sweep, trial, index) {
  const values = trial.runs.map((r) => (r.rungs[index] || {})[sweep.objective]);
  if (!values.length || values.some((v) => !Number.isFinite(v))) { return null; }
  return values.reduce((a, b) => a + b, 0) / values.length;
}

// A complete trial's value; a pruned trial's figure where it was stopped; else null.
export function trialObjective(sweep, trial) {
  if (trial.state === "complete" && Number.isFinite(trial.value)) { return trial.value; }
  if (trial.state === "pruned" && trial.pruned_at_rung !== null) {
    return rungMean(sweep, trial, trial.pruned_at_rung);
  }
  return null;
}

// After each trial number: the best complete trial so far (its mean and 95% CI over seeds).
export function bestSoFar(sweep) {
  const trials = [...sweep.trials].sort((a, b) => a.number - b.number);
  const better = (a, b) => (maximizes(sweep) ? a > b : a < b);
  let best = null;
  return trials.map((t) => {
    if (t.value_interval && (best === null || better(t.value, best.value))) { best = t; }
    return { number: t.number, best };
  });
}

// One axis per searched field (its range from the space: log, linear or its choices), then
// the objective's, over the figures the trials reached.
export function axesOf(sweep) {
  const axes = Object.entries(sweep.space || {}).map(([path, p]) => {
    if (p.type === "choice") {
      return { path, label: path, kind: "choice", values: p.values.map((v) => JSON.stringify(v)) };
    }
    return { path, label: path, kind: p.type === "log_uniform" ? "log" : "linear", lo: p.low, hi: p.high };
  });
  const seen = sweep.trials.map((t) => trialObjective(sweep, t)).filter((v) => v !== null);
  let lo = seen.length ? Math.min(...seen) : 0;
  let hi = seen.length ? Math.max(...seen) : 1;
  if (hi === lo) { lo -= 0.01; hi += 0.01; }
  axes.push({ path: null, label: objectiveName(sweep), kind: "linear", lo, hi, objective: true });
  return axes;
}

// Where a value sits on its axis, from 0 (bottom) to 1 (top); null when it has no place.
export function position(axis, value) {
  if (value === null || value === undefined) { return null; }
  if (axis.kind === "choice") {
    const at = axis.values.indexOf(JSON.stringify(value));
    if (at < 0) { return null; }
    return axis.values.length === 1 ? 0.5 : at / (axis.values.length - 1);
  }
  if (axis.kind === "log") {
    if (!(value > 0)) { return null; }
    return (Math.log(value) - Math.log(axis.lo)) / (Math.log(axis.hi) - Math.log(axis.lo));
  }
  return (value - axis.lo) / (axis.hi - axis.lo || 1);
}

export function fmtParam(value) {
  if (typeof value === "number" && !Number.isInteger(value)) {
    return Math.abs(value) < 0.01 || Math.abs(value) >= 1e4 ? value.toExponential(2) : String(Math.round(value * 1e4) / 1e4);
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${fmtParam(v)}`).join(", ");
}
