"""Responsive and keyboard navigable (issue 14 item 10), in a real browser against a running server
with the screenshots' demo data:

* every page of every role at a 420-px phone and a 1280-px laptop: no sideways scroll (the
  screenshots check the pages they take; this walks the ones they take only at 1280 px too:
  login, recordings, missed recordings, recorders, audit, the agent's own list);
* a supervisor's day with the keyboard alone — sign in, Tab to Search, filter, Tab to a result,
  Enter opens the player, Space plays — each focused control showing a focus ring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e import demo_data
from tests.e2e.browser import TIMEOUT_MS, chromium, log_in
from tests.e2e.harness import ServerProcess, run_server
from tests.e2e.test_web_screenshots import WIDEST

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

# (user, route, the element that shows once the page has its data)
PAGES = [
    ("supervisor", "#/recordings", "#recordings tbody tr"),
    ("supervisor", "#/search", "#search-results tbody tr"),
    ("supervisor", f"#/recordings/{demo_data.PAUSED.id}", "#markers .marker"),
    ("supervisor", "#/missed", "#view-missed"),
    ("supervisor", "#/fleet", "#view-fleet"),
    ("agent1", "#/recordings", "#recordings tbody tr"),
    ("admin", "#/audit", "#audit-records tbody tr"),
    ("admin", "#/admin", "#agent-codes-table tbody tr"),
    ("admin", "#/fleet", "#enrolment-tokens tbody tr"),
    ("admin", "#/missed", "#view-missed"),
]
# Whether the focused element shows a focus indicator (an outline or a box shadow).
RING = """() => { const e = document.activeElement; const s = getComputedStyle(e);
  return [e.id || e.tagName, (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
    || s.boxShadow !== 'none']; }"""


@dataclass
class Site:
    server: ServerProcess
    browser: Browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("responsive")
    with (
        run_server(
            work / "server", extra_users=demo_data.EXTRA_USERS, TANDEM_SERVER_SCREEN_PERCENTAGE="50"
        ) as server,
        chromium() as browser,
    ):
        demo_data.seed(server, work)
        yield Site(server, browser)


def _page(site: Site, width: int) -> Iterator[Page]:
    context = site.browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _no_sideways_scroll(page: Page, what: str) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], (
        f"{what} scrolls sideways: {width[0]} px in {width[1]} px; {page.evaluate(WIDEST)}"
    )


@pytest.mark.parametrize("width", [420, 1280])
def test_every_page_fits_the_window(site: Site, width: int) -> None:
    for page in _page(site, width):
        page.goto(f"{site.server.url}/")
        page.wait_for_selector("#view-login", state="visible")
        _no_sideways_scroll(page, "the login page")
    for user in dict.fromkeys(u for u, _, _ in PAGES):
        for page in _page(site, width):
            log_in(page, site.server.url, user, site.server.creds[user]["password"])
            for who, route, ready in PAGES:
                if who != user:
                    continue
                page.goto(f"{site.server.url}/{route}")
                page.wait_for_selector(ready, state="attached")
                page.wait_for_load_state("networkidle")
                _no_sideways_scroll(page, f"{route} as {user} at {width} px")


def _tab_to(page: Page, selector: str, limit: int = 60) -> list[str]:
    """Press Tab until ``selector`` has the focus; returns the ids passed on the way (for the
    message if it never comes). Each focused control must show a focus ring."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            name, ring = page.evaluate(RING)
            assert ring, f"{name} has the focus but shows no focus indicator"
            return passed
        passed.append(page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))
    raise AssertionError(f"Tab never reached {selector}; passed {passed}")


def test_a_supervisor_finds_and_plays_a_call_with_the_keyboard_alone(site: Site) -> None:
    for page in _page(site, 1280):
        page.goto(f"{site.server.url}/")
        page.wait_for_selector("#view-login", state="visible")
        assert page.evaluate("() => document.activeElement.id") == "login-username"
        page.keyboard.type("supervisor")
        page.keyboard.press("Tab")
        page.keyboard.type(site.server.creds["supervisor"]["password"])
        page.keyboard.press("Enter")
        page.wait_for_selector("#topbar", state="visible")

        _tab_to(page, "#nav-search")
        page.keyboard.press("Enter")
        page.wait_for_selector("#view-search", state="visible")
        page.wait_for_selector("#search-results tbody tr")
        _tab_to(page, "#search-agent")
        page.keyboard.type("agent1")
        page.keyboard.press("Enter")  # submits the filters
        page.wait_for_function("() => location.hash.includes('agent=agent1')")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#search-results tbody tr')].length > 0"
            " && [...document.querySelectorAll('#search-results tbody td:nth-child(2)')]"
            ".every((c) => c.textContent === 'agent1')"
        )
        _tab_to(page, "#search-results tbody a")
        target = page.evaluate("() => document.activeElement.getAttribute('href')")
        page.keyboard.press("Enter")
        page.wait_for_function("(h) => location.hash === h", arg=target)
        page.wait_for_function("() => window.tandemPlayer && window.tandemPlayer.audio")
        page.evaluate("() => document.activeElement.blur()")
        page.keyboard.press("Space")  # the player's shortcut: play
        page.wait_for_function("() => !document.getElementById('player').paused")
