// The dashboard: plain DOM, no framework. Every value is written with textContent (never innerHTML).
// Token: if the API needs one, open /#token=YOUR_TOKEN once, or type it in the form the page shows on a 401.
// It is kept in sessionStorage (this tab only) and sent as "Authorization: Bearer ..." to /api/*.
"use strict";

const REFRESH_MS = 2000;
const TOKEN_KEY = "processor.api-token";
const DEAD_LETTERS_SHOWN = 20;
const RECENT_SHOWN = 25;

const $ = (sel) => document.querySelector(sel);
const fmt = new Intl.NumberFormat();
let deadLetters = [];   // newest first, at most DEAD_LETTERS_SHOWN
let timer = null;

class AuthError extends Error {}

function takeTokenFromFragment() {
  const match = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  if (match) {
    try {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    } catch (e) {
      // A malformed #token= (a lone %): ignore it and let the page ask for the token.
    }
    // Keep it out of the address bar; the rest of the fragment (a search, an object) stays.
    const rest = location.hash.slice(1).split("&").filter((part) => !part.startsWith("token=")).join("&");
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new AuthError("token required");
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + message);
  }
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function num(value) { return value === null || value === undefined ? "–" : fmt.format(value); }

function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || "–";
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return new Date(t).toLocaleTimeString();
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(t).toLocaleString();
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 60 ? value.toFixed(1) + " s" : Math.round(value / 60) + " min";
}

function shortSource(source) {
  const parts = (source || "").split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : "–";
}

function shortType(type) {
  return (type || "").replace(/^Microsoft\.(MachineLearningServices|Storage)\./, "");
}

function summarize(state) {
  if (!state || typeof state !== "object") return { text: "–" };
  if (state.status !== undefined) return { text: String(state.status), cls: "status-" + state.status };
  if (state.deleted !== undefined) return state.deleted ? { text: "deleted", cls: "status-deleted" } : { text: "present", cls: "status-created" };
  if (state.version !== undefined && state.version !== null) return { text: "version " + state.version, cls: "status-registered" };
  if (state.drift_coefficient !== undefined && state.drift_coefficient !== null) return { text: "drift " + Number(state.drift_coefficient).toFixed(3) };
  if (state.model_ids) return { text: state.model_ids.length + " model(s)" };
  return { text: "–" };
}

function fillBody(table, rows, columns, emptyText) {
  const body = el("tbody");
  if (!rows.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: String(columns) }, emptyText)));
  for (const row of rows) body.append(row);
  $(table + " tbody").replaceWith(body);
}

function renderCounters(summary) {
  const worker = summary.worker;
  const events = worker ? worker.events : {};
  const values = {
    objects: summary.objects,
    dead_letters_stored: summary.dead_letters,
    read: events.read, applied: events.applied, stale: events.stale, duplicate: events.duplicate,
    ignored: events.ignored, rejected: events.rejected, dead_lettered: events.dead_lettered,
    buffer: worker ? worker.buffer.events : null,
  };
  for (const card of document.querySelectorAll("#counters [data-counter]")) {
    const name = card.dataset.counter;
    const value = values[name];
    card.hidden = value === undefined || (value === null && name !== "objects" && name !== "dead_letters_stored");
    card.dataset.value = value === null || value === undefined ? "" : String(value);
    card.querySelector(".value").textContent = num(value);
  }
  if (worker) {
    $("#hub").textContent = worker.eventhub_name + " on " + worker.fully_qualified_namespace +
      " · consumer group " + worker.consumer_group;
  } else {
    $("#hub").textContent = "read replica: serving the projection, not consuming";
  }
}

function renderPartitions(view) {
  $("#partitions-source").textContent = view.source === "hub" ? "all replicas" : view.source === "worker" ? "this replica" : "";
  const note = $("#partitions-note");
  note.hidden = !(view.error || view.source === "none");
  note.textContent = view.error || (view.source === "none" ? "No Event Hub is configured here, so there are no partitions to show." : "");
  const maxLag = Math.max(1, ...view.partitions.map((p) => p.lag || 0));
  const rows = view.partitions.map((p) => {
    const owner = p.owner
      ? el("span", { title: p.owner }, p.owner.slice(0, 8), " ", p.here ? el("span", { class: "badge here" }, "this replica") : null)
      : (p.here ? el("span", { class: "badge here" }, "this replica") : el("span", { class: "muted" }, "unowned"));
    const lag = el("span", { class: "lag" },
      el("span", { class: "bar", "aria-hidden": "true" }, el("span")), num(p.lag));
    lag.querySelector(".bar > span").style.width = Math.round(100 * (p.lag || 0) / maxLag) + "%";
    const state = p.stalled ? el("span", { class: "badge bad" }, "stalled")
      : (p.lag === 0 ? el("span", { class: "badge ok" }, "caught up") : el("span", { class: "badge" }, "consuming"));
    return el("tr", { "data-partition": p.partition, "data-owner": p.owner || "", "data-lag": p.lag ?? "",
                      "data-checkpoint": p.checkpoint_sequence_number ?? "" },
      el("td", { class: "mono" }, p.partition),
      el("td", {}, owner),
      el("td", { class: "num" }, num(p.checkpoint_sequence_number)),
      el("td", { class: "num" }, num(p.last_enqueued_sequence_number)),
      el("td", { class: "num" }, lag),
      el("td", { class: "num" }, seconds(p.checkpoint_age_seconds)),
      el("td", {}, state));
  });
  fillBody("#partitions", rows, 7, "no partitions");
}

function renderRecent(page) {
  const rows = page.objects.map((o) => {
    const s = summarize(o.state);
    return el("tr", { "data-object": o.object, "data-source": o.source, "data-type": o.event_type },
      el("td", { class: "mono" }, el("a", { href: objectLink(o.object, o.source), title: o.object }, o.object)),
      el("td", {}, shortType(o.event_type)),
      el("td", { class: s.cls || "" }, s.text),
      el("td", { title: o.source }, shortSource(o.source)),
      el("td", {}, el("time", { datetime: o.updated_at, title: o.updated_at }, ago(o.updated_at))));
  });
  fillBody("#recent", rows, 5, "no objects yet");
}

async function refreshDeadLetters() {
  // Only the newest few, whatever the backlog: a page of them, newest first.
  const page = await api("/api/deadletters?order=newest&limit=" + DEAD_LETTERS_SHOWN);
  deadLetters = page.dead_letters;
  const rows = deadLetters.map((d) =>
    el("tr", { "data-dead-letter": String(d.id) },
      el("td", { class: "num" }, el("a", { href: "#deadletter=" + d.id, title: "show its body" }, d.id)),
      el("td", { class: "reason" }, d.reason),
      el("td", { class: "mono" }, d.origin),
      el("td", {}, el("time", { datetime: d.received_at, title: d.received_at }, ago(d.received_at)))));
  fillBody("#deadletters", rows, 4, "none: every message was projected");
}

async function refreshReadiness() {
  const pill = $("#status");
  try {
    const response = await fetch("/readyz", { cache: "no-store" });
    const body = await response.json();
    pill.dataset.state = body.ready ? "ready" : "not-ready";
    pill.textContent = body.ready ? "ready" : "not ready: " + body.reason;
  } catch (err) {
    pill.dataset.state = "error";
    pill.textContent = "unreachable";
  }
}

async function refresh() {
  const results = await Promise.allSettled([
    api("/api/summary").then(renderCounters),
    api("/api/partitions").then(renderPartitions),
    api("/api/recent?limit=" + RECENT_SHOWN).then(renderRecent),
    refreshDeadLetters(),
    refreshReadiness(),
    api("/api/history").then(renderHistory),
  ]);
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  const needsToken = failures.some((e) => e instanceof AuthError);
  $("#auth").hidden = !needsToken;
  if (needsToken) {
    $("#status").dataset.state = "auth";
    $("#status").textContent = "token required";
  }
  const errors = failures.filter((e) => !(e instanceof AuthError)).map((e) => e.message || String(e));
  $("#error").hidden = errors.length === 0;
  $("#error").textContent = errors.join(" · ");
  if (!failures.length) {
    const now = new Date();
    $("#updated").textContent = now.toLocaleTimeString();
    $("#updated").setAttribute("datetime", now.toISOString());
    document.body.dataset.loaded = "true";
  }
}

async function loop() {
  try { await refresh(); } finally { timer = setTimeout(loop, REFRESH_MS); }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("#auth").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("#token-input").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("#token-input").value = "";
    clearTimeout(timer);
    loop();
    route();
  });
  setUpExplore();
  loop();
});
