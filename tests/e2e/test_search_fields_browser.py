"""The search form, field by field, in a real browser against a running server: the fields that
test_search_browser.py does not drive (date/time range, team, called-number prefix, duration
range, was paused / not paused, end reason), each typed into the form on its own, submitted, and
the rows shown compared with the same rule computed here over the seeded calls; the URL carries
the field (the query lives in the URL). Agent, caller, has screen, disposition, notes and
metadata are driven in test_search_browser.py; direction in test_search_direction_browser.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from server.store import models
from server.store.db import make_engine, make_session_factory, session_scope
from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]
EXTRA = [("agent2", "agent", "Blue"), ("agent3", "agent", "Red")]
CALLS = 36  # under one page of 50: every match is on the first page
GAP = 5000.0  # seconds between two calls' starts


@dataclass(frozen=True)
class Call:
    id: str
    agent: str
    team: str
    started: float
    talk: float
    callee: str
    paused: bool
    end_reason: str


def _seed(data_dir: Path) -> list[Call]:
    """36 calls over the last two days, each field varying on its own cycle so that every filter
    selects a different, non-empty subset."""
    now = time.time()
    sessions = make_session_factory(make_engine(f"sqlite:///{(data_dir / 'tandem.db').resolve()}"))
    calls: list[Call] = []
    with session_scope(sessions) as s:
        ids = {u.username: u.id for u in s.execute(select(models.User)).scalars()}
        for n in range(CALLS):
            agent = ("agent1", "agent2", "agent3")[n % 3]
            call = Call(
                id=f"f-{n:03d}",
                agent=agent,
                team="Red" if agent == "agent3" else "Blue",
                started=now - 3600 - n * GAP,
                talk=float((30, 75, 150, 320)[n % 4] + n % 5),
                callee=("2001", "+49 30 1234 5", "3100")[n % 7 % 3] + f"{n:02d}",
                paused=n % 4 == 1,
                end_reason=("bye", "timeout", "cancel")[n % 5 % 3],
            )
            s.add(
                models.Interaction(
                    id=call.id,
                    call_id=f"call-{n}",
                    dn="2001",
                    agent_id=ids[agent],
                    caller=f"Caller {n} <+1 555 01{n:04d}>",
                    callee=call.callee,
                    state="done",
                    started_at=call.started,
                    answered_at=call.started,
                    ended_at=call.started + call.talk,
                    end_reason=call.end_reason,
                    screen_decision=False,
                    screen_percentage=0.0,
                    voice_state="complete",
                    screen_state="not_selected",
                )
            )
            s.flush()
            if (
                call.paused
            ):  # an agent's pause sets the row's was_paused flag (server/store/search_columns.py)
                s.add(models.PauseSpan(interaction_id=call.id, started_at=call.started + 5, reason="agent"))
            elif n % 4 == 2:  # a hold is not a pause: it must not make the call "paused"
                s.add(models.PauseSpan(interaction_id=call.id, started_at=call.started + 5, reason="hold"))
            calls.append(call)
    return calls


def _rows(page: Page) -> set[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#search-results tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return set(ids)


def _submit(page: Page) -> None:
    """Submit the form and wait for its results (the status is blanked first, so an old answer
    cannot pass for the new one; each submit here changes the URL, which runs the search)."""
    page.evaluate("() => { document.getElementById('search-status').textContent = 'Searching…'; }")
    page.click("#search-submit")
    page.wait_for_function(
        "() => { const s = document.getElementById('search-status').textContent;"
        " const e = document.getElementById('search-error');"
        " return (s !== '' && !s.startsWith('Searching')) || !e.hidden; }"
    )
    assert page.is_hidden("#search-error"), page.inner_text("#search-error")


def _local_input(page: Page, epoch: float) -> str:
    """The datetime-local value for ``epoch`` in the browser's own time zone (minutes)."""
    value: str = page.evaluate(
        "ms => { const d = new Date(ms); return new Date(ms - d.getTimezoneOffset() * 60000)"
        ".toISOString().slice(0, 16); }",
        epoch * 1000,
    )
    return value


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).fragment.split("?", 1)[1])


def test_each_remaining_search_field_in_the_browser(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "server", extra_users=EXTRA, TANDEM_SERVER_SCREEN_PERCENTAGE="0") as server,
        chromium() as browser,
    ):
        calls = _seed(server.data_dir)
        with new_page(browser) as page:
            log_in(page, server.url, "admin", server.creds["admin"]["password"])
            page.click("#nav-search")
            page.wait_for_selector("#view-search", state="visible")
            # The first visit's last seven days hold all 36 (the admin sees every team).
            page.wait_for_function(
                "() => document.getElementById('search-status').textContent.endsWith('interactions')"
            )
            assert _rows(page) == {c.id for c in calls}

            def check(fields: dict[str, str], rule: Callable[[Call], bool], url: dict[str, str]) -> None:
                for selector, value in fields.items():
                    if selector in ("#search-paused",):
                        page.select_option(selector, value)
                    else:
                        page.fill(selector, value)
                _submit(page)
                expected = {c.id for c in calls if rule(c)}
                assert expected and expected != {c.id for c in calls}, fields  # the seed selects
                assert _rows(page) == expected, fields
                assert page.inner_text("#search-status") == f"{len(expected)} interactions"
                query = _query(page)
                for name, value in url.items():
                    assert query.get(name) == [value], (name, query)
                for selector in fields:  # back to the seven days for the next field
                    if selector in ("#search-paused",):
                        page.select_option(selector, "")
                    else:
                        page.fill(selector, "")

            # Date/time range: from the midpoint before call 20's start to the one after call 8's
            # (calls are GAP apart, so the form's whole minutes cannot move a boundary past one).
            since, until = calls[20].started - GAP / 2, calls[8].started + GAP / 2
            page.fill("#search-from", _local_input(page, since))
            page.fill("#search-to", _local_input(page, until))
            _submit(page)
            assert _rows(page) == {c.id for c in calls if since <= c.started < until}
            assert len(_rows(page)) == 13
            query = _query(page)
            assert "from" in query and "to" in query, query
            page.fill("#search-from", _local_input(page, calls[-1].started - 60))
            page.fill("#search-to", "")

            check({"#search-team": "Red"}, lambda c: c.team == "Red", {"team": "Red"})
            # The called number by prefix, typed with spaces (the number's digits are compared).
            check(
                {"#search-callee": "+49 30"},
                lambda c: c.callee.startswith("+49 30"),
                {"callee": "+49 30"},
            )
            check(
                {"#search-min_duration": "60", "#search-max_duration": "200"},
                lambda c: 60 <= c.talk <= 200,
                {"min_duration": "60", "max_duration": "200"},
            )
            check({"#search-paused": "true"}, lambda c: c.paused, {"paused": "true"})
            check({"#search-paused": "false"}, lambda c: not c.paused, {"paused": "false"})
            check(
                {"#search-end_reason": "timeout"},
                lambda c: c.end_reason == "timeout",
                {"end_reason": "timeout"},
            )
            # Two fields at once narrow each other.
            check(
                {"#search-team": "Blue", "#search-end_reason": "cancel"},
                lambda c: c.team == "Blue" and c.end_reason == "cancel",
                {"team": "Blue", "end_reason": "cancel"},
            )
