// Tandem web UI entry point: session check, login, hash routing and the recordings list.
// Routes: #/recordings, #/recordings/<id>, #/missed, #/admin. Plain ES modules, no build step.

import { api, newSession, setUnauthorizedHandler } from "./api.js";
import { initAdmin, showAdmin } from "./admin.js";
import { initAgentPlayback, showAgentPlayback } from "./admin_agent_playback.js";
import { initAgentCodes, showAgentCodes, showAgentStates } from "./admin_codes.js";
import { initRecorderPolicy, showRecorderPolicy } from "./admin_recorder.js";
import { FLEET_ROLES, initFleet, showFleet, stopFleet } from "./fleet.js";
import { initDevices, showDevices } from "./admin_devices.js";
import { MISSED_ROLES, initMissed, showMissed } from "./missed.js";
import { AUDIT_ROLES, showAudit } from "./audit.js";
import { setShareRole } from "./share.js";
import { initPlayerControls, showPlayer, stopPlayer } from "./player.js";
import { initSearch, resetSearch, showSearch } from "./search.js";
import { initSearchKeys, showSearchKeys } from "./admin_search_keys.js";
import { callDuration, formatClock, localDateTime, matchesFilter, screenState } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["view-login", "view-recordings", "view-player", "view-missed", "view-admin", "view-search", "view-fleet", "view-audit"];

let me = null; // UserInfo of the signed-in user
let interactions = [];
let routeToken = 0; // bumped on every navigation; stale async work compares against it

function showView(id) {
  $("loading").hidden = true;
  for (const view of VIEWS) $(view).hidden = view !== id;
  $("topbar").hidden = id === "view-login";
  $("nav-recordings").toggleAttribute("aria-current", id === "view-recordings" || id === "view-player");
  $("nav-admin").toggleAttribute("aria-current", id === "view-admin");
  $("nav-missed").toggleAttribute("aria-current", id === "view-missed");
  $("nav-search").toggleAttribute("aria-current", id === "view-search");
  $("nav-fleet").toggleAttribute("aria-current", id === "view-fleet");
  $("nav-audit").toggleAttribute("aria-current", id === "view-audit");
}

// ---- session -------------------------------------------------------------------------------

function showLogin(message = "") {
  newSession(); // answers to requests of the session that ended are not this view's business
  me = null;
  stopPlayer();
  showView("view-login");
  const error = $("login-error");
  error.textContent = message;
  error.hidden = !message;
  $("login-password").value = "";
  $("login-username").focus();
}

function signedIn(user) {
  me = user;
  resetSearch();
  $("whoami").textContent = user.full_name ? `${user.full_name} (${user.role})` : `${user.username} (${user.role})`;
  $("nav-admin").hidden = user.role !== "admin";
  $("nav-missed").hidden = !MISSED_ROLES.includes(user.role);
  $("nav-fleet").hidden = !FLEET_ROLES.includes(user.role);
  $("nav-audit").hidden = !AUDIT_ROLES.includes(user.role);
  setShareRole(user.role);
  route();
}

function loginMessage(err) {
  if (err.code === "invalid_credentials" || err.status === 401) return "Wrong username or password.";
  if (err.status === 429) return "Too many attempts. Wait a moment and try again.";
  return err.message;
}

async function login(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  if (!username || !password) {
    showLogin("Enter your username and password.");
    $("login-username").value = username;
    return;
  }
  const submit = $("login-submit");
  submit.disabled = true;
  try {
    const answer = await api("POST", "/api/auth/login", { username, password, client: "web" });
    newSession();
    $("login-error").hidden = true;
    $("login-password").value = "";
    signedIn(answer.user);
  } catch (err) {
    const error = $("login-error");
    error.textContent = loginMessage(err);
    error.hidden = false;
    $("login-password").select();
  } finally {
    submit.disabled = false;
  }
}

async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // the session is gone either way; the login view is the right place to be
  }
  interactions = [];
  history.replaceState(null, "", location.pathname);
  showLogin();
}

// ---- recordings list -------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderRecordings() {
  const filter = $("recordings-filter").value;
  const body = $("recordings").tBodies[0];
  const rows = interactions.filter((summary) => matchesFilter(summary, filter)).map((summary) => {
    const row = document.createElement("tr");
    row.dataset.id = summary.id;
    const link = Object.assign(document.createElement("a"), {
      href: `#/recordings/${encodeURIComponent(summary.id)}`,
      textContent: localDateTime(summary.started_at),
    });
    const start = document.createElement("td");
    start.append(link);
    const duration = callDuration(summary);
    const screen = screenState(summary);
    const media = summary.media || [];
    row.append(
      // An unassigned call named no known party; a linked one is an agent's second call.
      start, cell(summary.unassigned ? "unassigned" : summary.agent, summary.unassigned ? "unassigned" : ""),
      cell(summary.linked_to ? `${summary.dn} (second call)` : summary.dn), cell(summary.caller),
      cell(duration === null ? "in progress" : formatClock(duration), "num"),
      cell(screen, `screen-${screen}`),
      cell(media.length ? media.join(", ") : "none", media.length ? "" : "muted"),
    );
    // The whole row opens the recording; the link keeps it reachable by keyboard and middle-click.
    row.addEventListener("click", (event) => {
      if (event.target !== link) location.hash = link.getAttribute("href");
    });
    return row;
  });
  body.replaceChildren(...rows);
  const shown = rows.length === interactions.length ? `${rows.length}` : `${rows.length} of ${interactions.length}`;
  $("recordings-status").textContent = interactions.length ? `${shown} recordings` : "No recordings yet.";
}

async function showRecordings(isCurrent) {
  $("recordings-status").textContent = "Loading…";
  try {
    const list = await api("GET", "/api/interactions");
    if (!isCurrent()) return;
    interactions = Array.isArray(list) ? list : [];
    renderRecordings();
  } catch (err) {
    if (isCurrent()) $("recordings-status").textContent = `Could not load recordings: ${err.message}`;
  }
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  if (!me) return;
  const token = ++routeToken;
  const isCurrent = () => token === routeToken && me !== null;
  const fullHash = location.hash.replace(/^#\/?/, "");
  // The search page keeps its query in the hash: #/search?agent=ann&sort=duration
  const queryAt = fullHash.indexOf("?");
  const hash = queryAt < 0 ? fullHash : fullHash.slice(0, queryAt);
  const parts = hash.split("/").map(decodeURIComponent);
  if (parts[0] === "recordings" && parts[1]) {
    showView("view-player");
    showPlayer(parts[1], isCurrent, queryAt < 0 ? "" : fullHash.slice(queryAt + 1)); // ?t=<seconds>
    return;
  }
  stopPlayer();
  stopFleet();
  if (parts[0] === "fleet" && FLEET_ROLES.includes(me.role)) {
    showView("view-fleet");
    showFleet(isCurrent);
    showDevices(me.role);
    return;
  }
  if (parts[0] === "search") {
    showView("view-search");
    showSearch(queryAt < 0 ? "" : fullHash.slice(queryAt + 1), isCurrent, me.role);
    return;
  }
  if (parts[0] === "audit" && AUDIT_ROLES.includes(me.role)) {
    showView("view-audit");
    showAudit(queryAt < 0 ? "" : fullHash.slice(queryAt + 1), isCurrent);
    return;
  }
  if (parts[0] === "missed" && MISSED_ROLES.includes(me.role)) {
    showView("view-missed");
    showMissed(isCurrent);
    return;
  }
  if (parts[0] === "admin" && me.role === "admin") {
    showView("view-admin");
    showAdmin(isCurrent);
    showSearchKeys(isCurrent);
    showAgentPlayback(isCurrent);
    showAgentCodes(isCurrent);
    showRecorderPolicy(isCurrent);
    return;
  }
  if (hash !== "recordings") history.replaceState(null, "", "#/recordings");
  showView("view-recordings");
  showRecordings(isCurrent);
  showAgentStates(isCurrent, me.role);
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("recordings-filter").addEventListener("input", renderRecordings);
  $("recordings-refresh").addEventListener("click", () => showRecordings(() => true));
  initPlayerControls();
  initSearch();
  initSearchKeys();
  initAgentPlayback();
  initAgentCodes();
  initAdmin();
  initRecorderPolicy();
  initFleet();
  initDevices();
  initMissed();
  window.addEventListener("hashchange", route);
  setUnauthorizedHandler(() => showLogin("Your session has ended. Please sign in again."));
  try {
    signedIn(await api("GET", "/api/me"));
  } catch (err) {
    showLogin(err.status === 401 ? "" : `The server could not be reached: ${err.message}`);
  }
}

start();
