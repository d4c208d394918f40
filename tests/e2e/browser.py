"""Playwright helper for the browser acceptance tests.

Drives Debian's chromium (``TANDEM_CHROMIUM`` overrides the path; never a browser downloaded by
``playwright install``) headless, with the background services that would reach the internet
switched off, and knows the web UI's login form and player element. Playwright's sync API runs
its own event loop on this thread, so asyncio code (the simulated caller) must run elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.harness import ServerProcess, run_server

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def chromium_path() -> str:
    path = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        raise AssertionError(f"chromium not found at {path} (Debian: apt-get install chromium)")
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def new_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context: its own cookie jar, so each user has a session of his own."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def submit_login(page: Page, base_url: str, username: str, password: str) -> None:
    """Open the UI and send the login form (success or failure is the caller's to check)."""
    page.goto(f"{base_url}/")
    page.wait_for_selector("#view-login", state="visible")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    submit_login(page, base_url, username, password)
    page.wait_for_selector("#topbar:not([hidden]), #login-error:not([hidden])", state="attached")
    # A view that first signs in and then falls back to the login page means the session was refused.
    page.wait_for_timeout(300)
    assert page.is_visible("#topbar"), f"not signed in: {page.inner_text('#login-error')!r}"
    # The session cookie is HttpOnly; who it belongs to is the server's answer to /api/me.
    me = page.evaluate("() => fetch('/api/me', {credentials: 'same-origin'}).then((r) => r.json())")
    assert me.get("username") == username, f"signed in as {me!r}, expected {username}"


def wait_recordings_loaded(page: Page) -> None:
    """The list view has asked the server and rendered its answer."""
    page.wait_for_selector("#view-recordings", state="visible")
    page.wait_for_function(
        "() => { const s = document.getElementById('recordings-status').textContent;"
        " return s !== '' && !s.startsWith('Loading'); }"
    )
    status = page.inner_text("#recordings-status")
    assert not status.startswith("Could not"), status


def video_state(page: Page) -> dict[str, Any]:
    """The player's playback state, including Chromium's decoded byte counters per stream."""
    state: dict[str, Any] = page.evaluate(
        """() => {
          const v = document.getElementById('player');
          if (!v) return null;
          const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
          return {
            currentTime: v.currentTime, duration: v.duration, paused: v.paused, ended: v.ended,
            readyState: v.readyState, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
            error: v.error ? {code: v.error.code, message: v.error.message} : null,
            audioBytes: v.webkitAudioDecodedByteCount ?? null,
            videoBytes: v.webkitVideoDecodedByteCount ?? null,
            frames: q ? q.totalVideoFrames : null,
          };
        }"""
    )
    assert state is not None, "no #player element on the page"
    return state


def seek(page: Page, target: float, timeout_ms: int = 10_000) -> float:
    """Set the player's ``currentTime`` and wait for ``seeked``; returns where it landed."""
    landed: float = page.evaluate(
        """([target, timeoutMs]) => new Promise((resolve, reject) => {
          const v = document.getElementById('player');
          const timer = setTimeout(() => reject(new Error(`no 'seeked' within ${timeoutMs} ms`)), timeoutMs);
          v.addEventListener('seeked', () => { clearTimeout(timer); resolve(v.currentTime); }, {once: true});
          v.currentTime = target;
        })""",
        [target, timeout_ms],
    )
    return landed


@dataclass
class ServerAndBrowser:
    """A running server and a browser, shared by the tests of one module (each opens its own page)."""

    server: ServerProcess
    browser: Browser


@contextlib.contextmanager
def server_and_browser(data_dir: Path, **server_options: Any) -> Iterator[ServerAndBrowser]:
    """``run_server(data_dir, **server_options)`` and Chromium, both stopped on the way out."""
    with run_server(data_dir, **server_options) as server, chromium() as browser:
        yield ServerAndBrowser(server, browser)


def open_admin(page: Page, ready: str, status: str, filled: str = "true") -> None:
    """Opens the admin page and waits until the section under test is shown (``ready``, a
    selector) and has loaded (its status line ``#status`` empty again after "Loading…", and the
    JavaScript condition ``filled`` true): a control changed before that would be overwritten by
    the server's values."""
    page.click("#nav-admin")
    page.wait_for_selector(ready, state="visible")
    page.wait_for_function(
        f"(id) => document.getElementById(id).textContent === '' && ({filled})", arg=status
    )


def wait_status(page: Page, element: str, prefix: str) -> str:
    """Waits until the status line ``#element`` starts with ``prefix``; returns all it says."""
    page.wait_for_function(
        "([id, p]) => document.getElementById(id).textContent.startsWith(p)", arg=[element, prefix]
    )
    text: str = page.inner_text(f"#{element}")
    return text


def audit_viewer_rows(page: Page, base_url: str, query: str) -> list[list[str]]:
    """The audit viewer's rows for ``query`` (e.g. ``action=user.update``), once it has loaded:
    [user, action, outcome, target, detail] each."""
    page.goto(f"{base_url}/#/audit?{query}")
    page.wait_for_function(
        "() => { const s = document.getElementById('audit-status').textContent;"
        " return s && s !== 'Loading…'; }"
    )
    rows: list[list[str]] = page.eval_on_selector_all(
        "#audit-records tbody tr",
        "rows => rows.map(r => [...r.cells].slice(1, 6).map(c => c.textContent))",
    )
    return rows


def assert_folds_at_420(page: Page, table: str, section: str) -> None:
    """At 420 px the rows of ``#table`` fold into cards and neither the page nor ``#section``
    reaches past the screen (no sideways scrolling); the viewport is put back to 1280 px after."""
    page.set_viewport_size({"width": 420, "height": 900})
    page.wait_for_function(
        "(id) => getComputedStyle(document.querySelector(`#${id} tr`)).display === 'block'", arg=table
    )
    widths = page.evaluate(
        "(id) => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " Math.ceil(document.getElementById(id).getBoundingClientRect().right)]",
        section,
    )
    assert widths[0] <= widths[1] and widths[2] <= 420, widths
    page.set_viewport_size({"width": 1280, "height": 900})
