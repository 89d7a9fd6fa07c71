// "PNG" buttons: save a chart as it is drawn. Every button with data-png="<canvas selector>"
// saves that canvas, composited on white (charts are drawn on a transparent canvas, which
// image viewers show as black), under the name in data-name.

import { auth, state } from "./util.js";

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

// CSV links: a plain link when no key is needed; with a key, fetched with it and saved, since a
// link the browser follows by itself cannot carry the Authorization header.
export function wireDownloads(root = document) {
  root.addEventListener("click", async (ev) => {
    const link = ev.target.closest("a[download]");
    if (!link || !auth.key || link.getAttribute("href") === "#") { return; }
    ev.preventDefault();
    const response = await fetch(link.href, { headers: auth.headers() });
    if (!response.ok) { return; }
    const disposition = response.headers.get("content-disposition") || "";
    const name = (/filename="?([^";]+)"?/.exec(disposition) || [])[1] || "trainlab.csv";
    download(await response.blob(), name);
  });
}
