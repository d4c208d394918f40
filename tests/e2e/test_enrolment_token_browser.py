"""Enrolment tokens in the web UI (issue 15 item 4: "scoped, expiring, revocable in the web UI"):
a scope naming no team is refused in words on the page and nothing is made; a token made with
the form for 2 hours expires then (the server's expiry, the page's column); Revoke on its row
(confirmed) turns it "revoked" and a PC enrolling with it is refused. test_devices_browser.py
revokes a *device*; this one the token. A real server and Chromium."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_admin_scopes_and_revokes_an_enrolment_token_in_the_page(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        admin = server.creds["admin"]
        log_in(page, server.url, "admin", admin["password"])
        page.click("#nav-fleet")
        page.wait_for_selector("#devices-section", state="visible")

        # Scoped: a team that does not exist is refused, in words, and no token is made.
        page.fill("#enrol-scope", "team:Nowhere")
        page.click("#enrol-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('#devices-status').textContent !== ''")
        assert "no team named 'Nowhere'" in page.inner_text("#devices-status")
        assert page.is_hidden("#enrol-new")

        # Expiring: valid for the hours the form gave.
        page.fill("#enrol-scope", "site:HQ")
        page.fill("#enrol-hours", "2")
        made_at = time.time()
        page.click("#enrol-form button[type=submit]")
        page.wait_for_selector("#enrol-new", state="visible")
        token = page.inner_text("#enrol-new-token")
        assert token.startswith("tet_")
        page.wait_for_function("() => document.querySelectorAll('#enrolment-tokens tbody tr').length === 1")
        with server.client("admin") as http:
            (listed,) = http.get("/api/admin/devices/enrolment-tokens").json()["tokens"]
            assert (listed["state"], listed["scope"]) == ("active", "site:HQ")
            assert abs(listed["expires_at"] - (made_at + 7200)) < 120

            # Revocable: the row's Revoke, confirmed; the row says so and the token enrols nothing.
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("#enrolment-tokens tbody tr button")
            page.wait_for_function(
                "() => document.querySelector('#enrolment-tokens tbody tr td').textContent === 'revoked'"
            )
            assert page.inner_text("#devices-status") == f"enrolment token {listed['id']} revoked."
            assert page.query_selector("#enrolment-tokens tbody tr button") is None
            r = httpx.post(
                f"{server.url}/api/devices/enroll", json={"token": token, "hostname": "desk-1"}, timeout=30
            )
            assert r.status_code == 401 and r.json()["error"] == "enrolment_token_revoked", r.text
            assert http.get("/api/admin/devices").json()["devices"] == []
