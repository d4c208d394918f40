"""A required pause reason that never came (issue 14 item 2): the reason is asked after the pause
starts, so an agent may never answer. On a real SQLite database: which pause spans are flagged
(the agent's own pauses only, by the pausing agent's team's rule), the player timeline's
``reason_missing``, and the search filter ``pause_reason_missing`` that finds those calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.policy.access import Viewer
from server.services import pause_reasons, search
from server.services.actor import Actor
from server.services.search_query import canonical, parse
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope

ADMIN = Actor(1, "root", "admin", "web", "10.0.0.1")
EVERYONE = Viewer(1, "admin", frozenset())
T0 = time.time() - 3600
# interaction id -> (agent, [(PauseSpan.reason, reason code or None)])
CALLS: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    "blue-unanswered": ("bea", [("agent", "CARD"), ("agent", None)]),
    "blue-answered": ("bea", [("agent", "CARD")]),
    "blue-api-pause": ("bea", [("control", None), ("hold", None), ("auto:card-form", None)]),
    "red-unanswered": ("rob", [("agent", None)]),
    "teamless-unanswered": ("tia", [("agent", None)]),
    "never-paused": ("bea", []),
}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        blue, red = models.Team(name="Blue"), models.Team(name="Red")
        s.add_all([blue, red])
        s.flush()
        users = {
            name: models.User(username=name, role="agent", password_hash="x", team_id=team, created_at=T0)
            for name, team in (("bea", blue.id), ("rob", red.id), ("tia", None))
        }
        s.add_all(users.values())
        s.flush()
        for n, (iid, (agent, pauses)) in enumerate(CALLS.items()):
            user = users[agent]
            start = T0 + n * 60
            s.add(
                models.Interaction(
                    id=iid,
                    call_id=f"call-{iid}",
                    dn="1001",
                    agent_id=user.id,
                    state="done",
                    started_at=start,
                    answered_at=start,
                    ended_at=start + 30,
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="complete",
                    screen_state="not_selected",
                )
            )
            s.flush()
            for i, (reason, code) in enumerate(pauses):
                s.add(
                    models.PauseSpan(
                        interaction_id=iid,
                        started_at=start + 2 + i * 5,
                        ended_at=start + 4 + i * 5,
                        by_user_id=user.id,
                        by_username=user.username,
                        reason=reason,
                        reason_code=code,
                        reason_label="Card payment" if code else "",
                    )
                )
    yield factory
    engine.dispose()


def flagged(sessions: sessionmaker[Session]) -> dict[str, list[bool]]:
    """Per interaction with pauses, which of its spans (in time order) are flagged."""
    with session_scope(sessions) as s:
        spans = list(s.execute(select(models.PauseSpan).order_by(models.PauseSpan.started_at)).scalars())
        missing = pause_reasons.missing_reasons(s, spans)
        out: dict[str, list[bool]] = {}
        for span in spans:
            out.setdefault(span.interaction_id, []).append(span.id in missing)
        return out


def found(sessions: sessionmaker[Session], value: str) -> set[str]:
    query = parse([("pause_reason_missing", value)])
    with session_scope(sessions) as s:
        page = search.run(s, query, EVERYONE)
        return {row.id for row in page.rows}


def test_nothing_is_flagged_while_no_team_requires_a_reason(sessions: sessionmaker[Session]) -> None:
    assert not any(any(v) for v in flagged(sessions).values())
    assert found(sessions, "true") == set()
    assert found(sessions, "false") == set(CALLS)


def test_a_team_that_requires_a_reason_has_its_unanswered_pauses_flagged(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        pause_reasons.set_rule(s, ADMIN, False, {"Blue": True})
    marks = flagged(sessions)
    # Only the agent's own pause without a code: an API pause, a hold or an auto-pause asks nobody.
    assert marks["blue-unanswered"] == [False, True]
    assert marks["blue-answered"] == [False]
    assert marks["blue-api-pause"] == [False, False, False]
    assert marks["red-unanswered"] == [False] and marks["teamless-unanswered"] == [False]
    assert found(sessions, "true") == {"blue-unanswered"}
    assert found(sessions, "false") == set(CALLS) - {"blue-unanswered"}


def test_the_default_applies_to_agents_without_a_team_and_teams_not_named(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        pause_reasons.set_rule(s, ADMIN, True, {"Blue": False})
    marks = flagged(sessions)
    assert marks["blue-unanswered"] == [False, False]
    assert marks["red-unanswered"] == [True] and marks["teamless-unanswered"] == [True]
    assert found(sessions, "true") == {"red-unanswered", "teamless-unanswered"}


def test_the_filter_round_trips_through_the_shared_url_and_the_audit_detail() -> None:
    query = parse([("pause_reason_missing", "yes"), ("paused", "true")])
    assert query.pause_reason_missing is True
    assert "pause_reason_missing=true" in canonical(query)
    assert query.filters()["pause_reason_missing"] is True
    assert parse([]).pause_reason_missing is None
