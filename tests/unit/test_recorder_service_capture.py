"""The service's capture backend: one session at a time, the policy applied to what it builds,
sequence numbers continued within the run."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np

from recorder_service.clock import ClockSync
from recorder_service.service import SessionCapture, new_run_id
from recorder_service.spool import Spool
from tandem_protocol.events import ScreenAutoPause
from tandem_protocol.recorder_policy import RecorderPolicy


class WideGrabber:
    def __init__(self) -> None:
        self.count = 0

    def grab(self) -> np.ndarray:
        self.count += 1
        return np.full((120, 640, 4), (self.count * 41) % 256, dtype=np.uint8)

    def close(self) -> None:
        pass


def test_policy_max_width_reaches_the_encoder_and_seq_continues_in_the_run(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    grabbers: list[WideGrabber] = []

    def factory(policy: RecorderPolicy) -> WideGrabber:
        grabbers.append(WideGrabber())
        return grabbers[-1]

    run = new_run_id()
    capture = SessionCapture(spool, ClockSync(time.time), run, grabber_factory=factory)
    policy = RecorderPolicy(fps=10, max_width=320)
    for _ in range(2):  # the same interaction captured twice in one run (stopped, started again)
        capture.start("i1", 10.0, None, policy)
        deadline = time.monotonic() + 20
        while grabbers[-1].count < 5:
            assert time.monotonic() < deadline, "no grabs"
            time.sleep(0.02)
        assert capture.problem("i1") == ""
        assert capture.stop("i1", time.time()) == ""
    refs = sorted(spool.ready(), key=lambda r: r.seq)
    assert [(r.run, r.seq) for r in refs] == [(run, 0), (run, 1)]
    with av.open(str(refs[0].path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 60)


class PauseRuleGrabber(WideGrabber):
    auto_pause: str | None = None


def test_auto_pause_spans_of_the_run_are_kept_to_send_again_after_a_reconnect(tmp_path: Path) -> None:
    grabbers: list[PauseRuleGrabber] = []

    def factory(policy: RecorderPolicy) -> PauseRuleGrabber:
        grabbers.append(PauseRuleGrabber())
        return grabbers[-1]

    sent: list[ScreenAutoPause] = []
    capture = SessionCapture(
        Spool(tmp_path), ClockSync(time.time), "r1", grabber_factory=factory, auto_pause_sink=sent.extend
    )
    for iid in ("i1", "i2"):
        capture.start(iid, 10.0, None, RecorderPolicy(fps=10))
        grabbers[-1].auto_pause = "card form"
        deadline = time.monotonic() + 20
        while not [m for m in sent if m.interaction_id == iid]:
            assert time.monotonic() < deadline, "no auto-pause"
            time.sleep(0.02)
        if iid == "i1":
            capture.stop(iid, time.time())  # ends the span; i2's stays open
    spans = capture.auto_pause_spans()
    assert [(s.interaction_id, s.ended_at is None) for s in spans] == [("i1", False), ("i2", True)]
    capture.stop("i2", time.time())
