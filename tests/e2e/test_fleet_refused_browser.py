"""Refused enrolments on the Recorders (fleet) page, in the browser against a real server: a PC
that tried to enrol with a revoked enrolment token is a problem row "enrolment refused: token
revoked" with its host and OS user, listed before a recorder that was enrolled but never connected;
the status filter keeps only refused rows; once the PC enrols with a good token the row is gone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#fleet tbody tr",
        """rows => rows.map((r) => ({
            status: r.cells[0].textContent, host: r.cells[1].textContent,
            agent: r.cells[2].textContent, problems: r.cells[8].textContent, cls: r.className }))""",
    )
    return rows


def _refresh_until(page: Page, check: object, what: str) -> list[dict[str, str]]:
    def attempt() -> tuple[list[dict[str, str]]] | None:
        page.click("#fleet-refresh")
        page.wait_for_timeout(300)
        rows = _rows(page)
        return (rows,) if check(rows) else None  # type: ignore[operator]  # a tuple: [] is an answer too

    result: tuple[list[dict[str, str]]] = wait_until(attempt, 40, what, step=0.5)
    return result[0]


def _token(admin: httpx.Client) -> dict[str, str]:
    r = admin.post(
        "/api/admin/devices/enrolment-tokens", json={"scope": "site:HQ", "ttl_hours": 1, "max_uses": 1}
    )
    assert r.status_code == 201, r.text
    return {"id": str(r.json()["id"]), "token": r.json()["token"]}


def test_fleet_page_shows_a_refused_enrolment_first(tmp_path: Path) -> None:
    work = tmp_path / "fleet-refused"
    with run_server(work / "server") as server, chromium() as browser, new_page(browser) as page:
        with server.client("admin") as admin:
            # agent1's PC: enrolled, never connected — a problem too, but a lesser one.
            r = admin.post("/api/admin/recorders/enrolments", json={"username": "agent1"})
            assert admin.post("/api/recorders/enroll", json={"code": r.json()["code"]}).status_code == 200
            revoked = _token(admin)
            assert (
                admin.post(f"/api/admin/devices/enrolment-tokens/{revoked['id']}/revoke").status_code == 204
            )
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            body = {"token": revoked["token"], "hostname": "desk-42", "os_user": "jdoe"}
            r = anon.post("/api/devices/enroll", json=body)
            assert r.status_code == 401 and r.json()["error"] == "enrolment_token_revoked", r.text

        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-fleet")
        page.wait_for_selector("#view-fleet", state="visible")
        rows = _refresh_until(page, lambda rows: len(rows) == 2, "the refused PC and the silent recorder")
        first, second = rows
        assert first["status"] == "enrolment refused" and first["host"] == "desk-42", rows
        assert first["agent"] == "OS user jdoe"
        assert first["problems"].startswith("enrolment refused: token revoked"), first
        assert "fleet-problem" in first["cls"] and "fleet-enrol_refused" in first["cls"]
        assert second["status"] == "never seen", rows

        page.select_option("#fleet-status", "enrol_refused")
        rows = _refresh_until(page, lambda rows: len(rows) == 1, "only the refused row")
        assert rows[0]["host"] == "desk-42"

        with server.client("admin") as admin:
            good = _token(admin)
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            body = {"token": good["token"], "hostname": "desk-42", "os_user": "jdoe"}
            assert anon.post("/api/devices/enroll", json=body).status_code == 200
        _refresh_until(page, lambda rows: rows == [], "the refused row gone after a good enrolment")
