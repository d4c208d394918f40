"""The search form's Direction select in a real browser against a running server: each choice
shows exactly the seeded calls of that direction (with the direction in the row), the URL
carries it, and opening that URL fresh fills the select and gives the same rows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server
from tests.e2e.test_search_fields_browser import _query, _rows, _submit

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]
DIRECTIONS = ("inbound", "outbound", "")  # "" = the SIP side did not say
SHOWN = {"inbound": "Inbound", "outbound": "Outbound", "": "not known"}


def _seed(data_dir: Path) -> dict[str, str]:
    """12 calls of the last day, directions in turn: id -> stored direction."""
    now = time.time()
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    seeded: dict[str, str] = {}
    with session_scope(sessions) as s:
        agent = s.execute(select(models.User).where(models.User.username == "agent1")).scalar_one()
        for n in range(12):
            started = now - 3600 - n * 600
            s.add(
                models.Interaction(
                    id=f"dir-{n:02d}",
                    call_id=f"call-{n}",
                    dn="2001",
                    agent_id=agent.id,
                    caller=f"+1 555 01{n:02d}",
                    callee="2001",
                    state="done",
                    started_at=started,
                    answered_at=started,
                    ended_at=started + 40,
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="complete",
                    screen_state="not_selected",
                    direction=DIRECTIONS[n % 3],
                )
            )
            seeded[f"dir-{n:02d}"] = DIRECTIONS[n % 3]
    return seeded


def _shown_directions(page: Page) -> set[str]:
    texts: list[str] = page.eval_on_selector_all(
        "#search-results tbody tr td.direction", "cells => cells.map(c => c.textContent)"
    )
    return set(texts)


def test_the_direction_select_filters_the_results_and_the_url_carries_it(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        seeded = _seed(server.data_dir)
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            page.click("#nav-search")
            page.wait_for_selector("#view-search", state="visible")
            page.wait_for_function(
                "() => document.getElementById('search-status').textContent.endsWith('interactions')"
            )
            assert _rows(page) == set(seeded)
            for value, stored in (("inbound", "inbound"), ("outbound", "outbound"), ("unknown", "")):
                page.select_option("#search-direction", value)
                _submit(page)
                assert _rows(page) == {i for i, d in seeded.items() if d == stored}, value
                assert _shown_directions(page) == {SHOWN[stored]}
                assert _query(page).get("direction") == [value]
            # The shared URL alone gives the same search: the select is filled from it.
            url = page.url
        with new_page(browser) as fresh:
            log_in(fresh, server.url, "admin", server.creds["admin"]["password"])
            fresh.goto(url)
            fresh.wait_for_function(
                "() => document.getElementById('search-status').textContent.endsWith('interactions')"
                " && document.getElementById('search-direction').value === 'unknown'"
            )
            assert _rows(fresh) == {i for i, d in seeded.items() if d == ""}
