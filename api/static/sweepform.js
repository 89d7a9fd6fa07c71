// The "Sweep" tab of the "New run" card: a base (preset and the common knobs), the space (one
// row per searched field: its type, and low/high or the values to choose from), seeds,
// sampler, pruner and budget. The sweep's own fields, their bounds, choices and defaults come
// from the server's SweepRequest schema. A refusal, the server's 422 or a value the form
// can tell is wrong before sending, is shown next to the field it names.

import { $, el, errorLines, sendJSON } from "./util.js";
import { knobInput, parseValue, requestKnobs } from "./schema.js";

const COMMON = ["epochs", "batch_size", "train_limit", "test_limit"];
const SETTINGS = ["seeds", "sampler", "pruner", "objective", "max_trials", "parallel", "validation_records"];
const NOT_SEARCHED = new Set(["seed", "device", "kind", "dataset", "validation_records", "validation_rungs",
  "evaluate_test", "judge", "judge_rungs"]);
const TYPES = ["log_uniform", "uniform", "int", "choice"];
const FIRST_ROW = { path: "lr", type: "log_uniform", low: "0.0001", high: "0.1" };
const FIRST_GAN_ROW = { path: "generator.lr", type: "log_uniform", low: "0.00001", high: "0.001" };
const NUMBER = /^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i;

// `knobs`: the searched kind's (the classifier's, or the GAN's when the base preset is one).
const form = { knobs: [], classifierKnobs: [], ganKnobs: [], presets: [], settings: [], onCreated: () => {} };

function errorSpot(field) { return el("span", { class: "field-error", dataset: { errorFor: field } }); }

function spaceRow(start = {}) {
  const paths = form.knobs.filter((k) => !NOT_SEARCHED.has(k.path)).map((k) => k.path);
  const pick = el("select", { class: "sp-field", "aria-label": "field" },
    paths.map((p) => el("option", { value: p, selected: p === start.path }, p)));
  const type = el("select", { class: "sp-type", "aria-label": "type" },
    TYPES.map((t) => el("option", { value: t, selected: t === (start.type || "uniform") }, t)));
  const low = el("input", { class: "sp-low", placeholder: "low", value: start.low || "", "aria-label": "low" });
  const high = el("input", { class: "sp-high", placeholder: "high", value: start.high || "", "aria-label": "high" });
  const values = el("input", { class: "sp-values", placeholder: "values: a, b, c (lists: 100; 200,100)", "aria-label": "values" });
  const row = el("div", { class: "space-row" }, pick, type, low, high, values,
    el("button", { type: "button", class: "link", on: { click: () => row.remove() } }, "remove"), errorSpot(""));
  const sync = () => {
    const choice = type.value === "choice";
    low.hidden = high.hidden = choice;
    values.hidden = !choice;
    row.querySelector(".field-error").dataset.errorFor = `space.${pick.value}`;
  };
  pick.addEventListener("change", sync);
  type.addEventListener("change", sync);
  sync();
  return row;
}

// A choice's values, each checked as the field's own values are ("100; 200,100" for a list).
function choiceValues(k, text) {
  const parts = text.split(k && k.kind === "list" ? ";" : ",").map((t) => t.trim()).filter(Boolean);
  if (!parts.length) { return { error: "give the values to choose from" }; }
  const out = [];
  for (const part of parts) {
    const parsed = k ? parseValue(k, part) : { value: part };
    if (parsed.error) { return { error: parsed.error.replace(/^[^:]+: /, "") }; }
    out.push(parsed.value);
  }
  return { value: out };
}

function readSpace(problems) {
  const space = {};
  for (const row of $("#swp-space").querySelectorAll(".space-row")) {
    const path = row.querySelector(".sp-field").value;
    const type = row.querySelector(".sp-type").value;
    const field = `space.${path}`;
    if (space[path]) { problems.push({ field, reason: "this field is in the space twice" }); continue; }
    if (type === "choice") {
      const found = choiceValues(form.knobs.find((k) => k.path === path), row.querySelector(".sp-values").value);
      if (found.error) { problems.push({ field, reason: found.error }); continue; }
      space[path] = { type, values: found.value };
      continue;
    }
    const bounds = {};
    for (const side of ["low", "high"]) {
      const text = row.querySelector(`.sp-${side}`).value.trim();
      if (!NUMBER.test(text)) { problems.push({ field, reason: `${side}: ${JSON.stringify(text)} is not a number` }); continue; }
      bounds[side] = Number(text);
    }
    space[path] = { type, ...bounds };
  }
  if (!Object.keys(space).length && !problems.length) { problems.push({ field: "space", reason: "add a field to search" }); }
  return space;
}

function readKnobs(box, knobs, problems, skipEmpty) {
  const out = {};
  for (const input of box.querySelectorAll("[data-path]")) {
    if (skipEmpty && input.value.trim() === "") { continue; }
    const k = knobs.find((x) => x.path === input.dataset.path);
    const parsed = parseValue(k, input.value);
    if (parsed.error) { problems.push({ field: k.path, reason: parsed.error.replace(/^[^:]+: /, "") }); } else { out[k.path] = parsed.value; }
  }
  return out;
}

// Each problem next to its field: the space row of `space.<path>` (also `space.<path>.low`),
// an override by its spec path, a sweep setting by its name; the rest under the button.
function showProblems(problems) {
  const root = $("#sweep-form");
  root.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; });
  root.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
  const placed = [];
  for (const p of problems) {
    const name = p.field.replace(/^overrides\./, "");
    const spots = [...root.querySelectorAll(".field-error")].filter((s) => s.dataset.errorFor
      && (name === s.dataset.errorFor || name.startsWith(`${s.dataset.errorFor}.`)));
    const spot = spots.sort((a, b) => b.dataset.errorFor.length - a.dataset.errorFor.length)[0];
    if (!spot) { continue; }
    spot.textContent = spot.textContent ? `${spot.textContent}; ${p.reason}` : p.reason;
    const holder = spot.parentElement;
    const input = holder.classList.contains("space-row") ? holder : holder.querySelector("input, select");
    if (input) { input.classList.add("invalid"); }
    placed.push(p);
  }
  const box = $("#swp-result");
  box.className = "result error";
  box.replaceChildren(...problems.map((p) => el("div", { text: p.field ? `${p.field}: ${p.reason}` : p.reason })));
  return placed;
}

async function submit(ev) {
  ev.preventDefault();
  const problems = [];
  const body = { space: readSpace(problems), overrides: readKnobs($("#swp-overrides"), form.classifierKnobs, problems, true),
    ...readKnobs($("#swp-settings"), form.settings, problems, false) };
  if ($("#swp-preset").value) { body.preset = $("#swp-preset").value; }
  const name = $("#swp-name").value.trim();
  if (name) { body.name = name; }
  if (problems.length) { showProblems(problems); return; }
  try {
    const created = await sendJSON("POST", "/sweeps", body);
    showProblems([]);
    const box = $("#swp-result");
    box.className = "result ok";
    box.replaceChildren(el("div", { text: `started sweep ${created.id.slice(0, 8)}: up to ${created.max_trials} trials of ${created.seeds.length} seeds` }));
    form.onCreated({ sweep: created.id });
  } catch (err) {
    const errors = err.body && Array.isArray(err.body.errors) ? err.body.errors : errorLines(err).map((line) => ({ field: "", reason: line }));
    showProblems(errors.map((e) => ({ field: e.field || "", reason: e.reason })));
  }
}

function labelled(k, input) {
  return el("label", { class: "knob" }, el("span", { text: k.path }), input, errorSpot(k.path));
}

// Called by forms.js once it has the API document, the spec's knobs and the presets.
// The base preset picks the kind whose knobs the space searches: its rows start again.
function presetChanged() {
  const chosen = form.presets.find((p) => p.name === $("#swp-preset").value);
  const gan = Boolean(chosen && chosen.spec && chosen.spec.kind === "gan");
  const knobs = gan ? form.ganKnobs : form.classifierKnobs;
  if (knobs === form.knobs) { return; }
  form.knobs = knobs;
  $("#swp-space").replaceChildren(spaceRow(gan ? FIRST_GAN_ROW : FIRST_ROW));
}

export function initSweepForm({ api, knobs, ganKnobs = [], presets = [], presetOptions, onCreated }) {
  const settings = requestKnobs(api, "SweepRequest", SETTINGS);
  if (!settings || !(api.paths && api.paths["/sweeps"])) {
    $("#tab-sweep").hidden = true;  // an older server: no sweeps to start
    return;
  }
  Object.assign(form, { knobs, classifierKnobs: knobs, ganKnobs, presets, settings, onCreated });
  $("#swp-preset").replaceChildren(...presetOptions.map((o) => o.cloneNode(true)));
  $("#swp-preset-row").append(errorSpot("preset"));
  $("#swp-name-row").append(errorSpot("name"));
  $("#swp-overrides").replaceChildren(...knobs.filter((k) => COMMON.includes(k.path))
    .map((k) => labelled(k, knobInput({ ...k, nullable: true }, "", `swp-${k.path}`))));
  $("#swp-settings").replaceChildren(...settings.map((k) => labelled(k, knobInput(k, k.default, `swp-${k.path}`))));
  $("#swp-space").replaceChildren(spaceRow(FIRST_ROW));
  $("#swp-space-head").append(errorSpot("space"));
  $("#swp-add-row").addEventListener("click", () => $("#swp-space").append(spaceRow()));
  $("#swp-preset").addEventListener("change", presetChanged);
  $("#sweep-form").addEventListener("submit", submit);
  document.body.dataset.sweepFormReady = "true";
}
