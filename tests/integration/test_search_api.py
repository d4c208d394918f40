"""GET /api/interactions/search in process (SIP off): who sees what (table-driven), every filter
against the same rule computed in Python, keyset paging under ties, refusals (422, audited),
one audit record per search, saved searches and the admin's searchable metadata keys."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.policy.access import Viewer, may_see_interaction
from server.services import search
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
T0 = 1_780_000_000.0  # a fixed "now" for the seeded calls
AGENTS = {"agent1": "Blue", "agent2": "Blue", "agent3": "Red"}


@dataclass
class Seeded:
    id: str
    agent: str | None
    team: str | None
    agent_id: int | None
    started_at: float
    duration: float | None
    caller: str
    callee: str
    screen: bool
    paused: bool
    held: bool
    end_reason: str
    queue: str
    disposition: str | None
    notes: str


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, list[Seeded], dict[str, Any]]]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    rng = random.Random(14)
    seeded: list[Seeded] = []
    users: dict[str, Any] = {}
    # Seeded after start-up, so that recovery does not end the calls still in progress.
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "comp", PASSWORD, "compliance")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "sup_red", PASSWORD, "supervisor", supervises=["Red"])
        create_user(s, "eval_none", PASSWORD, "evaluator")
        for name, team in AGENTS.items():
            create_user(s, name, PASSWORD, "agent", team=team)
        s.flush()
        for user in s.query(models.User).all():
            team_row = s.get(models.Team, user.team_id) if user.team_id else None
            users[user.username] = (user.id, team_row.name if team_row else None, user.team_id)
        for n in range(300):
            agent = [None, "agent1", "agent2", "agent3"][n % 4] if n % 29 else None
            agent_id, team_name, _ = users[agent] if agent else (None, None, None)
            # Ties on purpose: groups of 6 calls share a start time.
            started = T0 - (n // 6) * 600.0
            ended = None if n % 37 == 0 else started + rng.choice([30.0, 60.0, 95.0, 300.0])
            caller_digits = rng.choice(["+1 555 0100", "1555 0199", "+44 20 7946", "0033 1 44"])
            caller = f"Client {n} <sip:{caller_digits}{n:03d}@pbx.example>"
            callee = f"{rng.choice(['2001', '2002', '3001'])}"
            reason = rng.choice(["bye", "bye", "timeout", "cancel"])
            queue = rng.choice(["Gold", "silver", ""])
            row = models.Interaction(
                id=f"i{n:04d}",
                call_id=f"c{n}",
                dn=callee,
                agent_id=agent_id,
                caller=caller,
                callee=callee,
                state="done" if ended else "active",
                started_at=started,
                answered_at=started,
                ended_at=ended,
                end_reason=reason if ended else "",
                screen_decision=True,
                screen_percentage=100.0,
                voice_state="complete",
                screen_state="complete",
                recording_meta=json.dumps({"params": {"queue": queue} if queue else {}}),
                disposition_code=[None, "sale", "callback"][n % 3] if ended else None,
                notes=f"customer asked about invoice 100%_{n % 4}" if n % 4 else "",
            )
            s.add(row)
            s.flush()
            screen = n % 3 == 0
            if screen:
                s.add(
                    models.MediaFile(
                        interaction_id=row.id,
                        kind="muxed",
                        storage_key=f"k/{row.id}",
                        content_type="video/mp4",
                        size=1,
                        sha256="0" * 64,
                        started_at=started,
                        created_at=started,
                    )
                )
            paused = n % 5 == 0
            held = n % 7 == 0
            if paused:
                s.add(models.PauseSpan(interaction_id=row.id, started_at=started + 1, reason="agent"))
            if held:
                s.add(models.PauseSpan(interaction_id=row.id, started_at=started + 2, reason="hold"))
            seeded.append(
                Seeded(
                    row.id,
                    agent,
                    team_name,
                    agent_id,
                    started,
                    None if ended is None else ended - started,
                    caller,
                    callee,
                    screen,
                    paused,
                    held,
                    row.end_reason,
                    queue.casefold(),
                    row.disposition_code,
                    row.notes,
                )
            )
        s.commit()
        yield c, seeded, users


def login(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def everything(http: TestClient, auth: dict[str, str], params: dict[str, str] | None = None) -> list[str]:
    """Every id the search gives, page by page (asserts no page repeats an id)."""
    ids: list[str] = []
    cursor = None
    while True:
        query = dict(params or {}, limit="17")
        if cursor:
            query["cursor"] = cursor
        r = http.get("/api/interactions/search", params=query, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)), "a row came twice"
    return ids


def admin_audit(http: TestClient) -> list[dict[str, Any]]:
    r = http.get("/api/audit", params={"limit": 1000}, headers=login(http, "admin"))
    assert r.status_code == 200
    return list(r.json())


# -- access -------------------------------------------------------------------------------------

ACCESS = [
    ("admin", "admin"),
    ("comp", "compliance"),
    ("sup", "supervisor"),
    ("sup_red", "supervisor"),
    ("eval_none", "evaluator"),
    ("agent1", "agent"),
    ("agent3", "agent"),
]


@pytest.mark.parametrize(("username", "role"), ACCESS)
def test_each_role_finds_exactly_what_it_may_see(env: Any, username: str, role: str) -> None:
    http, seeded, users = env
    user_id, _team, _team_id = users[username]
    supervised = {"sup": {users["agent1"][2]}, "sup_red": {users["agent3"][2]}}.get(username, set())
    viewer = Viewer(user_id, role, frozenset(supervised))
    team_id = {name: users[name][2] for name in AGENTS}
    expected = {
        s.id for s in seeded if may_see_interaction(viewer, s.agent_id, team_id.get(s.agent or "", None))
    }
    found = everything(http, login(http, username))
    assert set(found) == expected
    r = http.get("/api/interactions/search", params={"limit": "1"}, headers=login(http, username))
    assert r.json()["count"] == len(expected)
    if role in ("agent", "supervisor"):
        assert 0 < len(expected) < len(seeded)  # the rule actually narrows


def test_a_filter_cannot_widen_what_a_supervisor_sees(env: Any) -> None:
    http, _seeded, _users = env
    auth = login(http, "sup")
    assert everything(http, auth, {"agent": "agent3"}) == []  # agent3 is in Red, not sup's team
    assert everything(http, auth, {"team": "Red"}) == []


# -- filters ------------------------------------------------------------------------------------


def _ids(seeded: list[Seeded], rule: Any) -> set[str]:
    return {s.id for s in seeded if rule(s)}


FILTERS: list[tuple[dict[str, str], Any]] = [
    ({"agent": "agent2"}, lambda s: s.agent == "agent2"),
    ({"agent": "agent1,agent3"}, lambda s: s.agent in ("agent1", "agent3")),
    ({"team": "Blue"}, lambda s: s.team == "Blue"),
    ({"caller": "+1 555"}, lambda s: "+1 555 " in s.caller or "1555 " in s.caller),
    ({"caller": "4420"}, lambda s: "+44 20" in s.caller),
    ({"callee": "200"}, lambda s: s.callee.startswith("200")),
    (
        {"min_duration": "60", "max_duration": "100"},
        lambda s: s.duration is not None and 60 <= s.duration <= 100,
    ),
    ({"has_screen": "true"}, lambda s: s.screen),
    ({"has_screen": "false"}, lambda s: not s.screen),
    ({"paused": "true"}, lambda s: s.paused),
    ({"paused": "false"}, lambda s: not s.paused),
    ({"has_screen": "true", "paused": "true"}, lambda s: s.screen and s.paused),
    ({"end_reason": "timeout"}, lambda s: s.end_reason == "timeout"),
    ({"disposition": "sale"}, lambda s: s.disposition == "sale"),
    # Notes: a substring, with LIKE's wildcards taken literally ("100%_2" is not "100x2").
    ({"notes": "INVOICE 100%_2"}, lambda s: "invoice 100%_2" in s.notes.casefold()),
]


@pytest.mark.parametrize(("params", "rule"), FILTERS, ids=[json.dumps(p) for p, _ in FILTERS])
def test_each_filter_matches_the_same_rule_in_python(env: Any, params: dict[str, str], rule: Any) -> None:
    http, seeded, _users = env
    expected = _ids(seeded, rule)
    assert expected, "the seed must give this filter something to find"
    assert set(everything(http, login(http, "admin"), params)) == expected


def test_time_range_as_iso_with_an_offset_or_unix_seconds(env: Any) -> None:
    http, seeded, _users = env
    # T0 - 3000 s and T0 as local times at UTC+02:00; "to" is exclusive.
    expected = _ids(seeded, lambda s: T0 - 3000 <= s.started_at < T0)
    assert expected
    iso = {"from": "2026-05-28T21:36:40+02:00", "to": "2026-05-28T22:26:40+02:00"}
    assert set(everything(http, login(http, "admin"), iso)) == expected
    unix = {"from": str(T0 - 3000), "to": str(T0)}
    assert set(everything(http, login(http, "admin"), unix)) == expected
    naive_utc = {"from": "2026-05-28T19:36:40", "to": "2026-05-28T20:26:40"}
    assert set(everything(http, login(http, "admin"), naive_utc)) == expected


# -- sorting and keyset paging --------------------------------------------------------------------


def _key(s: Seeded, sort: str, usernames: dict[int | None, str]) -> Any:
    if sort == "started_at":
        return s.started_at
    if sort == "duration":
        return -1.0 if s.duration is None else s.duration
    if sort == "agent":
        return usernames.get(s.agent_id, "")
    if sort == "end_reason":
        return s.end_reason
    from server.store.search_columns import number_key

    return number_key(s.caller if sort == "caller" else s.callee)


@pytest.mark.parametrize("sort", ["started_at", "duration", "agent", "caller", "callee", "end_reason"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_paging_under_ties_has_no_duplicates_or_holes_in_sort_order(env: Any, sort: str, order: str) -> None:
    http, seeded, users = env
    usernames = {uid: name for name, (uid, _t, _tid) in users.items()}
    ids = everything(http, login(http, "admin"), {"sort": sort, "order": order})
    expected = sorted(seeded, key=lambda s: (_key(s, sort, usernames), s.id), reverse=order == "desc")
    assert ids == [s.id for s in expected]


def test_the_count_is_capped(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    http, seeded, _users = env
    monkeypatch.setattr(search, "COUNT_CAP", 100)
    body = http.get("/api/interactions/search", headers=login(http, "admin")).json()
    assert (body["count"], body["count_capped"]) == (100, True)
    body = http.get(
        "/api/interactions/search", params={"agent": "agent1"}, headers=login(http, "admin")
    ).json()
    assert body["count"] == sum(1 for s in seeded if s.agent == "agent1") and not body["count_capped"]


# -- refusals and audit ---------------------------------------------------------------------------


def _cursor(http: TestClient, auth: dict[str, str], params: dict[str, str]) -> str:
    r = http.get("/api/interactions/search", params={**params, "limit": "5"}, headers=auth)
    return str(r.json()["next_cursor"])


def _tampered(cursor: str, **changes: Any) -> str:
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload.update(changes)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_bad_queries_get_a_clear_422_and_are_audited(env: Any) -> None:
    http, _seeded, _users = env
    auth = login(http, "sup")
    good = _cursor(http, auth, {})
    cases = [
        ({"from": "yesterday"}, "from: 'yesterday' is not a date and time"),
        ({"from": "2026-12-04T10:00Z", "to": "2026-12-04T09:00Z"}, "to: must be later than from"),
        ({"sort": "password"}, "sort: must be one of"),
        ({"order": "sideways"}, "order: must be asc or desc"),
        ({"limit": "5000"}, "limit: between 1 and 200"),
        ({"has_screen": "maybe"}, "has_screen: must be true or false"),
        ({"min_duration": "-3"}, "min_duration: seconds between"),
        ({"colour": "red"}, "colour: unknown parameter"),
        ({"direction": "north"}, "direction: 'north' is not a direction; use inbound, outbound, unknown"),
        ({"meta.queue": "gold"}, "meta.queue: not a searchable metadata key"),
        ({"cursor": "!!!not-base64"}, "cursor: not a cursor this search gave out"),
        ({"cursor": _tampered(good, v="a string")}, "cursor: is damaged"),
        ({"cursor": _tampered(good, x=1)}, "cursor: not a cursor this search gave out"),
        ({"cursor": good, "sort": "duration"}, "cursor: belongs to another search"),
        ({"cursor": good, "agent": "agent1"}, "cursor: belongs to another search"),
    ]
    for params, message in cases:
        r = http.get("/api/interactions/search", params=params, headers=auth)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"] == "invalid_search"
        assert message in r.json()["message"], (params, r.json()["message"])
    denied = [
        a for a in admin_audit(http) if a["action"] == "interaction.search" and a["outcome"] == "denied"
    ]
    assert len(denied) == len(cases)
    assert "sort: must be one of" in " ".join(str(a["detail"]) for a in denied)


def test_one_audit_record_per_search_with_filters_and_scope(env: Any) -> None:
    http, _seeded, _users = env
    auth = login(http, "sup")
    before = [a for a in admin_audit(http) if a["action"] == "interaction.search"]
    r = http.get("/api/interactions/search", params={"caller": "1555", "limit": "50"}, headers=auth)
    assert r.status_code == 200 and len(r.json()["items"]) > 1
    after = [a for a in admin_audit(http) if a["action"] == "interaction.search"]
    assert len(after) == len(before) + 1
    record = after[0]  # newest first
    detail = json.loads(str(record["detail"]))
    assert record["username"] == "sup" and record["outcome"] == "allowed"
    assert detail["filters"] == {"caller": "1555"}
    assert detail["scope"].startswith("teams ") and detail["returned"] == len(r.json()["items"])


def test_search_route_leaves_the_interaction_routes_alone(env: Any) -> None:
    http, _seeded, _users = env
    auth = login(http, "admin")
    assert http.get("/api/interactions/i0001", headers=auth).json()["id"] == "i0001"
    assert len(http.get("/api/interactions", headers=auth).json()) == 200  # the old listing


# -- saved searches -------------------------------------------------------------------------------


def test_saved_searches_are_per_user_validated_and_audited(env: Any) -> None:
    http, _seeded, _users = env
    sup, other = login(http, "sup"), login(http, "sup_red")
    r = http.post(
        "/api/searches", json={"name": "Long calls", "query": "?min_duration=60&sort=duration"}, headers=sup
    )
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["query"] == "min_duration=60&sort=duration"
    # The same name replaces; a cursor in the query is not kept.
    r = http.post(
        "/api/searches", json={"name": "Long calls", "query": "min_duration=90&cursor=abc"}, headers=sup
    )
    assert r.status_code == 201 and r.json()["id"] == saved["id"] and r.json()["query"] == "min_duration=90"
    r = http.post("/api/searches", json={"name": "Bad", "query": "sort=nope"}, headers=sup)
    assert r.status_code == 422 and "sort: must be one of" in r.json()["message"]
    assert [s["name"] for s in http.get("/api/searches", headers=sup).json()] == ["Long calls"]
    assert http.get("/api/searches", headers=other).json() == []
    assert http.delete(f"/api/searches/{saved['id']}", headers=other).status_code == 404
    assert http.delete(f"/api/searches/{saved['id']}", headers=sup).status_code == 204
    assert http.get("/api/searches", headers=sup).json() == []
    actions = [
        (a["action"], a["outcome"]) for a in admin_audit(http) if str(a["action"]).startswith("search.")
    ]
    assert ("search.saved", "allowed") in actions and ("search.saved", "denied") in actions
    assert ("search.saved_delete", "denied") in actions and ("search.saved_delete", "allowed") in actions


# -- searchable metadata keys ---------------------------------------------------------------------


def test_admin_names_metadata_keys_and_search_finds_their_values(env: Any) -> None:
    http, seeded, _users = env
    admin = login(http, "admin")
    assert (
        http.put("/api/admin/search-keys", json={"keys": ["queue"]}, headers=login(http, "sup")).status_code
        == 403
    )
    too_many = [f"k{i}" for i in range(21)]
    r = http.put("/api/admin/search-keys", json={"keys": too_many}, headers=admin)
    assert r.status_code == 422 and "at most 20" in r.json()["message"]
    r = http.put("/api/admin/search-keys", json={"keys": ["Queue", "account"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["keys"] == ["queue", "account"]
    assert r.json()["values_extracted"] == sum(1 for s in seeded if s.queue)
    # Existing interactions were re-indexed; the value matches without regard to case.
    expected = {s.id for s in seeded if s.queue == "gold"}
    assert set(everything(http, admin, {"meta.queue": "GOLD"})) == expected
    # A call stored (or updated) later is indexed as it is written.
    with session_scope(http.app.state.ctx.sessions) as s:
        row = s.get(models.Interaction, "i0002")
        assert row is not None
        row.recording_meta = json.dumps({"params": {"queue": "Gold", "account": "A-17"}})
    assert set(everything(http, admin, {"meta.queue": "gold"})) == expected | {"i0002"}
    assert everything(http, admin, {"meta.account": "a-17"}) == ["i0002"]
    changes = [a for a in admin_audit(http) if a["action"] == "policy.search_keys"]
    assert [c["outcome"] for c in changes] == ["allowed", "denied"]  # newest first
    allowed = next(c for c in changes if c["outcome"] == "allowed")
    detail = json.loads(str(allowed["detail"]))
    assert detail["before"] == [] and detail["after"] == ["queue", "account"]
    options = http.get("/api/interactions/search/options", headers=login(http, "agent1")).json()
    assert options["metadata_keys"] == ["queue", "account"]


# -- screen thumbnails -----------------------------------------------------------------------------


def test_thumbnail_of_the_screen_is_made_once_and_every_read_is_audited(env: Any, tmp_path: Path) -> None:
    from tests.unit.test_thumbnail import _mp4

    http, seeded, _users = env
    ctx = http.app.state.ctx
    source = tmp_path / "screen.mp4"
    _mp4(source, (30, 160, 40))
    size = source.stat().st_size
    ctx.storage.put_file("thumb-test/screen.mp4", source)
    target = next(s for s in seeded if s.agent == "agent1" and not s.screen)
    with session_scope(ctx.sessions) as s:
        s.add(
            models.MediaFile(
                interaction_id=target.id,
                kind="screen",
                storage_key="thumb-test/screen.mp4",
                content_type="video/mp4",
                size=size,
                sha256="0" * 64,
                started_at=target.started_at,
                created_at=target.started_at,
            )
        )
    url = f"/api/interactions/{target.id}/thumbnail"
    r = http.get(url, headers=login(http, "sup"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.content.startswith(b"\xff\xd8")
    cached = list((ctx.settings.data_dir / "derived" / "thumbnails").glob("*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == r.content
    assert http.get(url, headers=login(http, "admin")).content == r.content  # from the cache
    assert ctx.storage.size("thumb-test/screen.mp4") == size  # the recording is untouched
    # The search says it has a screen now (the flag was set when the file's row was written).
    assert target.id in everything(http, login(http, "sup"), {"has_screen": "true", "agent": "agent1"})
    # Agents do not replay recordings, another team's supervisor does not see it, no screen → 404.
    assert http.get(url, headers=login(http, "agent1")).status_code == 403
    assert http.get(url, headers=login(http, "sup_red")).status_code == 403
    plain = next(s for s in seeded if s.agent == "agent1" and not s.screen and s.id != target.id)
    assert http.get(f"/api/interactions/{plain.id}/thumbnail", headers=login(http, "sup")).status_code == 404
    reads = [
        (a["username"], a["outcome"])
        for a in admin_audit(http)
        if a["action"] == "recording.thumbnail" and a["target_id"] in (target.id, plain.id)
    ]
    assert sorted(reads) == sorted(
        [
            ("sup", "allowed"),
            ("admin", "allowed"),
            ("agent1", "denied"),
            ("sup_red", "denied"),
            ("sup", "denied"),
        ]
    )


# -- revision 0010 on a database with calls ------------------------------------------------------


def test_revision_0010_fills_the_search_columns_of_existing_calls(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from server.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0009")
    engine = create_engine(url)
    call = (
        "INSERT INTO interactions (id, call_id, dn, caller, callee, state, started_at, answered_at, ended_at,"
        " end_reason, screen_decision, screen_percentage, voice_state, screen_state, kind, source,"
        " participants, recording_meta) VALUES (:id, 'c', '2001', :caller, '2001', 'done', 100, :ans, :end,"
        " 'bye', 1, 100, 'complete', 'complete', 'plain', '', '[]', '{}')"
    )
    media = (
        "INSERT INTO media_files (interaction_id, kind, storage_key, content_type, size, sha256, started_at,"
        " created_at, state) VALUES (:id, :kind, :id, 'video/mp4', 1, '', 100, 100, :state)"
    )
    pause = (
        "INSERT INTO pause_spans (interaction_id, started_at, by_username, reason)"
        " VALUES (:id, 101, '', :reason)"
    )
    with engine.begin() as db:
        db.execute(
            text(call), {"id": "a", "caller": "Ann <sip:+44 20 7946 0000@sbc>", "ans": 110, "end": 170}
        )
        db.execute(text(call), {"id": "b", "caller": "1555", "ans": None, "end": None})
        db.execute(text(call), {"id": "c", "caller": "tel:+1-555-0100", "ans": None, "end": 130})
        db.execute(text(media), {"id": "a", "kind": "muxed", "state": "complete"})
        db.execute(text(media), {"id": "b", "kind": "screen", "state": "pending"})  # not stored yet
        db.execute(text(media), {"id": "c", "kind": "voice", "state": "complete"})
        db.execute(text(pause), {"id": "a", "reason": "hold"})
        db.execute(text(pause), {"id": "b", "reason": "agent"})
    command.upgrade(alembic_config(url), "head")
    with engine.begin() as db:
        rows = db.execute(
            text("SELECT id, caller_number, duration, has_screen, was_paused FROM interactions ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a", "442079460000", 60.0, 1, 0),
        ("b", "1555", None, 0, 1),
        ("c", "15550100", 30.0, 0, 0),
    ]
    command.downgrade(alembic_config(url), "0009")
    engine.dispose()
