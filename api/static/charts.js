// Plain-canvas charts for the dashboard: no library, so nothing is fetched at run time.
// Each draw function sets data-drawn on its canvas to the number of marks it drew, which
// makes "something was drawn" easy to read in a browser test beside the pixels themselves.
// Every chart names its axes (data-x-title / data-y-title say which, for tests too).

const PALETTE = ["#2b6cb0", "#c05621", "#2f855a", "#b83280", "#6b46c1", "#b7791f",
                 "#0987a0", "#9b2c2c", "#4a5568", "#276749"];
export const INK = "#1d232a";
export const MUTED = "#69727d";
export const GRID = "#dfe3e8";
export const FONT = "11px system-ui, sans-serif";

export function colorAt(i) { return PALETTE[i % PALETTE.length]; }

// Sizes the backing store to the device pixel ratio so lines stay sharp; returns a context
// in CSS pixels. Wide charts (class "fill") take their container's width.
export function prepare(canvas, height) {
  const ratio = window.devicePixelRatio || 1;
  if (!canvas.dataset.cssWidth) {
    canvas.dataset.cssWidth = canvas.getAttribute("width");
    canvas.dataset.cssHeight = canvas.getAttribute("height");
  }
  let w = Number(canvas.dataset.cssWidth);
  const h = height || Number(canvas.dataset.cssHeight);
  if (canvas.classList.contains("fill") && canvas.parentElement) {
    const style = getComputedStyle(canvas.parentElement);
    const inner = canvas.parentElement.clientWidth
      - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    if (inner > 200) { w = Math.floor(inner); }
  }
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = FONT;
  return { ctx, w, h };
}

export function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { return [lo]; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) { ticks.push(t); }
  return ticks;
}

export function fmtTick(v) {
  if (Math.abs(v) >= 1000) { return (v / 1000).toFixed(v % 1000 === 0 ? 0 : 1) + "k"; }
  return String(Math.round(v * 1000) / 1000);
}

// Axis titles: x centred under the plot area, y rotated along the left edge.
export function axisTitles(canvas, ctx, w, h, pad, xTitle, yTitle) {
  ctx.save();
  ctx.fillStyle = INK;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "center";
  if (xTitle) { ctx.fillText(xTitle, pad.l + (w - pad.l - pad.r) / 2, h - 4); }
  if (yTitle) {
    ctx.translate(12, pad.t + (h - pad.t - pad.b) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(yTitle, 0, 0);
  }
  ctx.restore();
  canvas.dataset.xTitle = xTitle || "";
  canvas.dataset.yTitle = yTitle || "";
}

const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);

// series: [{label, color, values, low?, high?, dots?}] aligned on `steps` (null = no point);
// `dots` draws each point as a dot instead of joining them.
// opts: {xTitle, yTitle, empty, wholeX (x ticks on whole numbers only)}.
export function drawLines(canvas, steps, series, opts = {}) {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 62, r: 10, t: 10, b: 42 };
  let ys = [];
  for (const s of series) {
    ys = ys.concat(s.values.filter(finite));
    if (s.low) { ys = ys.concat(s.low.filter(finite), s.high.filter(finite)); }
  }
  axisTitles(canvas, ctx, w, h, pad, opts.xTitle || "step", opts.yTitle || "loss");
  ctx.fillStyle = MUTED;
  if (!steps.length || !ys.length) {
    ctx.fillText(opts.empty || "no points yet", pad.l + 10, h / 2);
    canvas.dataset.drawn = "0";
    return;
  }
  const x0 = steps[0], x1 = steps[steps.length - 1] === x0 ? x0 + 1 : steps[steps.length - 1];
  let y0 = Math.min(0, ...ys), y1 = Math.max(...ys);
  if (y1 === y0) { y1 = y0 + 1; }
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const py = (y) => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);

  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  for (const t of niceTicks(y0, y1, 5)) {
    ctx.beginPath(); ctx.moveTo(pad.l, py(t)); ctx.lineTo(w - pad.r, py(t)); ctx.stroke();
    ctx.fillText(fmtTick(t), 22, py(t) + 4);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    if (opts.wholeX && !Number.isInteger(t)) { continue; }  // counts (trial numbers): no 0.5
    ctx.fillText(fmtTick(t), px(t) - 10, h - 24);
  }

  let marks = 0;
  series.forEach((s) => {
    if (s.low && s.high) {
      // The band: upper edge left to right, lower edge back, skipping steps with no points.
      ctx.fillStyle = s.color + "33";
      ctx.beginPath();
      const idx = steps.map((_, i) => i).filter((i) => finite(s.low[i]) && finite(s.high[i]));
      idx.forEach((i, k) => {
        if (k === 0) { ctx.moveTo(px(steps[i]), py(s.high[i])); } else { ctx.lineTo(px(steps[i]), py(s.high[i])); }
      });
      idx.slice().reverse().forEach((i) => ctx.lineTo(px(steps[i]), py(s.low[i])));
      if (idx.length) { ctx.closePath(); ctx.fill(); marks += 1; }
    }
    if (s.dots) {
      // Points on their own (one per x, such as one trial's figure), not joined by a line.
      ctx.fillStyle = s.color;
      steps.forEach((x, i) => {
        if (!finite(s.values[i])) { return; }
        ctx.beginPath(); ctx.arc(px(x), py(s.values[i]), 3, 0, 2 * Math.PI); ctx.fill();
        marks += 1;
      });
      return;
    }
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    steps.forEach((x, i) => {
      const v = s.values[i];
      if (!finite(v)) { return; }  // a run still going, or a different log_every: skip
      if (!pen) { ctx.moveTo(px(x), py(v)); pen = true; } else { ctx.lineTo(px(x), py(v)); }
      marks += 1;
    });
    ctx.stroke();
  });
  canvas.dataset.drawn = String(marks);
}

// The book's record chart: the 10 outputs of one experiment as bars, the predicted one dark,
// the true label's digit in bold (label may be null: a digit drawn by hand has none).
export function drawBars(canvas, outputs, predicted, label, yTitle = "output") {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 30, r: 6, t: 6, b: 34 };
  const top = Math.max(1, ...outputs);
  const slot = (w - pad.l - pad.r) / outputs.length;
  const py = (v) => h - pad.b - (v / top) * (h - pad.t - pad.b);
  axisTitles(canvas, ctx, w, h, pad, "digit", yTitle);
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = MUTED;
  for (const t of [0, top / 2, top]) { ctx.fillText(fmtTick(t), 16, py(t) + 3); }
  let marks = 0;
  outputs.forEach((v, digit) => {
    const bh = Math.max(0, h - pad.b - py(v));
    ctx.fillStyle = digit === predicted ? "#2b6cb0" : "#9fb8d6";
    ctx.fillRect(pad.l + digit * slot + 2, h - pad.b - bh, slot - 4, bh);
    if (bh > 0) { marks += 1; }
    ctx.fillStyle = digit === label ? INK : MUTED;
    ctx.font = digit === label ? "bold 10px system-ui, sans-serif" : "10px system-ui, sans-serif";
    ctx.fillText(String(digit), pad.l + digit * slot + slot / 2 - 3, h - pad.b + 12);
  });
  ctx.strokeStyle = GRID;
  ctx.beginPath(); ctx.moveTo(pad.l, h - pad.b); ctx.lineTo(w - pad.r, h - pad.b); ctx.stroke();
  canvas.dataset.drawn = String(marks);
}

// A 28x28 grayscale digit drawn white-on-black like the book's imshow; `top` is the value
// of full white (255 for dataset records, 1 for a digit drawn on the pad).
export function drawDigit(canvas, pixels, top = 255) {
  const { ctx, w, h } = prepare(canvas);
  const rows = pixels.length, cols = pixels[0].length;
  const cw = w / cols, ch = h / rows;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  let marks = 0;
  pixels.forEach((row, r) => row.forEach((v, c) => {
    if (v > 0) {
      const g = Math.round((255 * Math.min(v, top)) / top);
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect(c * cw, r * ch, cw + 0.5, ch + 0.5);
      marks += 1;
    }
  }));
  canvas.dataset.drawn = String(marks);
}

// A legend under a chart: a coloured swatch and a label per series.
export function legend(container, items) {
  container.replaceChildren(...items.map((it) => {
    const swatch = document.createElement("i");
    swatch.style.background = it.color;
    const span = document.createElement("span");
    span.append(swatch, document.createTextNode(it.label));
    return span;
  }));
}
