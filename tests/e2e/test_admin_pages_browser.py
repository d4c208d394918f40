"""Admin pages in a real browser against a real server: the ACW limit saves, is refused with the
server's clear message when out of range (nothing changes), persists across a reload and is
audited with the values before and after; the pause policy (teams that may not pause)
likewise. (Screen sampling by team name: test_sampling_browser.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import chromium, log_in, new_page, open_admin
from tests.e2e.harness import ServerProcess, run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path / "server", TANDEM_SERVER_ACW_LIMIT_SECONDS="300") as s:
        yield s


def _open_admin(page: Page) -> None:
    open_admin(page, "#view-admin", "acw-status", "document.getElementById('acw-seconds').value !== ''")


def _save_acw(page: Page, value: str) -> str:
    page.fill("#acw-seconds", value)
    page.click("#acw-save")
    page.wait_for_function(
        "() => /^(Saved|Not saved|The ACW)/.test(document.getElementById('acw-status').textContent)"
    )
    return page.inner_text("#acw-status")


def test_the_acw_limit_page_saves_validates_and_is_audited(server: ServerProcess) -> None:
    with chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        _open_admin(page)
        assert page.input_value("#acw-seconds") == "300"

        refused = _save_acw(page, "2")
        assert refused.startswith("Not saved") and "from 5 to 14400 seconds" in refused, refused
        assert page.is_visible("#acw-status.error")
        with server.client("admin") as admin:
            assert admin.get("/api/admin/acw-limit").json() == {"seconds": 300}

        saved = _save_acw(page, "75")
        assert saved.startswith("Saved") and "75 s" in saved, saved
        page.reload()
        _open_admin(page)
        assert page.input_value("#acw-seconds") == "75"

        # The pause policy: tick the teams whose agents may not pause.
        page.wait_for_function("() => document.getElementById('pause-status').textContent === ''")
        page.check('#pause-teams input[value="Blue"]')
        page.fill("#pause-max", "2")
        page.click("#pause-save")
        page.wait_for_function(
            "() => document.getElementById('pause-status').textContent.startsWith('Not saved')"
        )
        assert "from 5 to 3600 seconds" in page.inner_text("#pause-status")
        page.fill("#pause-max", "120")
        page.click("#pause-save")
        page.wait_for_function(
            "() => document.getElementById('pause-status').textContent.startsWith('Saved')"
        )
        assert page.inner_text("#pause-status") == "Saved: agents of Blue may not pause; resumed after 120 s."
        page.reload()
        _open_admin(page)
        page.wait_for_function("() => document.getElementById('pause-status').textContent === ''")
        assert page.is_checked('#pause-teams input[value="Blue"]')
        assert not page.is_checked('#pause-teams input[value="Red"]')
        assert page.input_value("#pause-max") == "120"

    with server.client("admin") as admin:
        records = [r for r in admin.get("/api/audit").json() if r["action"] == "policy.acw_limit"]
    assert [(r["username"], r["outcome"]) for r in reversed(records)] == [
        ("admin", "denied"),
        ("admin", "allowed"),
    ]
    assert json.loads(records[0]["detail"]) == {"before": 300.0, "after": 75.0}
    with server.client("admin") as admin:
        assert admin.get("/api/admin/pause-policy").json() == {
            "no_pause_teams": ["Blue"],
            "max_seconds": 120,
            "reason_required": False,
            "reason_required_teams": {},
        }
        records = [r for r in admin.get("/api/audit").json() if r["action"] == "policy.pause"]
    # Newest first: the maximum, the teams (one save), then the refused save (which changed nothing).
    assert [(r["username"], r["outcome"]) for r in records] == [
        ("admin", "allowed"),
        ("admin", "allowed"),
        ("admin", "denied"),
    ]
    assert json.loads(records[0]["detail"])["after"] == {"max_seconds": 120.0}
    assert json.loads(records[1]["detail"])["after"] == {"no_pause_teams": ["Blue"]}
