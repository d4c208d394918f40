// Devices (admins, on the Recorders page): enrolment tokens — create (shown once), list, revoke —
// and every enrolled PC with its state (paired with whom — and from which OS account —, idle,
// revoked) and a Revoke button. All of it set as text (textContent), never as markup.
// The rules are the server's (server/services/devices.py); this only shows them.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
let role = "";

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "—";
}

function button(label, title, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

function say(text) {
  $("devices-status").textContent = text;
}

async function revoke(path, what) {
  if (!window.confirm(`Revoke ${what}? This cannot be undone.`)) return;
  try {
    await api("POST", path);
    say(`${what} revoked.`);
  } catch (err) {
    say(err.message);
  }
  await load();
}

async function load() {
  if (role !== "admin") return;
  try {
    const [devices, tokens] = await Promise.all([
      api("GET", "/api/admin/devices"),
      api("GET", "/api/admin/devices/enrolment-tokens"),
    ]);
    const rows = devices.devices.map((d) => {
      const tr = document.createElement("tr");
      tr.className = d.state === "revoked" ? "fleet-problem" : "fleet-ok";
      // The OS account on the PC the pairing came from (the device broker's caller), as the fleet
      // shows it: one PC, several OS accounts over a day (hot-desking).
      const state = d.state === "paired" ? `paired with ${d.agent}${d.os_user ? `, OS user ${d.os_user}` : ""}` : d.state;
      const action = cell("");
      if (d.state !== "revoked") {
        action.append(button("Revoke", "its next connection and upload are refused", () => revoke(`/api/admin/devices/${d.id}/revoke`, `device ${d.hostname}`)));
      } else {
        action.textContent = `by ${d.revoked_by || "?"}, ${when(d.revoked_at)}`;
      }
      tr.append(cell(state, `fleet-status status-${d.state}`), cell(d.hostname), cell(d.scope), cell(when(d.last_seen_at)), action);
      return tr;
    });
    $("devices").tBodies[0].replaceChildren(...rows);
    const tokenRows = tokens.tokens.map((t) => {
      const tr = document.createElement("tr");
      const action = cell("");
      if (t.state === "active") {
        action.append(button("Revoke", "no more enrolments with it", () => revoke(`/api/admin/devices/enrolment-tokens/${t.id}/revoke`, `enrolment token ${t.id}`)));
      }
      tr.append(cell(t.state), cell(t.scope), cell(`${t.uses} / ${t.max_uses}`), cell(when(t.expires_at)), cell(t.created_by), action);
      return tr;
    });
    $("enrolment-tokens").tBodies[0].replaceChildren(...tokenRows);
  } catch (err) {
    say(err.message);
  }
}

async function create(event) {
  event.preventDefault();
  const body = {
    scope: $("enrol-scope").value.trim(),
    ttl_hours: Number($("enrol-hours").value),
    max_uses: Number($("enrol-uses").value),
  };
  try {
    const made = await api("POST", "/api/admin/devices/enrolment-tokens", body);
    $("enrol-new-token").textContent = made.token;
    $("enrol-new").hidden = false;
    say(`Enrolment token ${made.id} created: copy it now, it is not shown again.`);
  } catch (err) {
    say(err.message);
  }
  await load();
}

export function initDevices() {
  $("enrol-form").addEventListener("submit", create);
}

export function showDevices(userRole) {
  role = userRole;
  $("devices-section").hidden = role !== "admin";
  $("enrol-new").hidden = true;
  return load();
}
