"""Browser acceptance test of the web UI on the session's recorded call: a supervisor of the agent's
team finds and plays it (H.264 + AAC decoded by chromium, seek, markers), a supervisor of another
team is refused everywhere and the refusal is audited, and a wrong password stays on the login page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.browser import (
    chromium,
    log_in,
    new_page,
    seek,
    submit_login,
    video_state,
    wait_recordings_loaded,
)
from tests.e2e.conftest import RecordedCall
from tests.e2e.harness import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MARKER_KINDS = ["call-start", "pause-start", "pause-end", "call-end", "acw-end"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_supervisor_finds_plays_and_seeks_the_recording(
    recorded_call: RecordedCall, browser: Browser, tmp_path: Path
) -> None:
    server, inter = recorded_call.server, recorded_call.interaction
    with new_page(browser) as page:
        log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
        wait_recordings_loaded(page)
        row = page.locator(f'#recordings tr[data-id="{inter["id"]}"]')
        assert row.count() == 1, page.inner_text("#recordings")
        assert "agent1" in row.inner_text() and "1001" in row.inner_text()
        row.locator("a").click()
        page.wait_for_url(f"**#/recordings/{inter['id']}")
        page.wait_for_selector("video#player")
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        assert page.is_hidden("#player-error"), page.inner_text("#player-error")

        # Markers: one per call event, placed along the timeline once the duration is known.
        page.wait_for_selector("#markers.placed")
        kinds = page.eval_on_selector_all("#markers .marker", "els => els.map((e) => e.dataset.kind)")
        assert kinds == MARKER_KINDS
        lefts = page.eval_on_selector_all("#markers .marker", "els => els.map((e) => e.style.left)")
        assert all(left.endswith("%") for left in lefts), lefts
        assert page.locator("#markers .marker").first.is_visible()

        duration = float(video_state(page)["duration"])
        talk = inter["acw_ended_at"] - inter["answered_at"]
        assert abs(duration - talk) < 3.0, (duration, talk)

        page.eval_on_selector("#player", "v => v.play()")
        state = wait_until(
            lambda: (s := video_state(page))["currentTime"] > 1.0 and s,
            8,
            "playback to pass 1 s",
        )
        assert state["error"] is None, state
        assert not state["paused"]
        assert state["videoWidth"] > 0 and state["videoBytes"] > 0 and state["frames"] > 0, state
        assert state["audioBytes"] > 0, f"the AAC track was not decoded: {state}"

        target = round(0.6 * duration, 2)
        landed = seek(page, target)
        assert abs(landed - target) <= 0.5, (landed, target)
        wait_until(
            lambda: video_state(page)["currentTime"] >= landed + 1.0,
            6,
            "playback to continue after the seek",
        )
        after = video_state(page)
        assert not after["paused"] and after["error"] is None, after

        # A marker is a seek button: "Call end" takes the player to its time.
        call_end = page.locator('#markers .marker[data-kind="call-end"]')
        at = float(call_end.get_attribute("data-at") or "nan")
        page.eval_on_selector(
            "#player",
            "v => { window.__seeked = false; v.addEventListener('seeked', () => { window.__seeked = true; },"
            " {once: true}); }",
        )
        call_end.click()
        page.wait_for_function("() => window.__seeked === true")
        assert abs(video_state(page)["currentTime"] - at) <= 0.5

        shot = tmp_path / "player.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"player screenshot: {shot}")


def test_other_team_supervisor_is_refused_and_audited(recorded_call: RecordedCall, browser: Browser) -> None:
    server, inter = recorded_call.server, recorded_call.interaction
    media_path = f"/api/interactions/{inter['id']}/media/muxed"
    with new_page(browser) as page:
        log_in(page, server.url, "supervisor2", server.creds["supervisor2"]["password"])
        wait_recordings_loaded(page)
        assert page.locator(f'#recordings tr[data-id="{inter["id"]}"]').count() == 0

        page.goto(f"{server.url}/#/recordings/{inter['id']}")
        page.wait_for_selector("#player-error", state="visible")
        assert "not allowed" in page.inner_text("#player-error")
        assert page.locator("#player").count() == 0
        assert page.locator("#markers .marker").count() == 0

        # The same browser session asking for the file directly.
        response = page.request.get(f"{server.url}{media_path}")
        assert response.status == 403, response.status
        assert response.json()["error"] == "forbidden"
    with server.client("supervisor2") as sup2:
        assert sup2.get(media_path).status_code == 403
    with server.client("admin") as admin:
        records = admin.get("/api/audit", params={"target_id": inter["id"]}).json()
    denied = [r for r in records if r["username"] == "supervisor2" and r["outcome"] == "denied"]
    assert {r["action"] for r in denied} >= {"interaction.read", "recording.read"}, records
    assert not any(r["username"] == "supervisor2" and r["outcome"] == "allowed" for r in records)


def test_wrong_password_stays_on_login_page(recorded_call: RecordedCall, browser: Browser) -> None:
    server = recorded_call.server
    with new_page(browser) as page:
        submit_login(page, server.url, "supervisor", "not-the-password")
        page.wait_for_selector("#login-error", state="visible")
        assert "wrong username or password" in page.inner_text("#login-error").lower()
        page.wait_for_load_state("networkidle")  # nothing in flight: a late sign-in would have landed
        assert page.is_visible("#view-login")
        assert page.is_hidden("#topbar") and page.is_hidden("#view-recordings")
        assert not [c for c in page.context.cookies() if c["name"] == "tandem_session"]
