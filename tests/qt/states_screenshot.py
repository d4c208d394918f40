"""Draw the real agent window (Qt's xcb platform on an X server, fake server behind it) on a call
or in after-call work and save what the X server shows of it: the call panel with what the SIP
side said, the state selector, the ACW panel with its countdown, disposition and notes.

``python -m tests.qt.states_screenshot OUT.png oncall|acw`` with DISPLAY set (e.g. under
xvfb-run); QT_SCALE_FACTOR scales it. Makes docs/screenshots/desktop-oncall.png and
desktop-acw.png."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from agent_app.model import ChannelState, DispositionChosen
from agent_app.widgets.main_window import MainWindow
from tests.qt.conftest import Fakes

CODES = {
    "reason_codes": [{"code": "LUNCH", "label": "Lunch"}, {"code": "TRAIN", "label": "Training"}],
    "disposition_codes": [{"code": "SALE", "label": "Sale"}, {"code": "CB", "label": "Call back"}],
    "disposition_required": True,
    "acw_limit_seconds": 120,
    "may_play_own_recordings": True,
}


def main(out: str, scenario: str) -> int:
    app = QApplication([sys.argv[0]])
    fakes = Fakes()
    fakes.configure = lambda api: api.results.update(agent_codes=CODES)
    window = MainWindow(fakes.services())
    window.resize(480, 640)
    window.show()
    window.login_widget.set_values("http://tandem:8000", "alice", "4711", "secret")
    window.login_widget.submit()

    def when_logged_in() -> None:
        if not (
            window.model.state.logged_in and window.runner.pending == 0 and window.model.state.codes.loaded
        ):
            QTimer.singleShot(50, when_logged_in)
            return
        fakes.channel.status(ChannelState.CONNECTED, "")
        now = fakes.clock.now
        call = {
            "caller": "Carla Customer <+4930123456>",
            "direction": "inbound",
            "metadata": {"queue": "Billing", "service": "Gold line", "customer_id": "C-1017"},
            "answered_at": now - 83,
            "started_at": now - 90,
        }
        if scenario == "oncall":
            fakes.channel.send("call.started", fakes.call_data(**call), seq=2, at=now)
        else:
            acw = {"phase": "acw", "voice": "stopped", "screen": "stopped", "ended_at": now - 25}
            fakes.channel.send(
                "call.ended", fakes.call_data(**call, **acw, acw_deadline=now + 95), seq=2, at=now
            )
        QTimer.singleShot(400, fill_in)

    def fill_in() -> None:
        if scenario == "acw":
            window._dispatch(DispositionChosen("CB"))
            window.acw_panel.notes_edit.setPlainText("Wants a call back on Monday about the invoice.")
        QTimer.singleShot(400, shoot)

    def shoot() -> None:
        picture = window.screen().grabWindow(window.winId())
        if not picture.save(out):
            raise SystemExit(f"could not write {out}")
        print(f"{picture.width()}x{picture.height()}")
        window.shutdown()
        app.quit()

    QTimer.singleShot(0, when_logged_in)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
