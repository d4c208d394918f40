"""The server app gives back its file descriptors when it stops: the database's pooled
connections close at the end of the lifespan, not at the process's exit. Before, every app a
process made kept its SQLite connections (database + WAL + shared memory) open for as long as the
app object lived — and FastAPI's module-level caches keep old apps' routes alive, so the full test
suite's process reached more than 1,000 descriptors (python-xlib's select() refuses fd >= 1024)."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.settings import load_settings
from tests.integration.test_screen_upload import PASSWORD, make_app


def open_under(directory: Path) -> list[str]:
    """What this process holds open inside ``directory``."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(f"{directory}/"):
            held.append(target)
    return held


def test_the_database_is_closed_when_the_app_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app = make_app(data_dir)
    with TestClient(app) as client:
        r = client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert client.get("/api/audit", headers={"Authorization": f"Bearer {r.json()['token']}"}).is_success
        assert any(p.endswith("tandem.db") for p in open_under(data_dir))  # the probe sees the pool
    assert open_under(data_dir) == []  # the app object is still alive here: only its stop closed them


def test_an_app_started_again_and_again_holds_no_more(tmp_path: Path) -> None:
    """One app after another in one process (as the tests, or an embedding, do): the count of
    descriptors does not climb with each one."""
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False)
    apps = []
    counts = []
    for _ in range(4):
        app = create_app(settings)
        apps.append(app)  # kept alive, as FastAPI's caches keep them
        with TestClient(app) as client:
            assert client.get("/healthz").is_success
        counts.append(len(open_under(tmp_path)))
    assert counts == [0, 0, 0, 0], counts
