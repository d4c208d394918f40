"""Resumable, checksummed screen-segment uploads (tus 1.0: issue 12, item 2; item 5's server side).

The server runs in process (SIP off): through Starlette's TestClient, or under a real uvicorn on a
port the OS picks where the wire matters (a body cut by a raw socket, an independent tus client).
Segments are real fragmented MP4s made by the recorder's encoder.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.store import models
from server.store.db import session_scope
from tests.integration.test_screen_upload import (
    IID,
    LiveServer,
    add_interaction,
    audit_rows,
    bearer,
    live_recorder_token,
    login,
    make_app,
    recorder_token,
    screen_file,
)

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path / "data")


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def metadata(**values: object) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())


def create(
    http: Any,
    token: str,
    body: bytes,
    started_at: float,
    *,
    run: str = "run-a",
    seq: int = 0,
    iid: str = IID,
    sha256: str | None = None,
    final: bool = False,
) -> Any:  # httpx's or, from TestClient, httpx2's Response
    meta: dict[str, object] = {
        "run": run,
        "seq": seq,
        "started_at": repr(started_at),
        "sha256": sha256 or hashlib.sha256(body).hexdigest(),
    }
    if final:
        meta["final"] = 1
    response: httpx.Response = http.post(
        f"/api/interactions/{iid}/screen/segments",
        headers={
            **bearer(token),
            **TUS,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": metadata(**meta),
        },
    )
    return response


def patch(
    http: Any, token: str, location: str, offset: int, chunk: bytes, checksum: str | None = "sha256"
) -> Any:  # httpx's or, from TestClient, httpx2's Response
    headers = {**bearer(token), **TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset)}
    if checksum is not None:
        digest = hashlib.new(checksum, chunk).digest()
        headers["Upload-Checksum"] = f"{checksum} {base64.b64encode(digest).decode()}"
    response: httpx.Response = http.patch(location, headers=headers, content=chunk)
    return response


def head(http: Any, token: str, location: str) -> Any:  # httpx's or, from TestClient, httpx2's Response
    response: httpx.Response = http.head(location, headers={**bearer(token), **TUS})
    return response


def upload_all(
    http: Any, token: str, body: bytes, started_at: float, chunk: int = 700, **kw: Any
) -> Any:  # httpx's or, from TestClient, httpx2's Response
    r = create(http, token, body, started_at, **kw)
    assert r.status_code == 201, r.text
    location, offset = r.headers["Location"], 0
    while True:
        r = patch(http, token, location, offset, body[offset : offset + chunk])
        if r.status_code != 204 or offset + chunk >= len(body):
            return r
        offset = int(r.headers["Upload-Offset"])


def segment_rows(app: FastAPI, iid: str = IID) -> list[models.ScreenSegment]:
    with session_scope(app.state.ctx.sessions) as s:
        rows = s.execute(select(models.ScreenSegment).where(models.ScreenSegment.interaction_id == iid))
        return list(rows.scalars())


def upload_rows(app: FastAPI) -> list[models.ScreenUpload]:
    with session_scope(app.state.ctx.sessions) as s:
        return list(s.execute(select(models.ScreenUpload)).scalars())


def stored(data_dir: Path) -> list[Path]:
    root = data_dir / "storage"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def partials(data_dir: Path) -> list[Path]:
    root = data_dir / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def outcomes(app: FastAPI) -> list[str]:
    return [a.outcome for a in audit_rows(app, "screen.segment")]


def assert_nothing_stored(app: FastAPI, data_dir: Path) -> None:
    assert segment_rows(app) == []
    assert upload_rows(app) == []
    assert stored(data_dir) == []
    assert partials(data_dir) == []


# -- the protocol --------------------------------------------------------------------------------
def test_options_advertises_the_tus_subset(client: TestClient) -> None:
    r = client.options("/api/uploads")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) == {"creation", "checksum", "termination"}
    assert r.headers["Tus-Checksum-Algorithm"] == "sha256,sha1"
    assert int(r.headers["Tus-Max-Size"]) == 512 * 1024**2


def test_segment_in_checksummed_chunks_is_stored_once_and_final_submits_the_mux(
    client: TestClient, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = add_interaction(app)
    calls: list[str] = []

    async def uploaded(interaction_id: str) -> None:
        calls.append(interaction_id)

    monkeypatch.setattr(app.state.ctx.coordinator, "screen_uploaded", uploaded)
    token = recorder_token(client)
    first, last = screen_file(tmp_path / "a.mp4"), screen_file(tmp_path / "b.mp4", shade=80)
    r = upload_all(client, token, first, started + 1, seq=0)
    assert r.status_code == 204, r.text
    assert r.headers["X-Tandem-Sha256"] == hashlib.sha256(first).hexdigest()
    assert r.headers["Upload-Offset"] == str(len(first))
    assert calls == []  # not the last segment: nothing to mux yet
    r = upload_all(client, token, last, started + 5, seq=1, final=True)
    assert r.status_code == 204, r.text
    assert calls == [IID]
    rows = sorted(segment_rows(app), key=lambda row: row.seq)
    assert [(row.run, row.seq, row.final, row.frames) for row in rows] == [
        ("run-a", 0, False, 15),
        ("run-a", 1, True, 15),
    ]
    assert rows[0].first_frame_at == pytest.approx(started + 1)
    assert rows[0].last_frame_at == pytest.approx(started + 1 + 14 * 0.2)
    assert (rows[0].width, rows[0].height, rows[0].has_audio) == (64, 48, False)
    assert rows[0].storage_key.endswith(f"/{IID}/screen/run-a-00000.mp4")
    assert rows[0].uploaded_by_token_id is not None
    files = {p.name: p.read_bytes() for p in stored(tmp_path / "data")}
    assert files == {"run-a-00000.mp4": first, "run-a-00001.mp4": last}
    assert upload_rows(app) == [] and partials(tmp_path / "data") == []
    assert outcomes(app) == ["allowed", "allowed"]


def test_create_is_idempotent_and_a_new_digest_replaces_the_unfinished_upload(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    first = create(client, token, body, started + 1)
    assert first.status_code == 201
    assert patch(client, token, first.headers["Location"], 0, body[:500]).status_code == 204
    again = create(client, token, body, started + 1)  # the 201 was lost: the client asks again
    assert again.status_code == 201
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Upload-Offset"] == "500"
    assert len(upload_rows(app)) == 1
    recut = screen_file(tmp_path / "b.mp4", frames=10)  # the recorder cut the segment again
    third = create(client, token, recut, started + 1)
    assert third.status_code == 201 and third.headers["Location"] != first.headers["Location"]
    assert head(client, token, first.headers["Location"]).status_code == 404
    assert len(upload_rows(app)) == 1 and len(partials(tmp_path / "data")) == 1


def test_termination_removes_the_partial_bytes(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    location = create(client, token, body, started + 1).headers["Location"]
    assert patch(client, token, location, 0, body[:500]).status_code == 204
    r = client.delete(location, headers={**bearer(token), **TUS})
    assert r.status_code == 204 and r.headers["Tus-Resumable"] == "1.0.0"
    assert head(client, token, location).status_code == 404
    assert_nothing_stored(app, tmp_path / "data")


def test_a_stored_segment_is_never_replaced(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    assert upload_all(client, token, body, started + 1).status_code == 204
    other = screen_file(tmp_path / "b.mp4", shade=99)
    r = create(client, token, other, started + 1)
    assert r.status_code == 409
    assert r.json()["error"] == "already_uploaded"
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]
    assert outcomes(app) == ["allowed", "denied"]


def test_a_late_segment_after_done_is_accepted_on_its_frames_times(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    """A recorder that was down uploads an hour after Done: the frames are in the call's span."""
    add_interaction(app)
    with session_scope(app.state.ctx.sessions) as s:
        row = s.get(models.Interaction, IID)
        assert row is not None
        row.started_at, row.ended_at, row.acw_ended_at = (
            time.time() - 3600,
            time.time() - 3550,
            time.time() - 3540,
        )
        started = row.started_at
    token = recorder_token(client)
    r = upload_all(client, token, screen_file(tmp_path / "a.mp4"), started + 10)
    assert r.status_code == 204, r.text
    assert len(segment_rows(app)) == 1


def test_a_fault_while_storing_is_settled_by_the_next_head(
    client: TestClient, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every byte arrived but storing failed (a fault of ours): the client's HEAD after the error
    stores it, answers 404 (the upload is settled) and a POST then names the stored digest."""
    from server.errors import StorageError

    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    storage = app.state.ctx.storage
    real_put = storage.put_file

    def failing_put(key: str, source: Path) -> int:
        raise StorageError(f"cannot store {key}: Input/output error")

    monkeypatch.setattr(storage, "put_file", failing_put)
    r = upload_all(client, token, body, started + 1)
    assert r.status_code == 500 and r.json()["error"] == "storage_error"
    location = upload_rows(app)[0].id
    assert head(client, token, f"/api/uploads/{location}").headers["Upload-Offset"] == str(len(body))
    monkeypatch.setattr(storage, "put_file", real_put)
    assert head(client, token, f"/api/uploads/{location}").status_code == 404
    assert outcomes(app) == ["failed", "failed", "allowed"]
    r = create(client, token, body, started + 1)
    assert r.status_code == 409 and r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]
    assert upload_rows(app) == [] and partials(tmp_path / "data") == []
    assert outcomes(app) == ["failed", "failed", "allowed", "denied"]


def test_an_empty_patch_at_the_end_retries_the_store_step(
    client: TestClient, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.errors import StorageFullError

    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    storage = app.state.ctx.storage
    real_put = storage.put_file

    def full(key: str, source: Path) -> int:
        raise StorageFullError(f"storage is full while writing {key}")

    monkeypatch.setattr(storage, "put_file", full)
    r = upload_all(client, token, body, started + 1)
    assert r.status_code == 507 and r.json()["error"] == "storage_full"
    location = f"/api/uploads/{upload_rows(app)[0].id}"
    monkeypatch.setattr(storage, "put_file", real_put)
    r = patch(client, token, location, len(body), b"")
    assert r.status_code == 204, r.text
    assert r.headers["X-Tandem-Sha256"] == hashlib.sha256(body).hexdigest()
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]


def test_a_failing_sweep_of_stale_partials_does_not_refuse_a_segment(
    client: TestClient, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.calls.segment_uploads import SegmentUploads

    def broken(self: SegmentUploads, busy: frozenset[str] = frozenset()) -> int:
        raise PermissionError("uploads directory not readable")

    monkeypatch.setattr(SegmentUploads, "expire", broken)
    started = add_interaction(app)
    token = recorder_token(client)
    assert upload_all(client, token, screen_file(tmp_path / "a.mp4"), started + 1).status_code == 204
    assert outcomes(app) == ["allowed"]


# -- refusals: each clear, audited, nothing stored -----------------------------------------------------
def test_chunk_checksum_mismatch_discards_only_that_chunk(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    location = create(client, token, body, started + 1).headers["Location"]
    assert patch(client, token, location, 0, body[:600]).status_code == 204
    headers = {
        **bearer(token),
        **TUS,
        "Content-Type": OCTETS,
        "Upload-Offset": "600",
        "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"something else").digest()).decode(),
    }
    r = client.patch(location, headers=headers, content=body[600:1200])
    assert r.status_code == 460
    assert r.json()["error"] == "checksum_mismatch" and "send it again" in r.json()["message"]
    assert head(client, token, location).headers["Upload-Offset"] == "600"
    assert (tmp_path / "data" / "uploads").is_dir() and partials(tmp_path / "data")[0].stat().st_size == 600
    assert outcomes(app) == ["failed"]
    r = patch(client, token, location, 600, body[600:], checksum="sha1")  # sent again, right
    assert r.status_code == 204, r.text
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]


def test_whole_checksum_mismatch_is_refused_and_nothing_kept(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    r = upload_all(client, token, body, started + 1, sha256="ab" * 32)
    assert r.status_code == 422
    assert r.json()["error"] == "checksum_mismatch" and "not the declared" in r.json()["message"]
    assert_nothing_stored(app, tmp_path / "data")
    assert outcomes(app) == ["failed"]


def test_wrong_offset_is_refused_with_the_servers_offset(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    location = create(client, token, body, started + 1).headers["Location"]
    assert patch(client, token, location, 0, body[:400]).status_code == 204
    r = patch(client, token, location, 300, body[300:900])
    assert r.status_code == 409
    assert r.json()["error"] == "offset_mismatch" and r.headers["Upload-Offset"] == "400"
    r = patch(client, token, location, 0, body[:900])
    assert r.status_code == 409 and r.headers["Upload-Offset"] == "400"
    assert partials(tmp_path / "data")[0].read_bytes() == body[:400]  # nothing appended
    assert outcomes(app) == ["denied", "denied"]


def test_body_past_upload_length_is_refused(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    location = create(client, token, body, started + 1).headers["Location"]
    r = patch(client, token, location, 0, body + b"extra")
    assert r.status_code == 413 and r.json()["error"] == "beyond_length"
    assert head(client, token, location).headers["Upload-Offset"] == "0"
    assert outcomes(app) == ["failed"]


def test_another_agents_interaction_or_upload_is_refused(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    body = screen_file(tmp_path / "a.mp4")
    other = recorder_token(client, "agent2")
    r = create(client, other, body, started + 1)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    mine = recorder_token(client)
    location = create(client, mine, body, started + 1).headers["Location"]
    r = patch(client, other, location, 0, body)  # agent2's recorder cannot write into agent1's upload
    assert r.status_code == 404 and r.json()["error"] == "unknown_upload"
    assert head(client, other, location).status_code == 404
    assert client.delete(location, headers={**bearer(other), **TUS}).status_code == 404
    assert head(client, mine, location).headers["Upload-Offset"] == "0"
    assert segment_rows(app) == [] and stored(tmp_path / "data") == []
    denied = audit_rows(app, "screen.segment")
    assert [(a.outcome, a.username) for a in denied] == [("denied", "agent2")] * 4


def test_only_a_recorder_token_with_tus_resumable_may_upload(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    body = screen_file(tmp_path / "a.mp4")
    r = create(client, login(client, "agent1", client="web"), body, started + 1)
    client.cookies.clear()
    assert r.status_code == 403 and r.json()["error"] == "recorder_token_required"
    token = recorder_token(client)
    r = client.post(
        f"/api/interactions/{IID}/screen/segments",
        headers={
            **bearer(token),
            "Upload-Length": str(len(body)),
            "Upload-Metadata": metadata(run="r", seq=0),
        },
    )
    assert r.status_code == 412 and r.headers["Tus-Version"] == "1.0.0"
    r = client.post(
        f"/api/interactions/{IID}/screen/segments",
        headers={
            **bearer(token),
            **TUS,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": metadata(run="r"),
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "bad_metadata" and "seq" in r.json()["message"]
    assert_nothing_stored(app, tmp_path / "data")
    assert outcomes(app) == ["denied", "denied", "failed"]


def test_a_body_that_is_not_mp4_is_refused(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    r = upload_all(client, token, b"\x89PNG\r\n\x1a\n" + bytes(3000), started + 1)
    assert r.status_code == 422 and r.json()["error"] == "not_mp4"
    assert_nothing_stored(app, tmp_path / "data")
    assert outcomes(app) == ["failed"]


def test_a_segment_outside_the_interactions_span_is_refused(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")
    r = upload_all(client, token, body, started - 60)  # recorded a minute before the call began
    assert r.status_code == 422 and r.json()["error"] == "outside_interaction"
    assert "outside the interaction's span" in r.json()["message"]
    r = create(client, token, body, time.time() + 600)  # after the end: refused before any byte
    assert r.status_code == 422 and r.json()["error"] == "outside_interaction"
    assert_nothing_stored(app, tmp_path / "data")
    assert outcomes(app) == ["failed", "failed"]


def test_frames_inside_a_pause_are_refused_with_the_spans(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    with session_scope(app.state.ctx.sessions) as s:
        s.add(
            models.PauseSpan(
                interaction_id=IID, started_at=started + 2.0, ended_at=started + 2.5, reason="agent"
            )
        )
    token = recorder_token(client)
    body = screen_file(tmp_path / "a.mp4")  # frames at started+1 .. started+3.8, 200 ms apart
    r = upload_all(client, token, body, started + 1)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "frames_in_pause"
    assert r.json()["spans"] == [{"started_at": started + 2.0, "ended_at": started + 2.5}]
    assert "3 frame(s)" in r.json()["message"]  # +2.0, +2.2, +2.4
    assert_nothing_stored(app, tmp_path / "data")
    assert outcomes(app) == ["failed"]
    # The same frames after the pause are kept.
    assert upload_all(client, token, body, started + 2.5).status_code == 204


def test_a_live_pause_not_yet_written_is_enforced_too(
    client: TestClient, app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent paused; the span's database write is still queued behind a busy database, but
    the live call knows it (still open): frames after its start are refused."""
    from types import SimpleNamespace

    from tandem_protocol.events import PauseSpanInfo

    started = add_interaction(app)
    with session_scope(app.state.ctx.sessions) as s:
        agent = s.execute(select(models.User).where(models.User.username == "agent1")).scalar_one().id
    live = SimpleNamespace(interaction_id=IID, pauses=[PauseSpanInfo(started + 3.0, None)])
    monkeypatch.setattr(
        app.state.ctx.coordinator, "current_call", lambda agent_id: live if agent_id == agent else None
    )
    token = recorder_token(client)
    r = upload_all(client, token, screen_file(tmp_path / "a.mp4"), started + 1)
    assert r.status_code == 422 and r.json()["error"] == "frames_in_pause", r.text
    assert r.json()["spans"] == [{"started_at": started + 3.0, "ended_at": None}]
    assert_nothing_stored(app, tmp_path / "data")


# -- on the wire: a cut, and an independent tus client ------------------------------------------------
def _raw_cut_patch(url: str, token: str, location: str, body: bytes, sent: int) -> None:
    """A PATCH announcing the whole body, of which only ``sent`` bytes go before the socket closes."""
    parts = urlsplit(url)
    head_lines = (
        f"PATCH {location} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: {OCTETS}\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head_lines.encode() + body[:sent])
        time.sleep(0.05)  # let the bytes leave before the close; the test polls, it does not wait on this


def test_resume_after_a_cut_mid_patch_stores_the_segment_byte_identical(app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    body = screen_file(tmp_path / "a.mp4", frames=60)
    sent = len(body) * 2 // 3
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        token = live_recorder_token(url)
        location = create(http, token, body, started + 1).headers["Location"]
        _raw_cut_patch(url, token, location, body, sent)
        deadline = time.monotonic() + 30
        while (offset := int(head(http, token, location).headers["Upload-Offset"])) != sent:
            assert time.monotonic() < deadline, f"the server holds {offset} bytes, not the {sent} sent"
            time.sleep(0.05)
        r = patch(http, token, location, offset, body[offset:])
        assert r.status_code == 204, r.text
        assert r.headers["X-Tandem-Sha256"] == hashlib.sha256(body).hexdigest()
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]


def test_a_retry_takes_over_from_a_stalled_patch(app: FastAPI, tmp_path: Path) -> None:
    """The server still reads a body whose client is gone; the client's retry must not wait for it
    (nor interleave with it): the stalled request keeps what it wrote and the retry continues."""
    started = add_interaction(app)
    body = screen_file(tmp_path / "a.mp4", frames=40)
    half = len(body) // 2
    released = threading.Event()

    def stalled() -> Iterator[bytes]:
        yield body[:half]
        released.wait(60)

    results: dict[str, httpx.Response | Exception] = {}
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        token = live_recorder_token(url)
        location = create(http, token, body, started + 1).headers["Location"]
        headers = {
            **bearer(token),
            **TUS,
            "Content-Type": OCTETS,
            "Upload-Offset": "0",
            "Content-Length": str(len(body)),
        }

        def first() -> None:
            try:
                with httpx.Client(base_url=url, timeout=60) as other:
                    results["first"] = other.patch(location, headers=headers, content=stalled())
            except Exception as exc:  # its body ends short of its Content-Length: the client errs
                results["first"] = exc

        t = threading.Thread(target=first)
        t.start()
        try:
            gate = app.state.segment_gate
            deadline = time.monotonic() + 30
            while not gate.busy():  # the first PATCH holds the upload, its body half sent
                assert time.monotonic() < deadline, "the first PATCH never started"
                time.sleep(0.02)
            # The retry, from 0 as the client last knew. It must not wait for the stalled body
            # (released only after this answer, 60 s later otherwise): a read timeout fails here.
            with httpx.Client(base_url=url, timeout=20) as retry:
                r = patch(retry, token, location, 0, body)
            if r.status_code == 409:  # the stalled request kept what had reached the server
                held = int(r.headers["Upload-Offset"])
                assert 0 < held <= half and r.json()["error"] == "offset_mismatch"
                r = patch(http, token, location, held, body[held:])
            assert r.status_code == 204, r.text
        finally:
            released.set()
            t.join(60)
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]


def test_tuspy_an_independent_tus_client_uploads_a_segment(app: FastAPI, tmp_path: Path) -> None:
    from tusclient import client as tus_client

    started = add_interaction(app)
    path = tmp_path / "a.mp4"
    body = screen_file(path, frames=50)
    with LiveServer(app) as url, path.open("rb") as stream:  # a stream: tuspy leaks files it opens
        token = live_recorder_token(url)
        tus = tus_client.TusClient(f"{url}/api/interactions/{IID}/screen/segments", headers=bearer(token))
        uploader = tus.uploader(
            file_stream=stream,
            chunk_size=1024,  # several PATCHes, each with tuspy's sha1 Upload-Checksum
            upload_checksum=True,
            metadata={
                "run": "tuspy",
                "seq": "7",
                "started_at": repr(started + 1),
                "sha256": hashlib.sha256(body).hexdigest(),
                "final": "1",
            },
        )
        uploader.upload()
        assert uploader.offset == len(body)
        assert uploader.request is not None
        assert uploader.request.response_headers["x-tandem-sha256"] == hashlib.sha256(body).hexdigest()
    [row] = segment_rows(app)
    assert (row.run, row.seq, row.final) == ("tuspy", 7, True)
    assert [p.read_bytes() for p in stored(tmp_path / "data")] == [body]
    assert len(body) > 3 * 1024
