"""User administration and the sampling policy on PostgreSQL through the real app: the
integration tests' own fixtures and checks (log-in, a change audited with before and after, a
full-time DN taken by another refused, sampling overrides by team name, audited), each on a fresh
PostgreSQL database instead of SQLite."""

from __future__ import annotations

import functools

import pytest
from fastapi.testclient import TestClient

from server.settings import load_settings
from tests.integration import test_admin_policies as policy_tests
from tests.integration import test_user_admin as user_admin_tests

env = user_admin_tests.env  # the integration tests' fixtures, as they are
client = policy_tests.client


@pytest.fixture(autouse=True)
def _policies_on_postgres(on_postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The policies fixture clears TANDEM_SERVER_* from the environment (on_postgres's way in),
    # so its settings get the database by argument.
    monkeypatch.setattr(
        policy_tests, "load_settings", functools.partial(load_settings, database_url=on_postgres)
    )


def _on_postgres(http: TestClient) -> None:
    dialect = http.app.state.ctx.sessions.kw["bind"].dialect.name  # type: ignore[attr-defined]
    assert dialect == "postgresql"


def test_a_user_change_is_audited_with_before_and_after(env: TestClient) -> None:
    _on_postgres(env)
    user_admin_tests.test_admin_changes_role_team_supervision_and_dn_audited_with_before_and_after(env)


def test_a_full_time_dn_of_another_agent_is_refused(env: TestClient) -> None:
    _on_postgres(env)
    user_admin_tests.test_a_full_time_dn_taken_or_in_use_is_refused(env)


def test_sampling_overrides_by_team_name_audited(client: TestClient) -> None:
    _on_postgres(client)
    policy_tests.test_sampling_overrides_are_set_and_shown_by_team_name(client)


def test_an_unknown_team_in_the_sampling_policy_is_refused_and_audited(client: TestClient) -> None:
    _on_postgres(client)
    policy_tests.test_an_unknown_team_name_is_refused_clearly_and_audited(client)
