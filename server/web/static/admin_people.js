// Admin view, People: users (role, team, supervised teams, full-time DN, active) and teams
// (create, rename). The server is the authority: it checks every change with the same rules as
// the API and `tandem-server user-update` / `team-create` / `team-rename`, audits it with the
// values before and after, and its sentence is shown as it is when it refuses.

import { api } from "./api.js";
import { $, button, cell, option, say } from "./admin_ui.js";

const ROLES = ["agent", "supervisor", "evaluator", "compliance", "admin"];
const SUPERVISING = ["supervisor", "evaluator", "compliance"];

let users = [];
let teams = [];
let editing = null; // the username in the edit form
let renaming = null; // the team in the rename form

function renderUsers() {
  const rows = users.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.username = u.username;
    tr.classList.toggle("inactive", !u.active);
    tr.classList.toggle("editing", u.username === editing);
    const action = cell("Edit", "");
    action.append(button("Edit", `Edit user ${u.username}`, () => openEdit(u.username)));
    tr.append(cell("User", u.username), cell("Full name", u.full_name), cell("Role", u.role),
      cell("Team", u.team || "—"), cell("Supervises", u.supervises.join(", ") || "—"),
      cell("Full-time DN", u.full_time_dn || "—"), cell("Status", u.active ? "Active" : "Deactivated"), action);
    return tr;
  });
  $("people-table").tBodies[0].replaceChildren(...rows);
  say("people-list-status", users.length ? `${users.length} user${users.length === 1 ? "" : "s"}.` : "No user matches.");
}

function renderTeams() {
  const rows = teams.map((t) => {
    const tr = document.createElement("tr");
    const action = cell("Rename", "");
    action.append(button("Rename", `Rename team ${t.name}`, () => openRename(t.name)));
    tr.append(cell("Team", t.name), cell("Members", String(t.members)),
      cell("Supervisors", t.supervisors.join(", ") || "—"), action);
    return tr;
  });
  $("teams-table").tBodies[0].replaceChildren(...rows);
  const filter = $("people-team-filter");
  const chosen = filter.value;
  filter.replaceChildren(option("", "Any team"), ...teams.map((t) => option(t.name, t.name)));
  filter.value = teams.some((t) => t.name === chosen) ? chosen : "";
}

async function loadUsers() {
  const query = new URLSearchParams();
  const q = $("people-q").value.trim();
  if (q) query.set("q", q);
  if ($("people-role-filter").value) query.set("role", $("people-role-filter").value);
  if ($("people-team-filter").value) query.set("team", $("people-team-filter").value);
  if (!$("people-inactive").checked) query.set("active", "true");
  users = await api("GET", `/api/admin/users?${query}`);
  renderUsers();
}

async function loadTeams() {
  teams = await api("GET", "/api/admin/teams");
  renderTeams();
}

// The parts of the form that apply to the chosen role: supervised teams, the full-time DN.
function showRoleParts() {
  const role = $("people-edit-role").value;
  $("people-edit-supervises-box").hidden = !SUPERVISING.includes(role);
  $("people-edit-dn-box").hidden = role !== "agent";
}

function openEdit(username) {
  const user = users.find((u) => u.username === username);
  if (!user) return;
  editing = username;
  $("people-edit-title").textContent = `Edit user ${username}`;
  $("people-edit-full-name").value = user.full_name;
  $("people-edit-role").value = user.role;
  const team = $("people-edit-team");
  team.replaceChildren(option("", "No team"), ...teams.map((t) => option(t.name, t.name)));
  team.value = user.team || "";
  $("people-edit-supervises").replaceChildren(...teams.map((t) => {
    const label = Object.assign(document.createElement("label"), { className: "check" });
    const box = Object.assign(document.createElement("input"), {
      type: "checkbox", value: t.name, checked: user.supervises.includes(t.name),
    });
    label.append(box, ` ${t.name}`);
    return label;
  }));
  $("people-edit-dn").value = user.full_time_dn || "";
  $("people-edit-active").checked = user.active;
  showRoleParts();
  say("people-edit-status", "");
  $("people-edit").hidden = false;
  renderUsers();
  $("people-edit-full-name").focus();
}

function closeEdit() {
  const was = editing;
  editing = null;
  $("people-edit").hidden = true;
  renderUsers();
  const back = was && document.querySelector(`button[aria-label="Edit user ${CSS.escape(was)}"]`);
  if (back) back.focus(); // keyboard users return to the row they came from
}

// Every field is sent: the server changes and audits only those that differ.
function readEdit() {
  const role = $("people-edit-role").value;
  const supervises = SUPERVISING.includes(role)
    ? [...$("people-edit-supervises").querySelectorAll("input:checked")].map((b) => b.value) : [];
  return {
    full_name: $("people-edit-full-name").value,
    role,
    team: $("people-edit-team").value,
    supervises,
    full_time_dn: role === "agent" ? $("people-edit-dn").value : "",
    active: $("people-edit-active").checked,
  };
}

async function saveEdit(event) {
  event.preventDefault();
  const save = $("people-edit-save");
  save.disabled = true;
  say("people-edit-status", "Saving…");
  try {
    const user = await api("PATCH", `/api/admin/users/${encodeURIComponent(editing)}`, readEdit());
    const index = users.findIndex((u) => u.username === user.username);
    if (index >= 0) users[index] = user;
    renderUsers();
    const saved = `Saved ${user.username}: ${user.role}${user.team ? `, team ${user.team}` : ""}.`;
    await loadTeams().catch(() => {}); // member and supervisor counts changed; best effort
    say("people-edit-status", saved);
  } catch (err) {
    say("people-edit-status", `Not saved: ${err.message}`, true);
  } finally {
    save.disabled = false;
  }
}

function openRename(name) {
  renaming = name;
  $("team-rename-label").textContent = `New name for team ${name}`;
  $("team-rename-name").value = name;
  $("team-rename-form").hidden = false;
  $("team-rename-name").focus();
}

// Create or rename; on success the form is reset before the lists reload, and the message comes
// last, so whoever reads it (a person or a test) finds the form ready for the next name.
async function teamChange(event, method, path, input, done, reset) {
  event.preventDefault();
  let team;
  try {
    team = await api(method, path, { name: $(input).value });
  } catch (err) {
    say("teams-status", `Not saved: ${err.message}`, true);
    return;
  }
  reset();
  try {
    await Promise.all([loadTeams(), loadUsers()]);
    say("teams-status", done(team.name));
  } catch (err) {
    say("teams-status", `${done(team.name)} The lists could not be reloaded: ${err.message}`, true);
  }
}

export function initPeople() {
  $("people-role-filter").append(...ROLES.map((r) => option(r, r)));
  $("people-edit-role").append(...ROLES.map((r) => option(r, r)));
  $("people-edit-role").addEventListener("change", showRoleParts);
  const reload = () => loadUsers().catch((err) => say("people-list-status", `Could not load users: ${err.message}`, true));
  $("people-q").addEventListener("input", reload);
  for (const id of ["people-role-filter", "people-team-filter", "people-inactive"]) $(id).addEventListener("change", reload);
  $("people-filter").addEventListener("submit", (event) => { event.preventDefault(); reload(); });
  document.addEventListener("tandem:user-created", () => {
    loadTeams().then(loadUsers).catch((err) => say("people-list-status", `Could not load users: ${err.message}`, true));
  });
  $("people-edit").addEventListener("submit", saveEdit);
  $("people-edit-cancel").addEventListener("click", closeEdit);
  $("people-edit").addEventListener("keydown", (event) => { if (event.key === "Escape") closeEdit(); });
  $("team-create-form").addEventListener("submit", (event) => teamChange(
    event, "POST", "/api/admin/teams", "team-create-name", (n) => `Created team ${n}.`,
    () => { $("team-create-name").value = ""; },
  ));
  $("team-rename-form").addEventListener("submit", (event) => {
    const old = renaming;
    teamChange(event, "PATCH", `/api/admin/teams/${encodeURIComponent(old)}`, "team-rename-name",
      (n) => `Renamed team ${old} to ${n}.`, () => { $("team-rename-form").hidden = true; });
  });
  $("team-rename-cancel").addEventListener("click", () => { $("team-rename-form").hidden = true; });
}

export async function showPeople(isCurrent) {
  say("people-list-status", "Loading…");
  try {
    await loadTeams();
    await loadUsers();
  } catch (err) {
    if (isCurrent()) say("people-list-status", `Could not load users: ${err.message}`, true);
  }
}
