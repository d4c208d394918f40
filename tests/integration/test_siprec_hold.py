"""A short SIP hold on a call whose screen is to be recorded but whose recorder is not connected
(the normal case for a full-time DN): the hold and the resume reach the voice at once — neither
waits for the screen's 5-s confirmation — so the WAV's silence and the stored pause span agree.
(Before: the resume waited behind the hold's screen wait, and 0.5 s of hold silenced ~4.8 s.)"""

from __future__ import annotations

import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.store import models
from server.store.db import session_scope
from tests.integration.siprec_peer import Dialog, SrcPeer, tone
from tests.integration.siprec_world import ADMIN, OFFERS, blue_agents, desk_login, siprec_server

ACME = "acme-siprec-offer.txt"  # the agent (1002) sends the second stream
HOLD = 0.5  # seconds between the hold and the resume re-INVITE
TOLERANCE = 0.04  # the silence in the file and the stored span agree to 40 ms


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    with siprec_server(
        tmp_path_factory.mktemp("hold") / "data",
        [ADMIN, *blue_agents(1)],
        screen_percentage=100,  # the screen is wanted: every pause waits for its recorder...
        pause_confirm_timeout_seconds=5.0,  # ...which never connects in this test
    ) as world:
        yield world


def _sdp(direction: bytes) -> bytes:
    found = re.search(rb"(v=0.*?)\r?\n--", (OFFERS / ACME).read_bytes(), re.S)
    assert found is not None
    return re.sub(rb"a=(sendonly|inactive|sendrecv)", b"a=" + direction, found.group(1)) + b"\n"


def _legs(dialog: Dialog, seconds: float) -> dict[int, tuple[np.ndarray, int]]:
    return {
        port: (tone(1000.0 if index == 1 else 440.0, seconds), pt)
        for index, (port, pt) in dialog.ports.items()
    }


def _stored(ctx: Any, call_id: str, timeout: float = 30.0) -> tuple[float, list[Any], Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.sessions) as s:
            row = s.execute(
                select(models.Interaction).where(models.Interaction.call_id == call_id)
            ).scalar_one_or_none()
            voice = [m for m in row.media if m.kind == "voice"] if row is not None else []
            if row is not None and voice and row.answered_at is not None:
                spans = [(p.started_at, p.ended_at, p.reason) for p in row.pauses]
                path: Path = ctx.storage.local_path(voice[0].storage_key)
                return row.answered_at, spans, path
        time.sleep(0.1)
    raise AssertionError(f"no stored voice for call {call_id}")


def _silent_runs(channel: np.ndarray, rate: int, min_seconds: float = 0.1) -> list[tuple[float, float]]:
    """(start, length) in seconds of every run of exact zeros longer than ``min_seconds``."""
    zero = np.concatenate(([False], channel == 0, [False]))
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [(a / rate, (b - a) / rate) for a, b in runs if (b - a) / rate >= min_seconds]


def test_short_hold_without_a_connected_recorder_silences_only_the_hold(
    server: tuple[TestClient, Any],
) -> None:
    client, ctx = server
    desk_login(client, "agent0", "1002")
    peer = SrcPeer(ctx.sip_port)
    try:
        dialog = peer.invite((OFFERS / ACME).read_bytes())
        assert dialog.status == 200
        peer.stream(_legs(dialog, 1.0))
        assert peer.reinvite(dialog, _sdp(b"inactive")).status == 200
        peer.stream(_legs(dialog, HOLD), seq0=50, ts0=8000)  # music on hold keeps flowing
        assert peer.reinvite(dialog, _sdp(b"sendonly")).status == 200
        peer.stream(_legs(dialog, 2.0), seq0=75, ts0=12000)  # RTP time goes on
        assert peer.bye(dialog).status == 200
    finally:
        peer.close()
    answered_at, spans, path = _stored(ctx, dialog.call_id)
    assert len(spans) == 1 and spans[0][1] is not None, spans
    start, end = spans[0][0] - answered_at, spans[0][1] - answered_at
    assert end - start < 2.0, f"the stored hold span is {end - start:.2f} s for a {HOLD} s hold"
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, wav.getnchannels())
    for ch in range(frames.shape[1]):
        runs = _silent_runs(frames[:, ch], rate)
        assert len(runs) == 1, f"channel {ch}: silent runs {runs}, stored span {start:.3f}+{end - start:.3f}"
        silence_at, silence_len = runs[0]
        assert abs(silence_at - start) <= TOLERANCE, (ch, silence_at, start)
        assert abs(silence_len - (end - start)) <= TOLERANCE, (
            f"channel {ch}: {silence_len:.3f} s of silence in the file, "
            f"the stored span says {end - start:.3f} s"
        )
