"""The desktop's seams to the outside world, injectable so tests can pass fakes.

`MainWindow(services)` builds every API client and event channel through these factories;
the defaults are the real httpx client and websockets channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent_app.api_client import AgentApi
from agent_app.event_channel import EnvelopeCallback, EventChannel, StatusCallback
from agent_app.recorder_problem_link import RecorderProblemReporter


class Channel(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 3.0) -> None: ...


ApiFactory = Callable[[str], AgentApi]
# (server URL, bearer token, envelope callback, status callback) → a not yet started channel
ChannelFactory = Callable[[str, str, EnvelopeCallback, StatusCallback], Channel]


def _real_api(server_url: str) -> AgentApi:
    from agent_app.pairing import PairingApiClient  # pairs the PC's recorder at login/logout

    return PairingApiClient(server_url)


def _real_channel(
    server_url: str, token: str, on_envelope: EnvelopeCallback, on_status: StatusCallback
) -> Channel:
    return EventChannel(server_url, token, on_envelope, on_status)


def _open_in_browser(url: str) -> bool:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    return QDesktopServices.openUrl(QUrl(url))


@dataclass
class Services:
    api_factory: ApiFactory = _real_api
    channel_factory: ChannelFactory = _real_channel
    clock: Callable[[], float] = time.time  # local wall clock; the model converts to server time
    open_url: Callable[[str], bool] = _open_in_browser  # "My recordings": the default browser
    # Reports the PC recorder's last problem to the server (tandem-agent passes the real one;
    # None: tests with a fake server do not read this user's problem file).
    problem_reporter: RecorderProblemReporter | None = None
