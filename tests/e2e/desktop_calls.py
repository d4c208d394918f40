"""The real agent desktop taking SIPp calls, one after the other, with the moment each call
appears in its call panel: used by tests/e2e/test_desktop_call_appears.py (does the call appear,
with the caller) and benchmarks/desktop_call_appears.py (how soon after the INVITE).

The INVITE's time comes from SIPp's own message trace (``-trace_msg``, stamped by SIPp when it
sends), never from the server's log. The desktop's time is ``time.time()`` taken in the desktop's
process (this one) right after the call panel was given a view showing the caller: a hook around
``CallPanel.show_view``, so nothing is polled and no product code knows it is measured. SIPp, the
server and the desktop run on this one machine, so the clocks are the same clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

from agent_app.model import EventReceived
from agent_app.recording_view import NO_VALUE
from agent_app.view import DesktopView
from agent_app.widgets.main_window import MainWindow
from tandem_protocol import Envelope, EventType
from tests.e2e.harness import ServerProcess, wait_until
from tests.e2e.sipp_media import write_tone
from tests.e2e.sipp_tools import SippResult, run_sipp

AGENT, DN = "agent1", "1001"
# What tests/sipp/plain_call.xml puts in its From header.
CALLER_TEXT = "Carol Customer <+15550123>"
CALLER_NUMBER = "+15550123"


def pump() -> None:
    QCoreApplication.processEvents()


def wait_for_events() -> None:
    """Handle Qt's events, blocking until at least one comes (a timer's at the latest)."""
    QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)


@dataclass(frozen=True, slots=True)
class Appearance:
    """One call: when SIPp sent the INVITE and got the 200 OK (SIPp's trace), when the server
    published ``call.started`` (the envelope's ``at``), the desktop's channel thread read it, its
    Qt thread took it, and the panel showed the caller (0.0: not seen)."""

    invite_at: float
    ok_at: float
    published_at: float
    received_at: float
    delivered_at: float
    shown_at: float
    caller_text: str
    number_text: str

    @property
    def latency(self) -> float:
        return self.shown_at - self.invite_at


class PanelWatch:
    """Stamps the first view showing a call's caller after ``arm()``, and the ``call.started``
    envelope that brought it (the server's ``at``, and when the Qt thread took it). Wraps the
    window's ``_dispatch`` and its call panel's ``show_view``: both are looked up on the instance
    at every event and render."""

    def __init__(self, window: MainWindow) -> None:
        self._armed = False
        self.shown_at: float | None = None
        self.published_at: float | None = None  # the envelope's ``at`` (server clock = this clock)
        self.delivered_at: float | None = None  # when the window's Qt thread took the envelope
        self.received_at: float | None = None  # when the event channel's thread read it
        dispatch: Callable[[Any], None] = window._dispatch
        post: Callable[[Envelope], None] = window.relay.post_envelope

        def on_post(envelope: Envelope) -> None:  # the channel's thread (bound at login)
            if self._armed and envelope.type == EventType.CALL_STARTED and self.received_at is None:
                self.received_at = time.time()
            post(envelope)

        show: Callable[[DesktopView], None] = window.call_panel.show_view

        def on_dispatch(action: Any) -> None:
            if (
                self._armed
                and isinstance(action, EventReceived)
                and action.envelope.type == EventType.CALL_STARTED
                and self.published_at is None
            ):
                self.published_at, self.delivered_at = action.envelope.at, action.local_time
            dispatch(action)

        def on_show(view: DesktopView) -> None:
            show(view)
            if self._armed and view.has_call and view.caller_number != NO_VALUE:
                self.shown_at = time.time()
                self._armed = False

        window.relay.post_envelope = on_post  # type: ignore[method-assign]
        window._dispatch = on_dispatch  # type: ignore[method-assign]
        window.call_panel.show_view = on_show  # type: ignore[method-assign]

    def arm(self) -> None:
        self.shown_at = self.published_at = self.delivered_at = self.received_at = None
        self._armed = True


def log_in(window: MainWindow, server: ServerProcess, with_recorder: bool) -> None:
    """The agent logs in on the desktop; waits until the server sees the desktop (and the
    recorder) connected for the DN."""
    window.login_widget.set_values(server.url, AGENT, DN, server.creds[AGENT]["password"])
    window.login_widget.submit()
    wanted = {"desktop", "recorder"} if with_recorder else {"desktop"}
    with server.client("supervisor") as sup:
        wait_until(
            lambda: any(
                a["dn"] == DN and wanted <= set(a["connected"]) for a in sup.get("/api/agents").json()
            ),
            60,
            f"{' and '.join(sorted(wanted))} connected for DN {DN}",
            pump=pump,
        )
    wait_until(lambda: window.runner.pending == 0, 30, "the desktop's first requests", pump=pump)


def take_call(
    window: MainWindow, watch: PanelWatch, server: ServerProcess, work: Path, talk_ms: int = 1500
) -> Appearance:
    """One SIPp call (tests/sipp/plain_call.xml) to the DN while the desktop runs; then Done, so
    the agent is Ready for the next one. SIPp runs on a thread; this (the Qt) thread pumps."""
    work.mkdir(parents=True, exist_ok=True)
    write_tone(work / "stream1.ul", 440, talk_ms / 1000 + 2)
    result: list[SippResult | BaseException] = []

    def sipp() -> None:
        try:
            result.append(run_sipp("plain_call.xml", server.sip_port, work, service=DN, duration_ms=talk_ms))
        except BaseException as exc:  # reported on the Qt thread
            result.append(exc)

    watch.arm()
    thread = threading.Thread(target=sipp, name="sipp", daemon=True)
    thread.start()
    # Until the call shows, Qt's loop waits for events as the desktop's own loop would (a sleep
    # between pumps would delay the event by up to the sleep); the timer wakes it to look at
    # SIPp's thread. Slow is not "never": after SIPp ends the wait goes on, to its deadline.
    wake = QTimer()
    wake.start(20)
    try:
        wait_until(
            lambda: watch.shown_at is not None or (result and isinstance(result[0], BaseException)),
            60,
            "the call on the desktop",
            step=0,
            pump=wait_for_events,
        )
    finally:
        wake.stop()
    wait_until(lambda: result, 60, "SIPp to end the call", pump=pump)
    thread.join(5)
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    outcome.check()
    if watch.shown_at is None:
        raise AssertionError(f"the call never appeared on the desktop\n{outcome.describe()}")
    invite, ok = outcome.sent("INVITE"), outcome.received(200, "INVITE")
    assert invite and ok, outcome.describe()
    appeared = Appearance(
        invite_at=invite[0].time,
        ok_at=ok[0].time,
        published_at=watch.published_at or 0.0,
        received_at=watch.received_at or 0.0,
        delivered_at=watch.delivered_at or 0.0,
        shown_at=watch.shown_at,
        caller_text=window.call_panel.caller_label.text(),
        number_text=window.call_panel.number_label.text(),
    )
    wait_until(lambda: window.done_button.isEnabled(), 30, "after-call work on the desktop", pump=pump)
    window.done_button.click()
    wait_until(
        lambda: window.model.call is None and window.runner.pending == 0,
        30,
        "the agent Ready again after Done",
        pump=pump,
    )
    return appeared
