"""Search on PostgreSQL through the real app: tests/integration/test_search_api.py's own fixture
(300 calls, ties on purpose) and checks, run on a fresh PostgreSQL database instead of SQLite.
Its checks only read, so one seeded app serves them all (seeding is much of the time): who sees
what (the three kinds of scope), every filter against the same rule in Python, keyset paging
under ties in three sorts of different kinds, the audit record of each search."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration import test_search_api as search_tests

env = search_tests.env  # the integration test's fixture, as it is
pytestmark = pytest.mark.usefixtures("on_postgres")


def test_search_roles_filters_and_keyset_paging_on_postgres(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One log-in per user, not one per check: a password check costs a third of a second.
    tokens: dict[str, dict[str, str]] = {}
    login = search_tests.login

    def once(http: Any, username: str) -> dict[str, str]:
        if username not in tokens:
            tokens[username] = login(http, username)
        return tokens[username]

    monkeypatch.setattr(search_tests, "login", once)
    assert env[0].app.state.ctx.sessions.kw["bind"].dialect.name == "postgresql"
    search_tests.test_one_audit_record_per_search_with_filters_and_scope(env)
    for username, role in search_tests.ACCESS:
        if username in ("admin", "sup", "agent1"):  # everything, a team, one's own: the three kinds
            search_tests.test_each_role_finds_exactly_what_it_may_see(env, username, role)
    search_tests.test_a_filter_cannot_widen_what_a_supervisor_sees(env)
    for params, rule in search_tests.FILTERS:
        search_tests.test_each_filter_matches_the_same_rule_in_python(env, params, rule)
    search_tests.test_time_range_as_iso_with_an_offset_or_unix_seconds(env)
    for sort in ("started_at", "agent", "caller"):  # a float, a joined name, a derived text key
        for order in ("desc", "asc"):
            search_tests.test_paging_under_ties_has_no_duplicates_or_holes_in_sort_order(env, sort, order)
