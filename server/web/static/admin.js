// Admin view: the screen sampling policy (global percentage and per-team overrides by team
// name), the voice formats (admin_formats.js), the ACW limit (admin_acw.js), the pause policy
// (admin_pause.js), the password policy (admin_passwords.js), people and teams (admin_people.js),
// new users (admin_users.js) and agent software releases (admin_releases.js).

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";
import { initAcwLimit, showAcwLimit } from "./admin_acw.js";
import { initPausePolicy, showPausePolicy } from "./admin_pause.js";
import { initDnMatching, showDnMatching } from "./admin_dn_matching.js";
import { initVoiceFormats, showVoiceFormats } from "./admin_formats.js";
import { initPasswordPolicy, showPasswordPolicy } from "./admin_passwords.js";
import { initNewUser } from "./admin_users.js";
import { initPeople, showPeople } from "./admin_people.js";
import { initReleases, showReleases } from "./admin_releases.js";

const status = statusLine("sampling-status");

function addOverrideRow(team = "", percentage = "") {
  const row = document.createElement("tr");
  const teamInput = Object.assign(document.createElement("input"), {
    className: "override-team", value: team, required: true, autocomplete: "off",
  });
  teamInput.setAttribute("list", "sampling-team-names");
  teamInput.setAttribute("aria-label", "Team name");
  const pctInput = Object.assign(document.createElement("input"), {
    className: "override-percentage", type: "number", min: "0", max: "100", step: "any",
    value: percentage === "" ? "" : String(percentage), required: true,
  });
  pctInput.setAttribute("aria-label", "Percentage for this team");
  const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
  remove.addEventListener("click", () => row.remove());
  for (const control of [teamInput, pctInput, remove]) {
    const cell = document.createElement("td");
    cell.append(control);
    row.append(cell);
  }
  $("sampling-overrides").tBodies[0].append(row);
  return teamInput;
}

function parsePercentage(text, what) {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0 || value > 100) {
    throw new Error(`${what} must be a number from 0 to 100.`);
  }
  return value;
}

// Builds the SamplingPolicy from the form, or throws an Error whose message is shown to the admin.
function readPolicy() {
  const percentage = parsePercentage($("sampling-percentage").value, "The percentage");
  const overrides = {};
  for (const row of $("sampling-overrides").tBodies[0].rows) {
    const team = row.querySelector(".override-team").value.trim();
    if (!team) throw new Error("Each override needs a team name.");
    if (knownTeams.length && !knownTeams.includes(team)) {
      throw new Error(`There is no team named "${team}" (teams: ${knownTeams.join(", ")}).`);
    }
    if (team in overrides) throw new Error(`Team ${team} appears twice.`);
    overrides[team] = parsePercentage(row.querySelector(".override-percentage").value, `Team ${team}'s percentage`);
  }
  return { percentage, team_overrides: overrides };
}

let knownTeams = []; // names from /api/teams; the server checks again (it is the authority)

async function loadTeams() {
  const teams = await api("GET", "/api/teams");
  knownTeams = teams.map((t) => t.name);
  const list = $("sampling-team-names");
  list.replaceChildren(...knownTeams.map((name) => Object.assign(document.createElement("option"), { value: name })));
}

function fill(policy) {
  $("sampling-percentage").value = String(policy.percentage);
  $("sampling-overrides").tBodies[0].replaceChildren();
  for (const [team, pct] of Object.entries(policy.team_overrides || {})) addOverrideRow(team, pct);
}

export function initAdmin() {
  initVoiceFormats();
  initDnMatching();
  initPasswordPolicy();
  initPeople();
  initReleases();
  initNewUser();
  initAcwLimit();
  initPausePolicy();
  $("sampling-add").addEventListener("click", () => addOverrideRow().focus());
  $("sampling-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    let policy;
    try {
      policy = readPolicy();
    } catch (err) {
      status(err.message, true);
      return;
    }
    const save = $("sampling-save");
    save.disabled = true;
    status("Saving…");
    try {
      const saved = await api("PUT", "/api/admin/sampling", policy);
      if (saved) fill(saved); // show what the server stored, e.g. after its own rounding
      status(`Saved at ${new Date().toLocaleTimeString()}.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showAdmin(isCurrent) {
  showVoiceFormats(isCurrent);
  showDnMatching(isCurrent);
  showPasswordPolicy(isCurrent);
  showAcwLimit(isCurrent);
  showPausePolicy(isCurrent);
  showPeople(isCurrent);
  showReleases(isCurrent);
  status("Loading…");
  try {
    const [policy] = await Promise.all([api("GET", "/api/admin/sampling"), loadTeams()]);
    if (!isCurrent()) return;
    fill(policy);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the sampling policy: ${err.message}`, true);
  }
}
