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

// ---- player timeline (GET /api/interactions/<id>/timeline, /peaks, /bookmarks) ------------------
// Every time the server sends is server time (Unix seconds); the player works in the played file's
// seconds, i.e. server time minus that file's started_at.

const SPAN_LABELS = {
  pause: "Pause", hold: "Hold", "auto-pause": "Auto-pause", "screen-missing": "Screen missing",
};
const EVENT_LABELS = { "call-start": "Call start", "call-end": "Call end", "acw-end": "ACW end" };

// Point markers {kind, label, at, title} and shaded spans {kind, label, start, end, title}, in file
// seconds, sorted. A span still open at the end runs to `duration`; points before 0 are pinned to 0.
export function timelineItems(timeline, origin, duration = Infinity) {
  const points = [];
  const spans = [];
  for (const event of timeline.events || []) {
    points.push({ kind: event.kind, label: EVENT_LABELS[event.kind] || event.kind, at: event.at - origin, title: "" });
  }
  const counts = {};
  for (const span of timeline.spans || []) {
    counts[span.kind] = (counts[span.kind] || 0) + 1;
  }
  const seen = {};
  for (const span of timeline.spans || []) {
    seen[span.kind] = (seen[span.kind] || 0) + 1;
    const n = counts[span.kind] > 1 ? ` ${seen[span.kind]}` : "";
    const name = `${SPAN_LABELS[span.kind] || span.kind}${n}`;
    // The agent's pause reason is on the shaded span itself, not only in its tooltip: a supervisor
    // scanning the timeline sees why at a glance (issue 14: "who paused and why").
    // A reason the admin requires but the agent never gave (it is asked after the pause starts)
    // is said on the span, not left blank: supervisors and compliance look for exactly these.
    const missing = Boolean(span.reason_missing);
    const label = span.reason ? `${name}: ${span.reason}` : missing ? `${name}: no reason given` : name;
    const who = span.who ? `by ${span.who}` : "";
    const required = missing ? "reason required, not given" : "";
    const title = [name, who, span.why, required, span.warning].filter(Boolean).join(" — ");
    const start = span.start - origin;
    const end = (typeof span.end === "number" ? span.end : origin + duration) - origin;
    spans.push({ kind: span.kind, label, start: Math.max(0, start), end: Math.max(0, end), title, missing });
    const warned = span.warning ? ` — ${span.warning}` : "";
    const startKind = span.kind === "screen-missing" ? "screen-missing" : `${span.kind}-start`;
    const endKind = span.kind === "screen-missing" ? "screen-resumed" : `${span.kind}-end`;
    const endLabel = { pause: "Resume", hold: "Hold end", "auto-pause": "Auto-resume", "screen-missing": "Screen back" };
    points.push({ kind: startKind, label: `${label}${warned}`, at: start, title, missing });
    if (typeof span.end === "number") {
      points.push({ kind: endKind, label: `${endLabel[span.kind] || "End"}${n}`, at: end, title });
    }
  }
  const byTime = (a, b) => a.at - b.at;
  return {
    points: points.filter((p) => Number.isFinite(p.at)).map((p) => ({ ...p, at: Math.max(0, p.at) })).sort(byTime),
    spans: spans.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start),
  };
}

// Where each marker's label goes on a bar `width` px wide. `items` are [{x, width}] in time order:
// x the px of the marker's time, width its label's. A label is centred on its time where it fits
// and moved inward at either edge (centred on the call's end, half of it stuck out past the bar,
// and on a phone it was cut off); it goes on the first row where it covers no other label, a new
// row when none is free. Returns [{left, row, tick}]: tick is the time's px inside the label,
// where its tick mark points.
export function layoutMarkers(items, width, gap = 4) {
  const rowEnds = [];
  return items.map(({ x, width: w }) => {
    const left = Math.max(0, Math.min(x - w / 2, width - w));
    let row = rowEnds.findIndex((end) => end + gap <= left);
    if (row < 0) {
      row = rowEnds.length;
      rowEnds.push(0);
    }
    rowEnds[row] = left + w;
    return { left, row, tick: Math.min(Math.max(x - left, 0), w) };
  });
}

export function decodePeaks(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) out[i] = text.charCodeAt(i);
  return out;
}

// The voice's peaks laid on the played file's timeline (0..1 floats, one per bin): the muxed file
// may start before the voice (screen first), so bins before the voice are silence, not shifted.
export function alignPeaks(channels, binsPerSecond, peaksStartedAt, fileStartedAt, fileDuration) {
  const total = Math.max(1, Math.ceil(fileDuration * binsPerSecond));
  const offset = Math.round((peaksStartedAt - fileStartedAt) * binsPerSecond);
  return channels.map((bytes) => {
    const out = new Float32Array(total);
    for (let i = Math.max(0, -offset); i < bytes.length; i += 1) {
      const at = i + offset;
      if (at >= total) break;
      out[at] = bytes[i] / 255;
    }
    return out;
  });
}

// Spans [start, end] in seconds where every channel stays below `threshold` (0..1) for at least
// `minSeconds`: what "skip silence" jumps over.
export function silentSpans(aligned, binsPerSecond, threshold = 0.02, minSeconds = 1.5) {
  const spans = [];
  const length = aligned.length ? aligned[0].length : 0;
  let from = -1;
  for (let i = 0; i <= length; i += 1) {
    const quiet = i < length && aligned.every((ch) => ch[i] < threshold);
    if (quiet && from < 0) from = i;
    if (!quiet && from >= 0) {
      if ((i - from) / binsPerSecond >= minSeconds) spans.push([from / binsPerSecond, i / binsPerSecond]);
      from = -1;
    }
  }
  return spans;
}

// Where to jump to from `t` when skipping silence: the end of the silent span `t` is in (leaving a
// quarter second of it so the next word is not clipped), or null.
export function skipTarget(spans, t) {
  for (const [start, end] of spans) {
    if (t >= start && t < end - 0.3) return Math.max(t, end - 0.25);
  }
  return null;
}

// A deep link's time: "#/recordings/<id>?t=123.4" (seconds into the played file).
export function deepLinkTime(query) {
  const t = Number(new URLSearchParams(query || "").get("t"));
  return Number.isFinite(t) && t > 0 ? t : null;
}
