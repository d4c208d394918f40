"""Share links in process (SIP off): a permitted role creates a 2–60 min link to one media file,
anyone holding it gets that file without login (Range too) and nothing else, until it expires
(its stored expires_at moved into the past — no waiting two minutes) or is revoked; every create,
use, refusal and revoke is audited; the token is stored only hashed. Downloads are audited too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from server.api.log_redaction import redact
from server.services.share_links import state_of, validity_problem
from server.store import models
from server.store.db import session_scope
from tests.integration.access_world import audits, login, world


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestClient]:
    with world(tmp_path) as client:
        yield client


def _share(env: TestClient, user: str, call: str = "call-blue", **body: object) -> tuple[int, dict[str, Any]]:
    r = env.post(
        f"/api/interactions/{call}/shares",
        json={"kind": "muxed", "minutes": 5, **body},
        headers=login(env, user),
    )
    return r.status_code, r.json()


def _stored(env: TestClient, share_id: int) -> bytes:
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        row = s.get(models.ShareLink, share_id)
        assert row is not None
        return row.token_hash.encode()


def _expire(env: TestClient, share_id: int) -> None:
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        row = s.get(models.ShareLink, share_id)
        assert row is not None
        row.expires_at = row.created_at - 1
        s.commit()


def test_validity_and_state_rules() -> None:
    assert validity_problem(2) == "" and validity_problem(60) == ""
    assert "2 to 60" in validity_problem(1) and "2 to 60" in validity_problem(61)
    assert validity_problem(5.5) and validity_problem(True) and validity_problem("5")
    assert state_of(100.0, None, 99.9) == "active"
    assert state_of(100.0, None, 100.0) == "expired"
    assert state_of(100.0, 50.0, 10.0) == "revoked"


def test_link_works_without_login_then_expires_then_refused_after_revoke(env: TestClient) -> None:
    status, made = _share(env, "sup")
    assert status == 201, made
    token = str(made["token"])
    url = urlsplit(str(made["url"]))
    assert url.path == "/share" and parse_qs(url.query)["token"] == [token]
    assert made["state"] == "active" and made["kind"] == "muxed"
    # The access log's filter hides the token of a request to the link.
    assert token not in redact(f'127.0.0.1 - "GET /share?token={token} HTTP/1.1" 200')
    assert float(made["expires_at"]) - float(made["created_at"]) == pytest.approx(300)
    # Only the hash is stored.
    assert _stored(env, int(made["id"])) == hashlib.sha256(token.encode()).hexdigest().encode()

    anonymous = TestClient(env.app)  # no cookie, no bearer
    r = anonymous.get("/share", params={"token": token})
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    assert r.content == ctx.storage.local_path("rec/call-blue/call-blue.mp4").read_bytes()
    part = anonymous.get("/share", params={"token": token}, headers={"Range": "bytes=4-7"})
    assert part.status_code == 206 and part.content == b"ftyp"
    # The link opens nothing else: not the API, not the other media.
    assert anonymous.get("/api/interactions/call-blue", params={"token": token}).status_code == 401

    _expire(env, int(made["id"]))
    gone = anonymous.get("/share", params={"token": token})
    assert gone.status_code == 410 and "expired" in gone.json()["message"]

    status, made2 = _share(env, "comp", minutes=60)
    assert status == 201
    assert anonymous.get("/share", params={"token": made2["token"]}).status_code == 200
    r = env.delete(f"/api/shares/{made2['id']}", headers=login(env, "sup"))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    refused = anonymous.get("/share", params={"token": made2["token"]})
    assert refused.status_code == 410 and "revoked" in refused.json()["message"]
    assert anonymous.get("/share", params={"token": "not-a-token"}).status_code == 404

    uses = audits(env, "share.use")
    assert [u.outcome for u in uses] == ["allowed", "allowed", "denied", "allowed", "denied", "denied"]
    assert all(u.username == "(share link)" for u in uses)
    assert json.loads(uses[2].detail)["refused"] == "share link expired"
    assert json.loads(uses[4].detail)["refused"] == "share link revoked"
    assert uses[0].target_id == "call-blue"
    assert [(a.username, a.outcome) for a in audits(env, "share.create")] == [
        ("sup", "allowed"),
        ("comp", "allowed"),
    ]
    assert [(a.username, a.outcome) for a in audits(env, "share.revoke")] == [("sup", "allowed")]
    # No audit record holds the token.
    assert not any(token in (a.detail + a.target_id) for a in audits(env))

    listed = env.get("/api/interactions/call-blue/shares", headers=login(env, "admin")).json()
    assert [x["state"] for x in listed] == ["revoked", "expired"] and listed[1]["uses"] == 2
    assert all("token" not in x for x in listed)


@pytest.mark.parametrize(
    ("user", "call", "body", "status", "code"),
    [
        ("ann", "call-blue", {}, 403, "forbidden"),  # agents do not share
        ("eva", "call-blue", {}, 403, "forbidden"),  # evaluators neither (docs/role-matrix.md)
        ("sup", "call-red", {}, 403, "forbidden"),  # not the supervisor's team
        ("sup", "call-blue", {"minutes": 1}, 422, "invalid_share"),
        ("sup", "call-blue", {"minutes": 61}, 422, "invalid_share"),
        ("sup", "call-blue", {"kind": "screen"}, 404, "media_not_ready"),
        ("admin", "nope", {}, 404, "unknown_interaction"),
    ],
)
def test_refusals_are_audited(
    env: TestClient, user: str, call: str, body: dict[str, object], status: int, code: str
) -> None:
    got, answer = _share(env, user, call, **body)
    assert (got, answer["error"]) == (status, code), answer
    denied = [a for a in audits(env) if a.outcome == "denied" and a.username == user]
    assert denied, "the refusal left no audit record"
    assert not audits(env, "share.use")
    ctx = env.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        assert s.query(models.ShareLink).count() == 0


def test_revoke_needs_the_recording_and_a_sharing_role(env: TestClient) -> None:
    _, made = _share(env, "admin", "call-red")
    r = env.delete(f"/api/shares/{made['id']}", headers=login(env, "sup"))  # Red is not sup's team
    assert r.status_code == 403
    assert env.delete(f"/api/shares/{made['id']}", headers=login(env, "ann")).status_code == 403
    assert env.delete("/api/shares/999", headers=login(env, "comp")).status_code == 404
    assert TestClient(env.app).get("/share", params={"token": made["token"]}).status_code == 200
    assert [a.outcome for a in audits(env, "share.revoke")] == ["denied", "denied"]  # sup, unknown id
    assert audits(env, "access.denied")[-1].username == "ann"


def test_each_download_is_audited_with_its_kind(env: TestClient) -> None:
    auth = login(env, "comp")
    for kind in ("muxed", "voice"):
        r = env.get(f"/api/interactions/call-blue/media/{kind}", headers=auth)
        assert r.status_code == 200
    reads = [a for a in audits(env, "recording.read") if a.outcome == "allowed"]
    assert [a.detail.split()[0] for a in reads] == ["muxed", "voice"]
    assert all(a.username == "comp" and a.target_id == "call-blue" for a in reads)
