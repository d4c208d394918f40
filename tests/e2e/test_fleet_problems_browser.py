"""A recorder problem on the Recorders (fleet) page, in the browser against a real server: the
agent's desktop reports that the recorder on its PC stopped on a config error; the page lists that
PC first ("not running", before a refused enrolment and a recorder that never connected) with the
recorder's message shown as text, not markup; the status filter keeps it; once the desktop reports
the recorder running again the row is gone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MESSAGE = "recorder.toml: unknown key <b>fsp</b> (did you mean 'fps'?)"


def _rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#fleet tbody tr",
        """rows => rows.map((r) => ({
            status: r.cells[0].textContent, host: r.cells[1].textContent,
            agent: r.cells[2].textContent, problems: r.cells[8].textContent,
            markup: String(r.cells[8].querySelectorAll("b").length), cls: r.className }))""",
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


def test_fleet_page_shows_a_reported_recorder_problem_first(tmp_path: Path) -> None:
    work = tmp_path / "fleet-problem"
    with run_server(work / "server") as server, chromium() as browser, new_page(browser) as page:
        with server.client("admin") as admin:
            r = admin.post("/api/admin/recorders/enrolments", json={"username": "agent1"})
            assert admin.post("/api/recorders/enroll", json={"code": r.json()["code"]}).status_code == 200
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            body = {"code": "NOPE0-NOPE0-NOPE0-NOPE0-NOPE0", "hostname": "desk-9", "os_user": "asmith"}
            assert anon.post("/api/recorders/enroll", json=body).status_code == 401
        report = {
            "hostname": "desk-42",
            "os_user": "jdoe",
            "kind": "config",
            "message": MESSAGE,
            "occurred_at": "2026-12-05T09:00:00+00:00",
            "recorder_version": "1.4.0",
        }
        with server.client("agent1") as desktop:
            assert desktop.post("/api/agent/recorder-problems", json=report).status_code == 204

        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        page.click("#nav-fleet")
        page.wait_for_selector("#view-fleet", state="visible")
        rows = _refresh_until(
            page, lambda rows: len(rows) == 3, "the problem, the refused PC, the silent recorder"
        )
        first = rows[0]
        assert first["status"] == "not running" and first["host"] == "desk-42", rows
        assert first["problems"] == f"recorder not running: configuration error — {MESSAGE}", first
        assert first["markup"] == "0"  # the recorder's text is never parsed as HTML
        assert "agent1" in first["agent"] and "OS user jdoe" in first["agent"], first
        assert "fleet-recorder_problem" in first["cls"]
        assert [r["status"] for r in rows[1:]] == ["enrolment refused", "never seen"], rows
        assert rows[1]["problems"].startswith("enrolment refused: unknown code"), rows

        page.select_option("#fleet-status", "problem")
        rows = _refresh_until(page, lambda rows: len(rows) == 1, "only the problem row")
        assert rows[0]["host"] == "desk-42"

        with server.client("agent1") as desktop:
            cleared = {**report, "kind": "cleared", "message": ""}
            assert desktop.post("/api/agent/recorder-problems", json=cleared).status_code == 204
        _refresh_until(page, lambda rows: rows == [], "the problem row gone once the recorder runs again")
