// A GAN run's card: its two loss curves (discriminator and generator), the images of its fixed
// seeds over training (a slider over the stored sample steps), the judge classifier's label
// histogram at that step (a collapsed GAN puts every image in one bar), and a strip of images
// walking between two latent seeds, drawn by the server from the stored generator (POST
// /generate), as the book's chapter 9 walks. Ticked GAN runs are offered first.

import { $, el, expLabel, getJSON, sendJSON, state } from "./util.js";
import { colorAt, drawBars, drawLines, legend, prepare } from "./charts.js";

const SIDE = 28;
const WALK_STEPS = 8;
const card = { shown: null, steps: [], judged: [], seeds: null, busy: false };

function isGan(e) { return e.spec && e.spec.kind === "gan"; }

function choices() {
  const gans = state.experiments.filter(isGan);
  const ticked = gans.filter((e) => state.selected.has(e.id));
  return [...ticked, ...gans.filter((e) => !state.selected.has(e.id))];
}

// Images side by side in rows of `cols`, white on black; pixels run 0..top, row-major.
export function drawGrid(canvas, images, cols, top) {
  const { ctx, w, h } = prepare(canvas);
  const rows = Math.max(1, Math.ceil(images.length / cols));
  const cell = Math.min(w / cols, h / rows) / SIDE;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  let marks = 0;
  images.forEach((pixels, i) => {
    const x0 = (i % cols) * SIDE * cell, y0 = Math.floor(i / cols) * SIDE * cell;
    pixels.forEach((v, p) => {
      if (v <= 0) { return; }
      const g = Math.round((255 * Math.min(v, top)) / top);
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect(x0 + (p % SIDE) * cell, y0 + Math.floor(p / SIDE) * cell, cell + 0.3, cell + 0.3);
      marks += 1;
    });
  });
  canvas.dataset.drawn = String(marks);
  canvas.dataset.images = String(images.length);
}

async function drawCurves(id) {
  const canvas = $("#gan-curves");
  const url = (series) => `/experiments/${encodeURIComponent(id)}/loss?series=${series}&max_points=1000`;
  const [d, g] = await Promise.all([getJSON(url("discriminator")), getJSON(url("generator"))]);
  // The two series are recorded at different steps: align them on the union of steps.
  const steps = [...new Set([...d.steps, ...g.steps])].sort((a, b) => a - b);
  const on = (s) => { const at = new Map(s.steps.map((x, i) => [x, s.values[i]])); return steps.map((x) => at.get(x) ?? null); };
  const series = [
    { label: "discriminator", color: colorAt(0), values: on(d) },
    { label: "generator", color: colorAt(1), values: on(g) },
  ];
  drawLines(canvas, steps, series, { yTitle: "loss" });
  legend($("#gan-curves-legend"), series);
}

async function drawStep() {
  const id = card.shown;
  const step = card.steps[Number($("#gan-step").value)];
  if (!id || step === undefined) { return; }
  $("#gan-step-value").textContent = `step ${step}`;
  const samples = await getJSON(`/experiments/${encodeURIComponent(id)}/samples?step=${step}&format=json`);
  drawGrid($("#gan-samples"), samples.pixels, 8, 255);
  const judged = card.judged.find((j) => j.step === step);
  const bars = $("#gan-histogram");
  if (!judged) {
    bars.dataset.drawn = "0";
    $("#gan-histogram-note").textContent = "not judged at this step";
    return;
  }
  const top = judged.histogram.indexOf(Math.max(...judged.histogram));
  drawBars(bars, judged.histogram, top, -1, "images");
  $("#gan-histogram-note").textContent = `the judge's labels of ${judged.histogram.reduce((a, b) => a + b, 0)} images:` +
    ` entropy ${judged.entropy_bits} of ${judged.max_entropy_bits} bits (low: collapse)` +
    (judged.as_requested != null ? `, ${(100 * judged.as_requested).toFixed(1)}% as asked` : "");
}

// A seed as the generator was trained on: normal or uniform, per the spec.
function drawSeed(spec) {
  const normal = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  return Array.from({ length: spec.latent_size }, () => (spec.latent === "uniform" ? Math.random() : normal()));
}

async function drawWalk() {
  const chosen = state.experiments.find((e) => e.id === card.shown);
  if (!chosen || chosen.status !== "succeeded") { return; }
  card.seeds = card.seeds || [drawSeed(chosen.spec), drawSeed(chosen.spec)];
  const [a, b] = card.seeds;
  const label = chosen.spec.conditional ? Number($("#gan-label").value) : undefined;
  const images = [];
  for (let i = 0; i < WALK_STEPS; i += 1) {
    const t = i / (WALK_STEPS - 1);
    const seed = a.map((x, k) => x + (b[k] - x) * t);
    const made = await sendJSON("POST", `/experiments/${encodeURIComponent(chosen.id)}/generate`,
      label === undefined ? { seed } : { seed, label });
    images.push(made.pixels);
  }
  drawGrid($("#gan-walk"), images, WALK_STEPS, 1);
  $("#gan-walk-note").textContent = `${WALK_STEPS} images from seed A to seed B` + (label === undefined ? "" : `, each asked for a ${label}`);
}

async function show(chosen) {
  card.shown = chosen.id;
  card.seeds = null;
  card.judged = (chosen.metrics && chosen.metrics.judge) || [];
  $("#gan-label-row").hidden = !chosen.spec.conditional;
  await drawCurves(chosen.id);
  card.steps = [];
  const slider = $("#gan-step");
  slider.max = "0";
  if (chosen.status !== "succeeded") {
    // A run stores its samples when it ends (all sample steps at once): nothing to ask yet.
    $("#gan-step-value").textContent = "samples appear when the run has finished";
    for (const id of ["#gan-samples", "#gan-histogram", "#gan-walk"]) { prepare($(id)); $(id).dataset.drawn = "0"; }
    $("#gan-histogram-note").textContent = "";
    $("#gan-walk-note").textContent = "the walk needs a finished run's generator";
    return;
  }
  const last = await getJSON(`/experiments/${encodeURIComponent(chosen.id)}/samples?format=json`);
  card.steps = last.steps;
  slider.max = String(Math.max(0, card.steps.length - 1));
  slider.value = slider.max;
  await drawStep();
  await drawWalk();
}

export async function refreshGan() {
  const options = choices();
  $("#gan-card").hidden = options.length === 0;
  const select = $("#gan-pick");
  const ids = options.map((e) => e.id).join();
  if (select.dataset.ids !== ids) {
    const current = select.value;
    select.replaceChildren(...options.map((e) => el("option", { value: e.id }, `${expLabel(e)} · ${e.id.slice(0, 8)}`)));
    select.dataset.ids = ids;
    if (options.some((e) => e.id === current)) { select.value = current; }
  }
  const chosen = options.find((e) => e.id === select.value) || options[0];
  // Drawn again when another run is picked or the shown one has moved on (a step, an end).
  const version = chosen ? `${chosen.id}:${chosen.status}:${chosen.progress.step}` : "";
  if (!chosen || card.busy || select.dataset.version === version) { return; }
  card.busy = true;
  try {
    await show(chosen);
    select.dataset.version = version;
  } catch (err) {
    $("#gan-walk-note").textContent = String(err.message || err);
  } finally {
    card.busy = false;
  }
}

export function initGan() {
  $("#gan-pick").addEventListener("change", () => { $("#gan-pick").dataset.version = ""; refreshGan(); });
  $("#gan-step").addEventListener("input", () => { drawStep().catch(() => {}); });
  $("#gan-new-seeds").addEventListener("click", () => { card.seeds = null; drawWalk().catch(() => {}); });
  $("#gan-label").addEventListener("change", () => { drawWalk().catch(() => {}); });
}
