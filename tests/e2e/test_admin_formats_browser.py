"""Voice formats in the browser: the admin ticks formats on the admin page and the choice persists
(reload, API); a server error is shown on the page; a real SIP call (simulated caller → running
server) is then finalised into the chosen formats, and the player offers one download per file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page

from server.sim.call import simulate_call
from tests.e2e.browser import ServerAndBrowser, log_in, new_page, open_admin, server_and_browser
from tests.e2e.harness import ServerProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

AGENT, DN = "agent2", "1002"
CHOSEN = ["mp3_8k_mono", "wav_ulaw", "opus"]
CONTENT_TYPES = {
    "voice": "audio/wav",
    "mp3_8k_mono": "audio/mpeg",
    "wav_ulaw": "audio/wav",
    "opus": "audio/ogg",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAndBrowser]:
    with server_and_browser(
        tmp_path_factory.mktemp("voice-formats") / "server", extra_users=[(AGENT, "agent", "Blue")]
    ) as both:
        yield both


def _open_admin(page: Page) -> None:
    # The boxes are made from the server's options once loaded; ticking earlier would be lost.
    filled = "document.querySelectorAll('input[name=\"voice-format\"]').length > 0"
    open_admin(page, "#view-admin", "voice-formats-status", filled)


def _ticked(page: Page) -> list[str]:
    values: list[str] = page.eval_on_selector_all(
        'input[name="voice-format"]:checked', "boxes => boxes.map((b) => b.value)"
    )
    return values


def _api_formats(server: ServerProcess) -> list[str]:
    with server.client("admin") as admin:
        r = admin.get("/api/admin/voice-formats")
        assert r.status_code == 200, r.text
        return list(r.json()["formats"])


def test_admin_changes_the_selection_and_it_persists(setup: ServerAndBrowser) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        _open_admin(page)
        assert _ticked(page) == ["mp3_16k_stereo"]  # the default
        assert page.is_checked("#voice-formats-options input[disabled]")  # the WAV master, always

        page.uncheck("#voice-format-mp3_16k_stereo")
        for fmt in CHOSEN:
            page.check(f"#voice-format-{fmt}")
        page.click("#voice-formats-save")
        page.wait_for_function(
            "() => document.getElementById('voice-formats-status').textContent.startsWith('Saved')"
        )
        assert _ticked(page) == CHOSEN
        assert _api_formats(server) == CHOSEN

        page.reload()
        page.wait_for_selector("#topbar", state="visible")
        _open_admin(page)
        assert _ticked(page) == CHOSEN
        assert "policy.voice_formats" in _audit_actions(server, "voice_formats")


def test_admin_page_shows_the_servers_refusal(setup: ServerAndBrowser) -> None:
    server = setup.server
    with new_page(setup.browser) as page:
        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        _open_admin(page)
        before = _api_formats(server)
        # A page older than the server: it offers a format this server does not know.
        page.evaluate(
            """() => {
              const label = document.createElement('label');
              label.className = 'check voice-format-option';
              label.innerHTML = '<input type="checkbox" name="voice-format" value="flac" checked> FLAC';
              document.getElementById('voice-formats-options').append(label);
            }"""
        )
        page.click("#voice-formats-save")
        page.wait_for_selector("#voice-formats-status.error")
        message = page.inner_text("#voice-formats-status")
        assert message.startswith("Not saved:") and "'flac'" in message, message
        assert _api_formats(server) == before


def _audit_actions(server: ServerProcess, target_id: str) -> list[str]:
    with server.client("admin") as admin:
        return [r["action"] for r in admin.get("/api/audit", params={"target_id": target_id}).json()]


def _place_call(server: ServerProcess, seconds: float) -> str:
    # Playwright's sync API keeps an event loop on this thread, so the caller's loop runs on another.
    host = server.url.split("//", 1)[1].split(":", 1)[0]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, simulate_call((host, server.sip_port), DN, seconds))
        return future.result(timeout=40).call_id


def _finalised(server: ServerProcess, call_id: str) -> dict[str, Any] | None:
    with server.client("admin") as admin:
        found = [i for i in admin.get("/api/interactions").json() if i["call_id"] == call_id]
    return found[0] if found and "voice" in found[0]["media"] else None


def test_player_offers_each_stored_voice_format(setup: ServerAndBrowser) -> None:
    server = setup.server
    with server.client("admin") as admin:
        assert admin.put("/api/admin/voice-formats", json={"formats": CHOSEN}).status_code == 200
        r = admin.put("/api/admin/sampling", json={"percentage": 0, "team_overrides": {}})
        assert r.status_code == 200, r.text
    with server.client(AGENT, client="desktop", dn=DN):  # binds agent2 to the DN the call goes to
        call_id = _place_call(server, 2.0)
        inter = wait_until(lambda: _finalised(server, call_id), 30, "the call's voice in storage")
    assert inter["agent"] == AGENT
    assert inter["voice_formats"] == CHOSEN, inter

    with new_page(setup.browser) as page:
        log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
        page.goto(f"{server.url}/#/recordings/{inter['id']}")
        page.wait_for_selector("#player-voice-files:not([hidden]) a.voice-file")
        kinds = page.eval_on_selector_all(
            "#player-voice-files a.voice-file", "as => as.map((a) => a.dataset.kind)"
        )
        assert kinds == ["voice", *(f"voice:{fmt}" for fmt in CHOSEN)]
        for link in page.locator("#player-voice-files a.voice-file").all():
            href = link.get_attribute("href") or ""
            assert (link.get_attribute("download") or "").startswith(inter["id"])
            response = page.request.get(f"{server.url}{href}")
            fmt = href.rsplit("/", 1)[1].removeprefix("voice:")
            assert response.status == 200, (href, response.status)
            assert response.headers["content-type"] == CONTENT_TYPES[fmt], (href, response.headers)
            assert len(response.body()) > 1000, href

    # Another team's supervisor: the same link is refused, and the refusal is audited.
    with new_page(setup.browser) as page:
        log_in(page, server.url, "supervisor2", server.creds["supervisor2"]["password"])
        response = page.request.get(f"{server.url}/api/interactions/{inter['id']}/media/voice:opus")
        assert response.status == 403
    with server.client("admin") as admin:
        records = admin.get("/api/audit", params={"target_id": inter["id"]}).json()
    assert any(
        r["username"] == "supervisor2" and r["action"] == "recording.read" and r["outcome"] == "denied"
        for r in records
    ), records
    allowed = [
        r["detail"] for r in records if r["username"] == "supervisor" and r["action"] == "recording.read"
    ]
    assert {d.split(" ", 1)[0] for d in allowed} == {"voice", *(f"voice:{fmt}" for fmt in CHOSEN)}, allowed
