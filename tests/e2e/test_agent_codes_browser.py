"""Reason and disposition codes in the browser, against a real server: the admin adds and edits
codes and sets "disposition required" on the admin page (saved, validated with the server's
message, audited, seen by the agent's desktop API); the supervisor sees his agents' states (Not
Ready with the reason) on the recordings page. Screenshot: docs/screenshots/admin-codes.png."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import ServerProcess, run_server
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SCREENSHOT = screenshot_path("admin-codes.png")
AGENT, DN = "agent7", "1707"


@dataclass
class Setup:
    server: ServerProcess
    browser: Browser


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work: Path = tmp_path_factory.mktemp("agent-codes")
    with run_server(work / "server", extra_users=[(AGENT, "agent", "Blue")]) as server, chromium() as browser:
        yield Setup(server, browser)


def _status(page: Page, prefix: str) -> None:
    page.wait_for_function(
        "(p) => document.getElementById('agent-codes-status').textContent.startsWith(p)", arg=prefix
    )


def _save(page: Page, kind: str, code: str, label: str, active: bool = True) -> None:
    page.select_option("#agent-code-kind", kind)
    page.fill("#agent-code-code", code)
    page.fill("#agent-code-label", label)
    page.set_checked("#agent-code-active", active)
    page.click("#agent-code-save")


def test_admin_manages_codes_and_the_supervisor_sees_states(setup: Setup) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-admin")
        page.wait_for_selector("#agent-codes-table", state="visible")
        page.wait_for_function("() => document.getElementById('agent-codes-status').textContent === ''")
        _save(page, "reason", "LUNCH", "Lunch")
        _status(page, "Saved: Reason (Not Ready) LUNCH")
        _save(page, "disposition", "SALE", "Sale")
        _status(page, "Saved: Disposition (ACW) SALE")
        _save(page, "disposition", "bad code", "Spaces")  # refused with the server's sentence
        _status(page, "Not saved: a code is 1 to 32 letters")
        # Edit fills the form from the row; the change is saved over the same code.
        page.click("button[aria-label='Edit reason code LUNCH']")
        assert page.input_value("#agent-code-code") == "LUNCH"
        page.fill("#agent-code-label", "Lunch break")
        page.click("#agent-code-save")
        _status(page, 'Saved: Reason (Not Ready) LUNCH "Lunch break"')
        page.check("#disposition-required")
        _status(page, "Saved: agents must choose a disposition")
        rows = page.eval_on_selector_all(
            "#agent-codes-table tbody tr",
            "rows => rows.map(r => [...r.cells].slice(0, 4).map(c => c.textContent))",
        )
        assert rows == [
            ["Disposition (ACW)", "SALE", "Sale", "Active"],
            ["Reason (Not Ready)", "LUNCH", "Lunch break", "Active"],
        ]
        page.eval_on_selector("#agent-codes-title", "e => e.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        page.reload()
        page.wait_for_selector("#agent-codes-table tbody tr")
        page.wait_for_function("() => document.getElementById('disposition-required').checked")

    with server.client(AGENT, client="desktop", dn=DN) as agent:
        codes = agent.get("/api/agent/codes").json()
        assert codes["disposition_required"] is True
        assert [c["label"] for c in codes["reason_codes"]] == ["Lunch break"]
        r = agent.put("/api/agent/state", json={"state": "not_ready", "reason_code": "LUNCH"})
        assert r.status_code == 200, r.text
        with new_page(setup.browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.wait_for_selector("#agent-states", state="visible")
            page.wait_for_selector(f"#agent-states-table tbody tr:has-text('{AGENT}')")
            row = page.eval_on_selector(
                f"#agent-states-table tbody tr:has-text('{AGENT}')",
                "r => [...r.cells].map(c => c.textContent)",
            )
            assert row[2:] == ["Not Ready", row[3], "Lunch break", DN] and row[1] == "Blue"
