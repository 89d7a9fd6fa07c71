// The ablation's forest plot and an experiment's confusion-matrix heatmap, on plain canvas.

import { FONT, GRID, INK, MUTED, axisTitles, fmtTick, niceTicks, prepare } from "./charts.js";

const ROW = 28;
const SEED_CI = "#2b6cb0";
const RECORD_CI = "#c05621";

// rows: [{label, mean, low, high, note, records: [{mean, low, high}]}], differences as
// fractions (drawn in percentage points). The seed interval is drawn dark; per-record
// bootstrap intervals (few-seed pairs) thinner, in another colour, just below it.
export function drawForest(canvas, rows, opts = {}) {
  const height = 18 + Math.max(1, rows.length) * ROW + 46;
  const { ctx, w, h } = prepare(canvas, height);
  const labelWidth = Math.min(230, Math.floor(w * 0.34));
  const pad = { l: labelWidth + 8, r: 150, t: 14, b: 46 };
  axisTitles(canvas, ctx, w, h, { ...pad, l: pad.l }, opts.xTitle ||
    "difference in test accuracy (percentage points), 95% CI", "");
  // Differences of shares are drawn in points (x100); other figures (scale 1) as they are.
  const scale = opts.scale ?? 100;
  const values = [0];
  for (const r of rows) {
    for (const v of [r.mean, r.low, r.high]) { if (Number.isFinite(v)) { values.push(scale * v); } }
    for (const x of r.records || []) {
      for (const v of [x.low, x.high]) { if (Number.isFinite(v)) { values.push(scale * v); } }
    }
  }
  if (!rows.length) {
    ctx.fillStyle = MUTED;
    ctx.fillText(opts.empty || "no comparisons yet", pad.l, pad.t + 12);
    canvas.dataset.drawn = "0";
    return;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  const margin = (hi - lo || 1) * 0.08;
  lo -= margin; hi += margin;
  const px = (v) => pad.l + ((v - lo) / (hi - lo)) * (w - pad.l - pad.r);
  ctx.strokeStyle = GRID;
  ctx.fillStyle = MUTED;
  const axisY = h - pad.b + 4;
  for (const t of niceTicks(lo, hi, 6)) {
    ctx.beginPath(); ctx.moveTo(px(t), pad.t - 6); ctx.lineTo(px(t), axisY); ctx.stroke();
    ctx.fillText(fmtTick(t), px(t) - 8, axisY + 14);
  }
  ctx.strokeStyle = MUTED;  // no difference
  ctx.setLineDash([4, 3]);
  ctx.beginPath(); ctx.moveTo(px(0), pad.t - 6); ctx.lineTo(px(0), axisY); ctx.stroke();
  ctx.setLineDash([]);

  let marks = 0;
  rows.forEach((r, i) => {
    const y = pad.t + i * ROW + ROW / 2;
    ctx.fillStyle = INK;
    ctx.font = FONT;
    ctx.fillText(clip(ctx, r.label, labelWidth - 4), 4, y + 4);
    ctx.fillStyle = MUTED;
    ctx.fillText(r.note || "", w - pad.r + 8, y + 4);
    if (Number.isFinite(r.low) && Number.isFinite(r.high)) {
      whisker(ctx, px(scale * r.low), px(scale * r.high), y - 3, SEED_CI, 2);
      marks += 1;
    }
    (r.records || []).forEach((x, k) => {
      if (Number.isFinite(x.low) && Number.isFinite(x.high)) {
        whisker(ctx, px(scale * x.low), px(scale * x.high), y + 5 + 3 * k, RECORD_CI, 1);
        marks += 1;
      }
    });
    if (Number.isFinite(r.mean)) {
      ctx.fillStyle = SEED_CI;
      ctx.fillRect(px(scale * r.mean) - 4, y - 7, 8, 8);
      marks += 1;
    }
  });
  canvas.dataset.drawn = String(marks);
}

function whisker(ctx, x0, x1, y, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x0, y); ctx.lineTo(x1, y);
  ctx.moveTo(x0, y - 4); ctx.lineTo(x0, y + 4);
  ctx.moveTo(x1, y - 4); ctx.lineTo(x1, y + 4);
  ctx.stroke();
  ctx.lineWidth = 1;
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) { return text; }
  let cut = text;
  while (cut.length > 1 && ctx.measureText(cut + "…").width > width) { cut = cut.slice(0, -1); }
  return cut + "…";
}

// matrix[true][predicted] counts. Cells are shaded by their share of the true label's row
// (so a rare class reads as clearly as a common one) and show their count.
export function drawHeatmap(canvas, matrix) {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 48, r: 8, t: 8, b: 44 };
  axisTitles(canvas, ctx, w, h, pad, "predicted label", "true label");
  const n = matrix.length;
  const cw = (w - pad.l - pad.r) / n, ch = (h - pad.t - pad.b) / n;
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "center";
  let marks = 0;
  matrix.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, c) => {
      const share = count / total;
      const light = Math.round(255 - 200 * share);
      ctx.fillStyle = r === c ? `rgb(${light},${Math.round(light * 0.9 + 25)},255)` : `rgb(255,${light},${light})`;
      if (count > 0) { ctx.fillRect(pad.l + c * cw, pad.t + r * ch, cw - 1, ch - 1); marks += 1; }
      ctx.fillStyle = share > 0.6 ? "#fff" : INK;
      if (count > 0) { ctx.fillText(String(count), pad.l + c * cw + cw / 2, pad.t + r * ch + ch / 2 + 3); }
    });
    ctx.fillStyle = MUTED;
    ctx.fillText(String(r), pad.l - 10, pad.t + r * ch + ch / 2 + 3);
  });
  for (let c = 0; c < n; c += 1) { ctx.fillText(String(c), pad.l + c * cw + cw / 2, h - pad.b + 13); }
  ctx.textAlign = "start";
  canvas.dataset.drawn = String(marks);
}
