"""Sampling acceptance: an admin sets 30 % and a team override BY TEAM NAME on the admin page of a
real server (an unknown team name is refused with a clear message first); both changes are
audited with the values before and after. Then 200 interactions for an agent of a team without an
override give 30 % ± 5 % screens, and 200 for the overridden team's agent give its 80 % ± 5 %.

The interactions are offered to the coordinator in process (SIP off) on the same data directory
once the server has stopped, as the SIP engine would offer them: 400 real SIP calls would take
many minutes. The coordinator samples by a per-team quota (server/policy/screen_quota.py); with
a coin per call, 200 calls at 30 % fell outside ±5 % about one run in eight.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page
from sqlalchemy import Integer, cast, func, select

from server.api.app import create_app
from server.settings import load_settings
from server.sip.listener import CallAccepted, CallOffer
from server.store import models
from server.store.db import session_scope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import ServerProcess, run_server
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = screenshot_path("admin-sampling-flow.png")
CALLS = 200
AGENTS = {"blue1": ("Blue", "2101"), "green1": ("Green", "2102")}


def _open_admin(page: Page) -> None:
    page.click("#nav-admin")
    page.wait_for_selector("#view-admin", state="visible")
    # Filled from the server once loaded; typing earlier would be overwritten.
    page.wait_for_function(
        "() => document.getElementById('sampling-percentage').value !== ''"
        " && document.getElementById('sampling-status').textContent === ''"
        " && document.querySelectorAll('#sampling-team-names option').length >= 2"
    )


def _set_on_the_admin_page(page: Page, server: ServerProcess) -> None:
    log_in(page, server.url, "admin", server.creds["admin"]["password"])
    _open_admin(page)
    page.fill("#sampling-percentage", "30")
    page.click("#sampling-add")
    page.fill("#sampling-overrides tbody tr:last-child .override-team", "Purple")
    page.fill("#sampling-overrides tbody tr:last-child .override-percentage", "80")
    page.click("#sampling-save")
    page.wait_for_selector("#sampling-status.error")
    message = page.inner_text("#sampling-status")
    assert 'no team named "Purple"' in message and "Blue" in message and "Green" in message, message
    with server.client("admin") as admin:
        assert admin.get("/api/admin/sampling").json()["team_overrides"] == {}
    # The server refuses it too, whatever the page lets through (the API is the authority).
    with server.client("admin") as admin:
        r = admin.put("/api/admin/sampling", json={"percentage": 30, "team_overrides": {"Purple": 80}})
        assert r.status_code == 422 and 'no team named "Purple"' in r.json()["message"], r.text

    page.fill("#sampling-overrides tbody tr:last-child .override-team", "Green")
    page.click("#sampling-save")
    page.wait_for_function("() => document.getElementById('sampling-status').textContent.startsWith('Saved')")
    # What the page shows after the save is the server's answer: the team by name.
    assert page.input_value("#sampling-overrides tbody tr:last-child .override-team") == "Green"
    page.reload()
    _open_admin(page)
    assert page.input_value("#sampling-percentage") == "30"
    assert page.input_value("#sampling-overrides tbody tr:last-child .override-team") == "Green"
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    with server.client("admin") as admin:
        assert admin.get("/api/admin/sampling").json() == {"percentage": 30, "team_overrides": {"Green": 80}}
        records = [r for r in admin.get("/api/audit").json() if r["action"] == "policy.sampling"]
    outcomes = [r["outcome"] for r in reversed(records)]
    assert outcomes == ["denied", "allowed"], records  # the page checked "Purple" itself
    changed = json.loads(records[0]["detail"])
    assert changed["after"] == {"percentage": 30.0, "team_overrides": {"Green": 80.0}}
    assert changed["before"]["team_overrides"] == {}


@pytest.fixture
def server_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "server"
    users = [(name, "agent", team) for name, (team, _) in AGENTS.items()]
    with run_server(data, extra_users=users) as server, chromium() as browser, new_page(browser) as page:
        _set_on_the_admin_page(page, server)
    yield data  # the server has stopped: its data directory is free for the in-process run


def test_thirty_percent_set_on_the_admin_page_and_a_team_override_by_name(
    server_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("TANDEM_SERVER_"):
            monkeypatch.delenv(key)
    settings = load_settings(None, data_dir=server_dir, sip_enabled=False, media_encoder_process=False)
    app = create_app(settings)
    with TestClient(app) as client:
        for name, (_, dn) in AGENTS.items():
            r = client.post(
                "/api/auth/login",
                json={"username": name, "password": f"{name}-password-1", "client": "desktop", "dn": dn},
            )
            assert r.status_code == 200, r.text
        coordinator = app.state.ctx.coordinator
        assert client.portal is not None
        for name, (_, dn) in AGENTS.items():
            for i in range(CALLS):
                offer = CallOffer(
                    call_id=f"{name}-{i}",
                    dn=dn,
                    caller=f"+1555{i:06d}",
                    callee=dn,
                    source=("127.0.0.1", 5060),
                    codec="PCMU",
                )
                accepted = client.portal.call(coordinator.on_call_offered, offer)
                assert isinstance(accepted, CallAccepted), accepted
                # Withdrawn before the answer: the next offer is the agent's own call again,
                # never a linked (voice-only) second call.
                client.portal.call(coordinator.on_offer_withdrawn, offer, accepted, "test")
        with session_scope(app.state.ctx.sessions) as s:
            shares = {}
            for name, (_, dn) in AGENTS.items():
                # The sum is cast: a sum over a Boolean column would read back as a Boolean.
                rows = s.execute(
                    select(
                        func.count(),
                        func.sum(cast(models.Interaction.screen_decision, Integer)),
                        models.Interaction.screen_percentage,
                    )
                    .where(models.Interaction.dn == dn)
                    .group_by(models.Interaction.screen_percentage)
                ).all()
                linked = s.execute(
                    select(func.count()).where(
                        models.Interaction.dn == dn, models.Interaction.parent_interaction_id.is_not(None)
                    )
                ).scalar_one()
                assert linked == 0  # each call was the agent's own, none a voice-only second call
                assert len(rows) == 1, rows  # one policy for all of the agent's calls
                count, screens, percentage = rows[0]
                assert count == CALLS
                shares[name] = (percentage, 100.0 * screens / count)
    assert shares["blue1"][0] == 30.0 and shares["green1"][0] == 80.0, shares
    assert abs(shares["blue1"][1] - 30.0) <= 5.0, shares
    assert abs(shares["green1"][1] - 80.0) <= 5.0, shares
