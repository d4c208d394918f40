"""/docs with no way out of the machine: every request to another origin is aborted (and noted);
Swagger UI still loads from the package and lists the API's operations, with no
Content-Security-Policy violation and no request leaving the server's origin."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route

from tests.e2e.browser import chromium, new_page
from tests.e2e.harness import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(120)]


def test_docs_work_offline_and_list_the_operations(tmp_path: Path) -> None:
    with run_server(tmp_path / "server") as server, chromium() as browser, new_page(browser) as page:
        origin = urlsplit(server.url).netloc
        outside: list[str] = []

        def only_this_server(route: Route) -> None:
            if urlsplit(route.request.url).netloc == origin:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort("internetdisconnected")

        page.route("**/*", only_this_server)
        violations: list[str] = []
        page.on(
            "console",
            lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.eval_on_selector_all(
            ".opblock-summary-path", "els => els.map(e => e.textContent.trim())"
        )
        assert "/api/interactions/search" in paths, paths
        assert "/api/auth/login" in paths and "/api/searches/{saved_id}" in paths, paths
        assert page.inner_text(".info .title").startswith("Tandem")
        # Expanding an operation shows its parameters, the search's documented filters among them.
        page.click("#operations-default-search_interactions_api_interactions_search_get .opblock-summary")
        page.wait_for_selector(".parameters-container")
        assert "has_screen" in page.inner_text(".parameters-container")
        assert outside == [], f"/docs reached outside the server: {outside}"
        assert violations == [], violations
