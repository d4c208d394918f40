// The audit viewer (compliance and admin): filter the audit log by user, action, interaction,
// outcome and time range, page through it newest first, export what the filter matches as CSV.
// Reads and exports are audited by the server. The filter lives in the URL (#/audit?user=ann…).

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
export const AUDIT_ROLES = ["compliance", "admin"];
const PAGE = 50; // records per page unless the URL says (#/audit?limit=100)
let pageSize = PAGE;
// Shortcuts for what compliance officers look for most (server/services/audit_query.py filters).
const PRESETS = [
  ["", "Everything", {}],
  ["plays", "Plays and downloads", { action: "recording.read" }],
  ["shares", "Share links", { action: "share" }],
  ["refusals", "Refusals", { outcome: "denied" }],
  ["policy", "Policy changes", { target_type: "policy" }],
];
const FIELDS = ["user", "action", "interaction", "outcome", "since", "until", "target_type"];

let pages = []; // the `before` cursor of each page shown so far (null: the newest)
let built = false;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function field(id, text, input) {
  input.id = id;
  return el("div", {}, el("label", { htmlFor: id, textContent: text }), input);
}

function build() {
  const preset = el("select", {}, ...PRESETS.map(([value, text]) => el("option", { value, textContent: text })));
  const outcome = el("select", {}, ...["", "allowed", "denied", "failed"].map(
    (v) => el("option", { value: v, textContent: v || "Any outcome" }),
  ));
  const form = el(
    "form",
    { id: "audit-form", className: "search-form", noValidate: true },
    field("audit-preset", "Show", preset),
    field("audit-user", "User", el("input", { placeholder: "username" })),
    field("audit-action", "Action", el("input", { placeholder: "e.g. recording.read or share" })),
    field("audit-interaction", "Interaction", el("input", { placeholder: "interaction id" })),
    field("audit-outcome", "Outcome", outcome),
    field("audit-since", "From", el("input", { type: "datetime-local", step: 1 })),
    field("audit-until", "To", el("input", { type: "datetime-local", step: 1 })),
    el(
      "div",
      { className: "search-actions" },
      el("button", { id: "audit-apply", type: "submit", textContent: "Show records" }),
      el("a", { id: "audit-export", className: "button", href: "#", textContent: "Export CSV", download: "" }),
    ),
  );
  const table = el(
    "table",
    { id: "audit-records" },
    el("thead", {}, el("tr", {}, ...["Time", "User", "Action", "Outcome", "Target", "Detail", "From"].map(
      (t) => el("th", { scope: "col", textContent: t }),
    ))),
    el("tbody"),
  );
  $("view-audit").replaceChildren(
    el("h1", { id: "audit-title", textContent: "Audit log" }),
    el("p", { className: "muted", textContent: "Every play, download, share, refusal and policy change, newest first. Times are your local time; the CSV has UTC." }),
    form,
    el("p", { id: "audit-status", className: "muted", role: "status" }),
    el("div", { className: "table-scroll" }, table),
    el(
      "div",
      { className: "toolbar" },
      el("button", { id: "audit-newer", type: "button", textContent: "Newer", hidden: true }),
      el("button", { id: "audit-older", type: "button", textContent: "Older", hidden: true }),
    ),
  );
  $("view-audit").querySelector(".table-scroll").style.overflowX = "auto";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = formQuery();
    if (query === null) return;
    const hash = `#/audit${query.toString() ? `?${query}` : ""}`;
    if (location.hash === hash) load(query, null, true);
    else location.hash = hash; // the route loads it; the filter stays in the URL
  });
  preset.addEventListener("change", () => {
    const [, , values] = PRESETS.find(([v]) => v === preset.value);
    for (const name of ["action", "outcome"]) $(`audit-${name}`).value = values[name] || "";
    form.dataset.targetType = values.target_type || "";
    form.requestSubmit();
  });
  $("audit-older").addEventListener("click", () => load(currentQuery, pages.at(-1).next, true));
  $("audit-newer").addEventListener("click", () => {
    pages.pop(); // the page shown
    const previous = pages.pop(); // the one before it, shown again
    load(currentQuery, previous ? previous.before : null, true);
  });
  built = true;
}

function toSeconds(value) {
  return value ? String(new Date(value).getTime() / 1000) : "";
}

function toLocalInput(seconds) {
  if (!seconds) return "";
  const d = new Date(Number(seconds) * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function formQuery() {
  const query = new URLSearchParams();
  const put = (name, value) => value && query.set(name, value.trim());
  put("user", $("audit-user").value);
  put("action", $("audit-action").value);
  put("interaction", $("audit-interaction").value);
  put("outcome", $("audit-outcome").value);
  put("target_type", $("audit-form").dataset.targetType || "");
  put("since", toSeconds($("audit-since").value));
  put("until", toSeconds($("audit-until").value));
  if (query.has("since") && query.has("until") && Number(query.get("until")) <= Number(query.get("since"))) {
    status("The end of the time range must be after its start.", true);
    $("audit-until").focus();
    return null;
  }
  return query;
}

function fillForm(query) {
  $("audit-user").value = query.get("user") || "";
  $("audit-action").value = query.get("action") || "";
  $("audit-interaction").value = query.get("interaction") || "";
  $("audit-outcome").value = query.get("outcome") || "";
  $("audit-since").value = toLocalInput(query.get("since"));
  $("audit-until").value = toLocalInput(query.get("until"));
  $("audit-form").dataset.targetType = query.get("target_type") || "";
  // The preset whose fields the query has (user, interaction and time narrow any preset).
  const preset = PRESETS.find(([, , v]) => ["action", "outcome", "target_type"].every(
    (f) => (v[f] || "") === (query.get(f) || ""),
  ));
  $("audit-preset").value = preset ? preset[0] : "";
}

function status(text, isError = false) {
  const node = $("audit-status");
  node.textContent = text;
  node.className = isError ? "error" : "muted";
}

function target(record) {
  if (record.target_type === "interaction" && record.target_id) {
    return el("a", { href: `#/recordings/${encodeURIComponent(record.target_id)}`, textContent: record.target_id });
  }
  return document.createTextNode([record.target_type, record.target_id].filter(Boolean).join(" "));
}

let currentQuery = new URLSearchParams();
let loadToken = 0;

async function load(query, before, isCurrent) {
  const token = ++loadToken;
  currentQuery = query;
  const params = new URLSearchParams(query);
  params.set("limit", String(pageSize));
  if (before !== null && before !== undefined) params.set("before", String(before));
  $("audit-export").href = `/api/audit/export.csv${query.toString() ? `?${query}` : ""}`;
  status("Loading…");
  let answer;
  try {
    answer = await api("GET", `/api/audit/records?${params}`);
  } catch (err) {
    if (token === loadToken) status(err.message, true);
    return;
  }
  if (token !== loadToken || (typeof isCurrent === "function" && !isCurrent())) return;
  if (before === null || before === undefined) pages = [];
  pages.push({ before, next: answer.next_before });
  const rows = answer.records.map((r) => {
    const row = el(
      "tr",
      { className: r.outcome === "allowed" ? "" : `audit-${r.outcome}` },
      el("td", { textContent: new Date(r.at * 1000).toLocaleString() }),
      el("td", { textContent: r.username || "—" }),
      el("td", { textContent: r.action }),
      el("td", { textContent: r.outcome, className: r.outcome === "allowed" ? "ok" : "error" }),
      el("td", {}, target(r)),
      el("td", { textContent: r.detail }),
      el("td", { textContent: r.remote_addr }),
    );
    row.dataset.seq = String(r.seq);
    return row;
  });
  $("audit-records").tBodies[0].replaceChildren(...rows);
  const first = (pages.length - 1) * pageSize;
  status(rows.length ? `Records ${first + 1}–${first + rows.length}${answer.next_before ? "" : " (the oldest)"}` : "No records match.");
  $("audit-older").hidden = !answer.next_before;
  $("audit-newer").hidden = pages.length <= 1;
}

// The route: `query` is the hash's query string (the filter).
export function showAudit(query, isCurrent) {
  if (!built) build();
  const params = new URLSearchParams(query);
  const limit = Number(params.get("limit"));
  pageSize = Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : PAGE;
  fillForm(params);
  const clean = new URLSearchParams();
  for (const f of FIELDS) if (params.get(f)) clean.set(f, params.get(f));
  load(clean, null, isCurrent);
}
