// "PNG" buttons: save a chart as it is drawn. Every button with data-png="<canvas selector>"
// saves that canvas, composited on white (charts are drawn on a transparent canvas, which
// image viewers show as black), under the name in data-name.

import { state } from "./util.js";

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function savePng(canvas, name) {
  const flat = document.createElement("canvas");
  flat.width = canvas.width;
  flat.height = canvas.height;
  const ctx = flat.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, flat.width, flat.height);
  ctx.drawImage(canvas, 0, 0);
  flat.toBlob((blob) => {
    if (!blob) { return; }
    state.lastExport = { name, type: blob.type, size: blob.size };
    download(blob, name);
  }, "image/png");
}

export function wirePngButtons(root = document) {
  root.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-png]");
    if (!button) { return; }
    const canvas = document.querySelector(button.dataset.png);
    if (canvas) { savePng(canvas, button.dataset.name || "chart.png"); }
  });
}
