// Search page (#/search?<query>): the form, sortable results with keyset paging, the count, and
// saved searches. The query lives in the URL, so a link to the page gives the same search; the
// form is filled from the URL on every navigation. API: GET /api/interactions/search.

import { api } from "./api.js";
import { callDuration, formatClock, localDateTime } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const TEXT_FIELDS = ["agent", "team", "caller", "callee", "min_duration", "max_duration", "end_reason",
  "disposition", "notes"];
const SELECT_FIELDS = ["has_screen", "paused", "direction"];
// "Required reason not given" is offered in the Paused list (such a call was paused) but is its own
// parameter, pause_reason_missing=true: a pause whose reason the admin requires never got one.
const NO_REASON = "no_reason";
const SORTS = { started_at: "Start", agent: "Agent", caller: "Caller", callee: "Called", duration: "Duration",
  end_reason: "End", direction: "Direction" };
// "" = the SIP side did not say which side dialled (and every call recorded before revision 0017).
const DIRECTIONS = { inbound: "Inbound", outbound: "Outbound" };
const WEEK_MS = 7 * 24 * 3600 * 1000;
// Thumbnails show the screen: only for the roles that may replay recordings (each is audited).
const THUMBNAIL_ROLES = ["supervisor", "evaluator", "compliance", "admin"];
let thumbnails = false;
let metadataKeys = null; // from /api/interactions/search/options, once per session
let current = new URLSearchParams();

// ---- URL <-> form -------------------------------------------------------------------------------

// "2026-12-04T08:30:00Z" -> "2026-12-04T09:30" in the browser's time zone (datetime-local value).
function toLocalInput(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const local = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function toIso(localValue) {
  return localValue ? new Date(localValue).toISOString().replace(/\.\d{3}Z$/, "Z") : "";
}

function fillForm(params) {
  $("search-from").value = params.get("from") ? toLocalInput(params.get("from")) : "";
  $("search-to").value = params.get("to") ? toLocalInput(params.get("to")) : "";
  for (const name of TEXT_FIELDS) $(`search-${name}`).value = params.getAll(name).join(", ");
  for (const name of SELECT_FIELDS) $(`search-${name}`).value = params.get(name) || "";
  if (params.get("pause_reason_missing") === "true") $("search-paused").value = NO_REASON;
  for (const input of $("search-meta").querySelectorAll("input")) input.value = params.get(input.name) || "";
}

function formQuery() {
  const params = new URLSearchParams();
  const from = toIso($("search-from").value);
  const to = toIso($("search-to").value);
  if (from) params.set("from", from);
  if (to) params.set("to", to);
  for (const name of TEXT_FIELDS) {
    const value = $(`search-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  for (const name of SELECT_FIELDS) if ($(`search-${name}`).value) params.set(name, $(`search-${name}`).value);
  if (params.get("paused") === NO_REASON) {
    params.delete("paused");
    params.set("pause_reason_missing", "true");
  }
  for (const input of $("search-meta").querySelectorAll("input")) {
    if (input.value.trim()) params.set(input.name, input.value.trim());
  }
  for (const keep of ["sort", "order", "limit"]) if (current.get(keep)) params.set(keep, current.get(keep));
  return params;
}

function go(params) {
  location.hash = `#/search?${params.toString()}`;
}

// ---- results ------------------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// A pause whose reason the admin requires but the agent never gave is flagged in the row itself.
function pausedCell(item) {
  if (!item.pause_reason_missing) return cell(item.paused ? "paused" : "", item.paused ? "paused" : "");
  const td = cell("paused — no reason given", "paused reason-missing");
  td.title = "A pause whose reason is required for this agent's team was never given a reason";
  return td;
}

function resultRow(item) {
  const row = document.createElement("tr");
  row.dataset.id = item.id;
  const link = Object.assign(document.createElement("a"), {
    href: `#/recordings/${encodeURIComponent(item.id)}`,
    textContent: localDateTime(item.started_at),
  });
  const start = document.createElement("td");
  start.append(link);
  const screen = document.createElement("td");
  screen.className = item.has_screen ? "screen-yes" : "screen-no";
  screen.textContent = item.has_screen ? "▣ screen" : "—";
  screen.title = item.has_screen ? "Has a screen recording" : "Voice only";
  if (item.has_screen && thumbnails) {
    const img = Object.assign(document.createElement("img"), {
      src: `/api/interactions/${encodeURIComponent(item.id)}/thumbnail`,
      alt: "The agent's screen at the start of the call",
      className: "thumb", width: 120,
    });
    // No picture (not muxed yet, an unreadable file): the text mark stays.
    img.addEventListener("load", () => screen.replaceChildren(img), { once: true });
  }
  const duration = callDuration(item);
  row.append(
    start,
    cell(item.unassigned ? "unassigned" : item.agent, item.unassigned ? "unassigned" : ""),
    cell(item.caller), cell(item.callee),
    cell(duration === null ? "in progress" : formatClock(duration), "num"),
    screen,
    pausedCell(item),
    cell(item.end_reason || ""),
    cell(DIRECTIONS[item.direction] || "not known", `direction ${item.direction || "unknown"}`),
  );
  row.addEventListener("click", (event) => {
    if (event.target !== link) location.hash = link.getAttribute("href");
  });
  return row;
}

function renderHeader() {
  const sort = current.get("sort") || "started_at";
  const order = current.get("order") || "desc";
  for (const th of $("search-results").tHead.rows[0].cells) {
    const key = th.dataset.sort;
    if (!key) continue;
    th.setAttribute("aria-sort", key === sort ? (order === "asc" ? "ascending" : "descending") : "none");
    const button = th.querySelector("button");
    button.textContent = `${SORTS[key]}${key === sort ? (order === "asc" ? " ▲" : " ▼") : ""}`;
  }
}

function countText(body) {
  const n = body.count.toLocaleString();
  const what = body.count === 1 ? "interaction" : "interactions";
  return body.count_capped ? `More than ${n} ${what} — narrow the search to count them` : `${n} ${what}`;
}

async function runSearch(isCurrent) {
  $("search-status").textContent = "Searching…";
  $("search-error").hidden = true;
  try {
    const body = await api("GET", `/api/interactions/search?${current.toString()}`);
    if (!isCurrent()) return;
    $("search-results").tBodies[0].replaceChildren(...body.items.map(resultRow));
    $("search-status").textContent = body.items.length ? countText(body) : "No interaction matches this search.";
    $("search-next").hidden = !body.next_cursor;
    $("search-next").dataset.cursor = body.next_cursor || "";
    $("search-first").hidden = !current.get("cursor");
  } catch (err) {
    if (!isCurrent()) return;
    $("search-results").tBodies[0].replaceChildren();
    $("search-status").textContent = "";
    $("search-error").textContent = err.message;
    $("search-error").hidden = false;
  }
}

// ---- saved searches -----------------------------------------------------------------------------

let savedLoads = 0; // only the newest list load renders (a save's reload may overtake the page's)

async function loadSaved(selectedName = "") {
  const mine = ++savedLoads;
  const list = await api("GET", "/api/searches");
  if (mine !== savedLoads) return;
  const shown = new URLSearchParams(current);
  shown.delete("cursor");
  const select = $("search-saved");
  const options = list.map((saved) => Object.assign(document.createElement("option"), {
    value: saved.query, textContent: saved.name,
    selected: selectedName ? saved.name === selectedName : saved.query === shown.toString(),
  }));
  for (const [i, option] of options.entries()) option.dataset.id = list[i].id;
  const placeholder = Object.assign(document.createElement("option"), { value: "", textContent: "Saved searches…" });
  select.replaceChildren(placeholder, ...options);
  $("search-delete").disabled = !select.selectedOptions[0]?.dataset.id;
}

async function saveCurrent(event) {
  event.preventDefault();
  const name = $("search-save-name").value.trim();
  const status = $("search-save-status");
  if (!name) {
    status.textContent = "Give the search a name first.";
    status.className = "error";
    return;
  }
  const query = formQuery();
  try {
    await api("POST", "/api/searches", { name, query: query.toString() });
    await loadSaved(name);
    status.textContent = `Saved as “${name}”.`;
    status.className = "ok";
    $("search-save-name").value = "";
  } catch (err) {
    status.textContent = err.message;
    status.className = "error";
  }
}

async function deleteSelected() {
  const option = $("search-saved").selectedOptions[0];
  if (!option?.dataset.id) return;
  await api("DELETE", `/api/searches/${option.dataset.id}`);
  await loadSaved();
  $("search-save-status").textContent = `Deleted “${option.textContent}”.`;
  $("search-save-status").className = "ok";
}

// ---- entry points -------------------------------------------------------------------------------

async function loadOptions() {
  if (metadataKeys !== null) return;
  const options = await api("GET", "/api/interactions/search/options");
  metadataKeys = options.metadata_keys;
  const inputs = metadataKeys.flatMap((key) => {
    const id = `search-meta-${key.replace(/[^a-z0-9]/g, "-")}`;
    const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: key });
    const input = Object.assign(document.createElement("input"), { id, name: `meta.${key}`, type: "text" });
    const box = document.createElement("div");
    box.append(label, input);
    return [box];
  });
  $("search-meta").replaceChildren(...inputs);
  $("search-meta").hidden = inputs.length === 0;
}

// A new session (other user) must not see the previous one's metadata keys or saved searches.
export function resetSearch() {
  metadataKeys = null;
}

export async function showSearch(queryString, isCurrent, role = "") {
  thumbnails = THUMBNAIL_ROLES.includes(role);
  await loadOptions();
  if (!isCurrent()) return;
  current = new URLSearchParams(queryString);
  if (!queryString) {
    // The first visit: the last seven days, newest first (what a supervisor opens the page for).
    const params = new URLSearchParams({ from: toIso(toLocalInput(new Date(Date.now() - WEEK_MS).toISOString())) });
    history.replaceState(null, "", `#/search?${params.toString()}`);
    current = params;
  }
  fillForm(current);
  renderHeader();
  loadSaved().catch(() => {});
  await runSearch(isCurrent);
}

export function initSearch() {
  $("search-paused").append(
    Object.assign(document.createElement("option"), { value: NO_REASON, textContent: "Required reason not given" }),
  );
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    go(formQuery());
  });
  $("search-reset").addEventListener("click", () => go(new URLSearchParams()));
  for (const th of $("search-results").tHead.rows[0].cells) {
    const key = th.dataset.sort;
    if (!key) continue;
    th.querySelector("button").addEventListener("click", () => {
      const params = formQuery();
      const same = (current.get("sort") || "started_at") === key;
      const order = same && (current.get("order") || "desc") === "desc" ? "asc" : "desc";
      params.set("sort", key);
      params.set("order", order);
      go(params);
    });
  }
  $("search-next").addEventListener("click", () => {
    const params = new URLSearchParams(current);
    params.set("cursor", $("search-next").dataset.cursor);
    go(params);
  });
  $("search-first").addEventListener("click", () => {
    const params = new URLSearchParams(current);
    params.delete("cursor");
    go(params);
  });
  $("search-saved").addEventListener("change", () => {
    const option = $("search-saved").selectedOptions[0];
    $("search-delete").disabled = !option?.dataset.id;
    if (option?.dataset.id) go(new URLSearchParams(option.value));
  });
  $("search-save").addEventListener("submit", saveCurrent);
  $("search-delete").addEventListener("click", () => deleteSelected().catch((err) => {
    $("search-save-status").textContent = err.message;
    $("search-save-status").className = "error";
  }));
}
