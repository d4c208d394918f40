"""Screen recorders in the browser, against a real server and a real recorder service on Xvfb:

* the admin page's "Screen recorders" section loads the policy, saves a change (frame rate,
  monitors, masking rules added in the table, upload window, heartbeat) that the API then returns,
  and shows the server's refusal of a bad masking pattern on the rule's own field;
* the Recorders page lists every enrolled recorder, problems first: one enrolled but never
  connected, the running one with its host, version, clock accuracy — and, once the running
  recorder is stopped, "offline" after three of the (pushed) policy's heartbeats.

Screenshots: ``admin-recorder.png`` and ``fleet.png`` in ``TANDEM_SCREENSHOT_DIR`` (docs/screenshots
when taken for the docs)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from playwright.sync_api import FloatRect, Page

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_recorder, run_server, wait_until, xvfb_with_changing_content

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _open_admin(page: Page) -> None:
    page.click("#nav-admin")
    page.wait_for_selector("#view-admin", state="visible")
    page.wait_for_function(
        "() => document.getElementById('rp-fps').value !== ''"
        " && document.getElementById('recorder-policy-status').textContent === ''"
    )


def _save(page: Page) -> str:
    page.click("#recorder-policy-save")
    page.wait_for_function(
        "() => { const t = document.getElementById('recorder-policy-status').textContent;"
        " return t.startsWith('Saved') || t.startsWith('Not saved'); }"
    )
    return page.inner_text("#recorder-policy-status")


def _shoot_section(page: Page, top: str, bottom: str, path: Path) -> None:
    """A screenshot of the page from ``top``'s element to the end of ``bottom``'s."""
    page.locator(top).scroll_into_view_if_needed()
    first = page.locator(top).bounding_box()
    last = page.locator(bottom).bounding_box()
    assert first is not None and last is not None
    scroll = page.evaluate("() => [window.scrollX, window.scrollY]")
    clip: FloatRect = {
        "x": 0,
        "y": first["y"] + scroll[1] - 16,
        "width": page.viewport_size["width"] if page.viewport_size else 1280,
        "height": last["y"] + last["height"] - first["y"] + 32,
    }
    page.screenshot(path=str(path), full_page=True, clip=clip)


def _fleet_rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#fleet tbody tr",
        """rows => rows.map((r) => ({
            status: r.cells[0].textContent, host: r.cells[1].textContent, agent: r.cells[2].textContent,
            version: r.cells[4].textContent, clock: r.cells[7].textContent, problems: r.cells[8].textContent,
            cls: r.className }))""",
    )
    return rows


def _refresh_until(page: Page, check: object, what: str, timeout: float = 40) -> list[dict[str, str]]:
    def attempt() -> list[dict[str, str]] | None:
        page.click("#fleet-refresh")
        page.wait_for_timeout(300)
        rows = _fleet_rows(page)
        return rows if check(rows) else None  # type: ignore[operator]

    result: list[dict[str, str]] = wait_until(attempt, timeout, what, step=0.5)
    return result


def test_admin_sets_the_recorder_policy_and_sees_the_fleet(tmp_path: Path) -> None:
    shots = Path(os.environ.get("TANDEM_SCREENSHOT_DIR", tmp_path))
    work = tmp_path / "fleet"
    with (
        run_server(work / "server", extra_users=[("agent2", "agent", "Red")]) as server,
        xvfb_with_changing_content() as display,
        chromium() as browser,
        new_page(browser) as page,
    ):
        with server.client("admin") as admin:  # agent2's PC: enrolled, its recorder never started
            r = admin.post("/api/admin/recorders/enrolments", json={"username": "agent2"})
            assert admin.post("/api/recorders/enroll", json={"code": r.json()["code"]}).status_code == 200
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        with run_recorder(server, "agent1", display, work / "recorder") as recorder_log:
            # -- the policy ------------------------------------------------------------------
            _open_admin(page)
            assert page.input_value("#rp-fps") == "5" and page.input_value("#rp-monitors") == "all"
            page.fill("#rp-fps", "2")
            page.select_option("#rp-monitors", "primary")
            page.fill("#rp-heartbeat", "2")
            page.fill("#rp-bandwidth", "2048")
            page.check("#rp-window-on")
            page.fill("#rp-window-from", "18:00")
            page.fill("#rp-window-to", "07:30")
            page.click("#rp-masking-add")
            row = page.locator("#rp-masking tbody tr").nth(0)
            row.locator(".rule-name").fill("Card payment")
            row.locator(".rule-title").fill("card|payment")
            row.locator(".rule-action").select_option("pause")
            page.click("#rp-masking-add")
            row2 = page.locator("#rp-masking tbody tr").nth(1)
            row2.locator(".rule-name").fill("Wallboard clock")
            row2.locator(".rule-kind").select_option("region")
            assert row2.locator(".rule-title").is_disabled()
            row2.locator(".rule-rect").fill("0, 0, 320, 40")
            assert _save(page).startswith("Saved"), page.inner_text("#recorder-policy-status")
            with server.client("admin") as admin:
                stored = admin.get("/api/admin/recorder-policy").json()
            assert (
                stored["fps"] == 2.0
                and stored["monitors"] == "primary"
                and stored["heartbeat_seconds"] == 2.0
            )
            assert stored["upload_window"] == ["18:00", "07:30"] and stored["bandwidth_kbps"] == 2048
            assert stored["masking"] == [
                {"name": "Card payment", "kind": "window", "action": "pause", "title": "card|payment"},
                {"name": "Wallboard clock", "kind": "region", "action": "mask", "rect": [0, 0, 320, 40]},
            ]
            _shoot_section(
                page, "#recorder-policy-title", "#recorder-policy-form", shots / "admin-recorder.png"
            )

            # A pattern the server cannot compile: refused, shown on that rule's field, not stored.
            row.locator(".rule-title").fill("card(")
            message = _save(page)
            assert message.startswith("Not saved: Masking rule 1 (title): not a regular expression"), message
            assert row.locator(".rule-title").get_attribute("aria-invalid") == "true"
            _shoot_section(page, "#recorder-policy-title", "#recorder-policy-form", tmp_path / "refused.png")
            with server.client("admin") as admin:
                assert admin.get("/api/admin/recorder-policy").json()["masking"][0]["title"] == "card|payment"
                audit = admin.get("/api/audit", params={"target_id": "recorder"}).json()
            assert [a["outcome"] for a in audit if a["action"] == "policy.recorder"] == ["denied", "allowed"]
            page.click("#nav-recordings")

            # -- the fleet -------------------------------------------------------------------
            page.click("#nav-fleet")
            page.wait_for_selector("#view-fleet", state="visible")
            host = socket.gethostname()
            rows = _refresh_until(
                page,
                lambda rs: len(rs) == 2 and any(r["host"] == host for r in rs),
                "the running recorder's heartbeat",
            )
            assert rows[0]["agent"].startswith("agent2") and rows[0]["status"] == "never seen", rows
            assert "fleet-problem" in rows[0]["cls"] and "never connected" in rows[0]["problems"]
            running = rows[1]
            assert running["agent"].startswith("Alex Agent (agent1)") and running["version"] == "0.1.0", rows
            assert running["status"] in ("idle", "uploading") and running["clock"].startswith("±"), rows
            assert "problems" in page.inner_text("#fleet-summary")
            page.check("#fleet-problems")
            wait_until(lambda: len(_fleet_rows(page)) == 1, 10, "only the problem row")
            page.uncheck("#fleet-problems")
            wait_until(lambda: len(_fleet_rows(page)) == 2, 10, "both rows again")
            page.screenshot(path=str(shots / "fleet.png"), full_page=True)
            with server.client("admin") as admin:  # it beats at the pushed policy's 2 s now
                wait_until(
                    lambda: (
                        [r["interval"] for r in admin.get("/api/admin/fleet").json()["recorders"]][1] == 2.0
                    ),
                    30,
                    "a heartbeat at the pushed interval",
                )
            log_text = recorder_log.read_text(errors="replace")
            assert "Traceback" not in log_text, log_text[-3000:]
        # The recorder stopped: offline after three of its 2-s heartbeats (pushed with the policy).
        rows = _refresh_until(page, lambda rs: any(r["status"] == "offline" for r in rs), "offline")
        assert [r["status"] for r in rows] == ["offline", "never seen"], rows
        page.screenshot(path=str(tmp_path / "fleet-offline.png"), full_page=True)
