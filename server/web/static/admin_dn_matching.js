// Admin view, DN matching: how the numbers a call names (SIPREC participants, the Request-URI)
// are matched to agents' DNs beyond the exact match, and whether a call naming no known party
// is still recorded, as an "unassigned" interaction only admins and compliance see.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const status = statusLine("dn-matching-status");

function fill(policy) {
  $("dn-matching-prefixes").value = (policy.strip_prefixes || []).join(", ");
  $("dn-matching-last").value = String(policy.last_digits || 0);
  $("dn-matching-unassigned").checked = Boolean(policy.record_unassigned);
  const seen = policy.unknown_party_calls || {};
  $("dn-matching-seen").textContent =
    `Since the server started: ${seen.recorded || 0} unassigned calls recorded, ` +
    `${seen.refused || 0} refused (each refusal is listed under Missed recordings).`;
}

function read() {
  const last = Number($("dn-matching-last").value || "0");
  if (!Number.isInteger(last)) throw new Error("Last digits must be a whole number.");
  return {
    strip_prefixes: $("dn-matching-prefixes").value.split(",").map((p) => p.trim()).filter(Boolean),
    last_digits: last,
    record_unassigned: $("dn-matching-unassigned").checked,
  };
}

export function initDnMatching() {
  $("dn-matching-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = read();
    } catch (err) {
      status(err.message, true);
      return;
    }
    const save = $("dn-matching-save");
    save.disabled = true;
    status("Saving…");
    try {
      fill(await api("PUT", "/api/admin/dn-matching", body));
      status(`Saved at ${new Date().toLocaleTimeString()}.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showDnMatching(isCurrent) {
  status("Loading…");
  try {
    const policy = await api("GET", "/api/admin/dn-matching");
    if (!isCurrent()) return;
    fill(policy);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the DN matching policy: ${err.message}`, true);
  }
}
