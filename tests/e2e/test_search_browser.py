"""The search page in a real browser against a running server: search by several fields, sort by
a column (both ways), page with the cursor (no row twice, none missing), save a search, and open
the shared URL in a fresh session (the form and the results come back from the URL alone; another
team's supervisor opening it sees none of them). Screenshot: docs/screenshots/search.png."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server
from tests.unit.test_thumbnail import _mp4

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]
EXTRA = [("agent2", "agent", "Blue"), ("agent3", "agent", "Red")]


def _seed(data_dir: Path) -> list[dict[str, object]]:
    """90 calls over the last six days for agent1, agent2 (Blue) and agent3 (Red); every other one
    with a (small, real) screen recording in storage."""
    rng = random.Random(5)
    screens = []
    for i, colour in enumerate([(40, 90, 170), (200, 120, 30), (30, 150, 80)]):
        screens.append(data_dir / f"screen-{i}.mp4")
        _mp4(screens[-1], colour, frames=3)
    now = time.time()
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    seeded: list[dict[str, object]] = []
    with session_scope(sessions) as s:
        ids = {u.username: u.id for u in s.execute(select(models.User)).scalars()}
        for n in range(90):
            agent = ("agent1", "agent2", "agent3")[n % 3]
            started = now - 3600 - n * 5000.0
            talk = float(rng.choice([20, 45, 90, 180, 400]) + n % 7)
            number = rng.choice(["+44 20 7946 ", "+1 555 01"]) + f"{n:04d}"
            screen = n % 2 == 0
            s.add(
                models.Interaction(
                    id=f"e2e-{n:03d}",
                    call_id=f"call-{n}",
                    dn="2001",
                    agent_id=ids[agent],
                    caller=f"Caller {n} <{number}>",
                    callee="2001",
                    state="done",
                    started_at=started,
                    answered_at=started,
                    ended_at=started + talk,
                    end_reason="bye",
                    disposition_code="sale" if n % 5 == 0 else None,
                    notes=f"refund asked, ticket T{n}" if n % 5 == 1 else "",
                    screen_decision=screen,
                    screen_percentage=50.0,
                    voice_state="complete",
                    screen_state="complete" if screen else "not_selected",
                    recording_meta=json.dumps({"params": {"queue": "Gold" if n % 4 == 0 else "Silver"}}),
                )
            )
            s.flush()
            if screen:
                stored = data_dir / "storage" / "e2e" / f"{n}.mp4"
                stored.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(screens[(n // 6) % 3], stored)
                s.add(
                    models.MediaFile(
                        interaction_id=f"e2e-{n:03d}",
                        kind="muxed",
                        storage_key=f"e2e/{n}.mp4",
                        content_type="video/mp4",
                        size=1,
                        sha256="0" * 64,
                        started_at=started,
                        created_at=started,
                    )
                )
            seeded.append(
                {"id": f"e2e-{n:03d}", "agent": agent, "number": number, "talk": talk, "screen": screen}
                | {"gold": n % 4 == 0, "sale": n % 5 == 0, "refund": n % 5 == 1}
            )
    return seeded


def _rows(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#search-results tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


def _wait_results(page: Page) -> str:
    page.wait_for_function(
        "() => { const s = document.getElementById('search-status').textContent;"
        " const e = document.getElementById('search-error');"
        " return (s !== '' && !s.startsWith('Searching')) || !e.hidden; }"
    )
    assert page.is_hidden("#search-error"), page.inner_text("#search-error")
    return page.inner_text("#search-status")


def _navigate_and_wait(page: Page, action: object) -> str:
    """Run ``action`` (a click that changes the hash) and wait for the new results."""
    page.evaluate("() => { document.getElementById('search-status').textContent = 'Searching…'; }")
    action()  # type: ignore[operator]
    return _wait_results(page)


def _durations(page: Page) -> list[str]:
    cells: list[str] = page.eval_on_selector_all(
        "#search-results tbody tr td:nth-child(5)", "cells => cells.map(c => c.textContent)"
    )
    return cells


def _seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return parts[0] * 60 + parts[1] if len(parts) == 2 else parts[0] * 3600 + parts[1] * 60 + parts[2]


def test_search_sort_page_save_and_reopen_the_shared_url(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", extra_users=EXTRA, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        seeded = _seed(server.data_dir)
        blue = [s for s in seeded if s["agent"] in ("agent1", "agent2")]
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.click("#nav-search")
            page.wait_for_selector("#view-search", state="visible")
            status = _wait_results(page)
            # The first visit: the last seven days of the supervisor's team (Blue), newest first.
            assert status == f"{len(blue)} interactions", status
            assert "from=" in page.url

            # Paging: 50 per page; the second page holds the rest; no row twice, none missing.
            first = _rows(page)
            assert len(first) == 50 and page.is_visible("#search-next")
            _navigate_and_wait(page, lambda: page.click("#search-next"))
            second = _rows(page)
            assert not set(first) & set(second)
            assert set(first) | set(second) == {s["id"] for s in blue}
            assert page.is_hidden("#search-next") and page.is_visible("#search-first")
            _navigate_and_wait(page, lambda: page.click("#search-first"))
            assert _rows(page) == first
            # A 420-px phone: the filters fold into one column and the page never scrolls sideways
            # (the results table scrolls inside its own box).
            page.set_viewport_size({"width": 420, "height": 900})
            wide = page.evaluate(
                """() => [...document.querySelectorAll('body *')].filter(e => e.offsetParent !== null
                    && e.getBoundingClientRect().right > 421).slice(0, 12)
                    .map(e => `${e.tagName}#${e.id}.${e.className}`)"""
            )
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 420, wide
            phone = Path(os.environ.get("TANDEM_SCREENSHOT_DIR", tmp_path)) / "search-phone.png"
            page.evaluate("() => window.scrollTo(0, 0)")
            page.screenshot(path=str(phone), full_page=False)
            page.set_viewport_size({"width": 1280, "height": 900})

            # Several fields at once: agent, caller prefix (typed with spaces), screen.
            page.fill("#search-agent", "agent2")
            page.fill("#search-caller", "+44 20")
            page.select_option("#search-has_screen", "true")
            _navigate_and_wait(page, lambda: page.click("#search-submit"))
            expected = {
                s["id"]
                for s in seeded
                if s["agent"] == "agent2" and str(s["number"]).startswith("+44") and s["screen"]
            }
            assert expected and set(_rows(page)) == expected
            # Each result with a screen shows a thumbnail of it (a JPEG the server made from the file).
            page.wait_for_function(
                "n => [...document.querySelectorAll('#search-results img.thumb')]"
                ".filter(i => i.complete && i.naturalWidth === 240).length === n",
                arg=len(expected),
            )
            query = parse_qs(urlsplit(page.url).fragment.split("?", 1)[1])
            assert (
                query["agent"] == ["agent2"]
                and query["caller"] == ["+44 20"]
                and query["has_screen"] == ["true"]
            )

            # Sort by duration: descending, then ascending; the header says which.
            _navigate_and_wait(page, lambda: page.click("th[data-sort='duration'] button"))
            assert page.get_attribute("th[data-sort='duration']", "aria-sort") == "descending"
            down = [_seconds(d) for d in _durations(page)]
            assert down == sorted(down, reverse=True) and len(down) == len(expected)
            _navigate_and_wait(page, lambda: page.click("th[data-sort='duration'] button"))
            assert page.get_attribute("th[data-sort='duration']", "aria-sort") == "ascending"
            up = [_seconds(d) for d in _durations(page)]
            assert up == list(reversed(down))  # (duration, id) ascending: the exact reverse
            order_shown = _rows(page)

            # Save it; it is listed (and selected) under its name.
            page.fill("#search-save-name", "Agent 2, UK, with screen")
            page.click("#search-save-submit")
            page.wait_for_function(
                "() => document.getElementById('search-save-status').textContent.startsWith('Saved')"
            )
            assert page.inner_text("#search-saved option:checked") == "Agent 2, UK, with screen"
            shared = page.url
            shot = Path(os.environ.get("TANDEM_SCREENSHOT_DIR", tmp_path)) / "search.png"
            page.screenshot(path=str(shot), full_page=True)

        # The shared URL in a fresh session: the same form and the same rows, in the same order.
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.goto(shared)
            page.wait_for_selector("#view-search", state="visible")
            _wait_results(page)
            assert page.input_value("#search-agent") == "agent2"
            assert page.input_value("#search-caller") == "+44 20"
            assert page.input_value("#search-has_screen") == "true"
            assert _rows(page) == order_shown
            # The saved search is there too, and opens the same search.
            page.select_option("#search-saved", label="Agent 2, UK, with screen")
            _wait_results(page)
            assert set(_rows(page)) == expected

        # Another team's supervisor opening the link: the filters, but none of Blue's calls.
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor2", server.creds["supervisor2"]["password"])
            page.goto(shared)
            page.wait_for_selector("#view-search", state="visible")
            assert _wait_results(page) == "No interaction matches this search."
            assert page.inner_text("#search-saved") == "Saved searches…"  # saved searches are per user

        # The ACW wrap-up: the disposition code and words in the notes (Blue's calls only).
        with new_page(browser) as page:
            log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
            page.click("#nav-search")
            _wait_results(page)
            page.fill("#search-disposition", "sale")
            _navigate_and_wait(page, lambda: page.click("#search-submit"))
            sales = {str(s["id"]) for s in blue if s["sale"]}
            assert sales and set(_rows(page)) == sales
            page.fill("#search-disposition", "")
            page.fill("#search-notes", "REFUND asked")
            _navigate_and_wait(page, lambda: page.click("#search-submit"))
            refunds = {str(s["id"]) for s in blue if s["refund"]}
            assert refunds and set(_rows(page)) == refunds


def test_admin_names_a_metadata_key_and_the_search_offers_it(tmp_path: Path) -> None:
    with run_server(tmp_path / "server", extra_users=EXTRA) as server, chromium() as browser:
        seeded = _seed(server.data_dir)
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            page.click("#nav-admin")
            page.wait_for_selector("#view-admin", state="visible")
            page.wait_for_function("() => document.getElementById('search-keys-status').textContent === ''")
            # A refusal says why, on the page.
            page.fill("#search-keys-input", ", ".join(f"k{i}" for i in range(21)))
            page.click("#search-keys-save")
            page.wait_for_function(
                "() => document.getElementById('search-keys-status').textContent.startsWith('Not saved')"
            )
            assert "at most 20" in page.inner_text("#search-keys-status")
            page.fill("#search-keys-input", "Queue, account")
            page.click("#search-keys-save")
            page.wait_for_function(
                "() => document.getElementById('search-keys-status').textContent.startsWith('Saved')"
            )
            assert (
                page.inner_text("#search-keys-status")
                == f"Saved: {len(seeded)} values found in the stored calls."
            )
            assert page.input_value("#search-keys-input") == "queue, account"

            page.click("#nav-search")
            page.wait_for_selector("#view-search", state="visible")
            _wait_results(page)
            page.fill("input[name='meta.queue']", "gold")
            _navigate_and_wait(page, lambda: page.click("#search-submit"))
            assert set(_rows(page)) == {s["id"] for s in seeded if s["gold"]}
            assert "meta.queue=gold" in page.url
        with server.client("admin") as http:
            changes = [a for a in http.get("/api/audit").json() if a["action"] == "policy.search_keys"]
        assert [c["outcome"] for c in changes] == ["allowed", "denied"]  # newest first
        assert json.loads(changes[0]["detail"])["after"] == ["queue", "account"]
