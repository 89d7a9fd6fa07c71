// The "New run" card: one experiment (a preset and any knob changed), or an ablation (the
// book's chain, a grid over ticked knobs, or variants of a base one change per arm), each over
// seeds; the sweep tab is sweepform.js.
// Knobs and their bounds come from the spec's schema, presets from GET /presets (schema.js).

import { $, el, errorLines, sendJSON } from "./util.js";
import { getPath, knobInput, knobsOf, loadApi, loadPresets, parseValue } from "./schema.js";
import { initSweepForm } from "./sweepform.js";

const COMMON = ["epochs", "batch_size", "train_limit", "test_limit"];  // set for every arm
const NOT_VARIED = new Set(["seed", "device"]);  // seeds are the ablation's own axis
const MAX_SEEDS = 50;  // the server's bound on an ablation's seeds (api/services/ablation_plan.py)

const forms = { knobs: [], presets: [], onCreated: () => {} };

function nested(flat) {
  const out = {};
  for (const [path, value] of Object.entries(flat)) {
    const keys = path.split(".");
    let node = out;
    keys.slice(0, -1).forEach((k) => { node = node[k] = node[k] || {}; });
    node[keys[keys.length - 1]] = value;
  }
  return out;
}

function report(target, lines, ok) {
  target.replaceChildren(...lines.map((line) => el("div", { text: line })));
  target.className = ok ? "result ok" : "result error";
}

function markInvalid(form, lines) {
  form.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
  for (const line of lines) {
    const field = line.split(":")[0].replace(/^arms\[\d+\]\./, "").replace(/^overrides\./, "");
    const input = form.querySelector(`[data-path="${CSS.escape(field)}"]`);
    if (input) { input.classList.add("invalid"); }
  }
}

function presetSpec(name) {
  const found = forms.presets.find((p) => p.name === name);
  return found && found.spec ? found.spec : null;
}

function baseValue(k, spec) {
  const v = spec ? getPath(spec, k.path) : undefined;
  return v !== undefined ? v : k.default;
}

// Experiment form ---------------------------------------------------------------------------

function fillExperimentKnobs() {
  const spec = presetSpec($("#exp-preset").value);
  $("#exp-knobs").replaceChildren(...forms.knobs.map((k) => el("label", { class: "knob" },
    el("span", { text: k.path }), knobInput(k, baseValue(k, spec), `exp-${k.path}`))));
}

async function submitExperiment(ev) {
  ev.preventDefault();
  const form = $("#experiment-form");
  const preset = $("#exp-preset").value;
  const base = presetSpec(preset);
  const changed = {};
  const problems = [];
  for (const k of forms.knobs) {
    const parsed = parseValue(k, form.querySelector(`[data-path="${CSS.escape(k.path)}"]`).value);
    if (parsed.error) { problems.push(parsed.error); continue; }
    if (JSON.stringify(parsed.value) !== JSON.stringify(baseValue(k, base) ?? null)) { changed[k.path] = parsed.value; }
  }
  markInvalid(form, problems);
  if (problems.length) { report($("#exp-result"), problems, false); return; }
  const name = $("#exp-name").value.trim();
  const body = preset ? { preset, overrides: changed } : nested(changed);
  if (name) { body.name = name; }
  try {
    const created = await sendJSON("POST", "/experiments", body);
    report($("#exp-result"), [`submitted experiment ${created.id.slice(0, 8)} (${created.status})`], true);
    forms.onCreated({ experiment: created.id });
  } catch (err) {
    const lines = errorLines(err);
    markInvalid(form, lines);
    report($("#exp-result"), lines, false);
  }
}

// Ablation form -----------------------------------------------------------------------------

function factorRow(k) {
  const values = k.kind === "enum" || k.kind === "boolean"
    ? el("span", { class: "choices" }, (k.kind === "enum" ? k.enum : [true, false]).map((v) =>
      el("label", {}, el("input", { type: "checkbox", value: String(v), dataset: { level: k.path } }), String(v))))
    : el("input", { dataset: { path: k.path, levels: k.path }, placeholder: k.kind === "list" ? "200; 256,128" : "e.g. 0.01, 0.001",
      title: k.kind === "list" ? "values separated by ';', widths by ','" : "values separated by ','" });
  return el("div", { class: "factor" },
    el("label", {}, el("input", { type: "checkbox", dataset: { vary: k.path } }), k.path), values);
}

function factors(form) {
  const out = {};
  const problems = [];
  for (const box of form.querySelectorAll("input[data-vary]:checked")) {
    const k = forms.knobs.find((x) => x.path === box.dataset.vary);
    let texts;
    if (k.kind === "enum" || k.kind === "boolean") {
      texts = [...form.querySelectorAll(`input[data-level="${CSS.escape(k.path)}"]:checked`)].map((c) => c.value);
    } else {
      const raw = form.querySelector(`input[data-levels="${CSS.escape(k.path)}"]`).value;
      texts = raw.split(k.kind === "list" ? ";" : ",").map((t) => t.trim()).filter(Boolean);
    }
    if (!texts.length) { problems.push(`${k.path}: give at least one value to vary`); continue; }
    const values = [];
    for (const t of texts) {
      const parsed = parseValue(k, t);
      if (parsed.error) { problems.push(parsed.error); } else { values.push(parsed.value); }
    }
    out[k.path] = values;
  }
  return { factors: out, problems };
}

// One arm per line, as `trainlab ablate --variant [LABEL] KEY=VALUE ...` takes it (a first
// word without "=" names the arm; VALUE is JSON when it parses, else text), so a line can be
// copied between the CLI and this form.
function variantArms() {
  const arms = [];
  const problems = [];
  const lines = $("#abl-variant-lines").value.split("\n").map((l) => l.trim()).filter(Boolean);
  if (!lines.length) { problems.push("variants: give one line per arm: [label] key=value ..."); }
  lines.forEach((line, i) => {
    const words = line.split(/\s+/);
    const label = words[0].includes("=") ? null : words.shift();
    const overrides = {};
    for (const word of words) {
      const at = word.indexOf("=");
      if (at <= 0) { problems.push(`variants: line ${i + 1}: "${word}" is not key=value`); continue; }
      const text = word.slice(at + 1);
      let value;
      try { value = JSON.parse(text); } catch { value = text; }
      overrides[word.slice(0, at)] = value;
    }
    if (!words.length) { problems.push(`variants: line ${i + 1}: no key=value change`); }
    arms.push(label ? { label, overrides } : { overrides });
  });
  return { arms, problems };
}

async function submitAblation(ev) {
  ev.preventDefault();
  const form = $("#ablation-form");
  const design = form.querySelector("input[name=design]:checked").value;
  const problems = [];
  const seeds = Number($("#abl-seeds").value);
  if (!Number.isInteger(seeds) || seeds < 1 || seeds > MAX_SEEDS) { problems.push(`seeds: 1..${MAX_SEEDS}`); }
  const overrides = {};
  for (const input of $("#abl-overrides").querySelectorAll("[data-path]")) {
    if (input.value.trim() === "") { continue; }
    const parsed = parseValue(forms.knobs.find((k) => k.path === input.dataset.path), input.value);
    if (parsed.error) { problems.push(parsed.error); } else { overrides[input.dataset.path] = parsed.value; }
  }
  const body = { design, seeds, overrides };
  if (design === "grid") {
    const grid = factors(form);
    problems.push(...grid.problems);
    body.factors = grid.factors;
    if ($("#abl-base").value) { body.preset = $("#abl-base").value; }
  } else if (design === "variants") {
    const { arms, problems: wrong } = variantArms();
    problems.push(...wrong);
    body.variants = arms;
    if ($("#abl-vbase").value) { body.preset = $("#abl-vbase").value; }
  }
  const name = $("#abl-name").value.trim();
  if (name) { body.name = name; }
  markInvalid(form, problems);
  if (problems.length) { report($("#abl-result"), problems, false); return; }
  try {
    const created = await sendJSON("POST", "/ablations", body);
    report($("#abl-result"), [`started ablation ${created.id.slice(0, 8)}: ${created.arms.length} arms, ` +
      `${created.created_experiments} new runs, ${created.reused_experiments} reused`], true);
    forms.onCreated({ ablation: created.id });
  } catch (err) {
    const lines = errorLines(err);
    markInvalid(form, lines);
    report($("#abl-result"), lines, false);
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll("#create-card .tab")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
  }
  for (const form of document.querySelectorAll("#create-card form.create")) {
    form.classList.toggle("hidden", form.id !== `${name}-form`);
  }
}

export async function initForms({ onCreated }) {
  forms.onCreated = onCreated;
  document.querySelectorAll("#create-card .tab").forEach((t) => t.addEventListener("click", () => showTab(t.dataset.tab)));
  $("#ablation-form").addEventListener("change", () => {
    const design = $("#ablation-form").querySelector("input[name=design]:checked").value;
    $("#abl-grid").classList.toggle("hidden", design !== "grid");
    $("#abl-variants").classList.toggle("hidden", design !== "variants");
  });
  $("#experiment-form").addEventListener("submit", submitExperiment);
  $("#ablation-form").addEventListener("submit", submitAblation);
  $("#exp-preset").addEventListener("change", fillExperimentKnobs);
  let api;
  try {
    api = await loadApi();
    forms.knobs = knobsOf(api);
  } catch (err) {
    report($("#exp-result"), [`cannot build the form: ${err.message}`], false);
    return;
  }
  const { presets, error } = await loadPresets(api);
  forms.presets = presets;
  const options = [el("option", { value: "" }, "none: the spec's defaults (book baseline)"),
    ...presets.map((p) => el("option", { value: p.name, title: p.description }, p.name))];
  $("#exp-preset").replaceChildren(...options);
  $("#abl-base").replaceChildren(...options.map((o) => o.cloneNode(true)));
  $("#abl-vbase").replaceChildren(...options.map((o) => o.cloneNode(true)));
  $("#presets-note").textContent = error ? `presets unavailable (${error.message}); starting from the spec's defaults`
    : `${presets.length} presets`;
  fillExperimentKnobs();
  const common = forms.knobs.filter((k) => COMMON.includes(k.path));
  $("#abl-overrides").replaceChildren(...common.map((k) => el("label", { class: "knob" },
    el("span", { text: k.path }), knobInput({ ...k, nullable: true }, "", `abl-${k.path}`))));
  $("#abl-factors").replaceChildren(...forms.knobs.filter((k) => !NOT_VARIED.has(k.path)).map(factorRow));
  // A GAN sweep searches the GanSpec's knobs (an older server without it: none).
  let ganKnobs = [];
  try { ganKnobs = knobsOf(api, ["GanSpec", "GanSpec-Input"]); } catch { ganKnobs = []; }
  initSweepForm({ api, knobs: forms.knobs, ganKnobs, presets, presetOptions: options, onCreated });
  document.body.dataset.formsReady = "true";
}
