// Missed recordings view (#/missed): calls that reached the recorder and were refused (no agent
// logged in on the DN, untrusted source, agent busy, declined…), newest first, with the reason.
// Admin and compliance see all of them; a supervisor those on DNs of their teams' agents.

import { api } from "./api.js";
import { localDateTime } from "./timeline.js";

const $ = (id) => document.getElementById(id);
export const MISSED_ROLES = ["admin", "supervisor", "compliance"];

// What each reason code means, for the person reading the list.
const REASONS = {
  "no-recording-party": "No agent logged in on the DN",
  "untrusted-source": "Sender not in the SIP allow-list",
  "auth-failed": "Digest authentication failed",
  "agent-busy": "Agent already on a recorded call",
  "consent-declined": "Caller declined recording",
  "cancelled": "Caller hung up before the answer",
  "unacceptable-offer": "Media offer not acceptable",
  "unsupported-media-type": "Unsupported body type",
  "too-many-dialogs": "Too many calls from one source",
  "no-media-port": "No RTP port free",
  "server-error": "Server error",
};

function describe(reason) {
  return REASONS[reason] || reason;
}

// From and To as sent, less the dialog tag (noise to the reader; the row's title has the Call-ID).
function withoutTag(header) {
  return header.replace(/;\s*tag=[^;]*/i, "");
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(items) {
  const rows = items.map((item) => {
    const row = document.createElement("tr");
    row.dataset.reason = item.reason;
    row.title = `Call-ID ${item.call_id}`;
    const reason = cell(describe(item.reason));
    reason.title = `${item.reason}: ${item.detail}`;
    reason.style.minWidth = "14em";
    row.append(
      cell(localDateTime(item.at)), reason, cell(String(item.status), "num"), cell(item.dn),
      cell(withoutTag(item.from)), cell(withoutTag(item.to)), cell(item.source), cell(item.kind),
      cell(item.count > 1 ? `${item.count} (to ${localDateTime(item.last_at)})` : "1", "num"),
    );
    return row;
  });
  $("missed").tBodies[0].replaceChildren(...rows);
  const calls = items.reduce((sum, item) => sum + item.count, 0);
  $("missed-status").textContent = items.length
    ? `${calls} refused call${calls === 1 ? "" : "s"} in ${items.length} row${items.length === 1 ? "" : "s"}`
    : "No missed recordings in the last 7 days.";
}

function fillReasons(items) {
  const select = $("missed-reason");
  const known = new Set([...select.options].map((o) => o.value));
  for (const reason of new Set(items.map((item) => item.reason))) {
    if (!known.has(reason)) select.append(new Option(describe(reason), reason));
  }
}

export async function showMissed(isCurrent) {
  $("missed-status").textContent = "Loading…";
  const reason = $("missed-reason").value;
  const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
  try {
    const answer = await api("GET", `/api/admin/missed-calls${query}`);
    if (!isCurrent()) return;
    const items = Array.isArray(answer.items) ? answer.items : [];
    fillReasons(items);
    render(items);
  } catch (err) {
    if (isCurrent()) $("missed-status").textContent = `Could not load missed recordings: ${err.message}`;
  }
}

export function initMissed() {
  const select = $("missed-reason");
  for (const [code, text] of Object.entries(REASONS)) select.append(new Option(text, code));
  select.addEventListener("change", () => showMissed(() => true));
  $("missed-refresh").addEventListener("click", () => showMissed(() => true));
}
