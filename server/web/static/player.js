// Player view: one interaction's muxed screen+voice in one file (so they stay in sync), or the voice
// alone; a waveform per voice channel drawn by wavesurfer.js from the server's peaks (the browser
// never decodes the recording to draw it); markers and shaded spans from the server's timeline
// (a gap in the screen stays a gap); bookmarks; speed, skips, skip silence, keyboard shortcuts,
// per-channel volume through Web Audio, and deep links (#/recordings/<id>?t=seconds).
// Media come straight from the API URL, so the browser streams them with Range requests.

import { api, mediaStatus } from "./api.js";
import { resetBookmarks, showBookmarks } from "./player_bookmarks.js";
import { showShare } from "./share.js";
import {
  alignPeaks, callDuration, decodePeaks, deepLinkTime, formatClock, layoutMarkers, localDateTime, silentSpans,
  skipTarget, timelineItems,
} from "./timeline.js";
import WaveSurfer from "./vendor/wavesurfer/wavesurfer.esm.js";

const $ = (id) => document.getElementById(id);

export const MESSAGES = {
  403: "You are not allowed to see this recording.",
  404: "This recording does not exist.",
  media: "The recording could not be played. Try downloading it instead.",
  none: "No playable media has been stored for this interaction yet.",
};

// What the open player is made of; exposed on window.tandemPlayer for tests and the benchmark.
let current = null;

function showError(text) {
  const box = $("player-error");
  box.textContent = text;
  box.hidden = !text;
}

function messageFor(status, fallback) {
  return MESSAGES[status] || fallback || MESSAGES.media;
}

export function stopPlayer() {
  if (current) {
    if (current.wavesurfer) current.wavesurfer.destroy(); // leaves our media element alone
    if (current.audio) current.audio.context.close().catch(() => {});
    current = null;
    window.tandemPlayer = null;
  }
  const el = $("player");
  if (!el) return;
  el.pause();
  el.removeAttribute("src");
  el.load(); // aborts the pending download
  el.remove();
}

// Inbound/outbound as the SIP side said it; "" means it did not say (and every call before 0017).
function directionText(direction) {
  return { inbound: "Inbound", outbound: "Outbound" }[direction] || "Not known";
}

function renderDetails(summary) {
  const rows = [
    ["Agent", summary.agent], ["DN", summary.dn], ["Caller", summary.caller], ["Callee", summary.callee],
    ["Direction", directionText(summary.direction)],
    ["Started", localDateTime(summary.started_at)],
    ["Talk time", callDuration(summary) === null ? "in progress" : formatClock(callDuration(summary))],
    ["Pauses", String((summary.pauses || []).length)], ["State", summary.state],
  ];
  const list = $("player-details");
  list.replaceChildren();
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "";
    list.append(dt, dd);
  }
}

// ---- markers and spans --------------------------------------------------------------------------

function markerButton(marker) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `marker marker-${marker.kind}${marker.missing ? " marker-reason-missing" : ""}`;
  button.dataset.kind = marker.kind;
  button.dataset.at = String(marker.at);
  button.textContent = `${marker.label} ${formatClock(marker.at)}`;
  button.title = marker.title || `Go to ${marker.label} (${formatClock(marker.at)})`;
  button.addEventListener("click", () => seekTo(marker.at, true));
  return button;
}

// Point markers (call events, span edges, bookmarks) as seek buttons along the timeline.
export function renderMarkers() {
  if (!current) return;
  const bookmarks = (current.bookmarks || []).map((b) => ({
    kind: "bookmark", label: b.shared ? "Comment" : "Bookmark", at: Math.max(0, b.at - current.origin),
    title: `${b.username}: ${b.text}`, id: b.id,
  }));
  const points = [...current.items.points, ...bookmarks].sort((a, b) => a.at - b.at);
  const bar = $("markers");
  bar.replaceChildren(...points.map((marker) => {
    const button = markerButton(marker);
    if (marker.id !== undefined) button.dataset.bookmark = String(marker.id);
    return button;
  }));
  placeMarkers();
}

// Once the duration is known, each marker and span sits at its share of the timeline.
function placeMarkers() {
  const duration = current && current.el.duration;
  const bar = $("markers");
  if (!Number.isFinite(duration) || duration <= 0) return;
  bar.classList.add("placed");
  for (const button of bar.querySelectorAll(".marker")) {
    const share = Math.min(1, Number(button.dataset.at) / duration);
    button.style.left = `${(share * 100).toFixed(2)}%`;
  }
  fitMarkerLabels(true);
  const layer = $("timeline-spans");
  layer.replaceChildren(...current.items.spans.map((span) => {
    const shade = document.createElement("div");
    shade.className = `span span-${span.kind}${span.missing ? " span-reason-missing" : ""}`;
    shade.dataset.kind = span.kind;
    shade.dataset.start = String(span.start);
    shade.dataset.end = String(span.end);
    shade.title = span.title;
    shade.style.left = `${((Math.min(span.start, duration) / duration) * 100).toFixed(2)}%`;
    shade.style.width = `${(((Math.min(span.end, duration) - Math.min(span.start, duration)) / duration) * 100).toFixed(2)}%`;
    shade.textContent = span.label;
    // A click on a shaded span seeks to where it was clicked, like the waveform under it.
    shade.addEventListener("click", (event) => {
      const box = layer.getBoundingClientRect();
      seekTo(((event.clientX - box.left) / box.width) * duration);
    });
    return shade;
  }));
  $("player-timeline").hidden = false;
}

// Each label where it is fully on the bar and covers no other (timeline.js layoutMarkers): its
// left edge stays at its time (style.left, a share of the bar), the label is shifted from there,
// and its tick mark (--tick) still points at the time. Laid out in px, so again when the bar's
// width changes (a phone turned, a window resized).
let fittedWidth = 0;

function fitMarkerLabels(force = false) {
  const bar = $("markers");
  const width = bar.clientWidth;
  if (!width || !bar.classList.contains("placed") || (!force && width === fittedWidth)) return;
  fittedWidth = width;
  const buttons = [...bar.querySelectorAll(".marker")];
  const items = buttons.map((b) => ({ x: (parseFloat(b.style.left) / 100) * width, width: b.offsetWidth }));
  const places = layoutMarkers(items, width);
  buttons.forEach((button, i) => {
    const { left, row, tick } = places[i];
    button.style.transform = `translateX(${(left - items[i].x).toFixed(1)}px)`;
    button.style.top = `${0.4 + row * 1.8}rem`;
    button.style.setProperty("--tick", `${tick.toFixed(1)}px`);
    button.dataset.row = String(row);
  });
  const rows = Math.max(1, ...places.map((p) => p.row + 1));
  bar.style.height = `${0.6 + rows * 1.8}rem`;
}

// ---- playback -----------------------------------------------------------------------------------

export function seekTo(seconds, focus = false) {
  if (!current) return;
  const el = current.el;
  const end = Number.isFinite(el.duration) ? el.duration : Infinity;
  el.currentTime = Math.min(Math.max(0, seconds), end);
  if (focus) el.focus();
}

function skip(delta) {
  if (current) seekTo(current.el.currentTime + delta);
}

function togglePlay() {
  if (!current) return;
  if (current.el.paused) current.el.play().catch(() => {});
  else current.el.pause();
}

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];

function currentSpeed() {
  return Number($("player-speed").value) || 1;
}

function applySpeed() {
  if (!current) return;
  current.el.defaultPlaybackRate = currentSpeed();
  current.el.playbackRate = currentSpeed();
}

function stepSpeed(direction) {
  const at = SPEEDS.indexOf(currentSpeed());
  const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (at < 0 ? 2 : at) + direction))];
  $("player-speed").value = String(next);
  applySpeed();
}

function updateClock() {
  if (!current) return;
  const el = current.el;
  const total = Number.isFinite(el.duration) ? formatClock(el.duration) : "–";
  $("player-clock").textContent = `${formatClock(el.currentTime)} / ${total}`;
  $("player-play").textContent = el.paused ? "Play" : "Pause";
  $("bookmark-at").textContent = formatClock(el.currentTime);
}

function onTimeUpdate() {
  updateClock();
  if (!current || !$("player-skip-silence").checked || current.el.paused) return;
  const target = skipTarget(current.silent, current.el.currentTime);
  if (target !== null) seekTo(target);
}

// Keyboard shortcuts (listed on the page): not while typing, and not on the native media
// controls or a button, which handle Space themselves.
function onKey(event) {
  if (!current || $("view-player").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  const tag = event.target && event.target.tagName;
  if (["INPUT", "TEXTAREA", "SELECT"].includes(tag)) return;
  const onControl = ["BUTTON", "VIDEO", "AUDIO", "A"].includes(tag);
  const actions = {
    " ": onControl ? null : togglePlay,
    k: togglePlay,
    ArrowLeft: () => skip(event.shiftKey ? -15 : -5),
    ArrowRight: () => skip(event.shiftKey ? 15 : 5),
    j: () => skip(-15),
    l: () => skip(15),
    "[": () => stepSpeed(-1),
    "]": () => stepSpeed(1),
    s: () => { $("player-skip-silence").checked = !$("player-skip-silence").checked; },
    b: () => $("bookmark-text").focus(),
  };
  const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (!action) return;
  event.preventDefault();
  action();
}

// ---- Web Audio: one gain per voice channel ------------------------------------------------------

// The voice is stereo, caller left and agent right (a mono file is one mixed channel). The media
// element plays through source → splitter → a gain per channel → merger, so each side's volume
// is set on its own and they stay where they were recorded.
function buildAudioGraph(el, channelNames) {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  const context = new Context();
  const source = context.createMediaElementSource(el);
  const splitter = context.createChannelSplitter(2);
  const merger = context.createChannelMerger(2);
  source.connect(splitter);
  const gains = {};
  const names = channelNames.length === 2 ? channelNames : ["mixed"];
  names.forEach((name, i) => {
    const gain = context.createGain();
    splitter.connect(gain, i);
    gain.connect(merger, 0, i);
    if (names.length === 1) gain.connect(merger, 0, 1); // mono: both ears
    gains[name] = gain;
  });
  merger.connect(context.destination);
  // Browsers start an AudioContext suspended until the user plays something.
  el.addEventListener("play", () => { if (context.state !== "running") context.resume().catch(() => {}); });
  return { context, gains };
}

function setupVolumes(names) {
  const box = $("player-volumes");
  const labels = { caller: "Caller volume", agent: "Agent volume", mixed: "Volume" };
  const rows = (names.length === 2 ? names : ["mixed"]).map((name) => {
    const label = Object.assign(document.createElement("label"), { htmlFor: `volume-${name}`, textContent: labels[name] || name });
    const input = Object.assign(document.createElement("input"), {
      id: `volume-${name}`, type: "range", min: "0", max: "2", step: "0.05", value: "1",
    });
    input.dataset.channel = name;
    input.addEventListener("input", () => {
      const gain = current && current.audio && current.audio.gains[name];
      if (gain) gain.gain.setValueAtTime(Number(input.value), gain.context.currentTime);
    });
    return [label, input];
  });
  box.replaceChildren(...rows.flat());
  box.hidden = !(current && current.audio);
}

// ---- waveform -----------------------------------------------------------------------------------

// A <link> into wavesurfer's shadow root: its own <style> there is inline, which our CSP refuses.
function styleShadow(wavesurfer) {
  const root = wavesurfer.getWrapper().getRootNode();
  if (!(root instanceof ShadowRoot) || root.querySelector("link")) return;
  root.prepend(Object.assign(document.createElement("link"), { rel: "stylesheet", href: "/static/waveform-shadow.css" }));
}

function drawWaveform(peaks) {
  const el = current.el;
  const aligned = alignPeaks(
    peaks.channels.map((c) => decodePeaks(c.peaks)), peaks.bins_per_second, peaks.started_at, current.origin, el.duration,
  );
  current.silent = silentSpans(aligned, peaks.bins_per_second);
  const colours = { caller: ["#2f6fb3", "#173a60"], agent: ["#2e8b57", "#17462c"], mixed: ["#5b5b8f", "#2e2e4a"] };
  current.wavesurfer = WaveSurfer.create({
    container: $("waveform"),
    media: el,
    peaks: aligned,
    duration: el.duration,
    height: 44,
    normalize: false,
    interact: true,
    cursorColor: "#c0392b",
    cursorWidth: 2,
    barWidth: 2,
    barGap: 1,
    splitChannels: peaks.channels.map((c) => ({
      waveColor: (colours[c.name] || colours.mixed)[0], progressColor: (colours[c.name] || colours.mixed)[1],
    })),
  });
  styleShadow(current.wavesurfer);
  $("waveform").dataset.channels = peaks.channels.map((c) => c.name).join(",");
  $("waveform").setAttribute("aria-label", `Waveform: ${peaks.channels.map((c) => c.name).join(" (top), ")} (bottom). Click to seek.`);
  window.tandemPlayer = current;
}

// ---- the view -----------------------------------------------------------------------------------

export function initPlayerControls() {
  $("player-speed").addEventListener("change", applySpeed);
  $("player-play").addEventListener("click", togglePlay);
  for (const [id, delta] of [["player-back15", -15], ["player-back5", -5], ["player-fwd5", 5], ["player-fwd15", 15]]) {
    $(id).addEventListener("click", () => skip(delta));
  }
  $("player-copy-link").addEventListener("click", () => {
    if (!current) return;
    const t = current.el.currentTime.toFixed(1);
    const link = `${location.origin}${location.pathname}#/recordings/${encodeURIComponent(current.id)}?t=${t}`;
    const box = $("player-link");
    box.value = link;
    box.hidden = false;
    box.select();
    if (navigator.clipboard) navigator.clipboard.writeText(link).catch(() => {});
  });
  document.addEventListener("keydown", onKey);
  if (window.ResizeObserver) new ResizeObserver(() => fitMarkerLabels()).observe($("markers"));
}

function resetView() {
  showError("");
  for (const id of ["markers", "timeline-spans", "waveform", "player-volumes", "player-details"]) $(id).replaceChildren();
  $("markers").classList.remove("placed");
  $("markers").style.height = "";
  $("player-timeline").hidden = true;
  $("player-download").hidden = true;
  $("player-voice-files").hidden = true;
  $("player-controls").hidden = true;
  $("player-link").hidden = true;
  $("player-title").textContent = "Recording";
  resetBookmarks();
}

const VOICE_FILES = {
  voice: { label: "WAV (PCM, original)", suffix: ".wav" },
  "voice:mp3_8k_mono": { label: "MP3 8 kbit/s mono", suffix: "-8k-mono.mp3" },
  "voice:mp3_16k_stereo": { label: "MP3 16 kbit/s stereo", suffix: "-16k-stereo.mp3" },
  "voice:mp3_32k_stereo": { label: "MP3 32 kbit/s stereo", suffix: "-32k-stereo.mp3" },
  "voice:wav_ulaw": { label: "WAV G.711 μ-law", suffix: "-ulaw.wav" },
  "voice:opus": { label: "Opus", suffix: ".opus" },
  // The recorder's endpoint audio (microphone left, what the agent heard right), from the mux's t=0.
  endpoint_audio: { label: "Endpoint audio (PC: microphone L, heard R), M4A", suffix: "-endpoint.m4a" },
};

function renderVoiceFiles(summary) {
  const box = $("player-voice-files");
  const kinds = [
    ...((summary.media || []).includes("voice") ? ["voice"] : []),
    ...(summary.voice_formats || []).map((fmt) => `voice:${fmt}`),
    ...((summary.media || []).includes("endpoint_audio") ? ["endpoint_audio"] : []),
  ];
  const links = kinds.map((kind) => {
    const known = VOICE_FILES[kind] || { label: kind.replace(/^voice:/, ""), suffix: "" };
    const link = Object.assign(document.createElement("a"), {
      className: "button voice-file",
      href: `/api/interactions/${encodeURIComponent(summary.id)}/media/${kind}`,
      download: `${summary.id}${known.suffix}`,
      textContent: known.label,
      title: kind === "endpoint_audio" ? `Download the ${known.label}` : `Download the voice as ${known.label}`,
    });
    link.dataset.kind = kind;
    return link;
  });
  const caption = Object.assign(document.createElement("span"), { textContent: "Voice files:" });
  box.replaceChildren(...(links.length ? [caption, ...links] : []));
  box.hidden = links.length === 0;
}

// The file the player plays: the screen and voice muxed in one, else the voice alone.
function playedKind(media) {
  return media.includes("muxed") ? "muxed" : media.includes("voice") ? "voice" : null;
}

// Opened from the recordings list, the list's row already says which files the interaction has
// (app.js renders its media as the row's last cell). The media element then starts fetching the
// file side by side with the summary instead of after it (route → first frame: the summary's
// round trip off the critical path, benchmarks/RESULTS.md); the summary still decides what is
// played. A deep link, or a list that does not name this id, waits for the summary.
function listedKind(id) {
  const row = [...document.querySelectorAll("#recordings tbody tr")].find((r) => r.dataset.id === id);
  const last = row && row.cells[row.cells.length - 1];
  return last ? playedKind(last.textContent.split(",").map((kind) => kind.trim())) : null;
}

function createMedia(kind, src, isCurrent) {
  const el = document.createElement(kind === "muxed" ? "video" : "audio");
  el.id = "player";
  el.controls = true;
  el.preload = "metadata";
  el.defaultPlaybackRate = currentSpeed();
  el.addEventListener("error", async () => {
    const status = await mediaStatus(src);
    if (isCurrent() && $("player") === el) showError(messageFor(status));
  });
  el.src = src;
  $("player-box").append(el);
  return el;
}

function discardMedia(el) {
  if (!el) return;
  el.removeAttribute("src");
  el.load(); // aborts the pending download
  el.remove();
}

// `isCurrent` tells whether the user is still on this route, so a slow answer cannot overwrite
// the view the user moved on to. `query` is the route's query: t=<seconds> opens at that time.
export async function showPlayer(id, isCurrent, query = "") {
  stopPlayer();
  resetView();
  const base = `/api/interactions/${encodeURIComponent(id)}`;
  // The interaction (its read is audited as such) and the player's timeline are asked for side by
  // side; the media element starts at once when the list named the file, else when the summary does.
  const timelineAnswer = api("GET", `${base}/timeline`);
  timelineAnswer.catch(() => {}); // handled below; a refusal of both is shown once
  const earlyKind = listedKind(id);
  const early = earlyKind ? { kind: earlyKind, el: createMedia(earlyKind, `${base}/media/${earlyKind}`, isCurrent) } : null;
  let summary;
  try {
    summary = await api("GET", base);
  } catch (err) {
    if (early) discardMedia(early.el);
    if (isCurrent()) showError(messageFor(err.status, err.message));
    return;
  }
  if (!isCurrent()) {
    if (early && $("player") === early.el) discardMedia(early.el);
    return;
  }
  $("player-title").textContent =
    `${summary.agent || summary.dn} — ${summary.caller || "unknown caller"}, ${localDateTime(summary.started_at)}`;
  renderDetails(summary);
  renderVoiceFiles(summary);
  showShare(id, summary.media || []); // share links (share.js), for the roles that may share

  const media = summary.media || [];
  const kind = playedKind(media);
  if (early && early.kind !== kind) discardMedia(early.el); // the list was out of date
  if (!kind) {
    showError(MESSAGES.none);
    return;
  }
  const src = `${base}/media/${kind}`;
  const el = early && early.kind === kind ? early.el : createMedia(kind, src, isCurrent);
  current = {
    id, el, kind, origin: summary.media_started_at ?? summary.answered_at ?? summary.started_at, timeline: null,
    items: { points: [], spans: [] }, silent: [], bookmarks: [], wavesurfer: null, audio: null,
  };
  window.tandemPlayer = current;
  const mine = current;
  const peaks = media.includes("voice") ? api("GET", `${base}/peaks`).catch(() => null) : Promise.resolve(null);
  // The played file's t=0 comes with the timeline (its started_at); markers are in its seconds.
  const timelineReady = timelineAnswer.then((timeline) => {
    if (current !== mine) return false;
    const file = timeline.files[kind] || {};
    if (typeof file.started_at === "number") mine.origin = file.started_at;
    mine.timeline = timeline;
    mine.items = timelineItems(timeline, mine.origin, Number.isFinite(el.duration) ? el.duration : Infinity);
    renderMarkers(); // in a row until the duration is known, then placed on the timeline
    return true;
  }, (err) => {
    if (current === mine && isCurrent()) showError(messageFor(err.status, err.message));
    return false;
  });
  const onMetadata = async () => {
    if (current !== mine) return;
    el.playbackRate = currentSpeed();
    const start = deepLinkTime(query);
    if (start !== null) seekTo(start);
    updateClock();
    if (!(await timelineReady) || current !== mine) return;
    mine.items = timelineItems(mine.timeline, mine.origin, el.duration);
    renderMarkers();
    const answer = await peaks;
    if (current !== mine || !isCurrent()) return;
    // The graph waits for the peaks, which say whether the voice is stereo or one mixed channel.
    const names = answer ? answer.channels.map((c) => c.name) : ["caller", "agent"];
    try {
      mine.audio = buildAudioGraph(el, names);
    } catch {
      mine.audio = null; // no Web Audio: the element plays as it is, without per-channel volume
    }
    setupVolumes(names);
    if (answer) drawWaveform(answer);
    el.dispatchEvent(new Event("tandem-ready"));
  };
  // An element started early may have read the file's index before the summary came.
  if (el.readyState >= HTMLMediaElement.HAVE_METADATA) onMetadata();
  else el.addEventListener("loadedmetadata", onMetadata, { once: true });
  el.addEventListener("timeupdate", onTimeUpdate);
  el.addEventListener("play", updateClock);
  el.addEventListener("pause", updateClock);
  $("player-controls").hidden = false;

  const download = $("player-download");
  download.href = src;
  download.download = `${summary.id}.${kind === "voice" ? "wav" : "mp4"}`;
  download.hidden = false;

  showBookmarks(id, {
    isCurrent: () => isCurrent() && current === mine,
    now: () => mine.origin + el.currentTime, // server time of the playhead
    get origin() {
      return mine.origin;
    },
    seek: (seconds) => seekTo(seconds, true),
    changed: (list) => {
      if (current !== mine) return;
      mine.bookmarks = list;
      renderMarkers();
    },
  });
}
