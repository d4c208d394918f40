// Admin view, pause policy: the teams whose agents may not pause a recording (every team may,
// unless ticked here) and the maximum pause length (empty: none), after which the server resumes
// the recording. The server enforces both and audits each change of the policy.

import { api } from "./api.js";
import { $, option, statusLine } from "./admin_ui.js";

const status = statusLine("pause-status");

// "" when no reason is required anywhere (the message of a policy without reasons stays short).
export function reasonText(policy) {
  const own = Object.entries(policy.reason_required_teams || {});
  if (!policy.reason_required && !own.some(([, required]) => required)) return "";
  const rule = policy.reason_required ? "a pause reason is required" : "a pause reason is optional";
  const teams = own.map(([team, required]) => `${team}: ${required ? "required" : "optional"}`).join(", ");
  return `; ${rule}${teams ? ` (${teams})` : ""}`;
}

function reasonRow(team, rule, i) {
  const label = Object.assign(document.createElement("label"), { textContent: `Pause reason for ${team.name}` });
  const select = Object.assign(document.createElement("select"), { id: `pause-reason-team-${i}` });
  select.dataset.team = team.name;
  label.htmlFor = select.id;
  for (const [value, text] of [["", "as above"], ["yes", "required"], ["no", "optional"]]) {
    select.append(option(value, text));
  }
  select.value = rule === undefined ? "" : rule ? "yes" : "no";
  const row = Object.assign(document.createElement("div"), { className: "pause-reason-team" });
  row.append(label, select);
  return row;
}

export function initPausePolicy() {
  $("pause-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const teams = [...$("pause-teams").querySelectorAll("input:checked")].map((box) => box.value);
    const maxText = $("pause-max").value.trim();
    const maxSeconds = maxText === "" ? null : Number(maxText);
    if (maxSeconds !== null && !Number.isFinite(maxSeconds)) {
      status("The maximum pause length must be a number of seconds, or empty for no limit.", true);
      return;
    }
    // Each team's own reason rule: "" follows the default (not sent), "yes"/"no" is the team's.
    const reasonTeams = {};
    for (const select of $("pause-reason-teams").querySelectorAll("select")) {
      if (select.value) reasonTeams[select.dataset.team] = select.value === "yes";
    }
    const save = $("pause-save");
    save.disabled = true;
    try {
      const answer = await api("PUT", "/api/admin/pause-policy", {
        no_pause_teams: teams, max_seconds: maxSeconds,
        reason_required: $("pause-reason-required").checked, reason_required_teams: reasonTeams,
      });
      const who = answer.no_pause_teams.length ? `agents of ${answer.no_pause_teams.join(", ")} may not pause`
        : "every team may pause";
      const limit = answer.max_seconds === null ? "no maximum length" : `resumed after ${answer.max_seconds} s`;
      status(`Saved: ${who}; ${limit}${reasonText(answer)}.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showPausePolicy(isCurrent) {
  status("Loading…");
  try {
    const [teams, policy] = await Promise.all([api("GET", "/api/teams"), api("GET", "/api/admin/pause-policy")]);
    if (!isCurrent()) return;
    const denied = new Set(policy.no_pause_teams);
    $("pause-max").value = policy.max_seconds === null ? "" : String(policy.max_seconds);
    const boxes = teams.map((team) => {
      const label = Object.assign(document.createElement("label"), { className: "check" });
      const box = Object.assign(document.createElement("input"), {
        type: "checkbox", value: team.name, checked: denied.has(team.name),
      });
      label.append(box, ` ${team.name}`);
      return label;
    });
    $("pause-reason-required").checked = Boolean(policy.reason_required);
    const rules = policy.reason_required_teams || {};
    $("pause-reason-teams").replaceChildren(...teams.map((team, i) => reasonRow(team, rules[team.name], i)));
    $("pause-teams").replaceChildren(
      ...(boxes.length ? boxes : [Object.assign(document.createElement("p"), { className: "muted", textContent: "No teams yet." })]),
    );
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the pause policy: ${err.message}`, true);
  }
}
