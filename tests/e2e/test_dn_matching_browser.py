"""DN matching in the browser: the admin sets prefixes and "record unassigned" on the admin page
(persisted: reload, API; a bad rule is shown as not saved); a real SIP call to a DN nobody is on
is then recorded as "unassigned" — listed so to the admin, not listed to a supervisor."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page

from server.sim.call import simulate_call
from tests.e2e.browser import (
    ServerAndBrowser,
    log_in,
    new_page,
    open_admin,
    server_and_browser,
    wait_recordings_loaded,
)
from tests.e2e.harness import ServerProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

NOBODYS_DN = "4449"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAndBrowser]:
    with server_and_browser(tmp_path_factory.mktemp("dn-matching") / "server") as both:
        yield both


def _open_admin(page: Page) -> None:
    open_admin(page, "#view-admin", "dn-matching-status")


def _api_policy(server: ServerProcess) -> dict[str, Any]:
    with server.client("admin") as admin:
        r = admin.get("/api/admin/dn-matching")
        assert r.status_code == 200, r.text
        return dict(r.json())


def _place_call(server: ServerProcess, dn: str) -> str:
    host = server.url.split("//", 1)[1].split(":", 1)[0]
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop on this thread
        future = pool.submit(asyncio.run, simulate_call((host, server.sip_port), dn, 1.0))
        return future.result(timeout=40).call_id


def test_admin_sets_matching_and_an_unassigned_call_is_listed_as_such(setup: ServerAndBrowser) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        _open_admin(page)
        assert page.input_value("#dn-matching-prefixes") == "" and not page.is_checked(
            "#dn-matching-unassigned"
        )

        page.fill("#dn-matching-last", "2")  # refused: fewer than 3 digits
        page.click("#dn-matching-save")
        page.wait_for_selector("#dn-matching-status.error")
        assert "3-32" in page.inner_text("#dn-matching-status")

        page.fill("#dn-matching-prefixes", "+1, 9")
        page.fill("#dn-matching-last", "0")
        page.check("#dn-matching-unassigned")
        page.click("#dn-matching-save")
        page.wait_for_function(
            "() => document.getElementById('dn-matching-status').textContent.startsWith('Saved')"
        )
        policy = _api_policy(server)
        assert policy["strip_prefixes"] == ["+1", "9"] and policy["record_unassigned"] is True

        page.reload()
        page.wait_for_selector("#topbar", state="visible")
        _open_admin(page)
        assert page.input_value("#dn-matching-prefixes") == "+1, 9" and page.is_checked(
            "#dn-matching-unassigned"
        )

        call_id = _place_call(server, NOBODYS_DN)
        with server.client("admin") as admin:
            inter = wait_until(
                lambda: next(
                    (
                        i
                        for i in admin.get("/api/interactions").json()
                        if i["call_id"] == call_id and "voice" in i["media"]
                    ),
                    None,
                ),
                30,
                "the unassigned call's recording",
            )
        assert inter["unassigned"] is True and inter["dn"] == NOBODYS_DN
        page.click("#nav-recordings")
        wait_recordings_loaded(page)
        row = page.locator(f'#recordings tr[data-id="{inter["id"]}"]')
        assert row.count() == 1 and "unassigned" in row.inner_text(), page.inner_text("#recordings")
    with new_page(setup.browser) as page:
        log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
        wait_recordings_loaded(page)
        assert page.locator(f'#recordings tr[data-id="{inter["id"]}"]').count() == 0
