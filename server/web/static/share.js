// Share links on the player page: create a 2–60 min link to one media file of this call, copy it,
// see the call's links (active / expired / revoked, uses) and revoke one. The link is usable by
// whoever has it, without login, until it expires or is revoked (server/services/share_links.py).
// Shown only to the roles that may share (docs/role-matrix.md); the server checks again.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
export const SHARE_ROLES = ["supervisor", "compliance", "admin"];
const KIND_LABELS = { muxed: "Screen and voice (MP4)", voice: "Voice (WAV)", screen: "Screen only", endpoint_audio: "PC audio" };

let role = "";
let shown = null; // the interaction id the panel is for

export function setShareRole(value) {
  role = value || "";
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function label(kind) {
  if (KIND_LABELS[kind]) return KIND_LABELS[kind];
  return kind.startsWith("voice:") ? `Voice (${kind.slice(6).toUpperCase()})` : kind;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function build(panel, kinds) {
  const kind = el("select", { id: "share-kind" }, ...kinds.map((k) => el("option", { value: k, textContent: label(k) })));
  const minutes = el("input", { id: "share-minutes", type: "number", min: 2, max: 60, step: 1, value: 15 });
  minutes.style.width = "5rem";
  const form = el(
    "form",
    { id: "share-form", className: "toolbar", noValidate: true },
    el("label", { htmlFor: "share-kind", textContent: "File" }), kind,
    el("label", { htmlFor: "share-minutes", textContent: "Valid for (minutes, 2–60)" }), minutes,
    el("button", { id: "share-create", type: "submit", textContent: "Create share link" }),
  );
  const url = el("input", { id: "share-url", readOnly: true, hidden: true });
  url.style.width = "100%";
  url.setAttribute("aria-label", "Share link: anyone with it can open this file until it expires");
  const table = el(
    "table",
    { id: "share-links" },
    el("thead", {}, el("tr", {}, ...["Created", "File", "By", "Expires", "State", "Uses", ""].map(
      (t) => el("th", { scope: "col", textContent: t }),
    ))),
    el("tbody"),
  );
  panel.replaceChildren(
    el("h2", { id: "share-title", textContent: "Share" }),
    el("p", { className: "muted", textContent: "A share link opens this one file without signing in, until it expires or you revoke it. Creating, using and revoking it are audited." }),
    form,
    el("p", { id: "share-status", role: "status" }),
    url,
    table,
  );
  return { form, kind, minutes, url };
}

function status(text, isError = false) {
  const node = $("share-status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

async function refresh(id) {
  let links;
  try {
    links = await api("GET", `/api/interactions/${encodeURIComponent(id)}/shares`);
  } catch (err) {
    if (shown === id) status(`Could not load the share links: ${err.message}`, true);
    return;
  }
  if (shown !== id) return;
  const rows = links.map((link) => {
    const revoke = el("button", { type: "button", textContent: "Revoke", disabled: link.state !== "active" });
    revoke.setAttribute("aria-label", `Revoke the link created ${when(link.created_at)}`);
    revoke.addEventListener("click", async () => {
      revoke.disabled = true;
      try {
        await api("DELETE", `/api/shares/${link.id}`);
        status("Link revoked: it no longer opens.");
      } catch (err) {
        status(`Could not revoke: ${err.message}`, true);
      }
      refresh(id);
    });
    const row = el(
      "tr",
      {},
      el("td", { textContent: when(link.created_at) }),
      el("td", { textContent: label(link.kind) }),
      el("td", { textContent: link.created_by }),
      el("td", { textContent: when(link.expires_at) }),
      el("td", { textContent: link.state, className: `share-${link.state}` }),
      el("td", { textContent: String(link.uses), className: "num" }),
      el("td", {}, revoke),
    );
    row.dataset.shareId = String(link.id);
    return row;
  });
  $("share-links").tBodies[0].replaceChildren(...rows);
  $("share-links").hidden = rows.length === 0;
}

// Called by the player once it knows the call's media; hides the panel for roles that may not share.
export function showShare(id, media) {
  const panel = $("share-panel");
  shown = id;
  const kinds = (media || []).filter((k) => k !== "screen" || !media.includes("muxed"));
  if (!panel || !SHARE_ROLES.includes(role) || kinds.length === 0) {
    if (panel) panel.hidden = true;
    return;
  }
  const parts = build(panel, kinds);
  panel.hidden = false;
  parts.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const minutes = Number(parts.minutes.value);
    if (!Number.isInteger(minutes) || minutes < 2 || minutes > 60) {
      status("Choose a validity of 2 to 60 whole minutes.", true);
      parts.minutes.focus();
      return;
    }
    $("share-create").disabled = true;
    try {
      const made = await api("POST", `/api/interactions/${encodeURIComponent(id)}/shares`, {
        kind: parts.kind.value, minutes,
      });
      if (shown !== id) return;
      parts.url.value = made.url;
      parts.url.hidden = false;
      parts.url.select();
      status(`Link created, valid until ${when(made.expires_at)}. Copy it now: it is not shown again.`);
      refresh(id);
    } catch (err) {
      status(err.message, true);
    } finally {
      $("share-create").disabled = false;
    }
  });
  refresh(id);
}
