// Admin view, new user: the server applies the same rules as the API and `tandem-server
// create-user` (role, unique name, the password policy) and says what a refused password lacks.

import { api } from "./api.js";
import { $, option, statusLine } from "./admin_ui.js";

const ROLES = ["agent", "supervisor", "evaluator", "compliance", "admin"];

const status = statusLine("new-user-status");

function field(id, text, props) {
  const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: text });
  const input = Object.assign(document.createElement("input"), { id, ...props });
  return [label, input];
}

function build() {
  const title = Object.assign(document.createElement("h2"), { id: "new-user-title", textContent: "New user" });
  const form = Object.assign(document.createElement("form"), { id: "new-user-form", noValidate: true });
  form.setAttribute("aria-labelledby", "new-user-title");
  const roleLabel = Object.assign(document.createElement("label"), { htmlFor: "new-user-role", textContent: "Role" });
  const role = Object.assign(document.createElement("select"), { id: "new-user-role" });
  const save = Object.assign(document.createElement("button"), {
    id: "new-user-save", type: "submit", textContent: "Create user",
  });
  save.style.marginTop = "0.75rem"; // the other forms get this gap from the fieldset above the button
  for (const name of ROLES) role.append(option(name, name));
  form.append(
    ...field("new-user-username", "User name", { autocomplete: "off", required: true }),
    ...field("new-user-full-name", "Full name", { autocomplete: "off" }),
    roleLabel,
    role,
    ...field("new-user-team", "Team (optional; created if new)", { autocomplete: "off" }),
    ...field("new-user-password", "Password", { type: "password", autocomplete: "new-password", required: true }),
    save,
    Object.assign(document.createElement("p"), { id: "new-user-status", role: "status" }),
  );
  $("view-admin").append(title, form);
  return form;
}

export function initNewUser() {
  build().addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("new-user-username").value.trim();
    const password = $("new-user-password").value;
    if (!username || !password) {
      status("Enter a user name and a password.", true);
      return;
    }
    const team = $("new-user-team").value.trim();
    const body = {
      username,
      password,
      role: $("new-user-role").value,
      full_name: $("new-user-full-name").value.trim(),
      team: team || null,
    };
    const save = $("new-user-save");
    save.disabled = true;
    status("Creating…");
    try {
      const user = await api("POST", "/api/admin/users", body);
      $("new-user-form").reset();
      status(`Created ${user.role} ${user.username}.`);
      // The People section lists users and teams (a new team may have been made): it reloads.
      document.dispatchEvent(new CustomEvent("tandem:user-created", { detail: user }));
    } catch (err) {
      status(`Not created: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}
