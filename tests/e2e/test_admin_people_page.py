"""The admin's People section in a real browser (Debian's chromium) against a running server: a
team is created and renamed, an agent's team and full-time DN are changed (a bad DN is refused
with the server's sentence), a supervisor becomes an evaluator of two teams, the table is
operable from the keyboard and folds at 420 px without sideways scrolling, and the audit viewer
finds the changes with their before/after. Screenshot: docs/screenshots/admin-people.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import assert_folds_at_420, audit_viewer_rows, chromium, log_in, new_page, wait_status
from tests.e2e.harness import run_server
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
SCREENSHOT = screenshot_path("admin-people.png")


def _row(page: Page, username: str) -> list[str]:
    cells: list[str] = page.eval_on_selector(
        f"#people-table tbody tr[data-username='{username}']",
        "r => [...r.cells].slice(0, 7).map(c => c.textContent)",
    )
    return cells


def _edit(page: Page, username: str) -> None:
    page.click(f"button[aria-label='Edit user {username}']")
    page.wait_for_selector("#people-edit", state="visible")


def test_admin_edits_people_and_teams_and_the_audit_viewer_finds_it(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-admin")
        page.wait_for_selector("#people-table tbody tr[data-username='agent1']")
        assert _row(page, "agent1") == ["agent1", "Alex Agent", "agent", "Blue", "—", "—", "Active"]

        # Teams: create one, refuse a name that differs only in case, rename the new one.
        page.fill("#team-create-name", "Grene")
        page.click("#team-create-save")
        wait_status(page, "teams-status", "Created team Grene.")
        page.fill("#team-create-name", "blue")
        page.click("#team-create-save")
        assert (
            wait_status(page, "teams-status", "Not saved:")
            == 'Not saved: there is already a team named "Blue"'
        )
        page.click("button[aria-label='Rename team Grene']")
        page.fill("#team-rename-name", "Green")
        page.click("#team-rename-save")
        wait_status(page, "teams-status", "Renamed team Grene to Green.")

        # An agent: another team and a full-time DN; a bad DN first, refused in the server's words.
        _edit(page, "agent1")
        page.select_option("#people-edit-team", "Green")
        page.fill("#people-edit-dn", "12ab!")
        page.click("#people-edit-save")
        refused = wait_status(page, "people-edit-status", "Not saved:")
        assert (
            refused
            == "Not saved: '12ab!' is not a DN: a DN is 1-32 digits with an optional leading + "
            + ("(spaces, -, ., ( and ) are ignored)")
        )
        assert _row(page, "agent1")[3:6] == ["Blue", "—", "—"]  # nothing changed
        page.fill("#people-edit-dn", "5101")
        page.click("#people-edit-save")
        wait_status(page, "people-edit-status", "Saved agent1: agent, team Green.")
        assert _row(page, "agent1")[3:6] == ["Green", "—", "5101"]

        # A supervisor becomes an evaluator of two teams, from the keyboard alone.
        page.focus("button[aria-label='Edit user supervisor2']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#people-edit", state="visible")
        assert page.evaluate("() => document.activeElement.id") == "people-edit-full-name"
        page.focus("#people-edit-role")
        page.select_option("#people-edit-role", "evaluator")
        assert page.is_visible("#people-edit-supervises-box") and page.is_hidden("#people-edit-dn-box")
        assert page.is_checked("#people-edit-supervises input[value='Red']")
        page.uncheck("#people-edit-supervises input[value='Red']")
        for team in ("Blue", "Green"):
            page.check(f"#people-edit-supervises input[value='{team}']")
        page.focus("#people-edit-save")
        page.keyboard.press("Enter")
        wait_status(page, "people-edit-status", "Saved supervisor2: evaluator.")
        assert _row(page, "supervisor2")[2:5] == ["evaluator", "—", "Blue, Green"]
        page.focus("#people-edit-full-name")
        page.keyboard.press("Escape")
        page.wait_for_selector("#people-edit", state="hidden")
        assert (
            page.evaluate("() => document.activeElement.getAttribute('aria-label')")
            == "Edit user supervisor2"
        )

        # The filters narrow the table.
        page.select_option("#people-role-filter", "agent")
        page.wait_for_function("() => document.querySelectorAll('#people-table tbody tr').length === 1")
        page.select_option("#people-role-filter", "")
        page.wait_for_selector("#people-table tbody tr[data-username='admin']")

        # A user made with the New user form shows in the People table (and a new team in the
        # teams table) without a reload.
        page.fill("#new-user-username", "agent9")
        page.fill("#new-user-full-name", "Agent Nine")
        page.select_option("#new-user-role", "agent")
        page.fill("#new-user-team", "Orange")
        page.fill("#new-user-password", "correct-horse-battery-9")
        page.click("#new-user-save")
        page.wait_for_function(
            "() => document.getElementById('new-user-status').textContent.startsWith('Created')"
        )
        page.wait_for_selector("#people-table tbody tr[data-username='agent9']")
        page.wait_for_selector("#teams-table tbody tr:has-text('Orange')")

        _edit(page, "agent1")
        page.fill("#team-create-name", "")
        page.set_viewport_size({"width": 1280, "height": 1350})  # the users, the form and the teams
        page.eval_on_selector("#people-title", "e => e.scrollIntoView()")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=False)

        # 420 px: the rows fold into cards; the page does not scroll sideways.
        assert_folds_at_420(page, "people-table", "people")

        # The audit viewer: the changes with before/after, and the refusal.
        rows = audit_viewer_rows(page, server.url, "action=user.update")
        by_target = {(r[3], r[2]): r for r in rows}
        denied = by_target[("user agent1", "denied")]
        assert denied[:2] == ["admin", "user.update"] and denied[4].startswith(
            "invalid_dn: '12ab!' is not a DN"
        )
        changed = json.loads(by_target[("user agent1", "allowed")][4])
        assert changed == {
            "before": {"full_time_dn": None, "team": "Blue"},
            "after": {"full_time_dn": "5101", "team": "Green"},
        }
        promoted = json.loads(by_target[("user supervisor2", "allowed")][4])
        assert promoted["before"] == {"role": "supervisor", "supervises": ["Red"]}
        assert promoted["after"] == {"role": "evaluator", "supervises": ["Blue", "Green"]}
