"""Opening a recording from the list (issue 14, open <= 100 ms): the media element starts fetching the
file the list's row names while the interaction's summary is still on its way, instead of after it.

The summary is held back (Playwright routing) until the test releases it, so "the media was asked
for before the summary answered" is an event waited for, not a race: without the early start the
media request never comes while the summary is held and the wait fails. Then the recording plays as
usual; a list out of date (a mux finished after it was shown) ends with the muxed file playing all
the same; and the early start leaves no refused read in the audit log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.e2e.browser import chromium, log_in, new_page, wait_recordings_loaded
from tests.e2e.harness import run_server
from tests.e2e.test_player_browser import SECONDS, _seed

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

WAIT_MS = 30_000  # generous: the machine may be loaded


def _open_holding_summary(page: Page, iid: str, kind: str) -> None:
    """Click the list's row for ``iid`` with its summary held; the media request for ``kind`` must
    come before the summary is let through."""
    held: list[Route] = []
    summary_url = f"**/api/interactions/{iid}"
    page.route(summary_url, lambda route: held.append(route))
    try:
        with page.expect_request(lambda r: f"/api/interactions/{iid}/media/{kind}" in r.url, timeout=WAIT_MS):
            page.click(f"#recordings tr[data-id='{iid}'] a")
        deadline = time.monotonic() + WAIT_MS / 1000
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(20)  # lets Playwright dispatch the routed request to the handler
        assert len(held) == 1, "the summary request was not seen"
        held[0].continue_()
    finally:
        page.unroute(summary_url)
    page.wait_for_function(
        "(id) => { const p = window.tandemPlayer; return p && p.id === id && p.el.readyState >= 2"
        " && document.querySelectorAll('#player').length === 1; }",
        arg=iid,
        timeout=WAIT_MS,
    )
    assert page.is_hidden("#player-error"), page.inner_text("#player-error")


def test_open_from_list_fetches_media_beside_the_summary(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser:
        t0 = _seed(server.data_dir, tmp_path)
        sessions = make_session_factory(make_engine(f"sqlite:///{(server.data_dir / 'tandem.db').resolve()}"))
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.goto(f"{server.url}/#/recordings")
            wait_recordings_loaded(page)

            _open_holding_summary(page, "with-screen", "muxed")
            assert page.evaluate("() => document.getElementById('player').tagName") == "VIDEO"
            # The player is whole: the waveform and per-channel volume come after the metadata.
            page.wait_for_function("() => window.tandemPlayer.wavesurfer && window.tandemPlayer.audio")
            duration = page.evaluate("() => document.getElementById('player').duration")
            assert abs(duration - SECONDS) < 0.5, duration

            page.evaluate("() => { location.hash = '#/recordings'; }")
            wait_recordings_loaded(page)
            _open_holding_summary(page, "voice-only", "voice")
            assert page.evaluate("() => document.getElementById('player').tagName") == "AUDIO"

            # The list shown says voice only; the screen's mux is stored after it was shown.
            page.evaluate("() => { location.hash = '#/recordings'; }")
            wait_recordings_loaded(page)
            with session_scope(sessions) as s:
                muxed = s.execute(
                    select(models.MediaFile).where(
                        models.MediaFile.interaction_id == "with-screen", models.MediaFile.kind == "muxed"
                    )
                ).scalar_one()
                s.add(
                    models.MediaFile(
                        interaction_id="voice-only",
                        kind="muxed",
                        storage_key=muxed.storage_key,
                        content_type=muxed.content_type,
                        size=muxed.size,
                        sha256=muxed.sha256,
                        started_at=t0,
                        duration=SECONDS,
                        created_at=t0,
                    )
                )
            _open_holding_summary(page, "voice-only", "voice")  # started early, from the stale row
            page.wait_for_function(
                "() => { const v = document.getElementById('player'); return v.tagName === 'VIDEO'"
                " && v.src.endsWith('/media/muxed') && v.readyState >= 2; }",
                timeout=WAIT_MS,
            )
            assert page.evaluate("() => document.querySelectorAll('#player').length") == 1

        with session_scope(sessions) as s:
            refused = s.execute(
                select(models.AuditRecord.action, models.AuditRecord.detail).where(
                    models.AuditRecord.outcome != "allowed",
                    models.AuditRecord.action.in_(("interaction.read", "recording.read")),
                )
            ).all()
        assert refused == []
