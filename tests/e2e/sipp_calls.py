"""The common set-up of the SIPp call tests (plain, tolerance, SIPREC): a module's server, a call's
work folder with the tones SIPp sends, and the checks every one of them makes on a recording."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sipp_media import Samples, dominant_hz, rms_db, write_tone
from tests.e2e.sipp_tools import Recorder, recorder

TONE_SECONDS = 20  # longer than any call of these tests: SIPp never runs out of audio


def recorder_fixture(
    name: str, dn: str = "1001", **settings: str
) -> Callable[[pytest.TempPathFactory], Iterator[Recorder]]:
    """A module-scoped fixture: one server (``sipp_tools.recorder``, with ``settings`` as its
    TANDEM_SERVER_* environment) for the module's calls, its data in a fresh ``name`` folder."""

    @pytest.fixture(scope="module")
    def rec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
        with recorder(tmp_path_factory.mktemp(name), dn, **settings) as r:
            yield r

    return rec


def tone_work(tmp_path: Path, name: str, *freqs: float) -> Path:
    """A fresh folder for one SIPp call: ``stream<N>.ul`` is the tone of ``freqs[N-1]`` (the first
    for ``rtp_stream``, the second for a SIPREC call's second leg)."""
    work = tmp_path / name
    work.mkdir()
    for n, freq in enumerate(freqs, start=1):
        write_tone(work / f"stream{n}.ul", freq, TONE_SECONDS)
    return work


def call_length(inter: dict[str, Any]) -> float:
    """From the answer to the end: how long the stored voice file must last."""
    return float(inter["ended_at"]) - float(inter["answered_at"])


def assert_tone(x: Samples, freq: float, what: str) -> None:
    """``x`` is loud and its strongest frequency is ``freq`` (to 5 Hz)."""
    assert rms_db(x) > -20, f"{what}: no audio ({rms_db(x):.1f} dBFS)"
    found = dominant_hz(x, 8000)
    assert abs(found - freq) < 5, f"{what}: {found:.0f} Hz where {freq:g} Hz was sent"
