// Admin view, ACW limit: how long after-call work may last before the server ends it. The page
// checks the number; the server checks again (5 s to 4 h), stores and audits the change.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";

const status = statusLine("acw-status");

export function initAcwLimit() {
  $("acw-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("acw-seconds").value.trim();
    const seconds = Number(text);
    if (text === "" || !Number.isFinite(seconds)) {
      status("The ACW limit must be a number of seconds.", true);
      return;
    }
    const save = $("acw-save");
    save.disabled = true;
    status("Saving…");
    try {
      const saved = await api("PUT", "/api/admin/acw-limit", { seconds });
      $("acw-seconds").value = String(saved.seconds);
      status(`Saved: after-call work ends after ${saved.seconds} s, from the next call that ends.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true); // the server's range message, e.g. "from 5 to 14400"
    } finally {
      save.disabled = false;
    }
  });
}

export async function showAcwLimit(isCurrent) {
  status("Loading…");
  try {
    const limit = await api("GET", "/api/admin/acw-limit");
    if (!isCurrent()) return;
    $("acw-seconds").value = String(limit.seconds);
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the ACW limit: ${err.message}`, true);
  }
}
