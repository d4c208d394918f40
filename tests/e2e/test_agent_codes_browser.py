"""Reason and disposition codes in the browser, against a real server: the admin adds and edits
codes and sets "disposition required" on the admin page (saved, validated with the server's
message, audited, seen by the agent's desktop API); the supervisor sees his agents' states (Not
Ready with the reason) on the recordings page. Screenshot: docs/screenshots/admin-codes.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import ServerAndBrowser, log_in, new_page, open_admin, server_and_browser, wait_status
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SCREENSHOT = screenshot_path("admin-codes.png")
AGENT, DN = "agent7", "1707"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAndBrowser]:
    with server_and_browser(
        tmp_path_factory.mktemp("agent-codes") / "server", extra_users=[(AGENT, "agent", "Blue")]
    ) as both:
        yield both


def _status(page: Page, prefix: str) -> None:
    wait_status(page, "agent-codes-status", prefix)


def _save(page: Page, kind: str, code: str, label: str, active: bool = True) -> None:
    page.select_option("#agent-code-kind", kind)
    page.fill("#agent-code-code", code)
    page.fill("#agent-code-label", label)
    page.set_checked("#agent-code-active", active)
    page.click("#agent-code-save")


def test_admin_manages_codes_and_the_supervisor_sees_states(setup: ServerAndBrowser) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        open_admin(page, "#agent-codes-table", "agent-codes-status")
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
