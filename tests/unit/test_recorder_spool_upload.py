"""Spool manifests, crash close-out and the uploader's retry rules (httpx MockTransport)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from recorder_service.encoder import ScreenEncoder
from recorder_service.errors import ManifestError, SpoolError
from recorder_service.spool import Manifest, Spool, SpoolState
from recorder_service.uploader import Uploader, Verdict, classify

Handler = Callable[[httpx.Request], httpx.Response]


def _capture(spool: Spool, iid: str, frames: int = 30, started_at: float = 500.0) -> None:
    spool.write(Manifest(iid, SpoolState.CAPTURING, started_at=started_at))
    enc = ScreenEncoder(spool.media_path(iid), fps=5)
    for i in range(frames):
        enc.encode(np.full((48, 64, 4), i * 8, dtype=np.uint8), i * 200)
    enc.close()


def test_manifest_roundtrip_and_validation(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    m = Manifest("abc-1", SpoolState.FINISHED, started_at=1.5, attempts=2, sha256="00", size=9)
    spool.write(m)
    assert spool.read("abc-1") == m
    assert not list(spool.root.glob("*.tmp"))
    assert (spool.root.stat().st_mode & 0o777) == 0o700
    with pytest.raises(ManifestError):
        Manifest.from_json('{"interaction_id": "x", "state": "exploded"}')
    with pytest.raises(ManifestError):
        Manifest.from_json("[1]")
    with pytest.raises(SpoolError):
        spool.media_path("../etc/passwd")
    (spool.root / "junk.json").write_text("{", encoding="utf-8")
    assert [x.interaction_id for x in spool.manifests()] == ["abc-1"]


def test_close_out_crashed_truncates_and_finishes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _capture(spool, "i1")
    media = spool.media_path("i1")
    whole = media.stat().st_size
    with media.open("r+b") as fh:
        fh.truncate(whole - 500)
    m = spool.close_out_crashed("i1")
    assert m.state == SpoolState.FINISHED and m.size is not None and m.size < whole - 500
    assert m.sha256 == hashlib.sha256(media.read_bytes()).hexdigest()
    spool.write(Manifest("i2", SpoolState.CAPTURING))
    spool.media_path("i2").write_bytes(b"")
    assert spool.close_out_crashed("i2").state == SpoolState.FAILED


OURS = "ab" * 32


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (201, b'{"key": "k", "size": 1}', Verdict.DONE),
        # 409 already_uploaded is done only when the server stores this very file
        (
            409,
            b'{"error": "already_uploaded", "message": "m", "sha256": "' + OURS.encode() + b'"}',
            Verdict.DONE,
        ),
        (
            409,
            b'{"error": "already_uploaded", "message": "m", "sha256": "' + b"cd" * 32 + b'"}',
            Verdict.CONFLICT,
        ),
        (409, b'{"error": "already_uploaded", "message": "m"}', Verdict.CONFLICT),
        (409, b'{"error": "upload_in_progress", "message": "later"}', Verdict.RETRY),
        (409, b'{"error": "screen_not_requested", "message": "no"}', Verdict.FINAL),
        (403, b'{"error": "recorder_token_required", "message": "no"}', Verdict.FINAL),
        (400, b'{"error": "checksum_mismatch", "message": "bad"}', Verdict.FINAL),
        (422, b'{"error": "not_mp4", "message": "bad"}', Verdict.FINAL),
        (401, b'{"error": "invalid_token"}', Verdict.RETRY_SLOW),
        (408, b"", Verdict.RETRY),
        (429, b"", Verdict.RETRY),
        (503, b"<html>", Verdict.RETRY),
    ],
)
def test_classify(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(status, body, OURS).verdict == verdict


def _uploader(
    spool: Spool, handler: Handler, done: dict[str, SpoolState], event: threading.Event
) -> Uploader:
    def finished(iid: str, state: SpoolState) -> None:
        done[iid] = state
        event.set()

    return Uploader(
        spool, "http://srv", lambda: "tok", transport=httpx.MockTransport(handler), on_finished=finished
    )


def test_upload_retries_5xx_then_succeeds_and_recovers_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recorder_service.uploader.backoff_delay", lambda *a, **k: 0.05)
    spool = Spool(tmp_path)
    _capture(spool, "i1")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, json={"error": "busy", "message": "later"})
        body = request.read()
        assert request.headers["x-tandem-sha256"] == hashlib.sha256(body).hexdigest()
        return httpx.Response(201, json={"key": "k", "size": len(body)})

    done: dict[str, SpoolState] = {}
    event = threading.Event()
    up = _uploader(spool, handler, done, event)
    assert up.requeue_spool() == ["i1"]  # manifest said capturing: closed out, queued
    up.start()
    try:
        assert event.wait(10)
    finally:
        up.stop()
    assert done == {"i1": SpoolState.UPLOADED}
    req = seen[-1]
    assert req.method == "PUT" and req.url.path == "/api/interactions/i1/screen"
    assert req.headers["authorization"] == "Bearer tok"
    assert req.headers["content-type"] == "video/mp4"
    assert float(req.headers["x-tandem-started-at"]) == 500.0
    m = spool.read("i1")
    assert m is not None and m.state == SpoolState.UPLOADED and m.attempts == 2
    assert not spool.media_path("i1").exists()


def test_upload_4xx_is_final_with_server_message(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    _capture(spool, "i1")
    spool.finish("i1")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": "screen_not_requested", "message": "not sampled"})

    done: dict[str, SpoolState] = {}
    event = threading.Event()
    up = _uploader(spool, handler, done, event)
    up.start()
    up.enqueue("i1")
    try:
        assert event.wait(10)
    finally:
        up.stop()
    m = spool.read("i1")
    assert m is not None and m.state == SpoolState.FAILED and "not sampled" in m.error
    assert spool.media_path("i1").exists()  # kept for an administrator to look at


def _settle_with(tmp_path: Path, handler: Handler) -> tuple[Spool, dict[str, SpoolState]]:
    spool = Spool(tmp_path)
    _capture(spool, "i1")
    spool.finish("i1")
    done: dict[str, SpoolState] = {}
    event = threading.Event()
    up = _uploader(spool, handler, done, event)
    up.start()
    up.enqueue("i1")
    try:
        assert event.wait(10)
    finally:
        up.stop()
    return spool, done


def test_409_with_another_files_sha_keeps_the_file_and_marks_conflict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server stores something else for this call (e.g. a fake the agent uploaded): the
    recorder's genuine capture is kept, never deleted on the server's word."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": "already_uploaded", "message": "m", "sha256": "cd" * 32})

    spool, done = _settle_with(tmp_path, handler)
    assert done == {"i1": SpoolState.CONFLICT}
    m = spool.read("i1")
    assert m is not None and m.state == SpoolState.CONFLICT and "cd" * 32 in m.error
    assert spool.media_path("i1").exists()
    assert any("UPLOAD CONFLICT" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_409_with_our_own_sha_is_done_and_frees_the_file(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        own = request.headers["x-tandem-sha256"]
        return httpx.Response(409, json={"error": "already_uploaded", "message": "m", "sha256": own})

    spool, done = _settle_with(tmp_path, handler)
    assert done == {"i1": SpoolState.UPLOADED}
    assert not spool.media_path("i1").exists()


def test_upload_in_progress_is_retried_file_kept_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recorder_service.uploader.backoff_delay", lambda *a, **k: 0.05)
    answers = [
        httpx.Response(409, json={"error": "upload_in_progress", "message": "later"}),
        httpx.Response(201, json={"key": "k", "size": 1}),
    ]
    kept_between: list[bool] = []
    spool_box: list[Spool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        if spool_box:
            kept_between.append(spool_box[0].media_path("i1").exists())
        return answers.pop(0)

    spool = Spool(tmp_path)
    spool_box.append(spool)
    _capture(spool, "i1")
    spool.finish("i1")
    done: dict[str, SpoolState] = {}
    event = threading.Event()
    up = _uploader(spool, handler, done, event)
    up.start()
    up.enqueue("i1")
    try:
        assert event.wait(10)
    finally:
        up.stop()
    assert done == {"i1": SpoolState.UPLOADED} and kept_between == [True, True]
