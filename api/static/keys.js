// The API key form in the header: shown when the server requires keys and this tab has none
// (or a request was refused with 401), hidden otherwise; "forget" drops the key from the tab.

import { $, auth, getJSON } from "./util.js";

let onChange = () => {};

function show(message) {
  $("#key-form").hidden = false;
  $("#key-who").hidden = true;
  $("#key-message").textContent = message || "this server needs an API key";
  $("#api-key").focus();
}

async function whoAmI() {
  try {
    const me = await getJSON("/me");
    $("#key-who").hidden = false;
    $("#key-who-name").textContent = me.name ? `${me.name} (${me.role})` : "open server";
    $("#key-form").hidden = true;
  } catch {
    // A refused key shows the form (auth.onRefused); anything else leaves the header alone.
  }
}

export async function initKeys(changed) {
  onChange = changed;
  auth.onRefused = (detail) => show(detail);
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    auth.set($("#api-key").value.trim());
    $("#api-key").value = "";
    whoAmI();
    onChange();
  });
  $("#forget-key").addEventListener("click", () => {
    auth.set("");
    show("key forgotten in this tab");
    onChange();
  });
  let mode = "open";
  try { mode = (await getJSON("/readyz")).auth || "open"; } catch (err) { mode = err.body?.auth || "open"; }
  if (mode === "required" && !auth.key) { show(); return; }
  if (auth.key) { whoAmI(); }
}
