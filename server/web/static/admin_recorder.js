// Admin view, screen recorders: the recorder policy every agent PC's recorder follows (frame rate,
// segments, monitors, downscale, masking rules, upload window and bandwidth cap, endpoint audio,
// spool thresholds, heartbeat). The server validates (the same rules as the API and the CLI) and
// names the field it refuses; this page says which control that is and marks it.

import { api } from "./api.js";
import { $, option, statusLine } from "./admin_ui.js";

// Policy field -> the control that edits it (and its label for messages).
const NUMBERS = {
  fps: "rp-fps",
  segment_seconds: "rp-segment",
  max_width: "rp-max-width",
  bandwidth_kbps: "rp-bandwidth",
  heartbeat_seconds: "rp-heartbeat",
  spool_min_free_percent: "rp-free",
  spool_max_mb: "rp-spool",
};
const FIELD_CONTROL = {
  ...NUMBERS,
  monitors: "rp-monitors",
  endpoint_audio: "rp-audio",
  upload_window: "rp-window-from",
};
const RULE_COLUMN = { name: "rule-name", kind: "rule-kind", action: "rule-action", title: "rule-title", app: "rule-app", rect: "rule-rect" };

const status = statusLine("recorder-policy-status");

function clearMarks() {
  for (const el of $("recorder-policy-form").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function labelOf(control) {
  const label = control && control.id ? document.querySelector(`label[for="${control.id}"]`) : null;
  if (label) return label.textContent.trim();
  return control ? control.getAttribute("aria-label") || control.name || "" : "";
}

// A refusal names the field first ("masking[1].title: not a regular expression …", "fps: between
// 0.2 and 30"): mark that control and say it in the page's words.
function explain(message) {
  const found = /^([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?:\s*(.*)$/s.exec(message);
  if (!found) return message;
  const [, field, index, sub, why] = found;
  let control = null;
  let where = field;
  if (field === "masking" && index !== undefined) {
    const row = $("rp-masking").tBodies[0].rows[Number(index)];
    where = `Masking rule ${Number(index) + 1}`;
    if (row) control = row.querySelector(`.${RULE_COLUMN[sub] || "rule-name"}`);
    if (sub) where += ` (${sub === "app" ? "application" : sub === "rect" ? "region" : sub})`;
  } else {
    control = $(FIELD_CONTROL[field] || "");
    if (control) where = labelOf(control);
  }
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
  return `${where}: ${why}`;
}

function input(className, label, value, extra = {}) {
  const el = Object.assign(document.createElement("input"), { className, value: value ?? "", ...extra });
  el.setAttribute("aria-label", label);
  return el;
}

function select(className, label, options, value) {
  const el = document.createElement("select");
  el.className = className;
  el.setAttribute("aria-label", label);
  for (const [val, text] of options) el.append(option(val, text));
  el.value = value;
  return el;
}

function addRule(rule = { kind: "window", action: "mask" }) {
  const row = document.createElement("tr");
  const n = $("rp-masking").tBodies[0].rows.length + 1;
  const kind = select("rule-kind", `Rule ${n} kind`, [["window", "Window"], ["region", "Region"]], rule.kind || "window");
  const action = select("rule-action", `Rule ${n} action`, [["mask", "Black out"], ["pause", "Pause"]], rule.action || "mask");
  const title = input("rule-title", `Rule ${n} title pattern`, rule.title, { placeholder: "e.g. card|payment" });
  const app = input("rule-app", `Rule ${n} application pattern`, rule.app, { placeholder: "e.g. ^keepass" });
  const rect = input("rule-rect", `Rule ${n} region x, y, width, height`, rule.rect ? rule.rect.join(", ") : "", {
    placeholder: "x, y, w, h",
  });
  const sync = () => {
    const region = kind.value === "region";
    title.disabled = app.disabled = region;
    rect.disabled = !region;
    if (region) action.value = "mask"; // a region can only be blacked out
    action.querySelector('option[value="pause"]').disabled = region;
  };
  kind.addEventListener("change", sync);
  const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove", className: "rule-remove" });
  remove.setAttribute("aria-label", `Remove rule ${n}`);
  remove.addEventListener("click", () => row.remove());
  const name = input("rule-name", `Rule ${n} name`, rule.name);
  for (const control of [name, kind, action, title, app, rect, remove]) {
    const cell = document.createElement("td");
    cell.append(control);
    row.append(cell);
  }
  sync();
  $("rp-masking").tBodies[0].append(row);
  return name;
}

function fill(policy) {
  for (const [field, id] of Object.entries(NUMBERS)) $(id).value = String(policy[field]);
  $("rp-monitors").value = policy.monitors;
  $("rp-audio").checked = Boolean(policy.endpoint_audio);
  const uploadWindow = policy.upload_window;
  $("rp-window-on").checked = Boolean(uploadWindow);
  $("rp-window-from").value = uploadWindow ? uploadWindow[0] : "";
  $("rp-window-to").value = uploadWindow ? uploadWindow[1] : "";
  $("rp-masking").tBodies[0].replaceChildren();
  for (const rule of policy.masking || []) addRule(rule);
}

// The policy from the form. Only what the browser can tell for sure is checked here (a number
// field left empty); every rule is the server's, so the message is the same from every door.
function read() {
  const policy = {};
  for (const [field, id] of Object.entries(NUMBERS)) {
    const text = $(id).value.trim();
    const value = Number(text);
    if (text === "" || !Number.isFinite(value)) {
      $(id).setAttribute("aria-invalid", "true");
      $(id).focus();
      throw new Error(`${labelOf($(id))}: enter a number.`);
    }
    policy[field] = value;
  }
  policy.monitors = $("rp-monitors").value;
  policy.endpoint_audio = $("rp-audio").checked;
  if ($("rp-window-on").checked) {
    const from = $("rp-window-from").value;
    const to = $("rp-window-to").value;
    if (!from || !to) {
      $("rp-window-from").setAttribute("aria-invalid", "true");
      throw new Error("Upload window: give both times, or untick it.");
    }
    policy.upload_window = [from, to];
  } else {
    policy.upload_window = null;
  }
  policy.masking = [...$("rp-masking").tBodies[0].rows].map((row, i) => {
    const rule = {
      name: row.querySelector(".rule-name").value.trim(),
      kind: row.querySelector(".rule-kind").value,
      action: row.querySelector(".rule-action").value,
    };
    if (rule.kind === "window") {
      rule.title = row.querySelector(".rule-title").value;
      rule.app = row.querySelector(".rule-app").value;
    } else {
      const parts = row.querySelector(".rule-rect").value.split(",").map((p) => p.trim()).filter(Boolean);
      if (parts.length !== 4 || parts.some((p) => !/^\d+$/.test(p))) {
        const rect = row.querySelector(".rule-rect");
        rect.setAttribute("aria-invalid", "true");
        rect.focus();
        throw new Error(`Masking rule ${i + 1} (region): four whole numbers x, y, width, height.`);
      }
      rule.rect = parts.map(Number);
    }
    return rule;
  });
  return policy;
}

export function initRecorderPolicy() {
  $("rp-masking-add").addEventListener("click", () => addRule().focus());
  $("recorder-policy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMarks();
    let policy;
    try {
      policy = read();
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
      return;
    }
    const save = $("recorder-policy-save");
    save.disabled = true;
    status("Saving…");
    try {
      fill(await api("PUT", "/api/admin/recorder-policy", policy));
      status(`Saved at ${new Date().toLocaleTimeString()}.`);
    } catch (err) {
      status(`Not saved: ${err.code === "invalid_recorder_policy" ? explain(err.message) : err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showRecorderPolicy(isCurrent) {
  status("Loading…");
  clearMarks();
  try {
    const policy = await api("GET", "/api/admin/recorder-policy");
    if (!isCurrent()) return;
    fill(policy);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the recorder settings: ${err.message}`, true);
  }
}
