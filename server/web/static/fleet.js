// Recorders (fleet) view: every agent PC's screen recorder as its heartbeats report it — host,
// agent, last contact, version, state, backlog, free disk, clock accuracy, last error — problems
// first (the server orders and names them). PCs whose enrolment was refused (token expired, revoked,
// used up, unknown — or a per-agent enrolment code) are rows too, until they enrol; so is a PC whose
// recorder is not running, as the agent's desktop there reported it (status "problem": the message
// is the recorder's own, shown as text), until the desktop reports it running again. Admins see all;
// supervisors their teams' agents'.
// Refreshes itself every 15 s while shown.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
export const FLEET_ROLES = ["admin", "supervisor"];
const REFRESH_MS = 15000;
const STATUSES = ["problem", "enrol_refused", "offline", "never_seen", "revoked", "failed", "spool_full", "recording", "paused", "uploading", "idle", "stopping"];

let timer = null;
let current = () => false;

function cell(text, className = "", title = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  if (title) td.title = title;
  return td;
}

export function ago(seconds) {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function statusText(status) {
  return { never_seen: "never seen", spool_full: "spool full", enrol_refused: "enrolment refused", problem: "not running" }[status] || status;
}

function row(r, now) {
  const tr = document.createElement("tr");
  tr.dataset.token = String(r.token_id);
  if (r.refusal) tr.dataset.refusedHost = r.host; // a PC refused at enrolment: no recorder, no agent yet
  if (r.report) tr.dataset.problemHost = r.host; // a PC whose recorder is not running (its desktop said so)
  tr.className = r.problems.length ? `fleet-problem fleet-${r.problems[0]}` : "fleet-ok";
  const status = cell(statusText(r.status), `fleet-status status-${r.status}`);
  const agent = (r.full_name ? `${r.full_name} (${r.agent})` : r.agent) + (r.report?.os_user || r.os_user ? `, OS user ${r.report?.os_user || r.os_user}` : "");
  const lastSeen = r.last_seen === null ? "never" : ago(now - r.last_seen);
  const heard = r.last_seen !== null && !r.refusal && !r.report; // no recorder running to report backlog or clock
  const backlog = heard ? `${r.segments_pending} segment${r.segments_pending === 1 ? "" : "s"}, ${bytes(r.spool_bytes)}` : "—";
  const upload = r.upload ? ` — uploading ${Math.round((100 * r.upload.offset) / Math.max(1, r.upload.length))} %` : "";
  const disk = r.free_disk_percent === null ? "—" : `${bytes(r.free_disk_bytes)} (${r.free_disk_percent.toFixed(0)} %)`;
  const clock = !heard ? "—" : r.clock_accuracy === null ? "not synced" : r.clock_accuracy < 0.0005 ? "± <1 ms" : `± ${Math.round(r.clock_accuracy * 1000)} ms`;
  const problems = [r.problem_text, r.last_error].filter(Boolean).join(" — ");
  tr.append(
    status,
    cell(r.host || "—", "fleet-host"),
    cell(r.refusal ? (r.agent ? `OS user ${r.agent}` : "—") : r.team ? `${agent} · ${r.team}` : agent),
    cell(lastSeen, "num", r.last_seen === null ? "" : new Date(r.last_seen * 1000).toLocaleString()),
    cell((r.version || "—") + (r.update_state ? ` · update ${r.update_state.replace("_", " ")}` : ""), "fleet-version", r.update_detail || ""),
    cell(backlog + upload, "num"),
    cell(disk, "num"),
    cell(clock, "num"),
    cell(problems || "none", problems ? "fleet-problems" : "muted"),
  );
  return tr;
}

function query() {
  const params = new URLSearchParams();
  if ($("fleet-status").value) params.set("status", $("fleet-status").value);
  if ($("fleet-problems").checked) params.set("problems", "true");
  const q = $("fleet-q").value.trim();
  if (q) params.set("q", q);
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function load(isCurrent) {
  try {
    const fleet = await api("GET", `/api/admin/fleet${query()}`);
    if (!isCurrent()) return;
    const body = $("fleet").tBodies[0];
    body.replaceChildren(...fleet.recorders.map((r) => row(r, fleet.now)));
    const counts = Object.entries(fleet.by_status).map(([s, n]) => `${n} ${statusText(s)}`).join(", ");
    const shown = fleet.recorders.length === fleet.total ? "" : ` (${fleet.recorders.length} shown)`;
    $("fleet-summary").textContent = fleet.total
      ? `${fleet.total} recorder${fleet.total === 1 ? "" : "s"}, ${fleet.with_problems} with problems${shown}: ${counts}.`
      : "No recorder has been enrolled yet.";
  } catch (err) {
    if (isCurrent()) $("fleet-summary").textContent = `Could not load the recorders: ${err.message}`;
  }
}

export function initFleet() {
  const select = $("fleet-status");
  for (const s of STATUSES) select.append(Object.assign(document.createElement("option"), { value: s, textContent: statusText(s) }));
  const reload = () => load(current);
  select.addEventListener("change", reload);
  $("fleet-problems").addEventListener("change", reload);
  $("fleet-q").addEventListener("input", reload);
  $("fleet-refresh").addEventListener("click", reload);
}

export function showFleet(isCurrent) {
  stopFleet();
  current = isCurrent;
  $("fleet-summary").textContent = "Loading…";
  load(isCurrent);
  timer = setInterval(() => (isCurrent() ? load(isCurrent) : stopFleet()), REFRESH_MS);
}

export function stopFleet() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}
