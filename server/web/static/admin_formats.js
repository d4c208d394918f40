// Admin view, voice formats: which encodings each call's voice WAV is finalised into. The server
// lists the options (and whether its FFmpeg can make each); the WAV master is always kept.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const status = statusLine("voice-formats-status");

function option(opt, checked) {
  const label = document.createElement("label");
  label.className = "check voice-format-option";
  const box = Object.assign(document.createElement("input"), {
    type: "checkbox", name: "voice-format", value: opt.id, id: `voice-format-${opt.id}`, checked,
    disabled: !opt.available && !checked, // a stored but now unavailable format can still be unticked
  });
  label.append(box, ` ${opt.label}`);
  if (!opt.available) {
    const note = Object.assign(document.createElement("span"), {
      className: "muted", textContent: " (this server cannot encode it)",
    });
    label.append(note);
  }
  return label;
}

function fill(policy) {
  const set = $("voice-formats-options");
  for (const old of set.querySelectorAll(".voice-format-option")) old.remove();
  const chosen = new Set(policy.formats);
  for (const opt of policy.options || []) set.append(option(opt, chosen.has(opt.id)));
}

function selected() {
  return [...document.querySelectorAll('input[name="voice-format"]:checked')].map((box) => box.value);
}

export function initVoiceFormats() {
  $("voice-formats-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const save = $("voice-formats-save");
    save.disabled = true;
    status("Saving…");
    try {
      fill(await api("PUT", "/api/admin/voice-formats", { formats: selected() }));
      status(`Saved at ${new Date().toLocaleTimeString()}.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showVoiceFormats(isCurrent) {
  status("Loading…");
  try {
    const policy = await api("GET", "/api/admin/voice-formats");
    if (!isCurrent()) return;
    fill(policy);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the voice formats: ${err.message}`, true);
  }
}
