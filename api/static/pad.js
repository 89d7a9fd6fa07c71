// Draw a digit and ask the ticked experiments what it is. The drawing is turned into an
// MNIST-like input as MNIST itself was made: the ink's bounding box is scaled (area average)
// to fit 20x20, placed in a 28x28 field with its centre of mass at the centre, white on
// black, 0..1. Each finished, ticked experiment's POST /experiments/{id}/predict gets
// {"pixels": [784 values]} and answers {"experiment_id", "outputs": [10], "predicted"}.

import { $, el, errorLines, isClassifier, labelOf, openapi, sendJSON, state } from "./util.js";
import { drawBars, drawDigit } from "./charts.js";

const SIZE = 280;    // drawing surface in canvas pixels (10 per MNIST pixel)
const BRUSH = 22;
const SIDE = 28, BOX = 20;
const PREDICT = "/experiments/{experiment_id}/predict";

const pad = { pixels: new Array(SIDE * SIDE).fill(0), timer: null, strokes: 0, asked: 0 };
state.pad = pad;

function surface() { return $("#pad").getContext("2d"); }

function clear() {
  const ctx = surface();
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, SIZE, SIZE);
  pad.pixels = new Array(SIDE * SIDE).fill(0);
  pad.strokes = 0;
  drawDigit($("#pad-preview"), rows(pad.pixels), 1);
  $("#pad-bars").replaceChildren();
  $("#pad-status").textContent = "draw a digit with the mouse or a finger";
}

function point(ev) {
  const rect = $("#pad").getBoundingClientRect();
  return { x: ((ev.clientX - rect.left) * SIZE) / rect.width, y: ((ev.clientY - rect.top) * SIZE) / rect.height };
}

function stroke(from, to) {
  const ctx = surface();
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = BRUSH;
  ctx.lineCap = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x + 0.01, to.y);
  ctx.stroke();
}

function rows(flat) { return Array.from({ length: SIDE }, (_, r) => flat.slice(r * SIDE, (r + 1) * SIDE)); }

// The 280x280 drawing -> 784 values in 0..1, MNIST's way (see the top of this file).
export function toMnist(gray, size) {
  let top = size, left = size, bottom = -1, right = -1;
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      if (gray[y * size + x] > 0.05) {
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  const out = new Array(SIDE * SIDE).fill(0);
  if (bottom < 0) { return out; }
  const w = right - left + 1, h = bottom - top + 1;
  const scale = BOX / Math.max(w, h);
  const tw = Math.max(1, Math.round(w * scale)), th = Math.max(1, Math.round(h * scale));
  const patch = new Array(tw * th).fill(0);
  let mass = 0, mx = 0, my = 0;
  for (let ty = 0; ty < th; ty += 1) {
    for (let tx = 0; tx < tw; tx += 1) {
      // Area average of the source pixels under this target pixel.
      const y0 = top + Math.floor((ty * h) / th), y1 = top + Math.max(Math.floor(((ty + 1) * h) / th), Math.floor((ty * h) / th) + 1);
      const x0 = left + Math.floor((tx * w) / tw), x1 = left + Math.max(Math.floor(((tx + 1) * w) / tw), Math.floor((tx * w) / tw) + 1);
      let sum = 0;
      for (let y = y0; y < y1; y += 1) { for (let x = x0; x < x1; x += 1) { sum += gray[y * size + x]; } }
      const v = Math.min(1, sum / ((y1 - y0) * (x1 - x0)));
      patch[ty * tw + tx] = v;
      mass += v; mx += v * (tx + 0.5); my += v * (ty + 0.5);
    }
  }
  // Shift so the centre of mass lands on the field's centre, keeping the patch inside.
  const ox = Math.min(SIDE - tw, Math.max(0, Math.round(SIDE / 2 - mx / mass)));
  const oy = Math.min(SIDE - th, Math.max(0, Math.round(SIDE / 2 - my / mass)));
  for (let ty = 0; ty < th; ty += 1) {
    for (let tx = 0; tx < tw; tx += 1) { out[(oy + ty) * SIDE + ox + tx] = patch[ty * tw + tx]; }
  }
  return out;
}

function sample() {
  const data = surface().getImageData(0, 0, SIZE, SIZE).data;
  const gray = new Float32Array(SIZE * SIZE);
  for (let i = 0; i < gray.length; i += 1) { gray[i] = data[4 * i] / 255; }
  pad.pixels = toMnist(gray, SIZE);
  drawDigit($("#pad-preview"), rows(pad.pixels), 1);
}

async function predict() {
  sample();
  const targets = state.experiments.filter((e) => state.selected.has(e.id) && e.status === "succeeded" && isClassifier(e));
  if (!targets.length) {
    $("#pad-status").textContent = "tick a finished classifier in the list to ask it";
    return;
  }
  if (!pad.pixels.some((v) => v > 0)) { $("#pad-status").textContent = "the pad is empty"; return; }
  const api = await openapi().catch(() => ({}));
  if (!(api.paths && api.paths[PREDICT])) {
    $("#pad-status").textContent = "this server has no POST /experiments/{id}/predict: it cannot be asked";
    return;
  }
  $("#pad-status").textContent = `asking ${targets.length} experiment(s)…`;
  const answers = await Promise.all(targets.map((e) =>
    sendJSON("POST", `/experiments/${encodeURIComponent(e.id)}/predict`, { pixels: pad.pixels })
      .then((body) => ({ e, body }), (err) => ({ e, err }))));
  const figures = answers.map(({ e, body, err }, i) => {
    const canvas = el("canvas", { id: `pad-bars-${i}`, width: 220, height: 130, "aria-label": `outputs of ${e.id}` });
    const caption = err ? `${labelOf(e.id, e)}: ${errorLines(err).join("; ")}`
      : `${labelOf(e.id, e)}: says ${body.predicted}`;
    return { figure: el("figure", {}, canvas, el("figcaption", { text: caption })), canvas, body };
  });
  $("#pad-bars").replaceChildren(...figures.map((f) => f.figure));
  figures.forEach((f) => { if (f.body) { drawBars(f.canvas, f.body.outputs, f.body.predicted, null); } });
  pad.asked += 1;
  const failed = answers.filter((a) => a.err).length;
  $("#pad-status").textContent = failed ? `${failed} of ${answers.length} could not answer` : "outputs after the last stroke";
}

export function initPad() {
  const canvas = $("#pad");
  canvas.width = SIZE;
  canvas.height = SIZE;
  let last = null;
  canvas.addEventListener("pointerdown", (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    last = point(ev);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!last) { return; }
    const next = point(ev);
    stroke(last, next);
    last = next;
  });
  const end = () => {
    if (!last) { return; }
    last = null;
    pad.strokes += 1;
    clearTimeout(pad.timer);
    pad.timer = setTimeout(predict, 150);  // once the hand rests, not on every stroke
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("#pad-clear").addEventListener("click", clear);
  $("#pad-predict").addEventListener("click", predict);
  clear();
}
