"""The recorder's problem file (tandem_protocol/recorder_problem.py): where both programs find it,
an atomic 0600 write, a read that never raises, and the clear on a clean start."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tandem_protocol.recorder_problem import (
    MAX_MESSAGE,
    PROBLEM_FILE_ENV,
    RecorderProblem,
    clear_problem,
    problem_path,
    read_problem,
    write_problem,
)

WHEN = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def test_path_is_the_users_state_directory_or_the_override(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    assert problem_path(home) == tmp_path / ".local/state/tandem-recorder/last-problem.json"
    state = {**home, "XDG_STATE_HOME": str(tmp_path / "st")}
    assert problem_path(state) == tmp_path / "st/tandem-recorder/last-problem.json"
    # A relative XDG_STATE_HOME is invalid by the XDG rules: the default applies.
    assert problem_path({**home, "XDG_STATE_HOME": "rel"}).parent.parent == tmp_path / ".local/state"
    assert problem_path({**state, PROBLEM_FILE_ENV: "/x/p.json"}) == Path("/x/p.json")


def test_write_then_read_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "last-problem.json"
    problem = RecorderProblem("config", "/etc/tandem/agent.toml: unknown key 'sever_url'", WHEN, "0.2.0")
    write_problem(problem, path)
    assert read_problem(path) == problem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["last-problem.json"]  # no temporary left behind
    newer = RecorderProblem("unreachable", "cannot reach https://wrong.example", WHEN, None)
    write_problem(newer, path)
    assert read_problem(path) == newer


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"kind": "config", "message": "half',
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b'{"kind": "bogus", "message": "m", "occurred_at": "2026-12-05T09:30:00+00:00"}',
        b'{"kind": "config", "message": "m", "occurred_at": "yesterday"}',
        b'{"kind": "config", "message": "m", "occurred_at": "2026-12-05T09:30:00"}',
        b'{"kind": "config", "message": 3, "occurred_at": "2026-12-05T09:30:00+00:00"}',
        b"[" * 10000,
        b"x" * 20000,
    ],
)
def test_a_corrupt_or_foreign_file_reads_as_no_problem(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "last-problem.json"
    path.write_bytes(content)
    assert read_problem(path) is None


def test_missing_file_or_directory_reads_as_no_problem(tmp_path: Path) -> None:
    assert read_problem(tmp_path / "none.json") is None
    assert read_problem(tmp_path) is None  # a directory where the file should be


def test_clear_removes_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "last-problem.json"
    write_problem(RecorderProblem("enrolment", "refused", WHEN), path)
    assert clear_problem(path) is True
    assert read_problem(path) is None
    assert clear_problem(path) is False


def test_message_is_one_line_within_the_servers_bound() -> None:
    problem = RecorderProblem.now("other", "line one\n  line two " + "x" * 900, "0.1.0")
    assert "\n" not in problem.message and problem.message.startswith("line one line two")
    assert len(problem.message) == MAX_MESSAGE
    assert problem.occurred_at.tzinfo is not None


def test_kind_and_time_zone_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        RecorderProblem("nope", "m", WHEN)
    with pytest.raises(ValueError, match="time zone"):
        RecorderProblem("config", "m", datetime(2026, 12, 5))
