"""The recorder policy use case (server/services/recorder_policy.py) on a real SQLite database:
validation naming the field, the audit of every change (values before and after) and of every
refusal, admins only, and the CLI's ``key=value`` changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.errors import Forbidden, InvalidInput
from server.services import recorder_policy
from server.services.actor import Actor
from server.store import models
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from tandem_protocol.recorder_policy import RecorderPolicy

ADMIN = Actor(1, "root", "admin", "web", "10.0.0.1")


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def audits(sessions: sessionmaker[Session], action: str) -> list[models.AuditRecord]:
    with session_scope(sessions) as s:
        query = select(models.AuditRecord).where(models.AuditRecord.action == action)
        return list(s.execute(query.order_by(models.AuditRecord.id)).scalars())


def stored(sessions: sessionmaker[Session]) -> str | None:
    with session_scope(sessions) as s:
        row = s.get(models.Setting, recorder_policy.KEY)
        return row.value if row else None


def test_an_admin_change_is_stored_and_audited_with_before_and_after(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        policy = recorder_policy.set_policy(
            s, ADMIN, {"fps": 2, "monitors": "primary", "masking": [{"kind": "region", "rect": [0, 0, 9, 9]}]}
        )
    assert policy.fps == 2.0 and policy.monitors == "primary" and policy.masking[0].rect == (0, 0, 9, 9)
    assert json.loads(stored(sessions) or "") == policy.to_dict()
    [row] = audits(sessions, recorder_policy.ACTION)
    assert row.outcome == "allowed" and row.username == "root" and row.remote_addr == "10.0.0.1"
    detail = json.loads(row.detail)
    assert detail["before"] == {"fps": 5.0, "monitors": "all", "masking": []}
    assert detail["after"] == {
        "fps": 2.0,
        "monitors": "primary",
        "masking": [{"name": "region rule", "kind": "region", "action": "mask", "rect": [0, 0, 9, 9]}],
    }
    with session_scope(sessions) as s:  # a second change: "before" is what the first stored
        recorder_policy.set_policy(s, ADMIN, {**policy.to_dict(), "fps": 3})
    assert json.loads(audits(sessions, recorder_policy.ACTION)[-1].detail) == {
        "before": {"fps": 2.0},
        "after": {"fps": 3.0},
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"fps": 0}, "fps"),
        ({"fps": "fast"}, "fps"),
        ({"monitors": "left"}, "monitors"),
        ({"max_width": 100}, "max_width"),
        ({"masking": [{"kind": "window"}]}, "masking[0]"),
        ({"masking": [{"kind": "window", "title": "(unclosed"}]}, "masking[0].title"),
        ({"upload_window": ["25:00", "07:00"]}, "upload_window"),
        ({"bandwidth_kbps": -1}, "bandwidth_kbps"),
        ({"endpoint_audio": "yes"}, "endpoint_audio"),
        ({"spool_min_free_percent": 0}, "spool_min_free_percent"),
        ({"fsp": 2}, "fsp: unknown field"),
    ],
)
def test_an_invalid_value_is_refused_naming_the_field_and_audited(
    sessions: sessionmaker[Session], raw: dict[str, object], field: str
) -> None:
    with session_scope(sessions) as s:
        recorder_policy.set_policy(s, ADMIN, {"fps": 4})
    with pytest.raises(InvalidInput) as err, session_scope(sessions) as s:
        recorder_policy.set_policy(s, ADMIN, raw)
    assert err.value.code == "invalid_recorder_policy"
    assert err.value.message.startswith(field), err.value.message
    assert json.loads(stored(sessions) or "")["fps"] == 4.0  # nothing changed
    denied = [a for a in audits(sessions, recorder_policy.ACTION) if a.outcome == "denied"]
    assert len(denied) == 1 and field in denied[0].detail


@pytest.mark.parametrize("role", ["agent", "supervisor", "evaluator", "compliance"])
def test_other_roles_are_refused_and_the_refusal_audited(sessions: sessionmaker[Session], role: str) -> None:
    actor = Actor(7, "someone", role, "api")
    with pytest.raises(Forbidden), session_scope(sessions) as s:
        recorder_policy.set_policy(s, actor, {"fps": 1})
    with pytest.raises(Forbidden), session_scope(sessions) as s:
        recorder_policy.read(s, actor)
    assert stored(sessions) is None
    [change] = audits(sessions, recorder_policy.ACTION)
    [read] = audits(sessions, recorder_policy.READ_ACTION)
    for row in (change, read):
        assert row.outcome == "denied" and row.username == "someone" and "forbidden" in row.detail


def test_the_cli_actor_is_an_admin_and_names_the_os_account(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        recorder_policy.set_policy(s, Actor.cli(), {"heartbeat_seconds": 5})
    [row] = audits(sessions, recorder_policy.ACTION)
    assert row.username == "cli" and "os_user=" in row.detail


def test_assignments_read_json_values_and_fall_back_to_text() -> None:
    merged = recorder_policy.assignments(
        {"fps": 5.0, "monitors": "all"},
        [
            "fps=2",
            "monitors=primary",
            "endpoint_audio=true",
            'upload_window=["18:00","07:00"]',
            "max_width=0",
        ],
    )
    assert merged == {
        "fps": 2,
        "monitors": "primary",
        "endpoint_audio": True,
        "upload_window": ["18:00", "07:00"],
        "max_width": 0,
    }
    with pytest.raises(InvalidInput, match="expected key=value"):
        recorder_policy.assignments({}, ["fps"])


def test_an_unreadable_stored_policy_falls_back_to_the_defaults(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        s.add(models.Setting(key=recorder_policy.KEY, value='{"fps": 999}'))
    with session_scope(sessions) as s:
        assert recorder_policy.load(s) == RecorderPolicy()
        assert recorder_policy.load(s, recorder_policy.initial(2.0)).fps == 2.0


def test_initial_policy_takes_the_servers_frame_rate_within_bounds() -> None:
    assert recorder_policy.initial(None) == RecorderPolicy()
    assert recorder_policy.initial(3.0).fps == 3.0
    assert recorder_policy.initial(0.05).fps == 0.2  # the setting allows less than the policy does
