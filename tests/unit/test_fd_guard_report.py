"""What tests/fd_guard.py says a module left open (its summary names the files, sockets and pipes,
so the leak can be found without a debugger), and ``descriptors_under``, the check a test makes
that nothing in its folder stays open."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.fd_guard import describe_targets, descriptors_under, open_descriptors


def test_new_descriptors_are_summarised_by_file_name_and_kind() -> None:
    targets = [
        "/tmp/pytest-1/test_a0/demo/tandem.db",
        "/tmp/pytest-1/test_b0/demo/tandem.db",
        "/tmp/pytest-1/test_b0/demo/tandem.db-wal",
        "socket:[123]",
        "socket:[456]",
        "pipe:[789]",
    ]
    assert describe_targets(targets) == "tandem.db ×2, socket ×2, tandem.db-wal ×1, pipe ×1"
    assert describe_targets(targets, most=1) == "tandem.db ×2"


def test_descriptors_under_a_folder_are_the_files_held_open_there(tmp_path: Path) -> None:
    inside, outside = tmp_path / "a" / "db.sqlite", tmp_path.parent / f"{tmp_path.name}-sibling.txt"
    inside.parent.mkdir()
    inside.write_text("x")
    outside.write_text("x")
    assert descriptors_under(tmp_path) == []
    with inside.open() as fh, outside.open(), socket.socket() as sock:
        assert descriptors_under(tmp_path) == [str(inside)]  # the sibling's name only starts alike
        found = open_descriptors()
        assert found is not None and found[str(fh.fileno())] == str(inside)
        assert found[str(sock.fileno())].startswith("socket:[")
    assert descriptors_under(tmp_path) == []
