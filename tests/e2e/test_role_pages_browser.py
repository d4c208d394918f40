"""The role matrix's pages in a real browser, table-driven from docs/role-matrix.md's "Pages"
table: for every role and every page with its own view, the page's link is in the top bar and
the page opens exactly where the table allows it; where it refuses, neither the link nor the view
is there (the address falls back to the recordings). tests/integration/test_role_matrix.py checks
the gating endpoints themselves (403 and an audit record for every refusal); this checks that the
web UI offers what the table says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.browser import chromium, log_in, new_page
from tests.e2e.harness import run_server
from tests.integration.role_matrix import DOC, ROLES, read_pages

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

# Page (as the table names it) -> (route, top-bar link, view)
VIEWS = {
    "Recordings": ("#/recordings", "#nav-recordings", "#view-recordings"),
    "Search": ("#/search", "#nav-search", "#view-search"),
    "Missed recordings": ("#/missed", "#nav-missed", "#view-missed"),
    "Recorders (fleet)": ("#/fleet", "#nav-fleet", "#view-fleet"),
    "Admin": ("#/admin", "#nav-admin", "#view-admin"),
    "Audit viewer": ("#/audit", "#nav-audit", "#view-audit"),
}
# One user per role (demo-setup makes admin, supervisor, agent1; the rest are made here).
USERS = {"agent": "agent1", "supervisor": "supervisor", "admin": "admin"}
EXTRA = [("eva", "evaluator", "Blue"), ("cora", "compliance", "Blue")]
USERS |= {"evaluator": "eva", "compliance": "cora"}


def test_each_role_is_offered_exactly_the_pages_the_matrix_allows(tmp_path: Path) -> None:
    pages = {page: cells for page, _, _, cells in read_pages(DOC.read_text()) if page in VIEWS}
    assert set(pages) == set(VIEWS), f"pages of {DOC.name} without a view here: {set(VIEWS) ^ set(pages)}"
    with run_server(tmp_path / "server", extra_users=EXTRA) as server, chromium() as browser:
        for role in ROLES:
            user = USERS[role]
            with new_page(browser) as page:
                log_in(page, server.url, user, server.creds[user]["password"])
                for name, cells in pages.items():
                    route, link, view = VIEWS[name]
                    allowed = cells[role] != "refused"
                    where = f"{role} ({user}), page {name!r}: the matrix says {cells[role]}"
                    assert page.is_visible(link) == allowed, f"{where}, the top bar link is wrong"
                    page.goto(f"{server.url}/{route}")
                    # Routed: the view shows, or the address was put back to the recordings.
                    page.wait_for_function(
                        "(v) => !document.querySelector(v).hidden || location.hash === '#/recordings'",
                        arg=view,
                    )
                    assert page.is_visible(view) == allowed, f"{where}, the view is wrong"
                    if not allowed:
                        assert page.url.endswith("#/recordings"), f"{where}: {page.url}"
                    page.goto(f"{server.url}/#/recordings")
                    page.wait_for_selector("#view-recordings", state="visible")
