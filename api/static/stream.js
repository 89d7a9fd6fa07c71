// Server-Sent Events read with fetch instead of EventSource: EventSource cannot send an
// Authorization header, and putting the key in the URL would leave it in logs and history.
// Same protocol as EventSource: `event`/`data`/`id` fields, `retry` for the reconnect delay,
// and a reconnect that sends Last-Event-ID, so a resumed stream has no gap and no repeat.

import { auth } from "./util.js";

export function openStream(url, handlers) {
  const controller = new AbortController();
  let lastId = null;
  let retryMs = 1000;
  let ended = false;
  let closed = false;

  function dispatch(block) {
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) { continue; }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") { event = value; }
      else if (field === "data") { data += (data ? "\n" : "") + value; }
      else if (field === "id") { lastId = value; }
      else if (field === "retry") { retryMs = Number(value) || retryMs; }
    }
    if (!data) { return; }
    if (event === "end") { ended = true; }
    const handle = handlers[event];
    if (handle) { handle(JSON.parse(data)); }
  }

  async function readOnce() {
    const headers = { Accept: "text/event-stream", ...auth.headers() };
    if (lastId !== null) { headers["Last-Event-ID"] = lastId; }
    const response = await fetch(url, { headers, signal: controller.signal });
    if (response.status === 401) { auth.onRefused(); closed = true; return; }
    if (!response.ok || !response.body) { throw new Error(`HTTP ${response.status}`); }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { return; }
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  (async () => {
    // The server closes a stream now and then (TRAINLAB_MAX_STREAM_S): reconnect until `end`.
    while (!closed && !ended) {
      try { await readOnce(); } catch (err) { if (closed) { return; } }
      if (!closed && !ended) { await new Promise((resolve) => setTimeout(resolve, retryMs)); }
    }
  })();

  return { close() { closed = true; controller.abort(); } };
}
