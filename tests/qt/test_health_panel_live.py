"""The health panel against a real server (uvicorn) through the desktop's real API client and
event channel: a recorder's heartbeat shows up in the panel, and its dropping turns the panel
and the tray into a warning at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from agent_app.recorder_health import Level
from agent_app.validation import validate_login
from agent_app.widgets.main_window import MainWindow
from server.api.app import create_app
from server.settings import load_settings
from server.store.db import session_scope
from server.store.users import create_user
from tandem_protocol.events import parse_envelope
from tests.integration.test_fleet import PASSWORD, LiveServer, beat, enrol, recorder, send_beat

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    app = create_app(load_settings(None, data_dir=tmp_path / "data", sip_enabled=False))
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
    with LiveServer(app) as url:
        yield url


def test_live_heartbeat_then_recorder_drop(qtbot: QtBot, server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        token = enrol(http, "agent1")
    window = MainWindow()
    qtbot.addWidget(window)
    try:
        window.login(validate_login(server, "agent1", PASSWORD, "1001"))
        qtbot.waitUntil(lambda: window.model.state.logged_in, timeout=20000)
        panel = window.health_panel
        # Never heard from: said at once, from the channel's first message.
        qtbot.waitUntil(lambda: panel.level == Level.WARNING, timeout=20000)
        assert "not being recorded" in panel.headline.text()
        with recorder(server, token) as rec:
            assert parse_envelope(rec.recv(timeout=10)).type == "state"
            send_beat(rec, beat(interval=5.0))
            qtbot.waitUntil(lambda: panel.level == Level.OK, timeout=20000)
            assert panel.headline.text() == "Recorder: recording"
            assert "Uploads pending: 2" in panel.details.text() and panel.progress.value() == 25
            assert window.tray.level == Level.OK
        qtbot.waitUntil(lambda: panel.level == Level.WARNING, timeout=20000)
        assert "disconnected" in panel.headline.text() and window.tray.level == Level.WARNING
    finally:
        window.shutdown()
