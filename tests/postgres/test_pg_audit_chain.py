"""The audit hash chain on PostgreSQL: writers in many threads and two processes at once make one
unbroken chain (the ``audit_head`` row lock puts them in one order), which the product's own
``tandem-server audit verify`` passes; the triggers keep the log append-only."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from server.store import audit
from server.store.db import make_engine, make_session_factory, migrate, session_scope
from server.store.models import AuditRecord
from tests.pg import PgCluster, create_database
from tests.postgres.audit_writer import write

ROOT = Path(__file__).resolve().parents[2]
THREADS = 6
PROCESSES = 2
PER_WRITER = 40


def _wait_for(paths: list[Path], procs: list[subprocess.Popen[bytes]], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"an audit writer process ended before it was ready: exit {proc.returncode}")
        if time.monotonic() > deadline:
            pytest.fail(f"audit writer processes not ready in {limit} s")
        time.sleep(0.01)


def _verify_cli(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TANDEM_SERVER_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "audit", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_threads_and_processes_at_once_make_one_unbroken_chain(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(THREADS + PROCESSES)]
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.postgres.audit_writer", pg_url),
                *(f"proc-{i}", str(PER_WRITER), str(ready[THREADS + i]), str(go)),
            ],
            cwd=ROOT,
        )
        for i in range(PROCESSES)
    ]
    errors: list[BaseException] = []

    def thread_writer(i: int) -> None:
        try:
            write(pg_url, f"thread-{i}", PER_WRITER, ready[i], go)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(i,)) for i in range(THREADS)]
    try:
        for t in threads:
            t.start()
        _wait_for(ready, procs)
        go.touch()  # every writer starts now
        for t in threads:
            t.join(timeout=180)
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        go.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not errors, f"thread writers failed: {errors!r}"
    assert codes == [0] * PROCESSES
    total = (THREADS + PROCESSES) * PER_WRITER

    engine = make_engine(pg_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            seqs = session.execute(select(AuditRecord.seq).order_by(AuditRecord.seq)).scalars().all()
            assert seqs == list(range(1, total + 1))
            per_writer = dict(
                session.execute(
                    select(AuditRecord.username, func.count()).group_by(AuditRecord.username)
                ).all()
            )
            result = audit.verify(session)
    finally:
        engine.dispose()
    assert per_writer == {
        **{f"thread-{i}": PER_WRITER for i in range(THREADS)},
        **{f"proc-{i}": PER_WRITER for i in range(PROCESSES)},
    }
    assert result.intact, [str(f) for f in result.findings]
    assert result.records == total and result.last_seq == total

    done = _verify_cli(pg_url, tmp_path / "data")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"audit log intact: {total} records, seq 1..{total}" in done.stdout


@pytest.fixture(scope="module")
def chained_url(pg: PgCluster) -> str:
    """A database holding a chain of three records (the refusals below leave it as it is)."""
    url = create_database(pg)
    migrate(url)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            for i in range(3):
                audit.record(session, action="pg.trigger", outcome="allowed", target_id=str(i))
    finally:
        engine.dispose()
    return url


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE audit_log SET detail = 'edited' WHERE seq = 1", "audit log is append-only"),
        ("DELETE FROM audit_log WHERE seq = 2", "audit log is append-only"),
        ("DELETE FROM audit_head", "the audit head cannot be deleted"),
        ("UPDATE audit_head SET seq = seq + 2", "the audit head only moves forward by one"),
        ("UPDATE audit_head SET seq = seq - 1", "the audit head only moves forward by one"),
    ],
)
def test_triggers_refuse_rewriting_the_log(chained_url: str, statement: str, refusal: str) -> None:
    engine = make_engine(chained_url)
    try:
        with pytest.raises(DBAPIError, match=refusal), engine.begin() as conn:
            conn.execute(text(statement))
        with session_scope(make_session_factory(engine)) as session:
            result = audit.verify(session)
        assert result.intact and result.records == 3, [str(f) for f in result.findings]
    finally:
        engine.dispose()
