// Shared pieces of the dashboard: the page state, DOM helpers and JSON requests.
// No inline styles or handlers anywhere (the page runs under a strict Content-Security-Policy):
// elements are built here and styled through classes or element.style from script.

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export const state = {
  experiments: [],
  // The experiments list pages through the server's cursor, 50 rows at a time, never more:
  // the cursors of the pages before this one (for "previous"), this page's and the next's.
  pages: [],
  cursor: null,
  nextCursor: null,
  listDrawnAt: null,        // performance.now() when the list was last drawn
  ablations: [],
  selected: new Set(),      // experiment ids overlaid in the curve view
  userPicked: false,        // until the user ticks something, follow the newest runs
  ablation: null,           // ablation id shown in the ablation card
  sweeps: [],
  sweep: null,              // sweep id shown in the sweep card
  notModified: 0,           // conditional reads the server answered 304 (getFresh)
  compare: "successive",    // the ablation summary's comparison: successive or reference
  streams: new Map(),       // experiment id -> its open event stream (stream.js) while it runs
  curveTimer: null,
  renders: 0,
  lastExport: null,         // {name, type, size} of the last chart saved as PNG
};
window.trainlab = state;  // handy in the browser console and for tests

export const $ = (sel, root = document) => root.querySelector(sel);

// el("div", {class: "x", text: "hi", dataset: {id: 1}}, child, ...): a DOM element.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) { continue; }
    if (key === "class") { node.className = value; }
    else if (key === "text") { node.textContent = value; }
    else if (key === "dataset") { Object.assign(node.dataset, value); }
    else if (key === "on") { for (const [ev, fn] of Object.entries(value)) { node.addEventListener(ev, fn); } }
    else if (value === true) { node.setAttribute(key, ""); }
    else { node.setAttribute(key, String(value)); }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) { continue; }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export class HttpError extends Error {
  constructor(status, body) {
    super(typeof body?.detail === "string" ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// The API key, when the server asks for one: kept in this tab's session storage (gone when the
// tab closes, never sent to another site), and sent as `Authorization: Bearer` by every request,
// the event streams included (stream.js reads them with fetch, which can send headers).
const KEY_ITEM = "trainlab.key";
export const auth = {
  get key() { return sessionStorage.getItem(KEY_ITEM) || ""; },
  set(key) { if (key) { sessionStorage.setItem(KEY_ITEM, key); } else { sessionStorage.removeItem(KEY_ITEM); } },
  headers() { const key = this.key; return key ? { Authorization: `Bearer ${key}` } : {}; },
  onRefused: () => {},  // set by keys.js: a 401 shows the key form
};

async function answer(response) {
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401) { auth.onRefused(body && body.detail); }
  if (!response.ok) { throw new HttpError(response.status, body); }
  return body;
}

export async function getJSON(url) {
  return answer(await fetch(url, { headers: { Accept: "application/json", ...auth.headers() } }));
}

// Conditional reads of what a page asks for again and again (a running sweep): the last answer
// and its ETag per URL, the tag sent back as If-None-Match. A 304 carries no body, and says the
// held answer is still current: `changed` is false and the caller need not draw again.
const MAX_TAGGED = 64;
const tagged = new Map();

export async function getFresh(url) {
  const held = tagged.get(url);
  const headers = { Accept: "application/json", ...auth.headers() };
  if (held) { headers["If-None-Match"] = held.etag; }
  const response = await fetch(url, { headers, cache: "no-store" });
  if (response.status === 304 && held) {
    state.notModified += 1;
    return { body: held.body, changed: false };
  }
  const body = await answer(response);
  const etag = response.headers.get("ETag");
  tagged.delete(url);
  if (etag) { tagged.set(url, { etag, body }); }
  if (tagged.size > MAX_TAGGED) { tagged.delete(tagged.keys().next().value); }
  return { body, changed: true };
}

// The server's OpenAPI document, fetched once: the forms read the spec's schema from it, and
// features whose route a server lacks (an older version) are switched off instead of failing.
let apiDoc = null;
export function openapi() {
  apiDoc = apiDoc || getJSON("/openapi.json");
  return apiDoc;
}

export async function sendJSON(method, url, payload) {
  return answer(await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json", ...auth.headers() },
    body: JSON.stringify(payload),
  }));
}

// "field: reason" lines of a 422 answer, or the error's message.
export function errorLines(err) {
  const errors = err && err.body && Array.isArray(err.body.errors) ? err.body.errors : [];
  return errors.length ? errors.map((e) => `${e.field}: ${e.reason}`) : [String(err.message || err)];
}

// Only a classifier has per-record outputs (the record bars, the pad): a spec without a kind is
// one, as the server reads it.
export function isClassifier(e) { return !e.spec || !e.spec.kind || e.spec.kind === "classifier"; }

export function expLabel(e) {
  if (e.name) { return e.name; }
  const seed = e.spec && e.spec.seed !== undefined ? ` · seed ${e.spec.seed}` : "";
  return e.preset ? e.preset + seed : e.id.slice(0, 8);
}

// The list's label for an experiment when it is known, else what the answer carries.
export function labelOf(id, fallback) {
  const known = state.experiments.find((e) => e.id === id);
  return known ? expLabel(known) : (fallback.name || fallback.preset || id.slice(0, 8));
}

export function pct(v) { return v == null ? "–" : (100 * v).toFixed(2); }
export function pValue(p) { return p == null ? "–" : p < 1e-4 ? p.toExponential(1) : p.toPrecision(2); }
