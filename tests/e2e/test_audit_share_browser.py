"""Share links and the audit viewer in a real browser (Debian's chromium) against a running server.

The supervisor creates a share link on the player page; a fresh browser context (no cookies, no
login) opens it and gets the recording; the supervisor revokes it in the page and the link is
refused; a second link is expired (its stored expires_at moved into the past: the minimum validity
is 2 min, too long to wait for in CI) and refused. A compliance officer's audit viewer then finds
the creates, the uses, the refusals and the revoke, pages, and exports them as CSV. Screenshot:
docs/screenshots/audit.png."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browser import log_in, new_page
from tests.e2e.player_media import voice_samples, write_muxed, write_wav
from tests.e2e.seeded_call import finished_call, seeding, server_and_browser, stored_media
from tests.e2e.shots import screenshot_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

SECONDS = 6.0
CALL = "shared-call"
SCREENSHOT = screenshot_path("audit.png")


def _seed(data_dir: Path, work: Path) -> None:
    """One finished call of agent1 (team Blue, the supervisor's) with a muxed file and its voice."""
    samples = voice_samples(SECONDS - 1.0, [(0.0, 2.0, 0), (3.0, 5.0, 1)])
    wav, mp4 = work / "voice.wav", work / "muxed.mp4"
    write_wav(wav, samples)
    write_muxed(mp4, samples, SECONDS, 1.0, None)
    t0 = time.time() - 600
    with seeding(data_dir) as (s, agent_id):
        s.add(
            finished_call(
                CALL,
                "call-shared",
                agent_id,
                t0,
                answered_at=t0 + 1.0,
                ended_at=t0 + SECONDS,
                acw_ended_at=t0 + SECONDS + 1,
                screen=True,
            )
        )
        s.flush()
        for kind, source, ctype, started in (
            ("muxed", mp4, "video/mp4", t0),
            ("voice", wav, "audio/wav", t0 + 1),
        ):
            s.add(
                stored_media(
                    data_dir,
                    "shared",
                    CALL,
                    kind,
                    source,
                    ctype,
                    started_at=started,
                    duration=SECONDS,
                    created_at=t0,
                )
            )


def _create_link(page: Page, minutes: int) -> str:
    page.fill("#share-minutes", str(minutes))
    page.select_option("#share-kind", "muxed")
    before = page.eval_on_selector_all("#share-links tbody tr", "rows => rows.length")
    page.click("#share-create")
    page.wait_for_selector("#share-url:not([hidden])")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#share-links tbody tr').length === n + 1", arg=before
    )
    url = page.input_value("#share-url")
    assert "/share?token=" in url, url
    return url


def _open_anonymously(browser: Browser, url: str) -> int:
    """Open ``url`` in a fresh context (no cookies: nobody signed in); the HTTP status."""
    with new_page(browser) as fresh:
        assert fresh.context.cookies() == []
        response = fresh.goto(url)
        assert response is not None
        if response.status == 200:
            # Chromium shows the MP4 in its own player: the file is a playable video.
            fresh.wait_for_function(
                "() => { const v = document.querySelector('video'); return v && v.readyState >= 1; }"
            )
            duration = fresh.evaluate("() => document.querySelector('video').duration")
            assert abs(duration - SECONDS) < 0.5, duration
        return response.status


def _expire(data_dir: Path, url: str) -> None:
    """Move the link's expiry into the past in the database (the server reads it at each use)."""
    import hashlib

    token = url.split("token=", 1)[1]
    digest = hashlib.sha256(token.encode()).hexdigest()
    with sqlite3.connect(data_dir / "tandem.db") as db:
        changed = db.execute(
            "UPDATE share_links SET expires_at = created_at - 1 WHERE token_hash = ?", (digest,)
        ).rowcount
    assert changed == 1


def _audit_rows(page: Page) -> list[dict[str, str]]:
    page.wait_for_function(
        "() => { const s = document.getElementById('audit-status').textContent;"
        " return s && s !== 'Loading…'; }"
    )
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#audit-records tbody tr",
        "rows => rows.map((r) => { const c = r.querySelectorAll('td');"
        " return {user: c[1].textContent, action: c[2].textContent, outcome: c[3].textContent,"
        " target: c[4].textContent, detail: c[5].textContent}; })",
    )
    return rows


def _seqs(page: Page) -> list[int]:
    _audit_rows(page)
    found: list[str] = page.eval_on_selector_all(
        "#audit-records tbody tr", "rows => rows.map((r) => r.dataset.seq)"
    )
    return [int(x) for x in found]


def _show(page: Page, preset: str) -> list[dict[str, str]]:
    page.evaluate("() => { document.getElementById('audit-status').textContent = ''; }")
    page.select_option("#audit-preset", preset)
    return _audit_rows(page)


def test_share_link_works_expires_is_revoked_and_the_audit_viewer_finds_it(tmp_path: Path) -> None:
    with server_and_browser(tmp_path, [("comp", "compliance", "Blue")]) as (server, browser):
        _seed(server.data_dir, tmp_path)
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.goto(f"{server.url}/#/recordings/{CALL}")
            page.wait_for_selector("#share-panel:not([hidden])")
            # A validity outside 2–60 min is refused in the page with a clear message.
            page.fill("#share-minutes", "90")
            page.click("#share-create")
            assert "2 to 60" in page.inner_text("#share-status")

            first = _create_link(page, 2)
            assert _open_anonymously(browser, first) == 200
            # Revoked in the page: refused at once.
            page.click("#share-links tbody tr:first-child button")
            page.wait_for_function(
                "() => document.querySelector('#share-links tbody tr:first-child td:nth-child(5)')"
                ".textContent === 'revoked'"
            )
            assert _open_anonymously(browser, first) == 410

            page.screenshot(path=str(tmp_path / "share-panel.png"), full_page=True)  # looked at by hand
            second = _create_link(page, 60)
            assert _open_anonymously(browser, second) == 200
            _expire(server.data_dir, second)
            assert _open_anonymously(browser, second) == 410

        # The agent's player has no share panel (agents may not share).
        with new_page(browser) as page:
            log_in(page, server.url, "agent1", server.creds["agent1"]["password"])
            assert page.is_hidden("#nav-audit")

        with new_page(browser) as page:
            log_in(page, server.url, "comp", server.creds["comp"]["password"])
            assert page.is_visible("#nav-audit")
            page.click("#nav-audit")
            page.wait_for_selector("#view-audit:not([hidden])")
            assert len(_audit_rows(page)) > 10
            # Paging, 10 a page (from the URL): older, older, newer — newest first, no overlaps.
            page.goto(f"{server.url}/#/audit?limit=10")
            seqs = _seqs(page)
            assert len(seqs) == 10 and seqs == sorted(seqs, reverse=True)
            page.evaluate("() => { document.getElementById('audit-status').textContent = ''; }")
            page.click("#audit-older")
            older = _seqs(page)
            assert len(older) == 10 and max(older) < min(seqs)
            assert "Records 11–20" in page.inner_text("#audit-status")
            page.evaluate("() => { document.getElementById('audit-status').textContent = ''; }")
            page.click("#audit-newer")
            # Back on the newest page (which now also holds the viewer's own audited reads).
            newest = _seqs(page)
            assert newest[0] >= seqs[0] and min(newest) > max(older) and page.is_hidden("#audit-newer")

            shares = _show(page, "shares")
            actions = [(r["action"], r["outcome"]) for r in shares]
            assert actions.count(("share.create", "allowed")) == 2
            assert actions.count(("share.revoke", "allowed")) == 1
            assert actions.count(("share.use", "denied")) == 2
            assert ("share.use", "allowed") in actions
            assert all(r["target"] == CALL for r in shares if r["action"] != "share.list")
            refusals = _show(page, "refusals")
            assert {r["action"] for r in refusals} >= {"share.use"}
            assert any("expired" in r["detail"] for r in refusals)
            assert any("revoked" in r["detail"] for r in refusals)
            plays = _show(page, "plays")
            assert plays and all(r["action"] == "recording.read" for r in plays)
            assert any(r["user"] == "supervisor" and r["target"] == CALL for r in plays)
            # The filter lives in the URL: the same view opens from it.
            assert "action=recording.read" in page.url

            # By user and interaction; then the CSV of that filter (its download is audited).
            page.select_option("#audit-preset", "")
            page.fill("#audit-user", "supervisor")
            page.fill("#audit-interaction", CALL)
            page.evaluate("() => { document.getElementById('audit-status').textContent = ''; }")
            page.click("#audit-apply")
            mine = _audit_rows(page)
            assert mine and all(r["user"] == "supervisor" and r["target"] == CALL for r in mine)
            href = page.get_attribute("#audit-export", "href")
            assert href is not None and "user=supervisor" in href
            answer = page.request.get(f"{server.url}{href}")
            assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(answer.text())))
            assert {r["action"] for r in rows} >= {"recording.read", "share.create", "share.revoke"}
            assert all(r["username"] == "supervisor" for r in rows)

            page.goto(f"{server.url}/#/audit?action=share")
            _audit_rows(page)
            assert page.input_value("#audit-preset") == "shares"
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            exported = page.request.get(f"{server.url}/api/audit/records?action=audit.export").json()
            assert [r["username"] for r in exported["records"]] == ["comp"]
