"""The audit viewer's API in process: filters by user, action family, interaction, outcome and time
range, keyset paging newest first, a streamed CSV export (audited itself, formula cells
defused), refusals for other roles and bad filters audited; plays, downloads, shares, refusals and
policy changes all findable."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.errors import InvalidInput
from server.services.audit_query import csv_line, parse_filter
from tests.integration.access_world import audits, login, world


@pytest.fixture
def env(tmp_path: Path) -> Iterator[TestClient]:
    with world(tmp_path) as client:
        sup, comp, admin = login(client, "sup"), login(client, "comp"), login(client, "admin")
        assert client.get("/api/interactions/call-blue/media/muxed", headers=sup).status_code == 200
        assert client.get("/api/interactions/call-blue/media/voice", headers=comp).status_code == 200
        assert client.get("/api/interactions/call-red/media/voice", headers=sup).status_code == 403
        made = client.post("/api/interactions/call-blue/shares", json={"minutes": 2}, headers=sup)
        assert made.status_code == 201
        r = client.put("/api/admin/sampling", json={"percentage": 30}, headers=admin)
        assert r.status_code == 200, r.text
        yield client


def _records(env: TestClient, who: str | dict[str, str] = "comp", **params: Any) -> dict[str, object]:
    auth = login(env, who) if isinstance(who, str) else who
    r = env.get("/api/audit/records", params=params, headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _actions(body: dict[str, object]) -> list[str]:
    return [str(r["action"]) for r in body["records"]]  # type: ignore[attr-defined]


def test_parse_filter_rules() -> None:
    f = parse_filter({"user": " sup ", "action": "share", "outcome": "denied", "since": "2026-12-05T00:00Z"})
    assert (f.username, f.action, f.outcome) == ("sup", "share", "denied")
    assert f.since == 1_764_892_800.0 + 365 * 86400
    assert parse_filter({"since": "10", "until": "20.5"}).until == 20.5
    for bad in (
        {"outcome": "maybe"},
        {"since": "yesterday"},
        {"since": "20", "until": "10"},
        {"until": "nan"},
    ):
        with pytest.raises(InvalidInput):
            parse_filter(bad)


def test_csv_cells_are_quoted_and_formulas_defused() -> None:
    assert csv_line(["a,b", 'say "hi"', None, -1.5]) == '"a,b","say ""hi""",,-1.5\r\n'
    assert csv_line(["=HYPERLINK(1)", "@x", "+1 555"]) == "'=HYPERLINK(1),'@x,'+1 555\r\n"


def test_plays_downloads_shares_refusals_policy_changes_are_found(env: TestClient) -> None:
    reads = _records(env, action="recording.read", outcome="allowed")
    assert [(r["username"], r["target_id"]) for r in reads["records"]] == [  # type: ignore[attr-defined]
        ("comp", "call-blue"),
        ("sup", "call-blue"),
    ]
    assert _actions(_records(env, action="share")) == ["share.create"]
    denied = _records(env, outcome="denied")
    assert [(r["username"], r["target_id"]) for r in denied["records"]] == [("sup", "call-red")]  # type: ignore[attr-defined]
    policy = _records(env, target_type="policy")
    assert _actions(policy) == ["policy.sampling"]
    by_call = _records(env, interaction="call-blue", user="sup")
    assert set(_actions(by_call)) == {"recording.read", "share.create"}
    # Time range: everything written so far is before "until=now"; nothing is after it.
    last = max(a.at for a in audits(env))
    assert _records(env, since=last + 1)["records"] == []
    assert len(_records(env, until=last + 1, action="recording.read")["records"]) == 3  # type: ignore[arg-type]


def test_paging_is_keyset_newest_first_without_gaps(env: TestClient) -> None:
    auth = login(env, "admin")
    everything = [a.seq for a in audits(env)]
    seen: list[int] = []
    before: object = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if before is not None:
            params["before"] = before
        body = _records(env, auth, **params)
        seen += [int(r["seq"]) for r in body["records"]]  # type: ignore[attr-defined]
        before = body["next_before"]
        if before is None:
            break
    # The viewer's own reads are audited too (records after the first page was read): the pages
    # hold exactly what existed when paging started, newest first, none twice, none skipped.
    assert seen == sorted(everything, reverse=True)
    assert [a.action for a in audits(env, "audit.read")][-1] == "audit.read"


def test_csv_export_streams_the_filter_and_is_audited(env: TestClient) -> None:
    r = env.get("/api/audit/export.csv", params={"action": "recording.read"}, headers=login(env, "admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["username"], x["outcome"]) for x in rows] == [
        ("sup", "allowed"),
        ("comp", "allowed"),
        ("sup", "denied"),
    ]
    assert rows[0]["time_utc"].endswith("Z") and rows[0]["target_id"] == "call-blue"
    exports = audits(env, "audit.export")
    assert len(exports) == 1 and exports[0].username == "admin" and "recording.read" in exports[0].detail


@pytest.mark.parametrize("user", ["ann", "sup", "eva"])
def test_other_roles_are_refused_and_audited(env: TestClient, user: str) -> None:
    for path in ("/api/audit/records", "/api/audit/export.csv"):
        r = env.get(path, headers=login(env, user))
        assert r.status_code == 403
        last = audits(env, "access.denied")[-1]
        assert (last.username, last.target_id) == (user, path)


def test_a_bad_filter_is_refused_clearly_and_audited(env: TestClient) -> None:
    r = env.get("/api/audit/records", params={"since": "last tuesday"}, headers=login(env, "comp"))
    assert r.status_code == 422 and "ISO 8601" in r.json()["message"]
    r = env.get("/api/audit/records", params={"limit": 0}, headers=login(env, "comp"))
    assert r.status_code == 422 and "limit" in r.json()["message"]
    assert [a.outcome for a in audits(env, "audit.read")] == ["denied", "denied"]
