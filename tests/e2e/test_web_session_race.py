"""A request still in flight when a user signs out comes back ``401`` after it. That late answer
belongs to the old session: it must neither throw the next user who signs in on the same page
back to a "Your session has ended" login, nor clear the password being typed on the login view
(seen in the phone screenshots test: supervisor out, admin in, then the admin was signed out).
The late answers are made exact with Playwright's routing: held until the moment under test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The call settles after api.js has dealt with the answer (its 401 handler runs before it throws).
CALL = """(path) => { window.callSettled = false; import('/static/api.js').then((m) => m.api('GET', path)
  .catch(() => {}).finally(() => { window.callSettled = true; })); }"""
SETTLED = "() => window.callSettled === true"


def _wait_held(page: Page, held: list[Route]) -> None:
    deadline = time.monotonic() + 60
    while not held:
        assert time.monotonic() < deadline, "the request under test never left the page"
        page.wait_for_timeout(50)


def _answer_401(held: list[Route]) -> None:
    for route in held:
        route.fulfill(status=401, json={"error": "not_authenticated", "message": "Sign in first."})


def test_a_late_401_from_the_last_session_signs_nobody_out(tmp_path: Path) -> None:
    held: list[Route] = []
    with run_server(tmp_path / "data") as server, chromium() as browser, new_page(browser) as page:
        log_in(page, server.url, "supervisor", server.creds["supervisor"]["password"])
        page.route("**/api/me", lambda route: held.append(route))
        # A request of the app's own client (the page's api.js module) in flight at sign-out.
        page.evaluate(CALL, "/api/me")
        _wait_held(page, held)
        page.click("#logout")
        page.wait_for_selector("#view-login", state="visible")
        page.fill("#login-password", "half-typed")
        _answer_401(held)  # the old session's answer arrives while the next user types
        page.wait_for_function(SETTLED)
        assert page.input_value("#login-password") == "half-typed"
        assert page.is_hidden("#login-error"), page.inner_text("#login-error")
        page.unroute("**/api/me")

        log_in(page, server.url, "admin", server.creds["admin"]["password"])
        held.clear()
        page.route("**/api/admin/**", lambda route: held.append(route))
        page.evaluate(CALL, "/api/admin/sampling")
        _wait_held(page, held)
        # A 401 for a request of the CURRENT session still means it ended: back to the login.
        _answer_401(held)
        page.wait_for_selector("#view-login", state="visible")
        assert "session has ended" in page.inner_text("#login-error")
