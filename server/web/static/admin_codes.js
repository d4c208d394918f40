// Admin view, reason codes (Not Ready) and disposition codes (after-call work), and whether Done
// needs a disposition; the supervisors' "Agents now" table (state, since when, reason) on the
// recordings page. The server validates and audits every change (server/services/dispositions.py).

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const KIND_TEXT = { reason: "Reason (Not Ready)", disposition: "Disposition (ACW)", pause: "Pause reason" };
const STATE_TEXT = {
  logged_out: "Logged out", ready: "Ready", not_ready: "Not Ready", on_call: "On call", acw: "After-call work",
};
export const AGENT_STATE_ROLES = ["supervisor", "evaluator", "compliance", "admin"];

const status = statusLine("agent-codes-status");

function cell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

function fill(code) {
  $("agent-code-kind").value = code.kind;
  $("agent-code-code").value = code.code;
  $("agent-code-label").value = code.label;
  $("agent-code-active").checked = code.active;
  $("agent-code-label").focus();
}

function render(codes) {
  const rows = codes.map((code) => {
    const tr = document.createElement("tr");
    const edit = Object.assign(document.createElement("button"), { type: "button", textContent: "Edit" });
    edit.setAttribute("aria-label", `Edit ${code.kind} code ${code.code}`);
    edit.addEventListener("click", () => fill(code));
    const action = document.createElement("td");
    action.append(edit);
    tr.append(cell(KIND_TEXT[code.kind] || code.kind), cell(code.code), cell(code.label),
      cell(code.active ? "Active" : "Inactive"), action);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = Object.assign(cell("No codes yet."), { colSpan: 5, className: "muted" });
    tr.append(td);
    rows.push(tr);
  }
  $("agent-codes-table").tBodies[0].replaceChildren(...rows);
}

async function reload() {
  const answer = await api("GET", "/api/admin/codes");
  render(answer.codes);
  $("disposition-required").checked = answer.disposition_required;
}

export function initAgentCodes() {
  $("agent-codes-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = $("agent-code-kind").value;
    const code = $("agent-code-code").value.trim();
    const body = { label: $("agent-code-label").value, active: $("agent-code-active").checked };
    if (!code) {
      status("Not saved: give the code (e.g. LUNCH).", true);
      $("agent-code-code").focus();
      return;
    }
    const save = $("agent-code-save");
    save.disabled = true;
    try {
      const saved = await api("PUT", `/api/admin/codes/${encodeURIComponent(kind)}/${encodeURIComponent(code)}`, body);
      status(`Saved: ${KIND_TEXT[saved.kind]} ${saved.code} "${saved.label}"${saved.active ? "" : " (inactive)"}.`);
      $("agent-code-code").value = "";
      $("agent-code-label").value = "";
      $("agent-code-active").checked = true;
      await reload();
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
  $("disposition-required").addEventListener("change", async (event) => {
    const box = event.target;
    try {
      const answer = await api("PUT", "/api/admin/codes/disposition-required", { required: box.checked });
      status(answer.disposition_required ? "Saved: agents must choose a disposition before Done."
        : "Saved: a disposition is optional.");
    } catch (err) {
      box.checked = !box.checked;
      status(`Not saved: ${err.message}`, true);
    }
  });
}

export async function showAgentCodes(isCurrent) {
  status("Loading…");
  try {
    await reload();
    if (isCurrent()) status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the codes: ${err.message}`, true);
  }
}

function since(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  // Hours and minutes: the seconds said nothing, and "10:04:05 AM" made the table wider than a
  // phone from ten o'clock on (the page scrolled sideways only in the late morning).
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export async function showAgentStates(isCurrent, role) {
  const section = $("agent-states");
  section.hidden = !AGENT_STATE_ROLES.includes(role);
  if (section.hidden) return;
  const note = $("agent-states-status");
  try {
    const agents = await api("GET", "/api/agent-states");
    if (!isCurrent()) return;
    const rows = agents.map((a) => {
      const tr = document.createElement("tr");
      const state = cell(STATE_TEXT[a.state] || a.state);
      state.className = `agent-state agent-state-${a.state}`;
      tr.append(cell(a.full_name || a.username), cell(a.team || "—"), state, cell(since(a.since)),
        cell(a.reason_label || a.reason_code || ""), cell(a.dn || "—"));
      return tr;
    });
    $("agent-states-table").tBodies[0].replaceChildren(...rows);
    note.textContent = agents.length ? "" : "No agents in your teams.";
  } catch (err) {
    if (isCurrent()) note.textContent = `Could not load the agents' states: ${err.message}`;
  }
}
