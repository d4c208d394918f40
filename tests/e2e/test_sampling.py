"""Screen sampling acceptance test: the admin's percentage — set through the API or the admin page —
decides per call whether the agent's channel gets ``screen.start``, and the decision stored on
the interaction does not change when the policy changes later.

Calls come from the simulated SIP caller to agent2 (DN 1002), whose desktop channel a thread
follows; no recorder runs, so only the server's decision and its commands are under test.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.sim.call import SimulatedCallResult, simulate_call
from tandem_protocol.events import Envelope, parse_envelope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import ServerProcess, run_server, wait_until

pytestmark = pytest.mark.e2e

AGENT, DN = "agent2", "1002"
CALL_SECONDS = 1.5
MAX_ENVELOPES = 1000


class Channel:
    """agent2's desktop event channel, read by a thread into a bounded buffer. Overflow and
    malformed messages are counted, and the test requires both counts to stay at zero."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._envelopes: collections.deque[Envelope] = collections.deque(maxlen=MAX_ENVELOPES)
        self.dropped = 0
        self.malformed: list[str] = []
        self._thread = threading.Thread(target=self._read, name="agent2-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self._ws:
                try:
                    envelope = parse_envelope(message)
                except ValueError as exc:
                    self.malformed.append(str(exc))
                    continue
                with self._lock:
                    if len(self._envelopes) == self._envelopes.maxlen:
                        self.dropped += 1
                    self._envelopes.append(envelope)
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._ws.close()
        self._thread.join(5)

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self._envelopes]

    def events_for(self, interaction_id: str) -> list[str]:
        """Types of the envelopes about one interaction, in arrival order."""
        with self._lock:
            return [e.type for e in self._envelopes if e.data.get("interaction_id") == interaction_id]


@dataclass
class Setup:
    server: ServerProcess
    agent_token: str
    channel: Channel
    admin_page: Page


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work: Path = tmp_path_factory.mktemp("sampling")
    with run_server(work / "server", extra_users=[(AGENT, "agent", "Blue")]) as server:
        token = server.token(AGENT, client="desktop", dn=DN)
        ws_url = server.url.replace("http://", "ws://", 1)
        with (
            connect(
                f"{ws_url}/api/events?client=desktop",
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=10,
            ) as ws,
            # A connected recorder: without one a sampled call's screen is "no_recorder" and no
            # screen.start is sent at all. It never acknowledges; only the commands are under test.
            connect(
                f"{ws_url}/api/events?client=recorder",
                additional_headers={"Authorization": f"Bearer {_recorder_token(server)}"},
                open_timeout=10,
            ) as recorder_ws,
        ):
            channel = Channel(ws)
            recorder = Channel(recorder_ws)
            try:
                wait_until(lambda: "state" in channel.types(), 10, "the channel's first state message")
                wait_until(lambda: "state" in recorder.types(), 10, "the recorder's first state message")
                with chromium() as browser, new_page(browser) as page:
                    log_in(page, server.url, "admin", server.creds["admin"]["password"])
                    yield Setup(server, token, channel, page)
            finally:
                channel.close()
                recorder.close()


def _recorder_token(server: ServerProcess) -> str:
    with server.client("admin") as admin:
        r = admin.post("/api/admin/recorders/enrolments", json={"username": AGENT})
        assert r.status_code == 201, r.text
        r = admin.post("/api/recorders/enroll", json={"code": r.json()["code"]})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def _set_via_api(server: ServerProcess, percentage: float) -> None:
    with server.client("admin") as admin:
        r = admin.put("/api/admin/sampling", json={"percentage": percentage, "team_overrides": {}})
        assert r.status_code == 200, r.text
        assert r.json()["percentage"] == percentage


def _set_via_admin_page(page: Page, server: ServerProcess, percentage: float) -> None:
    page.click("#nav-admin")
    page.wait_for_selector("#view-admin", state="visible")
    # The form is filled from the server once loaded; typing earlier would be overwritten.
    page.wait_for_function(
        "() => document.getElementById('sampling-percentage').value !== ''"
        " && document.getElementById('sampling-status').textContent === ''"
    )
    page.fill("#sampling-percentage", f"{percentage:g}")
    page.click("#sampling-save")
    page.wait_for_function("() => document.getElementById('sampling-status').textContent.startsWith('Saved')")
    assert page.input_value("#sampling-percentage") == f"{percentage:g}"
    with server.client("admin") as admin:
        assert admin.get("/api/admin/sampling").json()["percentage"] == percentage
    page.click("#nav-recordings")


def _place_call(server: ServerProcess) -> SimulatedCallResult:
    # Playwright's sync API keeps an event loop on this thread, so the caller's loop runs on another.
    host = server.url.split("//", 1)[1].split(":", 1)[0]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, simulate_call((host, server.sip_port), DN, CALL_SECONDS))
        return future.result(timeout=40)


def _interaction(server: ServerProcess, call_id: str) -> dict[str, Any]:
    with server.client("admin") as admin:
        found = [i for i in admin.get("/api/interactions").json() if i["call_id"] == call_id]
    assert len(found) == 1, f"no single interaction for call {call_id}: {found}"
    return dict(found[0])


def _call_and_check(s: Setup, expect_screen: bool) -> str:
    result = _place_call(s.server)
    inter = _interaction(s.server, result.call_id)
    assert inter["dn"] == DN and inter["agent"] == AGENT
    assert inter["screen_decision"] is expect_screen
    # call.ended follows any screen.start on the same channel, so once it is here a missing
    # screen.start is really missing.
    wait_until(lambda: "call.ended" in s.channel.events_for(inter["id"]), 10, "call.ended on the channel")
    events = s.channel.events_for(inter["id"])
    assert ("screen.start" in events) is expect_screen, events
    if expect_screen:
        assert events.index("screen.start") < events.index("call.ended"), events
    r = httpx.post(
        f"{s.server.url}/api/interactions/{inter['id']}/done",
        headers={"Authorization": f"Bearer {s.agent_token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["phase"] == "done"
    wait_until(lambda: "acw.ended" in s.channel.events_for(inter["id"]), 10, "acw.ended on the channel")
    if expect_screen:
        wait_until(lambda: "screen.stop" in s.channel.events_for(inter["id"]), 10, "screen.stop")
    return str(inter["id"])


def test_policy_decides_screen_per_call_and_the_decision_is_kept(setup: Setup) -> None:
    server, page = setup.server, setup.admin_page
    decided: dict[str, bool] = {}

    _set_via_api(server, 0)
    decided[_call_and_check(setup, expect_screen=False)] = False
    _set_via_admin_page(page, server, 100)
    decided[_call_and_check(setup, expect_screen=True)] = True
    _set_via_admin_page(page, server, 0)
    decided[_call_and_check(setup, expect_screen=False)] = False
    _set_via_api(server, 100)
    decided[_call_and_check(setup, expect_screen=True)] = True

    # The policy moves on; what each interaction was decided stays.
    _set_via_api(server, 0)
    with server.client("admin") as admin:
        stored = {i["id"]: i["screen_decision"] for i in admin.get("/api/interactions").json()}
    assert {k: stored.get(k) for k in decided} == decided
    # Later calls' events have arrived since, so anything these calls were sent is here too.
    for interaction_id in (k for k, screen in decided.items() if not screen):
        events = setup.channel.events_for(interaction_id)
        assert not [e for e in events if e.startswith("screen.")], events
    assert setup.channel.dropped == 0 and setup.channel.malformed == []


def test_admin_page_refuses_an_out_of_range_percentage(setup: Setup) -> None:
    server, page = setup.server, setup.admin_page
    _set_via_api(server, 25)
    page.click("#nav-admin")
    page.wait_for_function("() => document.getElementById('sampling-percentage').value === '25'")
    page.fill("#sampling-percentage", "150")
    page.click("#sampling-save")
    page.wait_for_selector("#sampling-status.error")
    assert "0 to 100" in page.inner_text("#sampling-status")
    with server.client("admin") as admin:
        assert admin.get("/api/admin/sampling").json()["percentage"] == 25
    page.click("#nav-recordings")
