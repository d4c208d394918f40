"""Every page of the web UI, opened in Debian's chromium against a real ``tandem-server run`` with
the demo data of ``tests.e2e.demo_data``: each page shows what it is for (its rows, its form) with
no error, and none scrolls sideways — at 1280 px, and at 420 px for the pages used on a phone.

The pictures go to ``TANDEM_SCREENSHOT_DIR`` when it is set — that is how docs/screenshots/ is
made (README "Screenshots"):

    TANDEM_SCREENSHOT_DIR=docs/screenshots .venv/bin/python -m pytest -p no:cacheprovider \\
        tests/e2e/test_web_screenshots.py

and to the test's temporary directory otherwise, so an ordinary run of the suite leaves the
committed files alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FloatRect, Page, ViewportSize

from server.services.releases import ReleaseRepository, init_keys
from tests.e2e import demo_data
from tests.e2e.browser import TIMEOUT_MS, chromium, log_in, wait_recordings_loaded
from tests.e2e.harness import ServerProcess, run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(400)]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 420, "height": 860}
# Admin sections, each from its heading to the next one's: (file, heading, next heading).
ADMIN_SECTIONS = [
    ("admin-sampling.png", "#admin-title", "#acw-title"),
    ("admin-acw.png", "#acw-title", "#pause-title"),
    ("admin-pause.png", "#pause-title", "#voice-formats-title"),
    ("admin-voice-formats.png", "#voice-formats-title", "#agent-playback-title"),
    ("admin-agent-playback.png", "#agent-playback-title", "#agent-codes-title"),
    ("admin-search-keys.png", "#search-keys-title", "#dn-matching-title"),
    ("admin-dn-matching.png", "#dn-matching-title", "#recorder-policy-title"),
    ("admin-passwords.png", "#password-policy-title", None),
]


@dataclass
class Site:
    server: ServerProcess
    browser: Browser
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("screenshots")
    shots = Path(os.environ.get("TANDEM_SCREENSHOT_DIR") or work / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    init_keys(work / "release-keys")  # a release repository, for the releases section
    ReleaseRepository(work / "server" / "releases").create(work / "release-keys")
    with (
        run_server(
            work / "server",
            extra_users=demo_data.EXTRA_USERS,
            TANDEM_SERVER_SCREEN_PERCENTAGE="50",
            TANDEM_SERVER_RELEASE_KEYS_DIR=str(work / "release-keys"),
        ) as server,
        chromium() as browser,
    ):
        demo_data.seed(server, work)
        yield Site(server, browser, shots)


@pytest.fixture
def desktop(site: Site) -> Iterator[Page]:
    yield from _page(site, DESKTOP)


@pytest.fixture
def phone(site: Site) -> Iterator[Page]:
    yield from _page(site, PHONE)


def _page(site: Site, viewport: ViewportSize) -> Iterator[Page]:
    context = site.browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sign_in(site: Site, page: Page, user: str) -> None:
    log_in(page, site.server.url, user, site.server.creds[user]["password"])


# The outermost elements that reach past the window's right edge: what to fix.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && e.offsetParent)
  .filter((e, _, all) => !all.includes(e.parentElement))
  .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`
    + ` ${Math.round(e.getBoundingClientRect().right)}px`)
  .slice(0, 6).join(', ')"""


def _check(page: Page) -> None:
    """The page as a reader gets it: no sideways scroll, no error message showing."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        wide = page.evaluate(WIDEST)
        raise AssertionError(
            f"{page.url} scrolls sideways: {width[0]} px wide in a {width[1]} px window; {wide}"
        )
    errors = page.eval_on_selector_all(
        ".error:not([hidden])",
        "els => els.filter((e) => e.offsetParent && e.textContent).map((e) => e.textContent)",
    )
    assert not errors, f"{page.url} shows errors: {errors}"


def _shoot(site: Site, page: Page, name: str, full_page: bool = True) -> None:
    _check(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(site.shots / name), full_page=full_page)


def _shoot_between(site: Site, page: Page, name: str, top: str, bottom: str | None) -> None:
    """From ``top``'s element down to just above ``bottom``'s (or the end of the page)."""
    _check(page)
    first = page.locator(top).bounding_box()
    assert first is not None, f"{top} is not on the page"
    y0 = first["y"] + page.evaluate("() => window.scrollY") - 16
    if bottom is None:
        y1 = page.evaluate("() => document.documentElement.scrollHeight")
    else:
        last = page.locator(bottom).bounding_box()
        assert last is not None, f"{bottom} is not on the page"
        y1 = last["y"] + page.evaluate("() => window.scrollY") - 8
    clip: FloatRect = {"x": 0, "y": y0, "width": DESKTOP["width"], "height": y1 - y0}
    page.screenshot(path=str(site.shots / name), full_page=True, clip=clip)


def _status_settled(page: Page, element: str) -> None:
    page.wait_for_function(
        "(id) => { const t = document.getElementById(id).textContent;"
        " return !t.startsWith('Loading') && !t.startsWith('Could not'); }",
        arg=element,
    )


def _open_player(site: Site, page: Page, iid: str) -> None:
    page.goto(f"{site.server.url}/#/recordings/{iid}")
    page.wait_for_function(
        "(id) => { const p = window.tandemPlayer; return p && p.id === id && p.wavesurfer && p.audio; }",
        arg=iid,
    )
    page.wait_for_selector("#markers .marker-bookmark")
    assert page.is_hidden("#player-error"), page.inner_text("#player-error")


def _wait_frame(page: Page, selector: str) -> None:
    """The video shows the frame at its position (not the spinner of a seek under way)."""
    page.wait_for_function(
        "(sel) => { const v = document.querySelector(sel); return !v.seeking && v.readyState >= 3; }",
        arg=selector,
    )
    page.wait_for_timeout(1000)  # the frame is painted and the loading spinner has faded


def test_login_page(site: Site, desktop: Page) -> None:
    desktop.goto(f"{site.server.url}/")
    desktop.wait_for_selector("#view-login", state="visible")
    _shoot(site, desktop, "login.png", full_page=False)


def test_recordings_with_the_agents_now_table(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "supervisor")
    wait_recordings_loaded(desktop)
    desktop.wait_for_selector("#agent-states-table tbody tr:has-text('Lunch break')")
    rows = desktop.locator("#recordings tbody tr").count()
    assert rows == 4, f"supervisor (team Blue) sees {rows} calls, expected the 4 of Blue"
    _shoot(site, desktop, "recordings.png")


def test_agents_own_recordings(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "agent1")
    wait_recordings_loaded(desktop)
    assert desktop.locator("#recordings tbody tr").count() == 2  # his own two calls only
    assert desktop.is_hidden("#agent-states")
    _shoot(site, desktop, "recordings-agent.png")


def test_missed_recordings(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "admin")
    desktop.click("#nav-missed")
    # Refused calls are written once their one-second coalescing window has passed.
    desktop.wait_for_function(
        """() => {
          if (document.querySelectorAll('#missed tbody tr').length >= 2) return true;
          document.getElementById('missed-refresh').click();
          return false;
        }""",
        polling=500,
    )
    _shoot(site, desktop, "missed-recordings.png")


def test_player_share_link_and_the_shared_view(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "supervisor")
    _open_player(site, desktop, demo_data.PAUSED.id)
    assert "Card details" in " ".join(
        desktop.eval_on_selector_all("#timeline-spans .span", "els => els.map((e) => e.title)")
    )
    desktop.wait_for_selector("#share-form")
    desktop.click("#share-create")
    desktop.wait_for_selector("#share-url:not([hidden])")
    desktop.wait_for_selector("#share-links tbody tr")
    url = desktop.input_value("#share-url")
    desktop.evaluate("() => { document.getElementById('player').currentTime = 12; }")
    _wait_frame(desktop, "#player")
    _shoot(site, desktop, "player-share.png")

    # The link, opened by someone without an account: the file itself, in the browser's player.
    shared = site.browser.new_context(viewport=DESKTOP)
    try:
        page = shared.new_page()
        page.goto(url)
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }"
        )
        page.evaluate("() => { document.querySelector('video').currentTime = 12; }")
        _wait_frame(page, "video")
        page.screenshot(path=str(site.shots / "shared-link.png"))
    finally:
        shared.close()


def test_api_docs(site: Site, desktop: Page) -> None:
    desktop.goto(f"{site.server.url}/docs")
    desktop.wait_for_selector(".opblock-summary-path", timeout=30_000)
    _shoot(site, desktop, "api-docs.png", full_page=False)


def test_each_admin_section(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "admin")
    desktop.click("#nav-admin")
    desktop.wait_for_selector("#view-admin", state="visible")
    desktop.wait_for_selector("#password-policy-title")
    desktop.wait_for_selector('#agent-playback-teams input[value="Blue"]:checked')
    desktop.wait_for_function(
        "() => document.getElementById('search-keys-input').value === 'campaign, queue'"
    )
    for status in ("sampling-status", "voice-formats-status", "dn-matching-status", "pause-status"):
        _status_settled(desktop, status)
    desktop.wait_for_selector("#people-table tbody tr")
    for name, top, bottom in ADMIN_SECTIONS:
        _shoot_between(site, desktop, name, top, bottom)
    _shoot(site, desktop, "admin.png")


def test_agent_software_releases(site: Site, desktop: Page) -> None:
    with site.server.client("admin") as http:
        for version, percent, body in (
            ("0.2.0", 100, b"bundle 0.2.0" * 40000),
            ("0.3.0", 20, b"0.3.0" * 90000),
        ):
            r = http.put(f"/api/admin/releases/{version}", params={"rollout_percent": percent}, content=body)
            assert r.status_code == 200, r.text
    _sign_in(site, desktop, "admin")
    desktop.click("#nav-admin")
    desktop.wait_for_selector("#releases-table tbody tr[data-version='0.3.0']")
    _shoot_between(site, desktop, "admin-releases.png", "#releases-title", "#password-policy-title")


def test_devices_and_enrolment_tokens(site: Site, desktop: Page) -> None:
    _sign_in(site, desktop, "admin")
    desktop.click("#nav-fleet")
    desktop.wait_for_selector("#devices-section", state="visible")
    desktop.wait_for_selector("#enrolment-tokens tbody tr:has-text('team:Blue')")
    _shoot_between(site, desktop, "devices.png", "#devices-section", None)


def test_phone_pages(site: Site, phone: Page) -> None:
    _sign_in(site, phone, "supervisor")
    phone.goto(f"{site.server.url}/#/search?agent=agent1")
    phone.wait_for_selector("#search-results tbody tr")
    phone.locator("#search-status").scroll_into_view_if_needed()
    phone.evaluate(
        "() => window.scrollBy(0, document.getElementById('search-status').getBoundingClientRect().top - 80)"
    )
    _shoot(site, phone, "search-results-phone.png", full_page=False)
    _open_player(site, phone, demo_data.PAUSED.id)
    _wait_frame(phone, "#player")
    _shoot(site, phone, "player-phone.png")
    phone.click("#logout")
    _sign_in(site, phone, "admin")
    phone.goto(f"{site.server.url}/#/admin")
    phone.wait_for_selector("#view-admin", state="visible")
    _status_settled(phone, "sampling-status")
    _shoot(site, phone, "admin-phone.png", full_page=False)
