// smar-sdk shop demo: plain JS, no build step, no third-party code. Talks to the app's JSON API only.
"use strict";

const K = 24;
const MODE_NAMES = { fused: "SMAR fused", text: "text-only" };
const state = { info: null, query: "", mode: "fused", filters: {}, results: {}, seq: 0, renders: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function label(field) {
  return field.replace(/_/g, " ");
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || response.status);
    throw new Error(detail);
  }
  return body;
}

function searchURL(mode) {
  const params = new URLSearchParams({ q: state.query, k: String(K), mode });
  for (const [field, value] of Object.entries(state.filters)) params.set(field, value);
  return "/api/search?" + params.toString();
}

function syncLocation() {
  const params = new URLSearchParams();
  if (state.query) params.set("q", state.query);
  if (state.mode !== "fused") params.set("mode", state.mode);
  for (const [field, value] of Object.entries(state.filters)) params.set(field, value);
  const query = params.toString();
  history.replaceState(null, "", query ? "?" + query : location.pathname);
}

async function search() {
  if (!state.query) return;
  const seq = ++state.seq;
  $("status").className = "status";
  $("status").textContent = "Searching…";
  syncLocation();
  try {
    // both rankings at once, so toggling is instant and each card can show its rank in the other mode
    const [fused, text] = await Promise.all([getJSON(searchURL("fused")), getJSON(searchURL("text"))]);
    if (seq !== state.seq) return; // a newer search started meanwhile
    state.results = { fused, text };
    render();
  } catch (error) {
    if (seq !== state.seq) return;
    state.results = {};
    $("grid").replaceChildren();
    $("status").className = "status error";
    $("status").textContent = "Search failed: " + error.message;
  }
}

function renderModes() {
  for (const button of document.querySelectorAll(".mode")) {
    const active = button.dataset.mode === state.mode;
    button.classList.toggle("active", active);
    button.setAttribute("aria-checked", String(active));
  }
  const modes = (state.info && state.info.modes) || {};
  $("mode-label").textContent = modes[state.mode] || "";
}

function renderChips(facets) {
  const rows = [];
  for (const field of (state.info && state.info.facets) || Object.keys(facets)) {
    const counts = { ...(facets[field] || {}) };
    const chosen = state.filters[field];
    if (chosen && !(chosen in counts)) counts[chosen] = 0;
    if (!Object.keys(counts).length) continue;
    const row = el("div", "chip-row");
    row.dataset.facet = field;
    row.append(el("span", "facet", label(field)));
    const values = el("div", "chip-values");
    const all = el("button", "chip" + (chosen ? "" : " active"), "all");
    all.type = "button";
    all.addEventListener("click", () => setFilter(field, null));
    values.append(all);
    for (const [value, n] of Object.entries(counts)) {
      const chip = el("button", "chip" + (chosen === value ? " active" : ""), value);
      chip.type = "button";
      chip.dataset.value = value;
      chip.append(el("span", "n", String(n)));
      chip.addEventListener("click", () => setFilter(field, chosen === value ? null : value));
      values.append(chip);
    }
    row.append(values);
    rows.push(row);
  }
  $("chips").replaceChildren(...rows);
}

function card(hit, rank, otherRanks, otherMode) {
  const node = el("article", "card");
  node.dataset.id = hit.id;
  node.append(el("span", "rank", "#" + rank));
  if (hit.image_url) {
    const img = el("img");
    img.src = hit.image_url;
    img.alt = hit.title;
    img.decoding = "async";
    img.addEventListener("error", () => img.replaceWith(el("div", "noimg", "image unavailable")));
    node.append(img);
  } else {
    node.append(el("div", "noimg", "no image"));
  }
  const body = el("div", "body");
  body.append(el("div", "title", hit.title));
  const attrs = el("div", "attrs");
  for (const [field, value] of Object.entries(hit.attributes)) {
    const attr = el("span", "attr", value);
    attr.dataset.attr = field;
    attr.title = label(field);
    attrs.append(attr);
  }
  body.append(attrs);
  const meta = el("div", "meta");
  meta.append(el("span", "score", "score " + hit.score.toFixed(3)));
  const other = otherRanks.get(hit.id);
  const delta = el("span", "delta");
  delta.title = `this product's rank under ${MODE_NAMES[otherMode]} ranking`;
  if (other === undefined) {
    delta.textContent = MODE_NAMES[otherMode] + ": not in top " + K;
  } else {
    delta.textContent = MODE_NAMES[otherMode] + " #" + other;
    if (other > rank) delta.classList.add("up");
    if (other < rank) delta.classList.add("down");
  }
  meta.append(delta);
  body.append(meta);
  node.append(body);
  return node;
}

function render() {
  renderModes();
  const result = state.results[state.mode];
  if (!result) return;
  const otherMode = state.mode === "fused" ? "text" : "fused";
  const otherRanks = new Map(((state.results[otherMode] || {}).hits || []).map((h, i) => [h.id, i + 1]));
  renderChips(result.facets);
  const grid = $("grid");
  grid.replaceChildren(...result.hits.map((hit, i) => card(hit, i + 1, otherRanks, otherMode)));
  grid.dataset.mode = state.mode;
  grid.dataset.query = result.query;
  grid.dataset.renders = String(++state.renders);
  const filters = Object.entries(result.filters).map(([f, v]) => label(f) + "=" + v).join(", ");
  const searchedAs = result.searched_as !== result.query ? ` (searched as “${result.searched_as}”)` : "";
  $("status").textContent = result.hits.length
    ? `${result.hits.length} products for “${result.query}”${searchedAs}${filters ? " (" + filters + ")" : ""} · ` +
      `${MODE_NAMES[state.mode]} · ${result.milliseconds} ms`
    : `No products for “${result.query}”${searchedAs}${filters ? " with " + filters : ""}.` +
      (result.note ? ` Note: ${result.note}${/[.?!]$/.test(result.note) ? "" : "."}` : "");
}

function setFilter(field, value) {
  if (value === null) delete state.filters[field];
  else state.filters[field] = value;
  search();
}

function setMode(mode) {
  if (mode === state.mode) return;
  state.mode = mode;
  syncLocation();
  render();
}

async function init() {
  const params = new URLSearchParams(location.search);
  try {
    state.info = await getJSON("/api/info");
    $("info").textContent = `${state.info.count} products · ${state.info.store}:${state.info.collection}`;
  } catch (error) {
    $("info").textContent = "info unavailable: " + error.message;
  }
  for (const field of (state.info && state.info.facets) || []) {
    if (params.get(field)) state.filters[field] = params.get(field);
  }
  if (params.get("mode") === "text") state.mode = "text";
  renderModes();
  for (const button of document.querySelectorAll(".mode")) {
    button.addEventListener("click", () => setMode(button.dataset.mode));
  }
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = $("q").value.trim();
    state.filters = {};
    search();
  });
  if (params.get("q")) {
    $("q").value = params.get("q");
    state.query = params.get("q").trim();
    search();
  }
  document.body.dataset.ready = "true";
}

init();
