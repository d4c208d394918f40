"""Screen uploads that cannot be forged, replaced or lost; recorder enrolment (issue 10, items 1–2).

The server runs in process (SIP off): through Starlette's TestClient, or under a real uvicorn on a
port the OS picks where two requests must overlap on the wire.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from recorder_service.encoder import ScreenEncoder
from server.api.app import create_app
from server.cli import main as server_cli
from server.errors import MediaExistsError
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery-9"
IID = "int-screen-1"


# -- fixtures and helpers ---------------------------------------------------------------------
def make_app(data_dir: Path) -> FastAPI:
    app = create_app(load_settings(None, data_dir=data_dir, sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        if s.execute(select(models.User)).first() is None:
            create_user(s, "admin", PASSWORD, "admin")
            create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
            create_user(s, "agent1", PASSWORD, "agent", team="Blue")
            create_user(s, "agent2", PASSWORD, "agent", team="Blue")
    return app


def add_interaction(app: FastAPI, iid: str = IID, *, agent: str = "agent1", age: float = 30.0) -> float:
    """A finished call of ``agent`` that asked for a screen recording; returns its start time."""
    now = time.time()
    with session_scope(app.state.ctx.sessions) as s:
        user = s.execute(select(models.User).where(models.User.username == agent)).scalar_one()
        s.add(
            models.Interaction(
                id=iid,
                call_id=f"call-{iid}",
                dn="1001",
                agent_id=user.id,
                state="done",
                started_at=now - age,
                answered_at=now - age,
                ended_at=now - 2,
                acw_ended_at=now - 1,
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="stopped",
                screen_state="stopped",
            )
        )
    return now - age


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = make_app(tmp_path / "data")
    yield app
    app.state.ctx.sessions.kw["bind"].dispose()  # its stop closes the pool, but not every test starts it


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def login(http: TestClient, user: str, **extra: object) -> str:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue_code(http: TestClient, username: str = "agent1") -> str:
    r = http.post(
        "/api/admin/recorders/enrolments", headers=bearer(login(http, "admin")), json={"username": username}
    )
    assert r.status_code == 201, r.text
    assert r.json()["username"] == username
    return str(r.json()["code"])


def recorder_token(http: TestClient, username: str = "agent1") -> str:
    r = http.post("/api/recorders/enroll", json={"code": issue_code(http, username)})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == username
    return str(r.json()["token"])


def screen_file(path: Path, frames: int = 15, shade: int = 0) -> bytes:
    """A fragmented H.264 MP4 as the recorder writes it (200 ms apart)."""
    enc = ScreenEncoder(path, fps=5)
    for i in range(frames):
        image = np.full((48, 64, 4), (shade + i * 9) % 256, dtype=np.uint8)
        enc.encode(image, i * 200)
    enc.close()
    return path.read_bytes()


def upload_headers(token: str, body: bytes, started_at: float | str) -> dict[str, str]:
    return {
        **bearer(token),
        "X-Tandem-Started-At": started_at if isinstance(started_at, str) else repr(started_at),
        "X-Tandem-Sha256": hashlib.sha256(body).hexdigest(),
        "Content-Type": "video/mp4",
    }


def audit_rows(app: FastAPI, action: str) -> list[models.AuditRecord]:
    with session_scope(app.state.ctx.sessions) as s:
        return list(
            s.execute(
                select(models.AuditRecord)
                .where(models.AuditRecord.action == action)
                .order_by(models.AuditRecord.id)
            ).scalars()
        )


def media_rows(app: FastAPI, iid: str = IID) -> list[tuple[str, str, str]]:
    with session_scope(app.state.ctx.sessions) as s:
        rows = s.execute(select(models.MediaFile).where(models.MediaFile.interaction_id == iid)).scalars()
        return [(m.kind, m.state, m.sha256) for m in rows]


def stored_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "storage").rglob("*") if p.is_file()]


def tmp_files(data_dir: Path) -> list[Path]:
    tmp = data_dir / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


# -- item 1: who may upload ------------------------------------------------------------------------
def test_password_login_never_yields_a_recorder_token(client: TestClient, app: FastAPI) -> None:
    r = client.post(
        "/api/auth/login", json={"username": "agent1", "password": PASSWORD, "client": "recorder"}
    )
    assert r.status_code == 403
    assert r.json()["error"] == "recorder_enrolment_required"
    assert "enroll-code" in r.json()["message"]
    denied = [a for a in audit_rows(app, "auth.login") if a.outcome == "denied"]
    assert denied and "client=recorder" in denied[-1].detail and denied[-1].username == "agent1"
    with session_scope(app.state.ctx.sessions) as s:
        assert s.execute(select(models.ApiToken).where(models.ApiToken.client == "recorder")).first() is None


@pytest.mark.parametrize("scope", ["web", "desktop", "api"])
def test_agent_logins_cannot_upload_a_screen_recording(
    client: TestClient, app: FastAPI, tmp_path: Path, scope: str
) -> None:
    """The reported forgery: the agent, logged in on the web, uploaded a test pattern (201)."""
    started = add_interaction(app)
    extra = {"client": scope, "dn": "1001"} if scope == "desktop" else {"client": scope}
    body = screen_file(tmp_path / "fake.mp4")
    r = client.put(
        f"/api/interactions/{IID}/screen",
        headers=upload_headers(login(client, "agent1", **extra), body, started),
        content=body,
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "recorder_token_required"
    assert media_rows(app) == [] and stored_files(tmp_path / "data") == []
    refused = audit_rows(app, "screen.upload")
    assert [a.outcome for a in refused] == ["denied"] and f"client={scope}" in refused[0].detail


def test_a_recorder_token_cannot_act_as_the_agent_or_read_recordings(
    client: TestClient, app: FastAPI
) -> None:
    """The recorder's credential lives on the agent's PC: it uploads and keeps its channel, and
    nothing else (no pause/stop/done on the agent's behalf, no reading of recordings)."""
    add_interaction(app)
    token = recorder_token(client)
    for method, path in (
        ("POST", f"/api/interactions/{IID}/pause"),
        ("POST", f"/api/interactions/{IID}/stop"),
        ("POST", f"/api/interactions/{IID}/done"),
        ("GET", "/api/interactions"),
        ("GET", f"/api/interactions/{IID}/media/voice"),
        ("GET", "/api/me"),
    ):
        r = client.request(method, path, headers=bearer(token))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "recorder_token_not_allowed"
    refused = [a for a in audit_rows(app, "access.denied") if "recorder token" in a.detail]
    assert len(refused) == 6
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204


def test_another_agents_recorder_cannot_upload(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    body = screen_file(tmp_path / "s.mp4")
    r = client.put(
        f"/api/interactions/{IID}/screen",
        headers=upload_headers(recorder_token(client, "agent2"), body, started),
        content=body,
    )
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert [a.outcome for a in audit_rows(app, "screen.upload")] == ["denied"]


def test_stored_recording_is_never_replaced_and_409_names_its_sha256(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    token = recorder_token(client)
    genuine = screen_file(tmp_path / "genuine.mp4")
    r = client.put(
        f"/api/interactions/{IID}/screen", headers=upload_headers(token, genuine, started), content=genuine
    )
    assert r.status_code == 201, r.text
    sha = hashlib.sha256(genuine).hexdigest()
    assert r.json()["sha256"] == sha
    other = screen_file(tmp_path / "other.mp4", shade=100)
    assert other != genuine
    r = client.put(
        f"/api/interactions/{IID}/screen", headers=upload_headers(token, other, started), content=other
    )
    assert r.status_code == 409
    assert r.json()["error"] == "already_uploaded" and r.json()["sha256"] == sha
    assert media_rows(app) == [("screen", "complete", sha)]
    [stored] = stored_files(tmp_path / "data")
    assert stored.read_bytes() == genuine
    assert [a.outcome for a in audit_rows(app, "screen.upload")] == ["allowed", "denied"]
    assert tmp_files(tmp_path / "data") == []
    # The stored file is what a supervisor downloads.
    r = client.get(f"/api/interactions/{IID}/media/screen", headers=bearer(login(client, "sup")))
    assert r.status_code == 200 and r.content == genuine


def test_evidence_is_never_replaced_by_store_media_but_derived_files_are(
    app: FastAPI, tmp_path: Path
) -> None:
    started = add_interaction(app)
    repo = app.state.ctx.repo
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(b"first voice")
    second.write_bytes(b"second voice")
    repo.store_media(IID, "voice", first, "voice.wav", "audio/wav", started, 1.0)
    with pytest.raises(MediaExistsError):
        repo.store_media(IID, "voice", second, "voice.wav", "audio/wav", started, 1.0)
    assert second.exists()  # nothing taken from the caller either
    m1, m2 = tmp_path / "m1.mp4", tmp_path / "m2.mp4"
    m1.write_bytes(b"muxed one")
    m2.write_bytes(b"muxed two")
    repo.store_media(IID, "muxed", m1, "muxed.mp4", "video/mp4", started, 1.0)
    repo.store_media(IID, "muxed", m2, "muxed.mp4", "video/mp4", started, 1.0)  # regenerated from evidence
    contents = sorted(p.read_bytes() for p in stored_files(tmp_path / "data"))
    assert contents == [b"first voice", b"muxed two"]
    assert sorted(k for k, state, _ in media_rows(app)) == ["muxed", "voice"]


# -- item 1: exactly one of two simultaneous uploads wins ---------------------------------------------
class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def live_recorder_token(url: str, username: str = "agent1") -> str:
    """Through the live server: an app's lifespan runs on one event loop only, once."""
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        admin = bearer(r.json()["token"])
        r = http.post("/api/admin/recorders/enrolments", headers=admin, json={"username": username})
        r = http.post("/api/recorders/enroll", json={"code": r.json()["code"]})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def test_two_simultaneous_uploads_exactly_one_wins(app: FastAPI, tmp_path: Path) -> None:
    started = add_interaction(app)
    first = screen_file(tmp_path / "first.mp4")
    second = screen_file(tmp_path / "second.mp4", shade=50)
    half = threading.Event()
    go_on = threading.Event()

    def slow_body() -> Iterator[bytes]:  # the first upload stalls mid-body
        yield first[: len(first) // 2]
        half.set()
        assert go_on.wait(60)
        yield first[len(first) // 2 :]

    results: dict[str, httpx.Response] = {}
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        token = live_recorder_token(url)
        headers = upload_headers(token, first, started) | {"Content-Length": str(len(first))}
        t = threading.Thread(
            target=lambda: results.__setitem__(
                "first", http.put(f"/api/interactions/{IID}/screen", headers=headers, content=slow_body())
            )
        )
        t.start()
        try:
            assert half.wait(30)
            deadline = time.monotonic() + 30  # the first upload's claim is committed before its body is read
            while ("screen", "pending", hashlib.sha256(first).hexdigest()) not in media_rows(app):
                assert time.monotonic() < deadline, "first upload never claimed the screen"
                time.sleep(0.02)
            with httpx.Client(base_url=url, timeout=60) as other:
                results["second"] = other.put(
                    f"/api/interactions/{IID}/screen",
                    headers=upload_headers(token, second, started),
                    content=second,
                )
        finally:
            go_on.set()
            t.join(60)
    assert results["second"].status_code == 409, results["second"].text
    assert results["second"].json()["error"] == "upload_in_progress"
    assert results["first"].status_code == 201, results["first"].text
    [stored] = stored_files(tmp_path / "data")
    assert stored.read_bytes() == first
    assert media_rows(app) == [("screen", "complete", hashlib.sha256(first).hexdigest())]


def test_body_and_fsync_do_not_block_the_event_loop(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the upload's fsync hangs (a slow disk), the loop that also carries SIP still answers."""
    import os

    started = add_interaction(app)
    body = screen_file(tmp_path / "s.mp4")
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if not in_fsync.is_set():
            in_fsync.set()
            assert release.wait(60)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)  # the upload module calls os.fsync
    result: dict[str, httpx.Response] = {}
    with LiveServer(app) as url:
        token = live_recorder_token(url)
        t = threading.Thread(
            target=lambda: result.__setitem__(
                "r",
                httpx.put(
                    f"{url}/api/interactions/{IID}/screen",
                    headers=upload_headers(token, body, started),
                    content=body,
                    timeout=90,
                ),
            )
        )
        t.start()
        try:
            assert in_fsync.wait(30)
            answered = httpx.get(f"{url}/healthz", timeout=20)  # an async route: runs on the loop
            assert answered.status_code in (200, 503)  # answered at all (503: degraded, e.g. low disk)
        finally:
            release.set()
            t.join(90)
    assert result["r"].status_code == 201, result["r"].text


def test_client_gone_mid_body_leaves_no_orphan_and_no_claim(app: FastAPI, tmp_path: Path) -> None:
    """The recorder's connection drops halfway: nothing stays behind, and the next try is accepted."""
    import socket
    from urllib.parse import urlsplit

    started = add_interaction(app)
    body = screen_file(tmp_path / "s.mp4")
    with LiveServer(app) as url:
        token = live_recorder_token(url)
        parts = urlsplit(url)
        head = "".join(
            f"{k}: {v}\r\n"
            for k, v in (upload_headers(token, body, started) | {"Content-Length": str(len(body))}).items()
        )
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            request = f"PUT /api/interactions/{IID}/screen HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n"
            sock.sendall(request.encode() + body[: len(body) // 2])
            deadline = time.monotonic() + 30  # the claim is made before the body is read
            while not media_rows(app):
                assert time.monotonic() < deadline, "the upload never claimed the screen"
                time.sleep(0.02)
        deadline = time.monotonic() + 60
        while media_rows(app) or tmp_files(tmp_path / "data") or stored_files(tmp_path / "data"):
            assert time.monotonic() < deadline, (media_rows(app), tmp_files(tmp_path / "data"))
            time.sleep(0.05)
        failed = [a for a in audit_rows(app, "screen.upload") if a.outcome == "failed"]
        assert failed and "disconnected" in failed[-1].detail
        r = httpx.put(
            f"{url}/api/interactions/{IID}/screen",
            headers=upload_headers(token, body, started),
            content=body,
            timeout=60,
        )
        assert r.status_code == 201, r.text


# -- item 2: media validation, clean refusals, no orphans -----------------------------------------
def _assert_clean(app: FastAPI, data_dir: Path) -> None:
    assert media_rows(app) == []
    assert stored_files(data_dir) == []
    assert tmp_files(data_dir) == []


def test_bad_uploads_are_refused_cleanly_and_audited(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    started = add_interaction(app)
    token = recorder_token(client)
    good = screen_file(tmp_path / "good.mp4")
    png = tmp_path / "x.png"
    import av

    with av.open(str(png), "w", format="image2") as container:
        stream: Any = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("png", png.read_bytes(), {}, 422, "not_mp4"),
        ("truncated", good[: len(good) - 200], {}, 422, "not_mp4"),
        ("nan", good, {"X-Tandem-Started-At": "nan"}, 400, "bad_started_at"),
        ("inf", good, {"X-Tandem-Started-At": "inf"}, 400, "bad_started_at"),
        ("words", good, {"X-Tandem-Started-At": "yesterday"}, 400, "bad_started_at"),
        ("long ago", good, {"X-Tandem-Started-At": repr(started - 3600)}, 422, "started_at_out_of_span"),
        ("past the call", good, {"X-Tandem-Started-At": repr(started + 29 + 59.8)}, 422, "video_past_span"),
        ("wrong sha", good, {"X-Tandem-Sha256": "0" * 64}, 400, "checksum_mismatch"),
        ("bad sha", good, {"X-Tandem-Sha256": "xyz"}, 400, "bad_upload"),
    ]
    for name, body, override, status, code in cases:
        headers = upload_headers(token, body, started) | override
        r = client.put(f"/api/interactions/{IID}/screen", headers=headers, content=body)
        assert (r.status_code, r.json()["error"]) == (status, code), (name, r.text)
        assert r.json()["message"], name
        _assert_clean(app, data_dir)
    refusals = audit_rows(app, "screen.upload")
    assert len(refusals) == len(cases)
    assert all(a.outcome in ("denied", "failed") for a in refusals)
    assert not math.isnan(len(refusals))
    # Nothing was left claimed: the genuine file is still accepted.
    r = client.put(
        f"/api/interactions/{IID}/screen", headers=upload_headers(token, good, started), content=good
    )
    assert r.status_code == 201, r.text


# -- crash recovery --------------------------------------------------------------------------------
def test_startup_recovery_finishes_or_rolls_back_pending_uploads(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir)
    add_interaction(app, "int-done")
    add_interaction(app, "int-half")
    store = app.state.ctx.repo.media_store
    written = tmp_path / "written.mp4"
    body = screen_file(written)
    sha = hashlib.sha256(body).hexdigest()
    # Crash 1: the file reached storage, the row never became complete.
    claim = store.claim("int-done", "screen", "screen.mp4", "video/mp4", 1.0, sha)
    store.annotate(claim, len(body), 2.8)
    store.put(claim, written)
    # Crash 2: claimed, a partial file in storage, nothing complete.
    half = store.claim("int-half", "screen", "screen.mp4", "video/mp4", 1.0, "ab" * 32)
    partial = data_dir / "storage" / (half.key + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(body[:100])
    assert app.state.ctx.repo.media("int-done") == {}  # pending rows are invisible
    with TestClient(make_app(data_dir)):  # the restarted server recovers at start-up
        pass
    assert media_rows(app, "int-done") == [("screen", "complete", sha)]
    assert media_rows(app, "int-half") == []
    assert not partial.exists()
    assert [p.read_bytes() for p in stored_files(data_dir)] == [body]


def test_claims_are_atomic_under_threads(app: FastAPI) -> None:
    add_interaction(app)
    store = app.state.ctx.repo.media_store
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def race(n: int) -> None:
        barrier.wait()
        try:
            store.claim(IID, "screen", "screen.mp4", "video/mp4", 1.0, f"{n:064x}")
            outcomes.append("won")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) <= {"won", "MediaBusyError"}


# -- enrolment ------------------------------------------------------------------------------------
def test_enrolment_code_is_admin_only_one_time_hashed_and_audited(client: TestClient, app: FastAPI) -> None:
    r = client.post(
        "/api/admin/recorders/enrolments", headers=bearer(login(client, "sup")), json={"username": "agent1"}
    )
    assert r.status_code == 403
    r = client.post(
        "/api/admin/recorders/enrolments", headers=bearer(login(client, "admin")), json={"username": "sup"}
    )
    assert r.status_code == 422 and r.json()["error"] == "not_an_agent"
    code = issue_code(client)
    with session_scope(app.state.ctx.sessions) as s:
        row = s.execute(select(models.RecorderEnrolment)).scalar_one()
        assert code not in json.dumps([row.code_hash, row.created_by]) and len(row.code_hash) == 64
        assert 23 * 3600 < row.expires_at - row.created_at <= 24 * 3600
    r = client.post(
        "/api/recorders/enroll", json={"code": code.lower().replace("-", " ")}
    )  # as people retype it
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert r.json()["expires_at"] - time.time() > 29 * 86400
    with session_scope(app.state.ctx.sessions) as s:
        tok = s.execute(select(models.ApiToken).where(models.ApiToken.client == "recorder")).scalar_one()
        assert s.get(models.User, tok.user_id).username == "agent1"  # type: ignore[union-attr]
    r = client.post("/api/recorders/enroll", json={"code": code})
    assert r.status_code == 401 and r.json()["error"] == "enrolment_code_used"
    r = client.post("/api/recorders/enroll", json={"code": "NOPE-NOPE"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_enrolment_code"
    assert [a.outcome for a in audit_rows(app, "recorder.enroll")] == ["allowed", "denied", "denied"]
    issued = audit_rows(app, "recorder.enrolment.issue")
    assert [a.outcome for a in issued] == ["denied", "allowed"] and issued[-1].username == "admin"
    # the token is agent1's (checked above in the database) and good for uploads only
    assert client.get("/api/me", headers=bearer(token)).json()["error"] == "recorder_token_not_allowed"


def test_expired_enrolment_code_is_refused(client: TestClient, app: FastAPI) -> None:
    code = issue_code(client)
    with session_scope(app.state.ctx.sessions) as s:
        row = s.execute(select(models.RecorderEnrolment)).scalar_one()
        row.expires_at = time.time() - 1
    r = client.post("/api/recorders/enroll", json={"code": code})
    assert r.status_code == 401 and r.json()["error"] == "enrolment_code_expired"


def test_enrolment_code_is_consumed_once_under_concurrency(app: FastAPI) -> None:
    from server.errors import EnrolmentError
    from server.services.enrolment import redeem_code

    with TestClient(app) as c:
        code = issue_code(c)
    won: list[str] = []
    barrier = threading.Barrier(5)

    def race() -> None:
        barrier.wait()
        try:
            with session_scope(app.state.ctx.sessions) as s:
                redeem_code(s, code, token_ttl_seconds=60)
            won.append("token")
        except EnrolmentError as exc:
            won.append(exc.code)

    threads = [threading.Thread(target=race) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert won.count("token") == 1 and set(won) == {"token", "enrolment_code_used"}, won


def test_cli_enroll_recorder_prints_a_code_the_recorder_can_use(
    app: FastAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANDEM_SERVER_DATA_DIR", raising=False)
    assert (
        server_cli(
            ["--data-dir", str(tmp_path / "data"), "enroll-recorder", "--username", "agent1", "--json"]
        )
        == 0
    )
    issued = json.loads(capsys.readouterr().out)
    assert issued["username"] == "agent1"
    assert server_cli(["--data-dir", str(tmp_path / "data"), "enroll-recorder", "--username", "nobody"]) == 1
    with TestClient(app) as c:
        r = c.post("/api/recorders/enroll", json={"code": issued["code"]})
        assert r.status_code == 200, r.text
    issued_rows = audit_rows(app, "recorder.enrolment.issue")
    assert [(a.username, a.outcome) for a in issued_rows] == [("cli", "allowed"), ("cli", "denied")]


# -- the event channel's scopes -----------------------------------------------------------------------
def test_event_channel_checks_the_token_scope(client: TestClient, app: FastAPI) -> None:
    recorder = recorder_token(client)
    web = login(client, "agent1", client="web")
    client.cookies.clear()  # the web token travels as a Bearer header here
    for path, token in (("/api/events?client=recorder", web), ("/api/events?client=desktop", recorder)):
        with (
            pytest.raises(WebSocketDisconnect) as info,
            client.websocket_connect(path, headers=bearer(token)) as ws,
        ):
            ws.receive_text()
        assert info.value.code == 4403, path
    for path, token in (("/api/events?client=recorder", recorder), ("/api/events?client=desktop", web)):
        with client.websocket_connect(path, headers=bearer(token)) as ws:
            assert json.loads(ws.receive_text())["type"] == "state"
    refused = [a for a in audit_rows(app, "auth.rejected") if "websocket" in a.detail]
    assert len(refused) == 2 and all(a.username == "agent1" for a in refused)


# -- the schema change ------------------------------------------------------------------------------
def test_revision_0003_revokes_password_recorder_tokens_and_keeps_stored_media(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from server.store.db import alembic_config, migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0002")
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO users (id, username, full_name, role, password_hash, active, created_at) "
                "VALUES (1, 'agent1', '', 'agent', 'x', 1, 0)"
            )
        )
        for n, client in enumerate(("recorder", "desktop"), start=1):
            db.execute(
                text(
                    "INSERT INTO api_tokens (id, token_hash, user_id, client, created_at, expires_at) "
                    "VALUES (:id, :hash, 1, :client, 0, 9e12)"
                ),
                {"id": n, "hash": f"{n:064x}", "client": client},
            )
        db.execute(
            text(
                "INSERT INTO interactions (id, call_id, dn, agent_id, caller, callee, state, started_at, "
                "end_reason, screen_decision, screen_percentage, voice_state, screen_state) "
                "VALUES ('i1', 'c1', '1001', 1, '', '', 'done', 0, '', 1, 100, 'stopped', 'stopped')"
            )
        )
        db.execute(
            text(
                "INSERT INTO media_files (interaction_id, kind, storage_key, content_type, size, sha256, "
                "started_at, created_at) VALUES ('i1', 'screen', 'k', 'video/mp4', 1, 's', 0, 0)"
            )
        )
    migrate(url)
    with engine.begin() as db:
        revoked: dict[str, int] = dict(
            db.execute(text("SELECT client, revoked_at IS NOT NULL FROM api_tokens")).all()
        )
        assert revoked == {"recorder": 1, "desktop": 0}
        assert db.execute(text("SELECT state FROM media_files")).scalar_one() == "complete"
    engine.dispose()
