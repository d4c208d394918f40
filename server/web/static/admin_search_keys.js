// Admin view, searchable metadata keys: up to 20 names of the calls' recording parameters
// (X-Recording-<key> headers, Request-URI parameters) the search page offers as fields.

import { api } from "./api.js";
import { $, statusLine } from "./admin_ui.js";
import { resetSearch } from "./search.js";

const status = statusLine("search-keys-status");

export function initSearchKeys() {
  $("search-keys-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const keys = $("search-keys-input").value.split(",").map((k) => k.trim()).filter(Boolean);
    const save = $("search-keys-save");
    save.disabled = true;
    status("Saving… (every stored call's values are extracted again)");
    try {
      const answer = await api("PUT", "/api/admin/search-keys", { keys });
      $("search-keys-input").value = answer.keys.join(", ");
      resetSearch(); // the search form takes the new fields at its next visit
      status(`Saved: ${answer.values_extracted} values found in the stored calls.`);
    } catch (err) {
      status(`Not saved: ${err.message}`, true);
    } finally {
      save.disabled = false;
    }
  });
}

export async function showSearchKeys(isCurrent) {
  status("Loading…");
  try {
    const answer = await api("GET", "/api/admin/search-keys");
    if (!isCurrent()) return;
    $("search-keys-input").value = answer.keys.join(", ");
    status("");
  } catch (err) {
    if (isCurrent()) status(`Could not load the searchable keys: ${err.message}`, true);
  }
}
