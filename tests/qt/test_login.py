"""Login: server fixed by IT config, remember me in the keyring (read and written off the Qt
thread), the DN conflict shown as the server says it, remember me refused without a keyring."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QLineEdit
from pytestqt.qtbot import QtBot

from agent_app.config import DesktopSettings, load_settings
from agent_app.errors import ConflictError
from agent_app.keyring_store import SERVICE, CredentialStore, Remembered
from agent_app.widgets.main_window import MainWindow
from tests.qt.test_agent_window import button, find, log_in, text

pytestmark = pytest.mark.timeout(60)


class ThreadRecordingStore(CredentialStore):
    """The real store on a plaintext file keyring, noting the thread of each call."""

    def __init__(self, path: Path) -> None:
        super().__init__(env={"TANDEM_AGENT_KEYRING_FILE": str(path)})
        self.threads: list[threading.Thread] = []

    def load(self) -> Remembered | None:
        self.threads.append(threading.current_thread())
        return super().load()

    def save(self, remembered: Remembered) -> None:
        self.threads.append(threading.current_thread())
        super().save(remembered)

    def forget(self) -> None:
        self.threads.append(threading.current_thread())
        super().forget()


def window_with(qtbot: QtBot, fakes: Any, **kw: Any) -> MainWindow:
    window = MainWindow(fakes.services(), **kw)
    qtbot.addWidget(window)
    window.show()
    return window


def remember_box(window: MainWindow) -> QCheckBox:
    box: QCheckBox = find(window, QCheckBox, "loginRemember")
    return box


def test_remember_me_fills_the_next_start_and_unticking_forgets(
    qtbot: QtBot, fakes: Any, tmp_path: Path
) -> None:
    store = ThreadRecordingStore(tmp_path / "keyring.cfg")
    probe = CredentialStore(
        env={"TANDEM_AGENT_KEYRING_FILE": str(tmp_path / "keyring.cfg")}
    )  # the test's eyes
    window = window_with(qtbot, fakes, credentials=store)
    qtbot.waitUntil(lambda: bool(store.threads))  # the (empty) keyring was read at start
    assert not remember_box(window).isChecked() and remember_box(window).isEnabled()
    remember_box(window).setChecked(True)
    log_in(qtbot, window, dn="47 11")
    qtbot.waitUntil(lambda: len(store.threads) >= 2)
    assert (tmp_path / "keyring.cfg").stat().st_mode & 0o777 == 0o600
    qtbot.waitUntil(lambda: probe.load() == Remembered("http://127.0.0.1:8000", "alice", "4711", "secret"))
    window.shutdown()

    again = window_with(qtbot, fakes, credentials=store)
    qtbot.waitUntil(lambda: find(again, QLineEdit, "loginUser").text() == "alice")
    assert find(again, QLineEdit, "loginPassword").text() == "secret"
    assert find(again, QLineEdit, "loginDn").text() == "4711" and remember_box(again).isChecked()
    remember_box(again).setChecked(False)
    QTest.mouseClick(button(again, "loginButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: again.model.state.logged_in)
    qtbot.waitUntil(lambda: probe.load() is None)
    assert all(t is not threading.main_thread() for t in store.threads)
    again.shutdown()


def test_without_a_desktop_keyring_remember_me_is_off_and_says_why(
    qtbot: QtBot, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("keyring.get_keyring", lambda: FailKeyring())  # type: ignore[no-untyped-call]
    window = window_with(qtbot, fakes, credentials=CredentialStore(env={}))
    qtbot.waitUntil(lambda: not remember_box(window).isEnabled())
    assert "keyring" in remember_box(window).toolTip()
    log_in(qtbot, window)  # logging in still works
    window.shutdown()


def test_a_server_fixed_by_it_is_shown_and_used_not_editable(qtbot: QtBot, fakes: Any) -> None:
    settings = DesktopSettings(server_url="https://tandem.corp:8443", server_fixed=True)
    window = window_with(qtbot, fakes, settings=settings)
    server = find(window, QLineEdit, "loginServer")
    assert server.text() == "https://tandem.corp:8443" and server.isReadOnly()
    window.login_widget.set_values("http://elsewhere:1", "alice", "4711", "secret")  # e.g. --server
    assert server.text() == "https://tandem.corp:8443"
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model.state.logged_in)
    assert fakes.api.server_url == "https://tandem.corp:8443"
    window.shutdown()


def test_a_dn_held_by_another_agent_is_refused_with_the_servers_words(qtbot: QtBot, fakes: Any) -> None:
    fakes.configure = lambda api: api.results.update(
        login=ConflictError("DN 4711 is in use by another agent", status=409, code="dn_in_use")
    )
    window = window_with(qtbot, fakes)
    find(window, QLineEdit, "loginServer").setText("http://127.0.0.1:8000")
    find(window, QLineEdit, "loginUser").setText("bob")
    find(window, QLineEdit, "loginPassword").setText("pw")
    find(window, QLineEdit, "loginDn").setText(" 47 11 ")
    QTest.mouseClick(button(window, "loginButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: text(window, "loginError") != "")
    assert text(window, "loginError") == "DN 4711 is in use by another agent"
    assert fakes.api.calls[0] == ("login", ("bob", "pw", "4711"))  # sent in its one written form
    assert window.stack.currentWidget() is window.login_widget and button(window, "loginButton").isEnabled()


def test_settings_machine_file_fixes_the_server_user_file_prefills(tmp_path: Path) -> None:
    machine, user = tmp_path / "etc", tmp_path / "home"
    machine.mkdir()
    user.mkdir()
    (user / "agent.toml").write_text('server_url = "http://mine:8000"\n')
    got = load_settings({}, machine, user)
    assert got == DesktopSettings("http://mine:8000", False, "Ctrl+Alt+P")
    (machine / "agent.toml").write_text('server_url = "https://it:8443"\nenroll_token = "x"\n')
    (machine / "desktop.toml").write_text('pause_hotkey = "F9"\n')
    assert load_settings({}, machine, user) == DesktopSettings("https://it:8443", True, "F9")
    (user / "desktop.toml").write_text('pause_hotkey = ""\n')  # the agent turned it off
    assert load_settings({}, machine, user).pause_hotkey == ""
    (machine / "agent.toml").write_text("server_url = [broken\n")  # unreadable: skipped, not fatal
    assert load_settings({}, machine, user).server_url == "http://mine:8000"


def test_remembered_entries_live_under_the_agent_service(tmp_path: Path) -> None:
    store = CredentialStore(env={"TANDEM_AGENT_KEYRING_FILE": str(tmp_path / "k.cfg")})
    store.save(Remembered("http://a", "alice", "1", "pw1"))
    store.save(Remembered("http://a", "bob", "2", "pw2"))  # another agent on this PC: alice's password gone
    ring = store._keyring()
    assert ring.get_password(SERVICE, "http://a|alice") is None
    assert ring.get_password(SERVICE, "http://a|bob") == "pw2"
    store.forget()
    assert store.load() is None and ring.get_password(SERVICE, "http://a|bob") is None
