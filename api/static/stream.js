// Server-Sent Events read with fetch instead of EventSource: EventSource cannot send an
// Authorization header, and putting the key in the URL would leave it in logs and history.
// Same protocol as EventSource: `event`/`data`/`id` fields, `retry` for the reconnect delay,
// and a reconnect that sends Last-Event-ID, so a resumed stream has no gap and no repeat.
// A failed connection (refused, unreachable, cut) calls `handlers.error` if there is one, and
// the next try waits twice as long as the last, up to MAX_BACKOFF_MS; a stream the server
// closes in the normal way (TRAINLAB_MAX_STREAM_S) is reopened after `retry`.

import { auth } from "./util.js";

const MAX_BACKOFF_MS = 30000;

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
    let failures = 0;
    while (!closed && !ended) {
      try {
        await readOnce();
        failures = 0;
      } catch (err) {
        if (closed) { return; }
        failures += 1;
        if (handlers.error) { handlers.error(err); }
      }
      const wait = Math.min(retryMs * 2 ** Math.min(failures, 5), MAX_BACKOFF_MS);
      if (!closed && !ended) { await new Promise((resolve) => setTimeout(resolve, wait)); }
    }
  })();

  return { close() { closed = true; controller.abort(); } };
}
