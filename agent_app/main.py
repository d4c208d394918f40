"""``tandem-agent``: start the agent desktop.

Flags pre-fill the login form; ``--auto-login`` submits it at start (the demo script logs the
agent in without typing). The password comes from stdin (``--password-stdin``) or the
environment (``TANDEM_AGENT_PASSWORD``), never from the command line where ``ps`` shows it.
Quitting — the tray's Quit, closing the window while logged out, SIGINT or SIGTERM — stops the
event channel and logs out, which frees the agent's DN on the server. Closing the window while
logged in only hides it to the tray. The server URL comes from ``--server``, ``$TANDEM_SERVER``,
then the PC's configuration (``agent_app.config``: fixed there by IT, the form cannot change it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from agent_app.errors import UsageError

PASSWORD_ENV = "TANDEM_AGENT_PASSWORD"
SERVER_ENV = "TANDEM_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class AgentOptions:
    server: str
    user: str
    dn: str
    password: str
    auto_login: bool
    log_level: str


def parse_args(argv: Sequence[str], env: Mapping[str, str], stdin: TextIO) -> AgentOptions:
    parser = argparse.ArgumentParser(prog="tandem-agent", description="Tandem agent desktop")
    parser.add_argument("--server", default=env.get(SERVER_ENV, ""), help="server base URL")
    parser.add_argument("--user", default="", help="user name to pre-fill")
    parser.add_argument("--dn", default="", help="DN (extension) to pre-fill")
    parser.add_argument(
        "--password-stdin", action="store_true", help=f"read the password from stdin (else ${PASSWORD_ENV})"
    )
    parser.add_argument("--auto-login", action="store_true", help="log in at start with the given values")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ns = parser.parse_args(list(argv))
    password = stdin.readline().rstrip("\r\n") if ns.password_stdin else env.get(PASSWORD_ENV, "")
    if ns.auto_login and not (ns.user and ns.dn and password):
        raise UsageError(
            f"--auto-login needs --user, --dn and a password (--password-stdin or ${PASSWORD_ENV})"
        )
    return AgentOptions(ns.server, ns.user, ns.dn, password, ns.auto_login, ns.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv, os.environ, sys.stdin)
    except UsageError as exc:
        print(f"tandem-agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Qt is imported here so that parse_args stays usable (and testable) without a display.
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from agent_app import i18n
    from agent_app.config import load_settings
    from agent_app.keyring_store import CredentialStore
    from agent_app.recorder_problem_link import RecorderProblemReporter
    from agent_app.services import Services
    from agent_app.widgets.main_window import MainWindow

    instance = QApplication.instance()
    app = instance if isinstance(instance, QApplication) else QApplication([sys.argv[0]])
    settings = load_settings()
    # The system's language (LANG/LC_MESSAGES, Windows' UI language) where a translation ships;
    # TANDEM_LANGUAGE overrides it (e.g. "en" on a German PC).
    i18n.install(os.environ.get("TANDEM_LANGUAGE") or None)
    # The reporter reads this user's recorder problem file and tells the server (fleet page).
    services = Services(problem_reporter=RecorderProblemReporter())
    window = MainWindow(services, settings=settings, credentials=CredentialStore())
    server = options.server or settings.server_url or DEFAULT_SERVER
    window.login_widget.set_values(server, options.user, options.dn, options.password)
    app.aboutToQuit.connect(window.shutdown)
    # The session is ending (OS logout/shutdown): the window must not hide instead of closing.
    app.commitDataRequest.connect(lambda _manager: window.quit())

    # Python only runs signal handlers between bytecodes; a timer gives it the chance.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.quit())
    wakeup = QTimer()
    wakeup.timeout.connect(lambda: None)
    wakeup.start(200)

    window.resize(480, 600)  # room for the call, ACW and health panels without clipping
    window.show()
    if options.auto_login:
        QTimer.singleShot(0, window.login_widget.submit)
    code = app.exec()
    window.shutdown()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
