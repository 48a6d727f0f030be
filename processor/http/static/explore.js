// Finding an object and looking inside: the search form (/api/objects filters), an object's full state, a dead
// letter's body with its reason. What is shown is chosen by the address's fragment, so every view is a link:
//   #search&prefix=runs/&source=...&type=...&status=Failed   the matching objects (each row links to its state)
//   #object=NAME&source=SOURCE                                one object's full state
//   #deadletter=ID                                            one dead letter's body and reason
// Bodies and states are untrusted: written with textContent into <pre>, never parsed as markup.
"use strict";

const SEARCH_LIMIT = 50;
const SEARCH_FIELDS = ["prefix", "source", "type", "status"];

function fragment() {
  return new URLSearchParams(location.hash.slice(1));
}

function objectLink(name, source) {
  return "#" + new URLSearchParams({ object: name, source: source || "" }).toString();
}

function showPanel(id) {
  for (const panel of document.querySelectorAll("#explore [data-panel]")) panel.hidden = panel.id !== id;
}

async function runSearch(params) {
  const query = new URLSearchParams({ limit: String(SEARCH_LIMIT) });
  for (const field of SEARCH_FIELDS) {
    const value = (params.get(field) || "").trim();
    const input = document.querySelector("#search-" + field);
    if (input && input.value !== value) input.value = input.defaultValue = value;  // a link shows its search
    if (value) query.set(field === "status" ? "state.status" : field, value);
  }
  const page = await api("/api/objects?" + query.toString());
  const rows = page.objects.map((o) => {
    const s = summarize(o.state);
    return el("tr", { "data-found": o.object, "data-source": o.source },
      el("td", { class: "mono" }, el("a", { href: objectLink(o.object, o.source), title: o.object }, o.object)),
      el("td", {}, shortType(o.event_type)),
      el("td", { class: s.cls || "" }, s.text),
      el("td", { title: o.source }, shortSource(o.source)),
      el("td", {}, el("time", { datetime: o.updated_at, title: o.updated_at }, ago(o.updated_at))));
  });
  fillBody("#found", rows, 5, "no object matches");
  document.querySelector("#found-note").textContent = page.next
    ? "The first " + page.objects.length + " matches; narrow the search to see others."
    : page.objects.length + " match" + (page.objects.length === 1 ? "" : "es");
  showPanel("results");
}

async function showObject(name, source) {
  const path = "/api/objects/" + encodeURIComponent(name) + (source ? "?source=" + encodeURIComponent(source) : "");
  const row = await api(path);
  document.querySelector("#detail-name").textContent = row.object;
  document.querySelector("#detail-source").textContent = row.source;
  const state = document.querySelector("#detail-state");
  state.textContent = JSON.stringify(row, null, 2);
  state.dataset.object = row.object;
  showPanel("detail");
}

async function showDeadLetter(id) {
  // The one with this id: the page of those after id-1 starts with it.
  const page = await api("/api/deadletters?limit=1&after=" + encodeURIComponent(String(Math.max(0, id - 1))));
  const letter = page.dead_letters.find((d) => d.id === id);
  if (!letter) throw new Error("no dead letter " + id);
  document.querySelector("#letter-id").textContent = String(letter.id);
  document.querySelector("#letter-reason").textContent = letter.reason;
  document.querySelector("#letter-origin").textContent = letter.origin;
  document.querySelector("#letter-size").textContent = fmt.format(letter.body_size) + " bytes" +
    (letter.truncated ? " (only the first " + fmt.format(new TextEncoder().encode(letter.body).length) + " kept)" : "");
  const body = document.querySelector("#letter-body");
  body.textContent = letter.body;
  body.dataset.deadLetter = String(letter.id);
  showPanel("letter");
}

async function route() {
  const params = fragment();
  const error = document.querySelector("#explore-error");
  error.hidden = true;
  try {
    if (params.has("object")) {
      await showObject(params.get("object"), params.get("source"));
    } else if (params.has("deadletter")) {
      const id = Number(params.get("deadletter"));
      if (!Number.isInteger(id) || id < 1) throw new Error("not a dead letter id: " + params.get("deadletter"));
      await showDeadLetter(id);
    } else if (params.has("search")) {
      await runSearch(params);
    } else {
      showPanel("");
    }
  } catch (err) {
    if (err instanceof AuthError) return;  // the refresh loop shows the token form
    error.textContent = err.message || String(err);
    error.hidden = false;
  }
}

function setUpExplore() {
  document.querySelector("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    params.set("search", "");
    for (const field of SEARCH_FIELDS) {
      const value = document.querySelector("#search-" + field).value.trim();
      if (value) params.set(field, value);
    }
    location.hash = params.toString();  // hashchange runs the search
  });
  window.addEventListener("hashchange", route);
  route();
}
