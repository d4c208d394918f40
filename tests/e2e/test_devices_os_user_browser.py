"""The admin Devices table names the OS user of a device's current pairing (issue 15): a PC enrols,
the agent's desktop pairs it and the device broker sends its caller's OS account; the Recorders
page's Devices row reads "paired with agent1, OS user …" — as text, never parsed as markup. Once the
agent logs out (unpair) the row is "idle" again and names nobody. A real server and Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

OS_USER = "j<b>doe</b>"  # an OS account name the broker passes on; markup in it must stay text


def _devices(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#devices tbody tr",
        """rows => rows.map((r) => ({
            state: r.cells[0].textContent, host: r.cells[1].textContent,
            markup: String(r.cells[0].querySelectorAll("b").length) }))""",
    )
    return rows


def _reload_until(page: Page, check: object, what: str) -> list[dict[str, str]]:
    def attempt() -> tuple[list[dict[str, str]]] | None:
        page.click("#nav-recordings")  # the Recorders page loads the Devices table when shown
        page.click("#nav-fleet")
        page.wait_for_selector("#devices-section", state="visible")
        page.wait_for_timeout(300)
        rows = _devices(page)
        return (rows,) if check(rows) else None  # type: ignore[operator]

    result: tuple[list[dict[str, str]]] = wait_until(attempt, 40, what, step=0.5)
    return result[0]


def test_devices_table_shows_the_pairings_os_user(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        with server.client("admin") as admin:
            r = admin.post(
                "/api/admin/devices/enrolment-tokens",
                json={"scope": "site:HQ", "ttl_hours": 1, "max_uses": 1},
            )
            assert r.status_code == 201, r.text
            token = r.json()["token"]
        with httpx.Client(base_url=server.url, timeout=30) as pc:
            r = pc.post("/api/devices/enroll", json={"token": token, "hostname": "desk-42"})
            assert r.status_code == 200, r.text
            device = {"Authorization": f"Bearer {r.json()['credential']}"}
            with server.client("agent1", client="desktop", dn="1001") as desktop:
                r = desktop.post("/api/agent/pairing-ticket")
                assert r.status_code == 200, r.text
            r = pc.post(
                "/api/devices/pair", headers=device, json={"ticket": r.json()["ticket"], "os_user": OS_USER}
            )
            assert r.status_code == 200, r.text

            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            rows = _reload_until(page, lambda rows: len(rows) == 1, "the paired device")
            assert rows[0]["host"] == "desk-42", rows
            assert rows[0]["state"] == f"paired with agent1, OS user {OS_USER}", rows
            assert rows[0]["markup"] == "0", rows  # set as text: the name's <b> is not an element

            assert pc.post("/api/devices/unpair", headers=device).status_code == 204
            rows = _reload_until(
                page, lambda rows: bool(rows) and rows[0]["state"] == "idle", "the device idle after unpair"
            )
            assert "OS user" not in rows[0]["state"], rows
