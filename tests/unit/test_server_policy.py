from __future__ import annotations

import uuid

import pytest

from server.api.ranges import parse_range
from server.errors import RangeNotSatisfiable
from server.policy.access import Viewer, may_play_media, may_see_interaction
from server.policy.sampling import decide_screen, effective_percentage, sample_point


def test_sampling_extremes_and_determinism() -> None:
    ids = [str(uuid.uuid4()) for _ in range(2000)]
    assert not any(decide_screen(i, 0) for i in ids)
    assert all(decide_screen(i, 100) for i in ids)
    assert [decide_screen(i, 37.5) for i in ids] == [decide_screen(i, 37.5) for i in ids]
    share = sum(decide_screen(i, 25) for i in ids) / len(ids)
    assert 0.21 < share < 0.29
    assert all(0 <= sample_point(i) < 100 for i in ids)
    with pytest.raises(ValueError):
        decide_screen(ids[0], 101)


def test_raising_the_percentage_keeps_earlier_yes_decisions() -> None:
    ids = [str(uuid.uuid4()) for _ in range(500)]
    at_30 = {i for i in ids if decide_screen(i, 30)}
    at_60 = {i for i in ids if decide_screen(i, 60)}
    assert at_30 <= at_60


def test_team_override_wins() -> None:
    assert effective_percentage(50, None) == 50
    assert effective_percentage(50, 0) == 0


def test_access_by_role_and_team() -> None:
    sup = Viewer(1, "supervisor", frozenset({10}))
    assert may_see_interaction(sup, agent_id=5, agent_team_id=10)
    assert not may_see_interaction(sup, agent_id=5, agent_team_id=11)
    assert not may_see_interaction(sup, agent_id=5, agent_team_id=None)
    agent = Viewer(5, "agent", frozenset())
    assert may_see_interaction(agent, 5, 10) and not may_play_media(agent, 5, 10)
    assert not may_see_interaction(agent, 6, 10)
    # Where the admin allows it for the agent's team: own recordings only.
    assert may_play_media(agent, 5, 10, frozenset({10}))
    assert not may_play_media(agent, 5, 11, frozenset({10}))
    assert not may_play_media(agent, 6, 10, frozenset({10}))
    for role in ("admin", "compliance"):
        assert may_play_media(Viewer(9, role, frozenset()), 5, 11)
    assert not may_see_interaction(Viewer(9, "unknown", frozenset()), 5, 10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=990-2000", (990, 999)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-y", None),
        ("bytes=50-10", None),
    ],
)
def test_range_parsing(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


def test_range_past_end_is_not_satisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=1000-", 1000)
