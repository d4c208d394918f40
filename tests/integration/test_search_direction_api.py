"""GET /api/interactions/search by direction, in process (SIP off): inbound, outbound and unknown
("" stored: the SIP side did not say) each give exactly their calls, within what the user may see,
paged without holes; the rows and the player's summary carry the direction; sorting by it pages
in order; another value is a clear 422, audited; revision 0017 leaves older calls unknown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from server.store import models
from server.store.db import session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
T0 = 1_780_000_000.0
DIRECTIONS = ("inbound", "outbound", "")
AGENTS = {"agent1": "Blue", "agent2": "Red"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, tuple[str, str]]]]:
    """The client and the seeded calls: id -> (agent, direction)."""
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    app = create_app(settings)
    seeded: dict[str, tuple[str, str]] = {}
    with TestClient(app) as c, session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        for name, team in AGENTS.items():
            create_user(s, name, PASSWORD, "agent", team=team)
        s.flush()
        ids = {u.username: u.id for u in s.query(models.User).all()}
        for n in range(40):
            agent = "agent1" if n % 2 else "agent2"
            direction = DIRECTIONS[n % 3]
            started = T0 - (n // 4) * 60.0  # ties: four calls share a start
            s.add(
                models.Interaction(
                    id=f"d{n:03d}",
                    call_id=f"c{n}",
                    dn="2001",
                    agent_id=ids[agent],
                    caller="1555",
                    callee="2001",
                    state="done",
                    started_at=started,
                    answered_at=started,
                    ended_at=started + 30,
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="complete",
                    screen_state="off",
                    direction=direction,
                )
            )
            seeded[f"d{n:03d}"] = (agent, direction)
        s.commit()
        yield c, seeded


def login(http: TestClient, user: str) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def pages(http: TestClient, auth: dict[str, str], params: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params, limit="7", **({"cursor": cursor} if cursor else {}))
        r = http.get("/api/interactions/search", params=query, headers=auth)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


@pytest.mark.parametrize(
    ("asked", "stored"), [("inbound", "inbound"), ("outbound", "outbound"), ("unknown", "")]
)
@pytest.mark.parametrize("user", ["admin", "sup"])
def test_each_direction_finds_exactly_its_calls_within_what_the_user_sees(
    env: Any, asked: str, stored: str, user: str
) -> None:
    http, seeded = env
    visible = {i for i, (agent, _) in seeded.items() if user == "admin" or AGENTS[agent] == "Blue"}
    want = {i for i in visible if seeded[i][1] == stored}
    items = pages(http, login(http, user), {"direction": asked})
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) and set(ids) == want
    assert {item["direction"] for item in items} == {stored}
    r = http.get("/api/interactions/search", params={"direction": asked.upper()}, headers=login(http, user))
    assert r.json()["query"] == f"direction={asked}" and r.json()["count"] == len(want)


def test_the_player_summary_carries_the_direction(env: Any) -> None:
    http, seeded = env
    auth = login(http, "admin")
    for call_id in ("d000", "d001", "d002"):
        r = http.get(f"/api/interactions/{call_id}", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["direction"] == seeded[call_id][1]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_by_direction_pages_in_order(env: Any, order: str) -> None:
    http, seeded = env
    items = pages(http, login(http, "admin"), {"sort": "direction", "order": order})
    keys = [(item["direction"], item["id"]) for item in items]
    assert keys == sorted(keys, reverse=order == "desc") and len(keys) == len(seeded)


def test_another_direction_is_a_clear_422_and_audited(env: Any) -> None:
    http, _seeded = env
    r = http.get("/api/interactions/search", params={"direction": "sideways"}, headers=login(http, "sup"))
    assert r.status_code == 422
    assert r.json()["message"] == "direction: 'sideways' is not a direction; use inbound, outbound, unknown"
    audit = http.get("/api/audit", params={"limit": 100}, headers=login(http, "admin")).json()
    denied = [a for a in audit if a["action"] == "interaction.search" and a["outcome"] == "denied"]
    assert len(denied) == 1 and "direction" in str(denied[0]["detail"])


def test_revision_0017_leaves_older_calls_unknown_and_downgrades(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from server.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0016")
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO interactions (id, call_id, dn, caller, callee, state, started_at, end_reason,"
                " screen_decision, screen_percentage, voice_state, screen_state, kind, source, participants,"
                " recording_meta) VALUES ('a', 'c', '2001', '1555', '2001', 'done', 100, 'bye', 0, 0,"
                " 'complete', 'off', 'plain', '', '[]', '{}')"
            )
        )
    command.upgrade(alembic_config(url), "head")
    with engine.begin() as db:
        assert db.execute(text("SELECT direction FROM interactions")).scalar_one() == ""
        indexes = {r[1] for r in db.execute(text("PRAGMA index_list(interactions)"))}
        assert "ix_interactions_direction_started_id" in indexes
    command.downgrade(alembic_config(url), "0016")
    with engine.begin() as db:
        columns = {r[1] for r in db.execute(text("PRAGMA table_info(interactions)"))}
        assert "direction" not in columns
        assert db.execute(text("SELECT id FROM interactions")).scalar_one() == "a"
    engine.dispose()
