"""The player at one hour (issue 14): peaks compute time and size for a 1-h two-channel voice WAV,
then Chromium against a running server on a 1-h recording: open (route → first video frame
shown) and seek (currentTime set → the new frame shown), p50/p95 in ms.

    .venv/bin/python -m benchmarks.playback.player_bench --work /tmp/player-bench
    # old keyframe rule (by time only) against the recorder's, alternating in one session:
    .venv/bin/python -m benchmarks.playback.player_bench --work /tmp/player-bench --ab 2

Targets: peaks <= 1 s to compute and <= 100 KB to load; open <= 100 ms; seek p95 <= 150 ms.
The media (``benchmarks.playback.hour_media``) are made once under --work and reused (a few
minutes here): a 1-h stereo voice WAV (and its AAC), and the hour's screen as the recorder makes
it — 60 segments of 60 s written by ``recorder_service.encoder.ScreenEncoder`` with its own
keyframe rule (``KEYFRAME_SECONDS``, ``KEYFRAME_FRAMES``; ``--keyframe-seconds`` /
``--keyframe-frames`` override it), 5 fps at 1280x720 with every frame a change (typing; the
worst case for seeks), muxed with the voice by the server's own segment mux. Seeks are grouped
by where they land in the file's real GOPs (keyframes read from the file).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.playback.hour_media import (
    HOUR,
    gop_place,
    make_screen,
    make_voice,
    video_times,
)
from benchmarks.playback.hour_media import speech_like as speech_like  # mux_bench imports it from here
from recorder_service.encoder import KEYFRAME_FRAMES, KEYFRAME_SECONDS
from server.media import peaks
from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from server.store.storage import sha256_file


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_peaks(wav: Path, runs: int) -> dict[str, Any]:
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        with wav.open("rb") as fh:
            result = peaks.compute(fh, wav.stat().st_size)
        times.append(time.perf_counter() - start)
    assert result is not None
    loaded = len(
        json.dumps({"channels": [{"peaks": base64.b64encode(c).decode()} for c in result.channels]}).encode()
    )
    return {
        "wav_mb": round(wav.stat().st_size / 1e6, 1),
        "compute_s_min": round(min(times), 3),
        "compute_s_median": round(statistics.median(times), 3),
        "compute_s_max": round(max(times), 3),
        "derived_file_bytes": len(peaks.encode(result)),
        "json_bytes": loaded,
    }


def seed(data_dir: Path, wav: Path, mp4: Path) -> None:
    t0 = time.time() - 2 * HOUR
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    with session_scope(sessions) as s:
        agent = s.query(models.User).filter_by(username="agent1").one()
        s.add(
            models.Interaction(
                id="hour",
                call_id="hour",
                dn="1001",
                agent_id=agent.id,
                caller="+15550100",
                callee="1001",
                state="done",
                started_at=t0,
                answered_at=t0,
                ended_at=t0 + HOUR,
                acw_ended_at=t0 + HOUR + 30,
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="complete",
                screen_state="complete",
                media_started_at=t0,
            )
        )
        s.flush()
        for kind, source, ctype in (("muxed", mp4, "video/mp4"), ("voice", wav, "audio/wav")):
            stored = data_dir / "storage" / "bench" / source.name
            stored.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, stored)
            s.add(
                models.MediaFile(
                    interaction_id="hour",
                    kind=kind,
                    storage_key=f"bench/{source.name}",
                    content_type=ctype,
                    size=stored.stat().st_size,
                    sha256=sha256_file(stored),
                    started_at=t0,
                    duration=HOUR,
                    created_at=t0,
                )
            )


OPEN_JS = """() => new Promise((resolve, reject) => {
  const box = document.getElementById('player-box');
  const start = performance.now();
  const timer = setTimeout(() => reject(new Error('no frame within 20 s')), 20000);
  const seen = new MutationObserver(() => {
    const v = document.getElementById('player');
    if (!v) return;
    seen.disconnect();
    const element = performance.now() - start;
    let meta = null;
    let data = null;
    v.addEventListener('loadedmetadata', () => { meta = performance.now() - start; }, {once: true});
    v.addEventListener('loadeddata', () => { data = performance.now() - start; }, {once: true});
    v.requestVideoFrameCallback(() => {
      clearTimeout(timer);
      // Where the time went: each request of this open (Resource Timing, same clock as start).
      const requests = performance.getEntriesByType('resource')
        .filter((e) => e.startTime >= start && e.name.includes('/api/interactions/hour'))
        .map((e) => [new URL(e.name).pathname.replace('/api/interactions/hour', '') || '/',
                     e.startTime - start, e.responseStart - start, e.responseEnd - start]);
      performance.clearResourceTimings();
      resolve([element, meta, performance.now() - start, requests, data]);
    });
  });
  seen.observe(box, {childList: true});
  location.hash = '#/recordings/hour';
})"""

SEEK_JS = """(target) => new Promise((resolve, reject) => {
  const v = document.getElementById('player');
  const start = performance.now();
  const timer = setTimeout(() => reject(new Error('no frame within 20 s')), 20000);
  let seekedAt = null;
  v.addEventListener('seeked', () => { seekedAt = performance.now() - start; }, {once: true});
  v.requestVideoFrameCallback(() => {
    clearTimeout(timer); resolve([seekedAt, performance.now() - start]);
  });
  v.currentTime = target;
})"""


def bench_browser(
    wav: Path, mp4: Path, work: Path, opens: int, seeks: int, seed_seeks: int = 3
) -> dict[str, Any]:
    from tests.e2e.browser import chromium, log_in, new_page, wait_recordings_loaded
    from tests.e2e.harness import run_server

    frame_times, key_times = video_times(mp4)
    gaps = [b - a for a, b in itertools.pairwise(key_times)]
    data = work / "server"
    shutil.rmtree(data, ignore_errors=True)
    with run_server(data, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server, chromium() as browser:
        seed(server.data_dir, wav, mp4)
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            # The first open computes the peaks (once per recording): timed apart.
            start = time.perf_counter()
            page.goto(f"{server.url}/#/recordings/hour")
            page.wait_for_function("() => window.tandemPlayer && window.tandemPlayer.wavesurfer")
            first_with_peaks = time.perf_counter() - start
            peaks_bytes = page.evaluate(
                "() => fetch('/api/interactions/hour/peaks')"
                ".then((r) => r.arrayBuffer()).then((b) => b.byteLength)"
            )
            open_ms, element_ms, meta_ms = [], [], []
            # ms from the route set to each request's start / first byte / end (the first of a kind)
            phases: dict[str, list[float]] = {}
            media_requests: list[int] = []
            for _ in range(opens):
                page.evaluate("() => { location.hash = '#/recordings'; }")
                # Opened as a user does: from the list, once it shows the recording's row.
                wait_recordings_loaded(page)
                element, meta, framed, requests, data = page.evaluate(OPEN_JS)
                phases.setdefault("loadeddata", []).append(data if data is not None else framed)
                for path, began, first_byte, done in requests:
                    name = "summary" if path == "/" else path.strip("/").replace("/", "_")
                    if path == "/" or path.startswith("/media/"):
                        phases.setdefault(f"{name}_start", []).append(began)
                        phases.setdefault(f"{name}_first_byte", []).append(first_byte)
                        phases.setdefault(f"{name}_end", []).append(done)
                media_requests.append(sum(1 for r in requests if r[0].startswith("/media/")))
                element_ms.append(element)
                meta_ms.append(meta if meta is not None else framed)
                open_ms.append(framed)
            page.wait_for_function("() => window.tandemPlayer && window.tandemPlayer.wavesurfer")
            rng = random.Random(seed_seeks)
            seek_frame, seek_seeked = [], []
            near: list[float] = []  # by where the target lies in its GOP (the file's keyframes)
            far: list[float] = []
            decoded_counts: list[int] = []
            slow: list[tuple[int, float, int]] = []  # (ms, seconds after the keyframe, frames decoded)
            for _ in range(seeks):
                target = rng.uniform(0, HOUR - 5)
                seeked, framed = page.evaluate(SEEK_JS, target)
                after_key, decoded, place = gop_place(target, frame_times, key_times)
                (near if place < 0.25 else far if place >= 0.75 else []).append(framed)
                seek_frame.append(framed)
                decoded_counts.append(decoded)
                slow.append((round(framed), round(after_key, 1), decoded))
                seek_seeked.append(seeked if seeked is not None else framed)
    return {
        "first_open_with_peaks_s": round(first_with_peaks, 2),
        "peaks_response_bytes": peaks_bytes,
        "open_api_ms_p50": round(statistics.median(element_ms), 1),
        "open_metadata_ms_p50": round(statistics.median(meta_ms), 1),
        "open_ms_p50": round(statistics.median(open_ms), 1),
        "open_phases_ms_p50": {k: round(statistics.median(v), 1) for k, v in phases.items()},
        "open_media_requests_p50": statistics.median(media_requests) if media_requests else None,
        "open_ms_p95": round(pct(open_ms, 0.95), 1),
        "open_ms_max": round(max(open_ms), 1),
        "seek_frame_ms_p50": round(statistics.median(seek_frame), 1),
        "seek_frame_ms_p95": round(pct(seek_frame, 0.95), 1),
        "seek_seeked_ms_p95": round(pct(seek_seeked, 0.95), 1),
        "seek_ms_max": round(max(seek_frame), 1),
        "seek_ms_median_first_quarter_of_gop": round(statistics.median(near), 1) if near else None,
        "seek_ms_median_last_quarter_of_gop": round(statistics.median(far), 1) if far else None,
        "slowest_seeks_ms_s_after_keyframe_frames_decoded": sorted(slow, reverse=True)[:6],
        "seek_frames_decoded_median_max": [statistics.median(decoded_counts), max(decoded_counts)],
        "file": {
            "name": mp4.name,
            "mb": round(mp4.stat().st_size / 1e6, 1),
            "frames": len(frame_times),
            "keyframes": len(key_times),
            "keyframe_gap_s_median_max": [round(statistics.median(gaps), 1), round(max(gaps), 1)]
            if gaps
            else None,
        },
        "opens": opens,
        "seeks": seeks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/player-bench"))
    parser.add_argument("--peaks-runs", type=int, default=5)
    parser.add_argument("--opens", type=int, default=20)
    parser.add_argument("--seeks", type=int, default=60)
    parser.add_argument("--no-browser", action="store_true", help="peaks only")
    parser.add_argument(
        "--keyframe-seconds",
        type=float,
        default=KEYFRAME_SECONDS,
        help="the recorder's keyframe interval for the generated file (its default: the encoder's)",
    )
    parser.add_argument(
        "--keyframe-frames",
        type=int,
        default=KEYFRAME_FRAMES,
        help="a keyframe also after this many frames in the generated file (the encoder's default; "
        "0: by time only, the rule before issue 14)",
    )
    parser.add_argument(
        "--ab",
        type=int,
        metavar="ROUNDS",
        default=0,
        help="alternate the old rule (--keyframe-frames 0) and the given one, ROUNDS times each",
    )
    parser.add_argument(
        "--muxed",
        type=Path,
        help="play this muxed file instead of the generated one (same voice WAV for the peaks)",
    )
    args = parser.parse_args()
    wav, _ = make_voice(args.work)
    print("peaks, 1 h stereo 8 kHz:", json.dumps(bench_peaks(wav, args.peaks_runs)), flush=True)
    if args.no_browser:
        return
    if args.ab:
        files = {
            "old (time only)": make_screen(args.work, args.keyframe_seconds, 0),
            f"new (+ {args.keyframe_frames} frames)": make_screen(
                args.work, args.keyframe_seconds, args.keyframe_frames
            ),
        }
        for r in range(args.ab):
            for label, mp4 in files.items():
                result = bench_browser(wav, mp4, args.work, args.opens, args.seeks, seed_seeks=3 + r)
                result["load_average"] = [round(x, 1) for x in os.getloadavg()]
                print(f"round {r + 1}, {label}:", json.dumps(result), flush=True)
        return
    mp4 = args.muxed or make_screen(args.work, args.keyframe_seconds, args.keyframe_frames)
    print("chromium, 1 h recording:", json.dumps(bench_browser(wav, mp4, args.work, args.opens, args.seeks)))


if __name__ == "__main__":
    main()
