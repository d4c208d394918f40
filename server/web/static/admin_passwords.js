// Admin view, password policy: the rules every new password must meet (creating a user from the
// web, the API or the CLI; changing or resetting a password). The server checks them; this form
// only edits the policy. Built here so the page's HTML stays as it is.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const FLAGS = [
  ["require_lowercase", "a lower-case letter"],
  ["require_uppercase", "an upper-case letter"],
  ["require_digit", "a digit"],
  ["require_symbol", "a character that is neither a letter nor a digit"],
  ["forbid_username", "no copy of the username"],
];

const status = statusLine("password-policy-status");

function build() {
  const title = Object.assign(document.createElement("h2"), {
    id: "password-policy-title", textContent: "Password policy",
  });
  const form = Object.assign(document.createElement("form"), { id: "password-policy-form", noValidate: true });
  form.setAttribute("aria-labelledby", "password-policy-title");
  const label = Object.assign(document.createElement("label"), {
    htmlFor: "password-min-length", textContent: "Minimum length (8 or more)",
  });
  const length = Object.assign(document.createElement("input"), {
    id: "password-min-length", type: "number", min: "8", max: "128", step: "1", required: true,
  });
  const set = document.createElement("fieldset");
  set.append(Object.assign(document.createElement("legend"), { textContent: "Every new password needs" }));
  for (const [name, text] of FLAGS) {
    const box = Object.assign(document.createElement("input"), { type: "checkbox", id: `password-${name}`, name });
    const row = Object.assign(document.createElement("label"), { className: "check" });
    row.append(box, ` ${text}`);
    set.append(row);
  }
  const save = Object.assign(document.createElement("button"), {
    id: "password-policy-save", type: "submit", textContent: "Save password policy",
  });
  const note = Object.assign(document.createElement("p"), { id: "password-policy-status", role: "status" });
  form.append(label, length, set, save, note);
  $("view-admin").append(title, form);
  return form;
}

function fill(policy) {
  $("password-min-length").value = String(policy.min_length);
  for (const [name] of FLAGS) $(`password-${name}`).checked = Boolean(policy[name]);
}

function read() {
  const text = $("password-min-length").value.trim();
  const minLength = Number(text);
  if (!/^\d+$/.test(text) || minLength < 8 || minLength > 128) {
    throw new Error("The minimum length must be a whole number from 8 to 128.");
  }
  const policy = { min_length: minLength };
  for (const [name] of FLAGS) policy[name] = $(`password-${name}`).checked;
  return policy;
}

export function initPasswordPolicy() {
  build().addEventListener("submit", async (event) => {
    event.preventDefault();
    let policy;
    try {
      policy = read();
    } catch (err) {
      status(err.message, true);
      return;
    }
    const save = $("password-policy-save");
    save.disabled = true;
    status("Saving…");
    try {
      fill(await api("PUT", "/api/admin/password-policy", policy));
      status(`Saved at ${new Date().toLocaleTimeString()}.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showPasswordPolicy(isCurrent) {
  status("Loading…");
  try {
    const policy = await api("GET", "/api/admin/password-policy");
    if (!isCurrent()) return;
    fill(policy);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the password policy: ${err.message}`, true);
  }
}
