"""Access, table-driven over EVERY route of the app: docs/role-matrix.md says, per role, whether
each endpoint is allowed, own-calls-only, team-only, public, recorder-only or refused; this test
reads that table and checks it against the running app (SIP off) with one user per role.

- The doc and the app list the same routes (a route missing from the doc fails by name).
- refused / recorder: 403 and a new ``denied`` audit record of that user.
- allowed / own / team / public: not 401/403, and no server error (requests carry ``{}`` bodies
  and unknown ids, so nothing is changed: a 404 or 422 past the access check is a pass).
- own / team on an interaction's route: the user's own/team call (``call-blue``) passes and a
  call of another team (``call-red``) is refused (403, audited).
- public: also without any credentials.
- the page table: each page's cells are those of the endpoint that gates it.

``python -m tests.integration.test_role_matrix`` prints what the app does, row by row, in the
doc's format (to fill in a new route's row after deciding it is right)."""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.security.tokens import new_token, token_digest
from server.services import agent_playback
from server.services.actor import Actor
from server.store import models
from server.store.db import session_scope
from tests.integration.access_world import ROLE_USERS, T0, world
from tests.integration.role_matrix import DOC, ROLES, Row, app_routes, read_matrix, read_pages

# Path parameters: a real interaction for interaction routes, unknown ids for the rest (no change).
PARAMS = {
    "interaction_id": "call-blue",
    "kind": "voice",
    "username": "ann",
    "code": "NOPE",
}
FOREIGN_CALL = "call-red"
UNKNOWN_ID = "999999"
# Routes whose scope check runs after body validation get a valid body (a {} body would stop at
# 422 before the check the row is about).
BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/api/interactions/{interaction_id}/bookmarks"): {
        "at": T0 + 1.0,
        "text": "matrix",
        "shared": False,
    },
    ("POST", "/api/interactions/{interaction_id}/shares"): {"kind": "voice", "minutes": 2},
}
REFUSED = ("refused", "recorder")
PASSING = ("allowed", "own", "team", "public")
SKIP_WS = "WS"  # the event channel takes a one-time ticket, not a bearer: tests/integration/test_api.py


def _url(path: str, **override: str) -> str:
    values = {**PARAMS, **override}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), UNKNOWN_ID), path)


def _token(client: TestClient, username: str) -> dict[str, str]:
    """A fresh API token of ``username`` (a logout in the table must not end the next request's)."""
    token = new_token()
    with session_scope(client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        user = s.query(models.User).filter_by(username=username).one()
        now = time.time()
        s.add(
            models.ApiToken(
                token_hash=token_digest(token),
                user_id=user.id,
                client="api",
                created_at=now,
                expires_at=now + 3600,
            )
        )
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def _denials(client: TestClient, username: str | None) -> int:
    """Denied audit records of ``username`` (None: of anyone)."""
    with session_scope(client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        q = s.query(models.AuditRecord).filter_by(outcome="denied")
        return (q if username is None else q.filter_by(username=username)).count()


def _call(client: TestClient, method: str, path: str, headers: dict[str, str], **override: str) -> Any:
    json = BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, _url(path, **override), headers=headers, json=json)


def _setup(client: TestClient) -> None:
    # Agents may play their own calls in team Blue: "own" then means their own recordings.
    with session_scope(client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        agent_playback.set_teams(s, Actor.cli(), ["Blue"])
        s.commit()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with world(tmp_path_factory.mktemp("matrix")) as client:
        _setup(client)
        yield client


def _matrix() -> list[Row]:
    return read_matrix(DOC.read_text()) if DOC.exists() else []


def _cases() -> list[Any]:
    return [
        pytest.param(row, role, id=f"{row.method} {row.path} {role}")
        for row in _matrix()
        if row.method != SKIP_WS
        for role in ROLES
    ]


def test_the_doc_lists_every_route_of_the_app(env: TestClient) -> None:
    in_app = {(m, p) for m, p, _ in app_routes(env.app)}  # type: ignore[arg-type]
    in_doc = {(r.method, r.path) for r in _matrix()}
    missing, stale = sorted(in_app - in_doc), sorted(in_doc - in_app)
    assert not missing, f"routes without a row in {DOC.name} (decide and add them): {missing}"
    assert not stale, f"rows in {DOC.name} for routes the app no longer has: {stale}"


@pytest.mark.parametrize(("row", "role"), _cases())
def test_role_gets_what_the_matrix_says(env: TestClient, row: Row, role: str) -> None:
    cell, user = row.cells[role], ROLE_USERS[role]
    before = _denials(env, user)
    if cell == "device":  # the credential is the PC's, so the refusal names no user
        before_all = _denials(env, None)
        r = _call(env, row.method, row.path, _token(env, user))
        assert r.status_code == 401, f"{cell}: {r.status_code} {r.text[:200]}"
        assert _denials(env, None) > before_all, "the refusal left no audit record"
        return
    r = _call(env, row.method, row.path, _token(env, user))
    if cell in REFUSED:
        assert r.status_code == 403, f"{cell}: {r.status_code} {r.text[:200]}"
        assert _denials(env, user) > before, "the refusal left no audit record"
        return
    assert r.status_code not in (401, 403) and r.status_code < 500, f"{cell}: {r.status_code} {r.text[:200]}"
    if cell in ("own", "team") and "{interaction_id}" in row.path:
        before = _denials(env, user)
        other = _call(env, row.method, row.path, _token(env, user), interaction_id=FOREIGN_CALL)
        assert other.status_code == 403, (
            f"{cell}: another team's call gave {other.status_code} {other.text[:200]}"
        )
        assert _denials(env, user) > before, "the refusal left no audit record"
    if cell == "public":
        anonymous = _call(env, row.method, row.path, {})
        assert anonymous.status_code not in (401, 403) and anonymous.status_code < 500


def test_pages_follow_their_gating_endpoint() -> None:
    text = DOC.read_text()
    endpoints = {(r.method, r.path): r.cells for r in read_matrix(text)}
    pages = read_pages(text)
    assert len(pages) >= 6
    for page, method, path, cells in pages:
        assert (method, path) in endpoints, f"page {page}: {method} {path} is not in the endpoint table"
        gate = endpoints[(method, path)]
        assert {r: c in REFUSED for r, c in cells.items()} == {r: c in REFUSED for r, c in gate.items()}, page


def _observe() -> None:
    """Print each route's observed cells in the doc's format (for a person to check)."""
    with world(Path(tempfile.mkdtemp())) as client:
        _setup(client)
        for method, path, _ in app_routes(client.app):  # type: ignore[arg-type]
            if method == SKIP_WS:
                sys.stdout.write(
                    f"| WS | `{path}` | allowed | allowed | allowed | allowed | allowed | ticket |\n"
                )
                continue
            anonymous = _call(client, method, path, {}).status_code
            cells = []
            for role in ROLES:
                user = ROLE_USERS[role]
                status = _call(client, method, path, _token(client, user)).status_code
                if anonymous not in (401, 403):
                    cells.append("public")
                elif status == 401:
                    cells.append("device")
                elif status == 403:
                    cells.append("refused")
                elif "{interaction_id}" in path and role in ("agent", "supervisor", "evaluator"):
                    foreign = _call(client, method, path, _token(client, user), interaction_id=FOREIGN_CALL)
                    scoped = foreign.status_code == 403
                    cells.append(("own" if role == "agent" else "team") if scoped else "allowed")
                else:
                    cells.append("allowed")
            sys.stdout.write(f"| {method} | `{path}` | {' | '.join(cells)} | |\n")


if __name__ == "__main__":
    _observe()
