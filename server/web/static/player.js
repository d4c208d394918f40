// Player view: one interaction's muxed screen+voice (or voice alone) with a marker bar of its call
// events, speed control, a download link and one per stored voice format. Media come straight
// from the API URL so the browser streams them with Range requests.

import { api, mediaStatus } from "./api.js";
import { callDuration, formatClock, interactionMarkers, localDateTime } from "./timeline.js";

const $ = (id) => document.getElementById(id);

export const MESSAGES = {
  403: "You are not allowed to see this recording.",
  404: "This recording does not exist.",
  media: "The recording could not be played. Try downloading it instead.",
  none: "No playable media has been stored for this interaction yet.",
};

function showError(text) {
  const box = $("player-error");
  box.textContent = text;
  box.hidden = !text;
}

function messageFor(status, fallback) {
  return MESSAGES[status] || fallback || MESSAGES.media;
}

export function stopPlayer() {
  const el = $("player");
  if (!el) return;
  el.pause();
  el.removeAttribute("src");
  el.load(); // aborts the pending download
  el.remove();
}

function renderDetails(summary) {
  const rows = [
    ["Agent", summary.agent], ["DN", summary.dn], ["Caller", summary.caller], ["Callee", summary.callee],
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

function renderMarkers(summary, seek) {
  const bar = $("markers");
  bar.replaceChildren();
  interactionMarkers(summary).forEach((marker, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `marker marker-${marker.kind} row-${i % 2}`;
    button.dataset.kind = marker.kind;
    button.dataset.at = String(marker.at);
    button.textContent = `${marker.label} ${formatClock(marker.at)}`;
    button.title = `Go to ${marker.label} (${formatClock(marker.at)})`;
    button.addEventListener("click", () => seek(marker.at));
    bar.append(button);
  });
}

// Once the duration is known, place each marker at its share of the timeline.
function placeMarkers(duration) {
  const bar = $("markers");
  if (!Number.isFinite(duration) || duration <= 0) return;
  bar.classList.add("placed");
  for (const button of bar.querySelectorAll(".marker")) {
    const share = Math.min(1, Number(button.dataset.at) / duration);
    button.style.left = `${(share * 100).toFixed(2)}%`;
  }
}

// The voice's files: the WAV master and each encoding the server made ("voice:<format>" kinds).
const VOICE_FILES = {
  voice: { label: "WAV (PCM, original)", suffix: ".wav" },
  "voice:mp3_8k_mono": { label: "MP3 8 kbit/s mono", suffix: "-8k-mono.mp3" },
  "voice:mp3_16k_stereo": { label: "MP3 16 kbit/s stereo", suffix: "-16k-stereo.mp3" },
  "voice:mp3_32k_stereo": { label: "MP3 32 kbit/s stereo", suffix: "-32k-stereo.mp3" },
  "voice:wav_ulaw": { label: "WAV G.711 μ-law", suffix: "-ulaw.wav" },
  "voice:opus": { label: "Opus", suffix: ".opus" },
};

function renderVoiceFiles(summary) {
  const box = $("player-voice-files");
  const kinds = [
    ...((summary.media || []).includes("voice") ? ["voice"] : []),
    ...(summary.voice_formats || []).map((fmt) => `voice:${fmt}`),
  ];
  const links = kinds.map((kind) => {
    const known = VOICE_FILES[kind] || { label: kind.replace(/^voice:/, ""), suffix: "" };
    const link = Object.assign(document.createElement("a"), {
      className: "button voice-file",
      href: `/api/interactions/${encodeURIComponent(summary.id)}/media/${kind}`,
      download: `${summary.id}${known.suffix}`,
      textContent: known.label,
      title: `Download the voice as ${known.label}`,
    });
    link.dataset.kind = kind;
    return link;
  });
  const caption = Object.assign(document.createElement("span"), { textContent: "Voice files:" });
  box.replaceChildren(...(links.length ? [caption, ...links] : []));
  box.hidden = links.length === 0;
}

function currentSpeed() {
  return Number($("player-speed").value) || 1;
}

export function initPlayerControls() {
  $("player-speed").addEventListener("change", () => {
    const el = $("player");
    if (el) {
      el.defaultPlaybackRate = currentSpeed();
      el.playbackRate = currentSpeed();
    }
  });
}

// `isCurrent` tells whether the user is still on this route, so a slow answer cannot overwrite
// the view the user moved on to.
export async function showPlayer(id, isCurrent) {
  stopPlayer();
  showError("");
  $("markers").replaceChildren();
  $("markers").classList.remove("placed");
  $("player-details").replaceChildren();
  $("player-download").hidden = true;
  $("player-voice-files").hidden = true;
  $("player-title").textContent = "Recording";

  let summary;
  try {
    summary = await api("GET", `/api/interactions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (isCurrent()) showError(messageFor(err.status, err.message));
    return;
  }
  if (!isCurrent()) return;

  $("player-title").textContent =
    `${summary.agent || summary.dn} — ${summary.caller || "unknown caller"}, ${localDateTime(summary.started_at)}`;
  renderDetails(summary);
  renderVoiceFiles(summary);

  const media = summary.media || [];
  const kind = media.includes("muxed") ? "muxed" : media.includes("voice") ? "voice" : null;
  if (!kind) {
    showError(MESSAGES.none);
    renderMarkers(summary, () => {});
    return;
  }
  const src = `/api/interactions/${encodeURIComponent(id)}/media/${kind}`;
  const el = document.createElement(kind === "muxed" ? "video" : "audio");
  el.id = "player";
  el.controls = true;
  el.preload = "metadata";
  el.defaultPlaybackRate = currentSpeed();
  el.addEventListener("loadedmetadata", () => {
    el.playbackRate = currentSpeed();
    placeMarkers(el.duration);
  });
  el.addEventListener("error", async () => {
    const status = await mediaStatus(src);
    if (isCurrent()) showError(messageFor(status));
  });
  el.src = src;
  $("player-box").append(el);

  renderMarkers(summary, (at) => {
    el.currentTime = at;
    el.focus();
  });

  const download = $("player-download");
  download.href = src;
  download.download = `${summary.id}.${kind === "voice" ? "wav" : "mp4"}`;
  download.hidden = false;
}
