"""Controller state machine with fake capture and upload queue (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from recorder_service.controller import Controller, Mode
from recorder_service.errors import CaptureError
from tandem_protocol.events import Envelope, ScreenState
from tandem_protocol.recorder_policy import RecorderPolicy


class FakeCapture:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_start = False
        self.stop_problem = ""
        self.pause_detail = ""
        self.quota_problem = ""
        self.policies: list[RecorderPolicy] = []

    def start(self, interaction_id: str, fps: float, paused_at: float | None, policy: RecorderPolicy) -> None:
        if self.fail_start:
            raise CaptureError("no display")
        self.calls.append(("start", interaction_id, fps, paused_at))
        self.policies.append(policy)

    def pause(self, interaction_id: str, at: float) -> str:
        self.calls.append(("pause", interaction_id, at))
        return self.pause_detail

    def resume(self, interaction_id: str, at: float) -> None:
        self.calls.append(("resume", interaction_id, at))

    def stop(self, interaction_id: str, at: float) -> str:
        self.calls.append(("stop", interaction_id, at))
        return self.stop_problem

    def problem(self, interaction_id: str) -> str:
        return self.quota_problem


class FakeUploads:
    def __init__(self) -> None:
        self.queued: list[str] = []

    def enqueue(self, interaction_id: str) -> None:
        self.queued.append(interaction_id)


@pytest.fixture
def rig() -> tuple[Controller, FakeCapture, FakeUploads]:
    cap, up = FakeCapture(), FakeUploads()
    return Controller(cap, up, lambda: 1000.0, default_fps=5.0), cap, up


def cmd(kind: str, iid: str = "i1", at: float = 100.0, **extra: Any) -> Envelope:
    return Envelope(type=kind, data={"interaction_id": iid, "at": at, **extra})


def call(
    iid: str = "i1",
    *,
    phase: str = "active",
    screen: str = "recording",
    paused: bool = False,
    pauses: list[dict[str, Any]] | None = None,
) -> Envelope:
    info = {
        "interaction_id": iid,
        "call_id": "c",
        "dn": "1001",
        "caller": "a",
        "callee": "b",
        "phase": phase,
        "voice": "recording",
        "screen": screen,
        "paused": paused,
        "started_at": 1.0,
        "pauses": pauses or [],
    }
    return Envelope(type="state", data={"agent": {}, "call": info})


def mode(ctl: Controller) -> Mode:
    """``ctl.mode`` read afresh: after ``assert mode(ctl) == X`` mypy takes it to stay X."""
    return ctl.mode


def last_call(cap: FakeCapture) -> tuple[Any, ...]:
    """The last capture call, read afresh (mypy narrows ``cap.calls[-1]`` after an assert on it)."""
    return cap.calls[-1]


def states(acks: list[Any]) -> list[tuple[str, str]]:
    return [(a.interaction_id, a.state.value) for a in acks]


def test_full_cycle_and_acks(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, up = rig
    assert states(ctl.handle(cmd("screen.start", fps=2))) == [("i1", "recording")]
    assert mode(ctl) == Mode.CAPTURING
    assert states(ctl.handle(cmd("screen.pause", at=110.0))) == [("i1", "paused")]
    assert mode(ctl) == Mode.PAUSED
    assert states(ctl.handle(cmd("screen.resume", at=120.0))) == [("i1", "recording")]
    acks = ctl.handle(cmd("screen.stop", at=130.0))
    assert states(acks) == [("i1", "stopped")] and acks[0].at == 1000.0
    assert mode(ctl) == Mode.IDLE and up.queued == ["i1"]
    assert cap.calls == [
        ("start", "i1", 2.0, None),
        ("pause", "i1", 110.0),
        ("resume", "i1", 120.0),
        ("stop", "i1", 130.0),
    ]


def test_duplicates_are_acked_not_reapplied(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, up = rig
    for _ in range(2):
        assert states(ctl.handle(cmd("screen.start"))) == [("i1", "recording")]
    for _ in range(2):
        assert states(ctl.handle(cmd("screen.pause"))) == [("i1", "paused")]
    for _ in range(2):
        assert states(ctl.handle(cmd("screen.stop"))) == [("i1", "stopped")]
    assert states(ctl.handle(cmd("screen.start"))) == [("i1", "stopped")]  # late start: no new file
    assert [c[0] for c in cap.calls] == ["start", "pause", "stop"]
    assert up.queued == ["i1"]


def test_pause_before_start_starts_paused(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, _ = rig
    assert states(ctl.handle(cmd("screen.pause", at=50.0))) == [("i1", "paused")]
    assert cap.calls == []
    assert states(ctl.handle(cmd("screen.start"))) == [("i1", "paused")]
    assert cap.calls == [("start", "i1", 5.0, 50.0)] and mode(ctl) == Mode.PAUSED
    assert states(ctl.handle(cmd("screen.resume", at=60.0))) == [("i1", "recording")]


def test_stop_while_paused(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, up = rig
    ctl.handle(cmd("screen.start"))
    ctl.handle(cmd("screen.pause", at=10.0))
    assert states(ctl.handle(cmd("screen.stop", at=20.0))) == [("i1", "stopped")]
    assert cap.calls[-1] == ("stop", "i1", 20.0) and up.queued == ["i1"] and mode(ctl) == Mode.IDLE


def test_acw_ended_stops(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, _ = rig
    ctl.handle(cmd("screen.start"))
    env = call(phase="done", screen="recording")
    env.data["call"]["acw_ended_at"] = 321.0
    acks = ctl.handle(Envelope(type="acw.ended", data=env.data["call"]))
    assert states(acks) == [("i1", "stopped")] and cap.calls[-1] == ("stop", "i1", 321.0)


def test_state_resync(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, _ = rig
    assert states(ctl.handle(call(screen="requested"))) == [("i1", "recording")]
    assert states(ctl.handle(call(screen="recording"))) == [("i1", "recording")]  # no second start
    acks = ctl.handle(call(screen="paused", paused=True, pauses=[{"started_at": 77.0}]))
    assert states(acks) == [("i1", "paused")] and cap.calls[-1] == ("pause", "i1", 77.0)
    assert states(ctl.handle(call(screen="recording", phase="acw"))) == [("i1", "recording")]
    assert last_call(cap)[0] == "resume"
    assert states(ctl.handle(Envelope(type="state", data={"agent": {}, "call": None}))) == [("i1", "stopped")]
    assert mode(ctl) == Mode.IDLE
    assert ctl.handle(Envelope(type="state", data={"agent": {}, "call": None})) == []


def test_state_for_new_call_stops_old_and_paused_call_starts_paused(
    rig: tuple[Controller, FakeCapture, FakeUploads],
) -> None:
    ctl, cap, up = rig
    ctl.handle(cmd("screen.start", iid="old"))
    acks = ctl.handle(call("new", screen="paused", paused=True, pauses=[{"started_at": 5.0}]))
    assert states(acks) == [("old", "stopped"), ("new", "paused")]
    assert cap.calls[-1] == ("start", "new", 5.0, 5.0) and up.queued == ["old"]


def test_state_with_screen_off_or_uploaded_does_nothing(
    rig: tuple[Controller, FakeCapture, FakeUploads],
) -> None:
    ctl, cap, _ = rig
    assert ctl.handle(call(screen="off")) == []
    assert ctl.handle(call(screen="uploaded", phase="done")) == []
    assert cap.calls == []


def test_policy_from_start_reaches_the_capture_invalid_one_falls_back_and_says_so(
    rig: tuple[Controller, FakeCapture, FakeUploads],
) -> None:
    ctl, cap, _ = rig
    acks = ctl.handle(cmd("screen.start", policy={"segment_seconds": 20, "fps": 2}))
    assert states(acks) == [("i1", "recording")] and acks[0].detail == ""
    assert cap.policies[-1].segment_seconds == 20 and last_call(cap)[2] == 2.0
    ctl.handle(cmd("screen.stop"))
    acks = ctl.handle(cmd("screen.start", iid="i2", policy={"segment_seconds": 1}))
    assert states(acks) == [("i2", "recording")]
    assert "invalid recorder policy" in acks[0].detail and "segment_seconds" in acks[0].detail
    assert cap.policies[-1] == RecorderPolicy() and last_call(cap)[2] == 5.0


def test_pushed_policy_goes_to_the_uploader_now_and_to_the_next_capture() -> None:
    cap, up = FakeCapture(), FakeUploads()
    seen: list[RecorderPolicy] = []
    ctl = Controller(cap, up, lambda: 1.0, default_fps=5.0, on_policy=seen.append)
    assert ctl.handle(Envelope(type="recorder.policy", data={"bandwidth_kbps": 512, "fps": 2})) == []
    assert [p.bandwidth_kbps for p in seen] == [512]
    ctl.handle(Envelope(type="recorder.policy", data={"fps": 1000}))  # invalid: logged, ignored
    assert len(seen) == 1
    ctl.handle(cmd("screen.start"))  # a start without a policy: the pushed one
    assert cap.policies[-1].bandwidth_kbps == 512


def test_late_pause_ack_says_what_was_cut(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, _ = rig
    ctl.handle(cmd("screen.start"))
    cap.pause_detail = "cut 7 frame(s) encoded after the pause"
    acks = ctl.handle(cmd("screen.pause", at=50.0))
    assert states(acks) == [("i1", "paused")] and acks[0].detail == cap.pause_detail


def test_a_capture_stopped_by_the_spool_quota_is_acked_failed_not_recording(
    rig: tuple[Controller, FakeCapture, FakeUploads],
) -> None:
    ctl, cap, _ = rig
    ctl.handle(cmd("screen.start"))
    cap.quota_problem = "spool_full: free disk 4.0 % is below the 10 % minimum"
    acks = ctl.handle(cmd("screen.start"))  # a repeated start, or the resync on reconnect
    assert states(acks) == [("i1", "failed")] and acks[0].detail.startswith("spool_full:")
    assert states(ctl.handle(call("i1"))) == [("i1", "failed")]
    cap.quota_problem = ""
    assert states(ctl.handle(cmd("screen.start"))) == [("i1", "recording")]


def test_spool_notices_go_with_the_next_ack_of_their_interaction() -> None:
    cap, up = FakeCapture(), FakeUploads()
    ctl = Controller(cap, up, lambda: 1.0, default_fps=5.0, notices=[("i1", "segment r.000001 quarantined")])
    assert ctl.handle(cmd("screen.start", iid="other"))[0].detail == ""
    ctl.handle(cmd("screen.stop", iid="other"))
    acks = ctl.handle(call("i1"))  # a crashed run's interaction still going on: capture resumes
    assert states(acks) == [("i1", "recording")] and "quarantined" in acks[0].detail
    assert ctl.handle(call("i1"))[0].detail == ""


def test_done_from_spool_is_not_restarted() -> None:
    cap, up = FakeCapture(), FakeUploads()
    ctl = Controller(cap, up, lambda: 1.0, default_fps=5.0, done=[("i1", ScreenState.STOPPED)])
    assert states(ctl.handle(call("i1"))) == [("i1", "stopped")]
    assert cap.calls == []


def test_failures_are_acked_as_failed(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, up = rig
    cap.fail_start = True
    acks = ctl.handle(cmd("screen.start"))
    assert states(acks) == [("i1", "failed")] and "no display" in acks[0].detail and mode(ctl) == Mode.IDLE
    cap.fail_start = False
    ctl.handle(cmd("screen.start"))
    cap.stop_problem = "no frame was captured"
    assert states(ctl.handle(cmd("screen.stop"))) == [("i1", "failed")] and up.queued == []


def test_malformed_commands_are_counted_not_raised(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, _ = rig
    assert ctl.handle(Envelope(type="screen.start", data={"at": "soon"})) == []
    assert ctl.handle(Envelope(type="state", data={"call": "nope"})) == []
    assert ctl.handle(Envelope(type="call.started", data={})) == []  # not for the recorder
    assert ctl.bad_messages == 2 and cap.calls == []


def test_shutdown_finalises_without_upload(rig: tuple[Controller, FakeCapture, FakeUploads]) -> None:
    ctl, cap, up = rig
    ctl.handle(cmd("screen.start"))
    assert states(ctl.shutdown()) == [("i1", "stopped")]
    assert cap.calls[-1][0] == "stop" and up.queued == []
