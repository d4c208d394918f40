// Admin view, Agent software releases: the signed recorder releases the agent PCs update
// themselves to (GET/PUT/PATCH /api/admin/releases, PUT /api/admin/release-policy). Upload a
// bundle as a version, offer it to a share of the fleet (staged rollout), pin the whole fleet to
// one release or turn updates off. The server is the authority: it checks and audits every
// change (before/after) with the same rules as `tandem-server releases add`, and its sentence is
// shown as it is when it refuses. "PCs on it" counts the recorders' heartbeats (GET /api/admin/fleet).

import { api, ApiError } from "./api.js";
import { $, button, cell, say } from "./admin_ui.js";

let releases = [];
let policy = { mode: "rollout", pin: "" };
let onVersion = new Map(); // version -> PCs whose last heartbeat reported it
let rolling = null; // the version in the rollout form

function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function uploaded(r) {
  if (!r.uploaded_at) return "—";
  const when = new Date(r.uploaded_at * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  return r.uploaded_by ? `${when} by ${r.uploaded_by}` : when;
}

// What a PC sees of this release under the fleet policy, in words.
function state(r) {
  if (policy.mode === "off") return "Held: updates are off";
  if (policy.mode === "pinned") {
    return r.version === policy.pin ? "Pinned: offered to every PC" : "Held by the pin";
  }
  if (r.rollout_percent === 0) return "Not offered";
  if (r.rollout_percent === 100) return "Offered to every PC";
  return `Offered to ${r.rollout_percent} % of the PCs`;
}

function rollout(r) {
  const chosen = `${r.chosen_percent} %`;
  return r.chosen_percent === r.rollout_percent ? chosen : `${chosen} (offered ${r.rollout_percent} %)`;
}

function describePolicy() {
  if (policy.mode === "off") {
    return "Updates are turned off for the whole fleet: every release is offered to 0 % of the PCs.";
  }
  if (policy.mode === "pinned") {
    return `The fleet is pinned to ${policy.pin}: PCs on an older version update to it, none goes past it.`;
  }
  return "Each release is offered to the share of the PCs chosen for it.";
}

function render() {
  const rows = releases.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.version = r.version;
    tr.classList.toggle("pinned", policy.mode === "pinned" && r.version === policy.pin);
    const actions = cell("Actions", "");
    const buttons = Object.assign(document.createElement("div"), { className: "release-actions" });
    actions.append(buttons); // one grid cell for all of them when the row folds into a card
    buttons.append(button("Rollout…", `Set the rollout of ${r.version}`, () => openRollout(r.version)));
    if (policy.mode === "pinned" && policy.pin === r.version) {
      buttons.append(button("Unpin", `Unpin ${r.version}`, () => setPolicy({ mode: "rollout" }, `Unpinned ${r.version}: each release follows its rollout again.`)));
    } else {
      buttons.append(button("Pin", `Pin the fleet to ${r.version}`, () => setPolicy({ mode: "pinned", pin: r.version }, `Pinned the fleet to ${r.version}.`)));
    }
    tr.append(cell("Version", r.version), cell("Uploaded", uploaded(r)), cell("Size", size(r.length)),
      cell("Rollout", rollout(r)), cell("State", state(r)), cell("PCs on it", String(onVersion.get(r.version) || 0)), actions);
    return tr;
  });
  $("releases-table").tBodies[0].replaceChildren(...rows);
  $("releases-policy").textContent = describePolicy();
  $("releases-off").hidden = policy.mode === "off";
  $("releases-on").hidden = policy.mode === "rollout";
  $("releases-on").textContent = policy.mode === "off" ? "Turn updates back on" : "Unpin: follow the rollout";
}

async function load() {
  const [overview, fleet] = await Promise.all([
    api("GET", "/api/admin/releases"),
    api("GET", "/api/admin/fleet").catch(() => ({ recorders: [] })), // the counts are a help, not a must
  ]);
  releases = overview.releases;
  policy = overview.policy;
  onVersion = new Map();
  let localOff = 0;
  for (const pc of fleet.recorders || []) {
    if (pc.version && pc.last_seen) onVersion.set(pc.version, (onVersion.get(pc.version) || 0) + 1);
    if (pc.update_state === "off") localOff += 1;
  }
  render();
  const notes = [];
  if (!overview.repository) notes.push("There is no release repository yet: run `tandem-server releases init-repo` on the server.");
  else if (!overview.signing_keys) notes.push("This server has no release signing keys (release_keys_dir): it cannot publish.");
  if (localOff) notes.push(`${localOff} PC${localOff === 1 ? " has" : "s have"} updates turned off on the PC itself (group policy or machine config).`);
  const count = `${releases.length} release${releases.length === 1 ? "" : "s"}.`;
  say("releases-list-status", [releases.length ? count : "No release uploaded yet.", ...notes].join(" "));
}

function openRollout(version) {
  const release = releases.find((r) => r.version === version);
  if (!release) return;
  rolling = version;
  $("release-rollout-label").textContent = `Rollout of ${version} (% of the PCs, 0–100)`;
  $("release-rollout-percent").value = String(release.chosen_percent);
  $("release-rollout-form").hidden = false;
  $("release-rollout-percent").focus();
}

function closeRollout() {
  const was = rolling;
  rolling = null;
  $("release-rollout-form").hidden = true;
  const back = was && document.querySelector(`button[aria-label="Set the rollout of ${CSS.escape(was)}"]`);
  if (back) back.focus(); // keyboard users return to the row they came from
}

// A whole number goes as a number; anything else as typed, for the server to refuse in words.
function percentOf(text) {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : text;
}

async function saveRollout(event) {
  event.preventDefault();
  const version = rolling;
  const save = $("release-rollout-save");
  save.disabled = true;
  try {
    const r = await api("PATCH", `/api/admin/releases/${encodeURIComponent(version)}`,
      { rollout_percent: percentOf($("release-rollout-percent").value) });
    const held = r.rollout_percent !== r.chosen_percent ? ` (kept for later: the ${policy.mode === "off" ? "off switch" : "pin"} offers it to ${r.rollout_percent} %)` : "";
    await load(); // the rows are drawn anew: the focus goes back to the new row's button after it
    closeRollout();
    say("releases-status", `Rollout of ${version} set to ${r.chosen_percent} %${held}.`);
  } catch (err) {
    say("releases-status", `Not saved: ${err.message}`, true);
    save.disabled = false;
    $("release-rollout-percent").focus(); // to correct it (or Escape to leave it)
  } finally {
    save.disabled = false;
  }
}

async function setPolicy(body, done) {
  say("releases-status", "Re-signing the offers…");
  try {
    await api("PUT", "/api/admin/release-policy", body);
  } catch (err) {
    say("releases-status", `Not saved: ${err.message}`, true);
    return;
  }
  try {
    await load();
    say("releases-status", done);
  } catch (err) {
    say("releases-status", `${done} The list could not be reloaded: ${err.message}`, true);
  }
}

// The bundle goes as the raw request body, as `tandem-server releases add` and the API take it.
async function putBundle(version, percent, file) {
  const path = `/api/admin/releases/${encodeURIComponent(version)}?rollout_percent=${encodeURIComponent(percent)}`;
  let response;
  try {
    response = await fetch(path, {
      method: "PUT", credentials: "same-origin", body: file,
      headers: { Accept: "application/json", "Content-Type": "application/octet-stream" },
    });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || `http_${response.status}`,
      (data && data.message) || response.statusText || `Upload failed (${response.status})`);
  }
  return data;
}

async function upload(event) {
  event.preventDefault();
  const version = $("release-upload-version").value.trim();
  const file = $("release-upload-file").files[0];
  if (!version) return say("release-upload-status", "Give the release a version (e.g. 0.3.0).", true);
  if (!file) return say("release-upload-status", "Choose the bundle archive (.tar.gz of the one-folder bundle).", true);
  const save = $("release-upload-save");
  save.disabled = true;
  say("release-upload-status", `Uploading ${file.name} (${size(file.size)})…`);
  try {
    const r = await putBundle(version, $("release-upload-percent").value.trim(), file);
    $("release-upload-form").reset();
    await load();
    say("release-upload-status", `Published ${r.version} (${size(r.length)}), rollout ${r.chosen_percent} %.`);
  } catch (err) {
    say("release-upload-status", `Not uploaded: ${err.message}`, true);
  } finally {
    save.disabled = false;
  }
}

export function initReleases() {
  $("release-upload-form").addEventListener("submit", upload);
  $("release-rollout-form").addEventListener("submit", saveRollout);
  $("release-rollout-cancel").addEventListener("click", closeRollout);
  $("release-rollout-form").addEventListener("keydown", (event) => { if (event.key === "Escape") closeRollout(); });
  $("releases-off").addEventListener("click", () => setPolicy({ mode: "off" }, "Updates are turned off for the whole fleet."));
  $("releases-on").addEventListener("click", () => setPolicy({ mode: "rollout" }, "Each release follows its rollout again."));
}

export async function showReleases(isCurrent) {
  say("releases-list-status", "Loading…");
  try {
    await load();
  } catch (err) {
    if (isCurrent()) say("releases-list-status", `Could not load the releases: ${err.message}`, true);
  }
}
