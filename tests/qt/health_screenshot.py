"""Draw the real agent window (Qt's xcb platform on an X server, fake server behind it) with the
recorder health panel in one scenario and save what the X server shows of it.

``python -m tests.qt.health_screenshot OUT.png idle|problem`` with DISPLAY set; QT_SCALE_FACTOR
scales it. Run by tests/qt/test_health_screenshots.py (which writes docs/screenshots/ when
TANDEM_WRITE_SCREENSHOTS=1)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from agent_app.config import DesktopSettings
from agent_app.model import ChannelState
from agent_app.widgets.main_window import MainWindow
from tests.qt.conftest import Fakes


def main(out: str, scenario: str) -> int:
    app = QApplication([sys.argv[0]])
    fakes = Fakes()
    window = MainWindow(fakes.services(), settings=DesktopSettings(pause_hotkey="Ctrl+Alt+P"))
    window.resize(460, 420)
    window.show()
    window.login_widget.set_values("http://tandem:8000", "alice", "4711", "secret")
    window.login_widget.submit()

    def when_logged_in() -> None:
        if not (window.model.state.logged_in and window.runner.pending == 0):
            QTimer.singleShot(50, when_logged_in)
            return
        fakes.channel.status(ChannelState.CONNECTED, "")
        now = fakes.clock.now
        beat = {"version": "1.4.0", "state": "idle", "interval": 10.0, "spool_bytes": 12 << 20}
        if scenario == "idle":  # between calls: the last call's screen still uploading
            beat.update(
                state="uploading",
                segments_pending=2,
                upload={"segment": "int-1/r1/3", "offset": 400_000, "length": 1_000_000},
            )
            health = {"connected": True, "last_seen": now - 3, "heartbeat": beat, "problems": []}
        else:
            beat.update(
                state="spool_full",
                last_error="spool quota reached (500 MB)",
                segments_pending=14,
                spool_bytes=500 << 20,
            )
            health = {
                "connected": True,
                "last_seen": now - 4,
                "heartbeat": beat,
                "problems": ["spool_full", "backlog", "error"],
            }
        fakes.channel.send("recorder.health", health, at=now)
        QTimer.singleShot(600, shoot)

    def shoot() -> None:
        screen = window.screen()
        picture = screen.grabWindow(window.winId())
        if not picture.save(out):
            raise SystemExit(f"could not write {out}")
        print(f"{picture.width()}x{picture.height()}")
        window.shutdown()
        app.quit()

    QTimer.singleShot(0, when_logged_in)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
