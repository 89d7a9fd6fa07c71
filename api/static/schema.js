// What a run can be asked for, read from the server itself: the spec's knobs with their
// bounds from /openapi.json (the ExperimentSpec schema), and the presets from GET /presets.
// Values typed into the forms are checked against the same bounds before anything is sent;
// the server checks again and its 422 answers are shown field by field.

import { el, getJSON, openapi } from "./util.js";

const SPEC_NAMES = ["ExperimentSpec", "ExperimentSpec-Input", "ExperimentSpec-Output"];

export async function loadApi() { return openapi(); }

function resolver(schemas) {
  return (s) => (s && s.$ref ? schemas[s.$ref.split("/").pop()] || {} : s || {});
}

export function knobsOf(api, names = SPEC_NAMES) {
  const schemas = (api.components && api.components.schemas) || {};
  const name = names.find((n) => schemas[n]);
  if (!name) { throw new Error(`the server's OpenAPI document has no ${names[0]} schema`); }
  const resolve = resolver(schemas);
  const knobs = [];
  const walk = (schema, prefix) => {
    for (const [key, prop] of Object.entries(schema.properties || {})) {
      const target = resolve(prop);
      if (target.properties) { walk(target, `${prefix}${key}.`); continue; }
      // A list of sections (a cnn's model.conv) is no knob a form field can hold: set it
      // through the API or a preset (cnn-mnist).
      if (isListOfSections(target, resolve)) { continue; }
      knobs.push(knob(`${prefix}${key}`, prop, resolve));
    }
  };
  walk(schemas[name], "");
  return knobs;
}

// Top-level fields of another request's body (POST /sweeps: SweepRequest) as knobs, with their
// bounds, choices and defaults; null when the server has no such schema.
export function requestKnobs(api, schemaName, fields) {
  const schemas = (api.components && api.components.schemas) || {};
  const schema = schemas[schemaName];
  if (!schema || !schema.properties) { return null; }
  const resolve = resolver(schemas);
  return fields.filter((f) => schema.properties[f]).map((f) => knob(f, schema.properties[f], resolve));
}

function isListOfSections(schema, resolve) {
  const options = Array.isArray(schema.anyOf) ? schema.anyOf.map(resolve) : [schema];
  return options.some((o) => o.type === "array" && o.items && resolve(o.items).properties);
}

function knob(path, prop, resolve) {
  let s = resolve(prop);
  let nullable = false;
  if (Array.isArray(s.anyOf)) {
    const real = s.anyOf.filter((a) => a.type !== "null");
    nullable = real.length < s.anyOf.length;
    s = { ...s, ...resolve(real[0]) };
  }
  const kind = s.enum ? "enum" : s.type === "array" ? "list" : s.type || "text";
  return {
    path, kind, nullable,
    enum: s.enum,
    min: s.minimum, max: s.maximum,
    exclusiveMin: s.exclusiveMinimum, exclusiveMax: s.exclusiveMaximum,
    items: s.items ? resolve(s.items) : null,
    minItems: s.minItems, maxItems: s.maxItems,
    default: prop.default !== undefined ? prop.default : s.default,
    description: prop.description || s.description || "",
  };
}

export function bounds(k) {
  const low = k.min !== undefined ? `${k.min} ≤` : k.exclusiveMin !== undefined ? `${k.exclusiveMin} <` : "";
  const high = k.max !== undefined ? `≤ ${k.max}` : k.exclusiveMax !== undefined ? `< ${k.exclusiveMax}` : "";
  return low || high ? `${low} ${k.path} ${high}`.trim() : "";
}

function checkNumber(k, text) {
  const value = Number(text);
  if (!/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(text) || !Number.isFinite(value)) {
    return { error: `${k.path}: ${JSON.stringify(text)} is not a number` };
  }
  if (k.kind === "integer" && !Number.isInteger(value)) { return { error: `${k.path}: a whole number` }; }
  const out = (k.min !== undefined && value < k.min) || (k.max !== undefined && value > k.max)
    || (k.exclusiveMin !== undefined && value <= k.exclusiveMin)
    || (k.exclusiveMax !== undefined && value >= k.exclusiveMax);
  return out ? { error: `${k.path}: ${value} is out of bounds (${bounds(k)})` } : { value };
}

// One typed value of a knob -> {value} or {error}. Empty means "not set" (null when allowed).
export function parseValue(k, text) {
  const raw = String(text).trim();
  if (raw === "" && k.kind === "list" && !(k.minItems > 0)) { return { value: [] }; }
  if (raw === "") { return k.nullable ? { value: null } : { error: `${k.path}: give a value` }; }
  if (k.kind === "enum") {
    return k.enum.map(String).includes(raw) ? { value: k.enum.find((v) => String(v) === raw) }
      : { error: `${k.path}: one of ${k.enum.join(", ")}` };
  }
  if (k.kind === "boolean") { return raw === "true" || raw === "false" ? { value: raw === "true" } : { error: `${k.path}: true or false` }; }
  if (k.kind === "integer" || k.kind === "number") { return checkNumber(k, raw); }
  if (k.kind === "list") {
    const item = { path: `${k.path}[]`, kind: (k.items && k.items.type) || "number", ...(k.items ? { min: k.items.minimum, max: k.items.maximum } : {}) };
    const parts = raw.split(",").map((p) => p.trim());
    const values = [];
    for (const p of parts) {
      const one = checkNumber(item, p);
      if (one.error) { return one; }
      values.push(one.value);
    }
    if ((k.minItems && values.length < k.minItems) || (k.maxItems && values.length > k.maxItems)) {
      return { error: `${k.path}: ${k.minItems || 0}..${k.maxItems} values` };
    }
    return { value: values };
  }
  return { value: raw };
}

export function formatValue(value) {
  if (value === null || value === undefined) { return ""; }
  return Array.isArray(value) ? value.join(",") : String(value);
}

export function getPath(obj, path) {
  return path.split(".").reduce((o, key) => (o && typeof o === "object" ? o[key] : undefined), obj);
}

// The input for one knob: a select for enums, else a text box (numbers are checked by
// parseValue, whose messages say more than a browser's number input).
export function knobInput(k, value, id) {
  const text = formatValue(value);
  const title = [k.description, bounds(k)].filter(Boolean).join(" — ");
  if (k.kind === "enum" || k.kind === "boolean") {
    const options = k.kind === "enum" ? k.enum : [true, false];
    return el("select", { id, title, dataset: { path: k.path } },
      options.map((o) => el("option", { value: String(o), selected: String(o) === text }, String(o))));
  }
  return el("input", { id, title, value: text, dataset: { path: k.path }, inputmode: k.kind === "list" ? "text" : "decimal",
    placeholder: k.nullable ? "default" : "" });
}

// GET /presets, whatever its exact shape: a list of {name, description, spec}, or an object
// holding such a list (`presets` / `items`), or one keyed by name. A server without the
// route (its OpenAPI document says so) is not asked: an empty list.
export async function loadPresets(api) {
  if (!(api.paths && api.paths["/presets"])) {
    return { presets: [], error: new Error("this server has no GET /presets") };
  }
  let body;
  try { body = await getJSON("/presets"); } catch (err) { return { presets: [], error: err }; }
  let list = Array.isArray(body) ? body : (body && (body.presets || body.items)) || null;
  if (!list && body && typeof body === "object") {
    list = Object.entries(body).map(([name, p]) => ({ name, ...(p && p.spec ? p : { spec: p }) }));
  }
  const presets = (list || []).filter((p) => p && typeof p.name === "string").map((p) => ({
    name: p.name, description: p.description || "", spec: p.spec && typeof p.spec === "object" ? p.spec : null,
  }));
  return { presets, error: null };
}
