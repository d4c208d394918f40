"""Issue 14: A/V sync measured, not assumed, on a real end-to-end call.

The agent screen (Xvfb) shows the server-time pattern; the caller (SIPp) sends PCMU that beeps
(1 kHz, 200 ms) every 2 s. The beeps' true server times come from outside the server: a
kernel-stamped capture of the RTP on ``lo`` (tests/e2e/rtp_capture.py — the sender's sample
clock recovered from the send stamps). The server records the call and the screen, muxes them,
and the sync checker (``python -m server.media.sync_check``) reads the muxed file: for each beep,
the audio PTS of its onset against the video PTS at which the picture shows its server time.

Asserted: at least 10 beeps measured and the worst |skew| ≤ 40 ms, the pattern window's own lag
in redrawing (from its draw log) aside — the checker's figure takes the drawn time, the earliest
a frame's content can be from, and a beep where the window stalled is not counted. Nothing else
here depends on timing: the skew is read from stamps in the file and on the wire, not from a wall clock, so a
loaded machine changes the figure only as much as it really delays the recording.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server.media import sync_check
from tests.e2e.harness import ROOT
from tests.e2e.rtp_capture import Beep, capture_lo, stream_beeps
from tests.e2e.screen_call import run_call, screen_stack
from tests.e2e.time_pattern import draw_log

pytestmark = pytest.mark.e2e

CALL_SECONDS = 40.0
BEEP_EVERY = 2.0  # s; the RTP stream loops a file of this length
BEEP_SECONDS = 0.2
MAX_SKEW = 0.040
MIN_BEEPS = 10
NEAR_PAUSE = 0.5  # s around the pause (voice and screen both cut there) in which beeps are not counted


def beep_wav(path: Path) -> None:
    """8 kHz μ-law WAV, BEEP_EVERY long (a whole number of 20 ms packets, so the loop is
    seamless): a -6 dBFS 1 kHz beep at its start, silence after."""
    rate = 8000
    t = np.arange(round(BEEP_EVERY * rate)) / rate
    pcm = np.where(t < BEEP_SECONDS, 16384 * np.sin(2 * np.pi * 1000 * t), 0).astype("<i2")
    raw = path.with_suffix(".raw")
    pcm.tofile(raw)
    sox = ["sox", "-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1", str(raw)]
    subprocess.run([*sox, "-e", "u-law", str(path)], check=True)


def server_rtp_ports(pid: int) -> range:
    """The RTP port range the test server was started with (harness.server_env)."""
    env = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
    )
    return range(int(env["TANDEM_SERVER_RTP_PORT_MIN"]), int(env["TANDEM_SERVER_RTP_PORT_MAX"]) + 1)


def test_worst_av_skew_of_a_real_call_is_within_40_ms(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        raise AssertionError("the RTP capture needs root (an AF_PACKET socket on lo)")
    with screen_stack(tmp_path, fps=5, segment_seconds=10) as stack:
        beep_wav(stack.work / "speech.wav")  # what the call scenario's rtp_stream plays
        ports = server_rtp_ports(stack.server.proc.pid)
        with capture_lo(ports) as capture:
            run = run_call(
                stack,
                call_seconds=CALL_SECONDS,
                pause_after=CALL_SECONDS - 5,
                pause_seconds=1,
                acw_seconds=1,
            )
        iid = str(run.interaction["id"])
        pattern_log = stack.pattern_log
    assert capture.dropped == 0, f"the capture socket dropped {capture.dropped} packets"
    beeps = stream_beeps(capture.packets, ports)
    (pause,) = run.interaction["pauses"]
    p0, p1 = float(pause["started_at"]), float(pause["ended_at"])
    usable = [b for b in beeps if not p0 - NEAR_PAUSE <= b.server_time <= p1 + NEAR_PAUSE]
    muxed = tmp_path / f"{iid}-muxed.mp4"
    beeps_json = tmp_path / "beeps.json"
    beeps_json.write_text(json.dumps({"beeps": [b.server_time for b in usable]}))

    times = [b.server_time for b in usable]
    # The picture showing server time d was drawn at d and was on screen until the next one
    # replaced it (the pattern window's draw log): the server time of a frame's content lies
    # between. Read with the drawn times (the checker's figure, its earliest) and with the
    # replacement times (its latest), each beep's skew lies between the two readings; the
    # window is late to redraw on a loaded machine (tens of ms), which is no error of ours.
    report = sync_check.check(muxed, times)
    draws = draw_log(pattern_log)
    shown_until = [
        (pts, replaced)
        for pts, drawn in sync_check.read_video_frames(muxed)
        if drawn is not None and (replaced := draws.replaced_at(round(drawn * 1000))) is not None
    ]
    latest = sync_check.check(muxed, times, clock=sync_check.video_clock(shown_until))
    print("\n".join(report.lines()))
    print("with each picture's replacement time:", latest.lines()[-1])
    print(sender_lateness(usable))
    spans = [
        (lo, hi)
        for b, late in zip(report.beeps, latest.beeps, strict=True)
        if (lo := b.skew) is not None and (hi := late.skew) is not None
    ]
    # Where the window stalled (a picture on screen for more than MAX_SKEW), the picture cannot
    # tell the time finely enough: that beep is not counted rather than passed on a wide span.
    sharp = [(lo, hi) for lo, hi in spans if hi - lo <= MAX_SKEW]
    print(f"{len(spans) - len(sharp)} beeps left out: the pattern window stalled around them")
    assert len(sharp) >= MIN_BEEPS, [f"{lo * 1000:+.1f}..{hi * 1000:+.1f} ms" for lo, hi in spans]
    off = [min(abs(lo), abs(hi)) if lo * hi > 0 else 0.0 for lo, hi in sharp]  # the span's distance from 0
    assert max(off) <= MAX_SKEW, [f"{lo * 1000:+.1f}..{hi * 1000:+.1f} ms" for lo, hi in sharp]

    # The same through the command line, as a person would run it (drawn times only).
    worst = report.worst
    assert worst is not None
    cmd = [sys.executable, "-m", "server.media.sync_check", str(muxed), "--beeps-json", str(beeps_json)]
    cmd += ["--max-skew-ms", str(MAX_SKEW * 1000), "--min-beeps", str(MIN_BEEPS)]
    cli = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cli.returncode == (0 if abs(worst) <= MAX_SKEW else 1), cli.stdout + cli.stderr
    assert f"worst skew {worst * 1000:+.1f} ms" in cli.stdout


def sender_lateness(beeps: list[Beep]) -> str:
    """How late SIPp sent each beep's packet against its own sample clock (for the log: this is
    why the truth is the sender's clock, not the packet's send stamp)."""
    late = [(b.packet_sent - b.server_time) * 1000 for b in beeps]
    if not late:
        return "no beeps"
    median, worst = statistics.median(late), max(late)
    lead = beeps[0].start_lead * 1000
    return (
        f"sender lateness of the beep packets: median {median:.2f} ms, worst {worst:.2f} ms; its first "
        f"packets {lead:+.1f} ms ahead of its clock (the voice's anchor: expect a skew of {-lead:+.1f} ms)"
    )
