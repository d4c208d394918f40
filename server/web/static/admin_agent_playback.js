// Admin view, agent playback: the teams whose agents may play their own recordings (agents always
// see their own calls listed). One checkbox per team; the server validates and audits the change.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const status = statusLine("agent-playback-status");

export function initAgentPlayback() {
  $("agent-playback-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const teams = [...$("agent-playback-teams").querySelectorAll("input:checked")].map((box) => box.value);
    const save = $("agent-playback-save");
    save.disabled = true;
    try {
      const answer = await api("PUT", "/api/admin/agent-playback", { teams });
      status(answer.teams.length ? `Saved: agents of ${answer.teams.join(", ")} may play their own recordings.`
        : "Saved: no agent plays recordings.");
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showAgentPlayback(isCurrent) {
  status("Loading…");
  try {
    const [teams, setting] = await Promise.all([api("GET", "/api/teams"), api("GET", "/api/admin/agent-playback")]);
    if (!isCurrent()) return;
    const allowed = new Set(setting.teams);
    const boxes = teams.map((team) => {
      const label = Object.assign(document.createElement("label"), { className: "check" });
      const box = Object.assign(document.createElement("input"), {
        type: "checkbox", value: team.name, checked: allowed.has(team.name),
      });
      label.append(box, ` ${team.name}`);
      return label;
    });
    $("agent-playback-teams").replaceChildren(
      ...(boxes.length ? boxes : [Object.assign(document.createElement("p"), { className: "muted", textContent: "No teams yet." })]),
    );
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load agent playback: ${err.message}`, true);
  }
}
