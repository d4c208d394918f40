"""Interaction search at scale (issue 14): N generated interactions in SQLite (schema by the real
migrations, rows by bulk insert), then the typical supervisor queries through the same service
the API calls (server/services/search.py: page + row load + capped count), with p50/p95 in ms.
Target: p95 <= 50 ms at 1,000,000 rows.

    .venv/bin/python -m benchmarks.playback.search_bench --rows 1000000 --db /tmp/search-bench.db

``--plans`` prints SQLite's EXPLAIN QUERY PLAN of each query's page and count statements (how the
indexes of revisions 0010 and 0017 were chosen). An existing --db with the right row count is reused.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session

from server.policy.access import Viewer
from server.services import search
from server.services.search_query import SearchQuery, decode_cursor
from server.store.db import make_engine, make_session_factory, migrate
from server.store.search_columns import SEARCH_KEYS_SETTING, number_key

DAY = 86400.0
TEAMS = 20
AGENTS_PER_TEAM = 10
DAYS = 90
QUEUES = ("gold", "silver", "bronze", "retail", "business", "churn", "billing", "tech", "sales", "vip")
USER_SQL = (
    "INSERT INTO users (id, username, full_name, role, password_hash, team_id, active, created_at)"
    " VALUES (?, ?, '', ?, 'x', ?, 1, 0)"
)
PREFIXES = ("+1 555 01", "+44 20 79", "+33 1 44", "+49 30 12", "+1 212 55", "+61 2 90")


def generate(path: Path, rows: int, seed: int = 14) -> float:
    """The database at ``path`` with ``rows`` interactions; returns "now" (the newest start)."""
    url = f"sqlite:///{path}"
    migrate(url)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    now = 1_780_000_000.0
    existing = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
    directed = db.execute("SELECT 1 FROM interactions WHERE direction != '' LIMIT 1").fetchone()
    if existing == rows and directed:
        return now
    if existing:  # another size, or made before revision 0017 (every direction unknown)
        raise SystemExit(f"{path} holds {existing:,} interactions of another run: delete it first")
    rng = random.Random(seed)
    db.execute("BEGIN")
    for t in range(1, TEAMS + 1):
        db.execute("INSERT INTO teams (id, name) VALUES (?, ?)", (t, f"Team {t}"))
        for a in range(AGENTS_PER_TEAM):
            uid = t * 100 + a
            db.execute(USER_SQL, (uid, f"agent{uid}", "agent", t))
    db.execute(USER_SQL, (1, "sup", "supervisor", None))
    db.executemany("INSERT INTO team_supervisors (team_id, user_id) VALUES (?, 1)", [(1,), (2,)])
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)",
        (SEARCH_KEYS_SETTING, json.dumps(["queue", "account"])),
    )
    agents = [t * 100 + a for t in range(1, TEAMS + 1) for a in range(AGENTS_PER_TEAM)]
    batch: list[tuple[object, ...]] = []
    media: list[tuple[object, ...]] = []
    pauses: list[tuple[object, ...]] = []
    metas: list[tuple[object, ...]] = []
    span = DAYS * DAY
    for n in range(rows):
        iid = f"{n:012d}"
        started = now - span * (n / rows) - rng.random() * 30  # newest first, close to uniform
        talk = rng.expovariate(1 / 240)
        agent = rng.choice(agents)
        caller = f"Client <sip:{rng.choice(PREFIXES)}{rng.randrange(10**6):06d}@sbc>"
        callee = str(2000 + agent)
        queue = rng.choice(QUEUES) if rng.random() < 0.5 else ""
        params = json.dumps({"params": {"queue": queue} if queue else {}})
        batch.append(
            (
                iid, f"c{n}", callee, agent, caller, callee, "done", started, started, started + talk,
                "bye", 0, 30.0, "complete", "none", "plain", "", "[]", params,
                number_key(caller), number_key(callee), talk,
            )
        )  # fmt: skip
        screen, paused, held = rng.random() < 0.3, rng.random() < 0.1, rng.random() < 0.1
        # What the SIP side said: most calls inbound, some outbound, a few not known ("").
        direction = rng.choices(("inbound", "outbound", ""), weights=(6, 3, 1))[0]
        batch[-1] += (screen, paused, direction)
        account = f"A{rng.randrange(200_000):06d}"  # a near-unique key: ~5 calls per account
        metas.append((iid, "account", account.casefold(), started))
        if screen:
            media.append((iid, "muxed", f"k/{iid}", "video/mp4", 1, "0" * 64, started, started, "complete"))
        if paused:
            pauses.append((iid, started + 5, started + 20, agent, "", "agent"))
        if held:
            pauses.append((iid, started + 30, started + 40, None, "", "hold"))
        if queue:
            metas.append((iid, "queue", queue, started))
        if len(batch) >= 20000 or n == rows - 1:
            db.executemany(
                "INSERT INTO interactions (id, call_id, dn, agent_id, caller, callee, state, started_at,"
                " answered_at, ended_at, end_reason, screen_decision, screen_percentage, voice_state,"
                " screen_state, kind, source, participants, recording_meta, caller_number, callee_number,"
                " duration, has_screen, was_paused, direction) VALUES (" + ",".join("?" * 25) + ")",
                batch,
            )
            db.executemany(
                "INSERT INTO media_files (interaction_id, kind, storage_key, content_type, size, sha256,"
                " started_at, created_at, state) VALUES (?,?,?,?,?,?,?,?,?)",
                media,
            )
            db.executemany(
                "INSERT INTO pause_spans (interaction_id, started_at, ended_at, by_user_id, by_username,"
                " reason) VALUES (?,?,?,?,?,?)",
                pauses,
            )
            db.executemany(
                "INSERT INTO interaction_meta_values (interaction_id, key, value, started_at)"
                " VALUES (?,?,?,?)",
                metas,
            )
            batch, media, pauses, metas = [], [], [], []
    db.commit()
    db.close()
    return now


def queries(now: float, rng: random.Random) -> dict[str, Callable[[], tuple[SearchQuery, Viewer]]]:
    sup = Viewer(1, "supervisor", frozenset({1, 2}))
    admin = Viewer(2, "admin", frozenset())
    week = now - 7 * DAY
    my_agents = [t * 100 + a for t in (1, 2) for a in range(AGENTS_PER_TEAM)]
    return {
        "7 days of my teams, newest first": lambda: (SearchQuery(since=week), sup),
        "one of my agents, newest first": lambda: (
            SearchQuery(agents=(f"agent{rng.choice(my_agents)}",)),
            sup,
        ),
        "caller number prefix": lambda: (SearchQuery(caller=number_key(rng.choice(PREFIXES) + "12")), sup),
        "7 days, has screen + paused": lambda: (SearchQuery(since=week, has_screen=True, paused=True), sup),
        "metadata account=<value> (~5 calls each)": lambda: (
            SearchQuery(meta=(("account", f"a{rng.randrange(200_000):06d}"),)),
            sup,
        ),
        "metadata queue=<value> (5 %), 7 days": lambda: (
            SearchQuery(since=week, meta=(("queue", rng.choice(QUEUES)),)),
            sup,
        ),
        "admin: 7 days of everyone": lambda: (SearchQuery(since=week), admin),
        "7 days of my teams, outbound": lambda: (SearchQuery(since=week, direction="outbound"), sup),
        "admin: 7 days, direction unknown (10 %)": lambda: (
            SearchQuery(since=week, direction="unknown"),
            admin,
        ),
    }


def page_deep(session: Session, query: SearchQuery, viewer: Viewer, pages: int) -> SearchQuery:
    """The query positioned at page ``pages`` (the cursor of page pages-1)."""
    for _ in range(pages - 1):
        result = search.run(session, query, viewer)
        assert result.next_cursor is not None, "not enough rows to page that deep"
        query = replace(query, cursor=decode_cursor(result.next_cursor, query))
    return query


def timed(session: Session, query: SearchQuery, viewer: Viewer) -> float:
    start = time.perf_counter()
    search.run(session, query, viewer)
    return (time.perf_counter() - start) * 1000


def plan(session: Session, query: SearchQuery, viewer: Viewer) -> list[str]:
    out = []
    agents = search.agent_ids(session, query, viewer)
    for label, stmt in (
        ("page", search.page_statement(query, agents)),
        ("count", search.count_statement(query, agents)),
    ):
        compiled = stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        out += [f"  {label}: {row[-1]}" for row in rows]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/tandem-search-bench.db"))
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    now = generate(args.db, args.rows)
    print(f"{args.rows:,} interactions ready in {time.perf_counter() - started:.1f} s ({args.db})")
    sessions = make_session_factory(make_engine(f"sqlite:///{args.db}"))
    rng = random.Random(7)
    worst = 0.0
    with sessions() as session:
        cases = list(queries(now, rng).items())
        deep = SearchQuery()
        sup = Viewer(1, "supervisor", frozenset({1, 2}))
        deep_query = page_deep(session, deep, sup, 50)
        cases.append(("all of my teams, page 50 via cursor", lambda: (deep_query, sup)))
        print(f"{'query':42} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6} {'count':>8}")
        for name, make in cases:
            query, viewer = make()
            for _ in range(3):  # warm the page cache like a server that has been up a while
                timed(session, *make())
            times = sorted(timed(session, *make()) for _ in range(args.runs))
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            worst = max(worst, p95)
            result = search.run(session, query, viewer)
            count = f"{result.count:,}{'+' if result.capped else ''}"
            print(f"{name:42} {p50:8.1f} {p95:8.1f} {len(result.rows):6} {count:>8}")
            if args.plans:
                print("\n".join(plan(session, query, viewer)))
    print(f"worst p95 {worst:.1f} ms (target <= 50 ms): {'met' if worst <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
