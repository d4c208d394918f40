"""A separate process writing audit records, for the audit chain's cross-process test.

Usage: python -m tests.postgres.audit_writer URL NAME COUNT READY_FILE GO_FILE
It connects, says it is ready (creates READY_FILE), waits for GO_FILE, then writes COUNT records,
one transaction each, as every other writer is doing at the same time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from server.store import audit
from server.store.db import make_engine, make_session_factory, session_scope


def write(url: str, name: str, count: int, ready: Path, go: Path) -> None:
    # The product's 5-s bound on a lock wait is about latency; this test is about the chain, and
    # on a loaded machine eight writers queueing for the head row can wait longer than that.
    engine = make_engine(url, busy_timeout=60)
    factory = make_session_factory(engine)
    try:
        with engine.connect():  # the connection is made before the start, not during the race
            pass
        ready.touch()
        deadline = time.monotonic() + 120
        while not go.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: no start signal in 120 s")
            time.sleep(0.005)
        for i in range(count):
            with session_scope(factory) as session:
                audit.record(session, action="pg.race", outcome="allowed", username=name, target_id=str(i))
    finally:
        engine.dispose()


if __name__ == "__main__":
    url, name, count, ready, go = sys.argv[1:6]
    write(url, name, int(count), Path(ready), Path(go))
