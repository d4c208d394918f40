"""Devices in the browser (admin, Recorders page): create an enrolment token with the form (shown
once), a PC enrols with it, the device is listed "idle", Revoke (confirmed) turns it "revoked" and
the token's use is counted. A real server and Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _cells(page: Page, table: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"#{table} tbody tr", "rows => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )
    return rows


def test_admin_creates_an_enrolment_token_and_revokes_the_device(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-fleet")
        page.wait_for_selector("#devices-section", state="visible")
        page.fill("#enrol-scope", "site:HQ")
        page.fill("#enrol-uses", "2")
        page.click("#enrol-form button[type=submit]")
        page.wait_for_selector("#enrol-new", state="visible")
        token = page.inner_text("#enrol-new-token")
        assert token.startswith("tet_")
        r = httpx.post(
            f"{server.url}/api/devices/enroll", json={"token": token, "hostname": "desk-9"}, timeout=30
        )
        assert r.status_code == 200, r.text
        page.click("#nav-recordings")
        page.click("#nav-fleet")
        page.wait_for_function("() => document.querySelectorAll('#devices tbody tr').length === 1")
        assert _cells(page, "devices")[0][:3] == ["idle", "desk-9", "site:HQ"]
        assert _cells(page, "enrolment-tokens")[0][:3] == ["active", "site:HQ", "1 / 2"]
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#devices tbody tr button")
        page.wait_for_function(
            "() => document.querySelector('#devices tbody tr td').textContent === 'revoked'"
        )
        assert page.inner_text("#devices-status") == "device desk-9 revoked."
        assert _cells(page, "devices")[0][4].startswith("by admin")
