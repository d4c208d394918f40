"""The service's capture backend with the policy's ``endpoint_audio``: a sound device (fake,
delivering 10-ms blocks in real time from its own thread like PortAudio) gives the segments an
audio track; without a usable device the capture goes on without one; off means no audio at all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recorder_service import service
from recorder_service.clock import ClockSync
from recorder_service.endpoint_audio import BLOCK, RATE, EndpointAudio
from recorder_service.service import SessionCapture
from recorder_service.spool import Spool
from tandem_protocol.recorder_policy import RecorderPolicy


class Grabber:
    def __init__(self) -> None:
        self.count = 0

    def grab(self) -> np.ndarray:
        self.count += 1
        return np.full((48, 64, 4), (self.count * 41) % 256, dtype=np.uint8)

    def close(self) -> None:
        pass


class RealTimeStream:
    """Calls back with a block of a constant level every 10 ms until stopped."""

    def __init__(self, **kwargs: Any) -> None:
        self._callback = kwargs["callback"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        block = np.full((BLOCK, 1), 0.25, np.float32)
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += BLOCK / RATE
            time.sleep(max(0.0, next_at - time.monotonic()))
            self._callback(block, BLOCK, None, None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def close(self) -> None:
        pass


def broken_stream(**kwargs: Any) -> Any:
    raise OSError("PortAudio library not found")


def _capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: Callable[..., Any], on: bool
) -> list[Any]:
    made: list[EndpointAudio] = []

    def endpoint_audio(server_now: Callable[[], float]) -> EndpointAudio:
        made.append(EndpointAudio(server_now, stream_factory=factory))
        return made[-1]

    monkeypatch.setattr(service, "EndpointAudio", endpoint_audio)
    grabbers: list[Grabber] = []

    def grabber(policy: RecorderPolicy) -> Grabber:
        grabbers.append(Grabber())
        return grabbers[-1]

    spool = Spool(tmp_path)
    capture = SessionCapture(spool, ClockSync(time.time), "r1", grabber_factory=grabber)
    capture.start("i1", 10.0, None, RecorderPolicy(fps=10, endpoint_audio=on))
    deadline = time.monotonic() + 30
    while grabbers[-1].count < 15:
        assert time.monotonic() < deadline, "no grabs"
        time.sleep(0.02)
    assert capture.stop("i1", time.time()) == ""
    assert len(made) == (1 if on else 0)
    refs = spool.ready()
    assert refs
    return [r.path for r in refs]


def test_policy_endpoint_audio_gives_segments_an_audio_track(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = _capture(tmp_path, monkeypatch, RealTimeStream, True)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        stream = container.streams.audio[0]
        levels = [float(np.abs(f.to_ndarray()).max()) for f in container.decode(stream)]
    assert len(levels) > 10 and max(levels) > 0.2  # the device's level came through


def test_no_usable_sound_device_records_the_screen_without_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = _capture(tmp_path, monkeypatch, broken_stream, True)
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and not container.streams.audio


def test_endpoint_audio_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert RecorderPolicy().endpoint_audio is False
    (path,) = _capture(tmp_path, monkeypatch, RealTimeStream, False)
    with av.open(str(path)) as container:
        assert not container.streams.audio
