// Bookmarks and comments beside the player: the list (own and shared ones, by time), the form that
// adds one at the playhead (private, or shared with everyone who may play the recording) and
// deletion of one's own. Times are server time; `player.origin` converts to the file's seconds.

import { api } from "./api.js";
import { formatClock } from "./timeline.js";

const $ = (id) => document.getElementById(id);
let session = null; // {id, player}

export function resetBookmarks() {
  session = null;
  $("bookmarks").replaceChildren();
  $("bookmark-status").textContent = "";
  $("bookmark-text").value = "";
  $("bookmarks-empty").hidden = true;
}

function render(list) {
  const { player } = session;
  $("bookmarks").replaceChildren(...list.map((b) => {
    const item = document.createElement("li");
    item.dataset.id = String(b.id);
    item.className = b.shared ? "shared" : "private";
    const at = Math.max(0, b.at - player.origin);
    const time = Object.assign(document.createElement("button"), {
      type: "button", className: "bookmark-time", textContent: formatClock(at), title: "Go to this moment",
    });
    time.addEventListener("click", () => player.seek(at));
    const text = Object.assign(document.createElement("span"), { className: "bookmark-text", textContent: b.text });
    const who = Object.assign(document.createElement("span"), {
      className: "bookmark-who muted", textContent: `${b.username} · ${b.shared ? "shared with the team" : "private"}`,
    });
    item.append(time, text, who);
    if (b.mine) {
      const remove = Object.assign(document.createElement("button"), {
        type: "button", className: "bookmark-delete", textContent: "Delete", title: "Delete this bookmark",
      });
      remove.addEventListener("click", () => removeBookmark(b.id));
      item.append(remove);
    }
    return item;
  }));
  $("bookmarks-empty").hidden = list.length > 0;
  player.changed(list);
}

async function reload() {
  const mine = session;
  try {
    const list = await api("GET", `/api/interactions/${encodeURIComponent(mine.id)}/bookmarks`);
    if (session === mine && mine.player.isCurrent()) render(list);
  } catch (err) {
    if (session === mine) $("bookmark-status").textContent = `Could not load bookmarks: ${err.message}`;
  }
}

async function addBookmark(event) {
  event.preventDefault();
  if (!session) return;
  const mine = session;
  const text = $("bookmark-text").value;
  const status = $("bookmark-status");
  if (!text.trim()) {
    status.textContent = "Write a few words first.";
    $("bookmark-text").focus();
    return;
  }
  $("bookmark-save").disabled = true;
  try {
    await api("POST", `/api/interactions/${encodeURIComponent(mine.id)}/bookmarks`, {
      at: mine.player.now(), text, shared: $("bookmark-shared").checked,
    });
    if (session !== mine) return;
    $("bookmark-text").value = "";
    status.textContent = "Bookmark added.";
    await reload();
  } catch (err) {
    if (session === mine) status.textContent = err.message;
  } finally {
    $("bookmark-save").disabled = false;
  }
}

async function removeBookmark(bookmarkId) {
  const mine = session;
  try {
    await api("DELETE", `/api/interactions/${encodeURIComponent(mine.id)}/bookmarks/${bookmarkId}`);
    if (session === mine) {
      $("bookmark-status").textContent = "Bookmark deleted.";
      await reload();
    }
  } catch (err) {
    if (session === mine) $("bookmark-status").textContent = err.message;
  }
}

let formWired = false;

export function showBookmarks(id, player) {
  if (!formWired) {
    $("bookmark-form").addEventListener("submit", addBookmark);
    formWired = true;
  }
  session = { id, player };
  reload();
}
