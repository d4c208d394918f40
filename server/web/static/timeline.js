// Pure helpers of the web UI (no DOM, no fetch): where an interaction's events fall on the media
// file's timeline, time formatting and list filtering. Kept apart so they can be checked with node.

// Server time of the media file's t=0. The muxed file starts at the earlier of the screen's start
// and the voice's; the server reports it as media_started_at. Without it the answer time is the
// best estimate, since voice recording starts when the call is answered.
export function mediaOrigin(summary) {
  if (typeof summary.media_started_at === "number") return summary.media_started_at;
  return summary.answered_at ?? summary.started_at;
}

// Markers as {kind, label, at} with `at` in seconds from the media's t=0, sorted; events before
// t=0 are pinned to 0 and events that did not happen are left out.
export function interactionMarkers(summary, origin = mediaOrigin(summary)) {
  const events = [
    ["call-start", "Call start", summary.answered_at ?? summary.started_at],
  ];
  (summary.pauses || []).forEach((pause, i) => {
    const n = summary.pauses.length > 1 ? ` ${i + 1}` : "";
    // A leg the secure pause could not confirm (e.g. the screen) is named on the marker.
    const warned = pause.warning ? ` — ${pause.warning}` : "";
    events.push(["pause-start", `Pause${n}${warned}`, pause.started_at]);
    events.push(["pause-end", `Resume${n}`, pause.ended_at]);
  });
  events.push(["call-end", "Call end", summary.ended_at]);
  events.push(["acw-end", "ACW end", summary.acw_ended_at]);
  return events
    .filter(([, , t]) => typeof t === "number" && Number.isFinite(t))
    .map(([kind, label, t]) => ({ kind, label, at: Math.max(0, t - origin) }))
    .sort((a, b) => a.at - b.at);
}

export function formatClock(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// Talk time of a call: from answer (or start) to its end; null while the call is still going.
export function callDuration(summary) {
  const start = summary.answered_at ?? summary.started_at;
  if (typeof summary.ended_at !== "number" || typeof start !== "number") return null;
  return Math.max(0, summary.ended_at - start);
}

export function localDateTime(unixSeconds) {
  if (typeof unixSeconds !== "number") return "";
  return new Date(unixSeconds * 1000).toLocaleString();
}

export function matchesFilter(summary, text) {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  return [summary.agent, summary.caller, summary.callee, summary.dn]
    .some((field) => String(field ?? "").toLowerCase().includes(needle));
}

// Screen column: not selected by sampling, selected but not uploaded yet, recorded, or missing
// because the agent's recorder was not connected ("no recorder": nothing will come).
export function screenState(summary) {
  const media = summary.media || [];
  if (media.includes("screen") || media.includes("muxed")) return "yes";
  if (summary.screen_state === "no_recorder") return "no recorder";
  return summary.screen_decision ? "pending" : "no";
}
