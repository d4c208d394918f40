"""The search's query model (pure): parameters checked with a clear message, the canonical query
string, the keyset cursor (round trip, tampering, reuse with another search); and the search
number key. Last, SQLite's plan of the typical queries: each uses an index, none scans the table."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from server.services import search
from server.services.search_query import (
    Cursor,
    QueryError,
    SearchQuery,
    canonical,
    decode_cursor,
    encode_cursor,
    parse,
)
from server.store.db import migrate
from server.store.search_columns import meta_values, number_key, talk_time


def p(**params: str) -> SearchQuery:
    return parse(params.items(), searchable_keys=["queue"], number_key=number_key)


def refused(field: str, **params: str) -> str:
    with pytest.raises(QueryError) as caught:
        p(**params)
    assert caught.value.field == field
    return caught.value.message


def test_defaults() -> None:
    q = p()
    assert (q.sort, q.order, q.limit, q.cursor, q.filters()) == ("started_at", "desc", 50, None, {})


def test_every_filter_parses() -> None:
    q = parse(
        [
            ("from", "2026-12-01T08:00:00Z"),
            ("to", "1796200000"),
            ("agent", "ann, bob"),
            ("agent", "cy"),
            ("team", "Blue"),
            ("caller", "+1 (555) 01"),
            ("callee", "2001"),
            ("min_duration", "30"),
            ("max_duration", "600"),
            ("has_screen", "true"),
            ("paused", "no"),
            ("end_reason", "bye"),
            ("meta.Queue", "Gold"),
            ("sort", "duration"),
            ("order", "asc"),
            ("limit", "25"),
        ],
        searchable_keys=["queue"],
        number_key=number_key,
    )
    assert (q.since, q.until) == (1_796_112_000.0, 1_796_200_000.0)
    assert q.agents == ("ann", "bob", "cy") and q.teams == ("Blue",)
    assert (q.caller, q.callee) == ("155501", "2001")
    assert (q.min_duration, q.max_duration, q.has_screen, q.paused) == (30.0, 600.0, True, False)
    assert q.meta == (("queue", "gold"),) and (q.sort, q.order, q.limit) == ("duration", "asc", 25)


def test_naive_time_is_utc_and_an_offset_is_honoured() -> None:
    assert p(**{"from": "2026-12-04T10:00:00"}).since == p(**{"from": "2026-12-04T11:00:00+01:00"}).since


@pytest.mark.parametrize(
    ("field", "params", "message"),
    [
        ("from", {"from": "last tuesday"}, "is not a date and time; use ISO 8601"),
        ("from", {"from": "2026-13-01"}, "is not a date and time"),
        ("to", {"to": "1e300"}, "Unix seconds out of range"),
        ("to", {"from": "2026-12-04", "to": "2026-12-03"}, "must be later than from"),
        ("sort", {"sort": "caller_number; DROP TABLE users"}, "must be one of started_at, duration"),
        ("order", {"order": "up"}, "must be asc or desc"),
        ("limit", {"limit": "0"}, "between 1 and 200"),
        ("limit", {"limit": "ten"}, "must be a whole number"),
        ("min_duration", {"min_duration": "nan"}, "seconds between 0 and 604800"),
        ("max_duration", {"min_duration": "60", "max_duration": "30"}, "must not be less than min_duration"),
        ("paused", {"paused": "perhaps"}, "must be true or false"),
        ("caller", {"caller": "+ -"}, "give the start of a number"),
        ("end_reason", {"end_reason": "x" * 101}, "at most 100 characters"),
        ("end_reason", {"end_reason": "a\x00b"}, "control characters"),
        ("direction", {"direction": "sideways"}, "is not a direction; use inbound, outbound, unknown"),
        ("notes", {"notes": "refund"}, "interactions have no notes yet"),
        ("meta.account", {"meta.account": "1"}, "not a searchable metadata key; searchable keys: queue"),
        ("agentt", {"agentt": "ann"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_with_the_field_and_why(
    field: str, params: dict[str, str], message: str
) -> None:
    assert message in refused(field, **params)


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(QueryError, match="given twice"):
        parse([("sort", "duration"), ("sort", "agent")])


def test_optional_filters_are_taken_once_the_column_exists() -> None:
    q = parse([("disposition", "sale"), ("notes", "refund")], optional_columns=["disposition", "notes"])
    assert (q.disposition, q.notes) == ("sale", "refund")


def test_canonical_query_string_parses_back_to_the_same_search() -> None:
    q = p(agent="ann,bob", caller="+1 555", has_screen="false", sort="agent", order="asc", limit="20")
    q = parse([*[(k, v) for k, v in _pairs(canonical(q))]], searchable_keys=["queue"], number_key=number_key)
    assert q == p(agent="ann,bob", caller="1555", has_screen="false", sort="agent", order="asc", limit="20")
    assert canonical(p()) == ""
    when = p(**{"from": "2026-12-04T09:30:00+01:00"})
    assert canonical(when) == "from=2026-12-04T08%3A30%3A00Z"


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query)


# -- cursor --------------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    q = p(sort="duration", caller="1555")
    token = encode_cursor(q, 61.5, "abc")
    assert decode_cursor(token, q) == Cursor(61.5, "abc")
    assert p(sort="duration", caller="1555", cursor=token).cursor == Cursor(61.5, "abc")
    q = p(sort="agent")
    assert decode_cursor(encode_cursor(q, None, "x"), q) == Cursor("", "x")


def _forge(token: str, **changes: object) -> str:
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload.update(changes)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda t: "%%%", "not a cursor this search gave out"),
        (lambda t: t[:-6], "not a cursor this search gave out"),
        (lambda t: base64.urlsafe_b64encode(b"[1,2]").decode(), "not a cursor this search gave out"),
        (lambda t: _forge(t, v="yesterday"), "is damaged"),
        (lambda t: _forge(t, v=float("inf")), "is damaged"),
        (lambda t: _forge(t, v=True), "is damaged"),
        (lambda t: _forge(t, i=7), "is damaged"),
        (lambda t: _forge(t, i="x" * 37), "is damaged"),
        (lambda t: _forge(t, f="0" * 16), "belongs to another search"),
    ],
)
def test_tampered_cursors_are_refused(forge: object, message: str) -> None:
    q = p()
    token = encode_cursor(q, 1_700_000_000.0, "id-1")
    assert message in refused("cursor", cursor=forge(token))  # type: ignore[operator]


def test_a_cursor_does_not_carry_over_to_another_search() -> None:
    token = encode_cursor(p(agent="ann"), 1.0, "id")
    assert "belongs to another search" in refused("cursor", agent="bob", cursor=token)
    assert "belongs to another search" in refused("cursor", agent="ann", order="asc", cursor=token)
    # Page size is not part of the search: a user may change it while paging.
    assert p(agent="ann", limit="10", cursor=token).cursor == Cursor(1.0, "id")


# -- search keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Ann <sip:+1 555-0100@pbx.example;user=phone>", "15550100"),
        ("+44 (20) 7946 0000", "442079460000"),
        ("tel:+33.1.44", "33144"),
        ("sip:Alice@example.com", "alice"),
        ("", ""),
    ],
)
def test_number_key(text: str, key: str) -> None:
    assert number_key(text) == key


def test_talk_time_and_meta_values() -> None:
    assert talk_time(100.0, 110.0, 170.0) == 60.0 and talk_time(100.0, None, 130.0) == 30.0
    assert talk_time(100.0, 110.0, None) is None
    meta = json.dumps({"params": {"Queue": " Gold ", "account": 17, "other": "x"}})
    assert meta_values(meta, ["queue", "account", "missing"]) == {"queue": "gold", "account": "17"}
    assert meta_values("not json", ["queue"]) == {} and meta_values('{"params": []}', ["queue"]) == {}


# -- the plans of the typical queries ------------------------------------------------------------

# A supervisor's two teams of ten agents (search.agent_ids resolves them before the query).
SUP = list(range(101, 111)) + list(range(201, 211))
WEEK = 1_780_000_000.0 - 7 * 86400
TYPICAL: dict[str, tuple[SearchQuery, list[int] | None, str]] = {
    "7 days of my teams": (SearchQuery(since=WEEK), SUP, "ix_interactions_agent_started_id"),
    "one agent": (SearchQuery(agents=("ann",)), [105], "ix_interactions_agent_started_id"),
    "caller prefix": (SearchQuery(caller="4420"), SUP, "ix_interactions_caller_number"),
    "callee prefix": (SearchQuery(callee="2001"), SUP, "ix_interactions_callee_number"),
    "screen + paused": (SearchQuery(since=WEEK, has_screen=True, paused=True), SUP, "ix_interactions_agent"),
    "metadata": (SearchQuery(meta=(("account", "a000017"),)), SUP, "ix_interaction_meta_values_key_value"),
    "admin 7 days": (SearchQuery(since=WEEK), None, "ix_interactions_started_id"),
    "admin inbound": (
        SearchQuery(since=WEEK, direction="inbound"),
        None,
        "ix_interactions_direction_started_id",
    ),
    "my teams outbound": (
        SearchQuery(since=WEEK, direction="outbound"),
        SUP,
        "ix_interactions_agent_started_id",
    ),
    "caller + direction": (
        SearchQuery(caller="4420", direction="unknown"),
        None,
        "ix_interactions_caller_number",
    ),
    "page 50": (
        SearchQuery(since=WEEK, cursor=Cursor(1_779_990_000.0, "000000123456")),
        SUP,
        "ix_interactions_agent_started_id",
    ),
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    migrate(f"sqlite:///{path}")  # the indexes as the migrations make them
    return path


@pytest.mark.parametrize("name", list(TYPICAL))
def test_typical_queries_use_an_index_and_never_scan_interactions(schema: Path, name: str) -> None:
    query, agents, index = TYPICAL[name]
    engine = create_engine(f"sqlite:///{schema}")
    with Session(engine) as session:
        for stmt in (search.page_statement(query, agents), search.count_statement(query, agents)):
            compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
            plan = [row[-1] for row in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            text = "\n".join(plan)
            assert index in text, text
            assert not any(line.startswith("SCAN interactions") for line in plan), text
    engine.dispose()
