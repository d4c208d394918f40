"""A throwaway PostgreSQL server for the tests: one cluster for the whole pytest run, from the
Debian ``postgresql`` package that the test command installs (scripts/system-packages test).

The cluster lives in a temporary directory and listens on a unix socket in it (and on a loopback
port from ``tests.ports``, so two runs on one machine never meet). PostgreSQL refuses to run as
root, so when the tests run as root (CI) the server runs as the unprivileged ``postgres`` user.
Missing binaries fail the tests that need them, as a missing sipp or Xvfb does: the test
command installs them, and a skip would hide that the PostgreSQL claims went untested.

``pg_database()`` gives each test module a database of its own on that server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "tandem"


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH)."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*") if (p / "bin" / "pg_ctl").is_file()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    if not versions:
        pytest.fail(
            f"PostgreSQL server binaries not found under {PG_ROOT}/<version>/bin: install the Debian "
            "package 'postgresql' (scripts/system-packages test does)"
        )
    return versions[-1] / "bin"


@dataclass(frozen=True)
class PgCluster:
    bin_dir: Path
    socket_dir: Path
    port: int
    run_as: str | None  # the OS user the server and its tools run as; None: this user

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}"
            )
        return done


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, and there is no 'postgres' OS user to run PostgreSQL as")
    return "postgres"


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    bin_dir = pg_bin_dir()
    run_as = _server_user()
    top = Path(tempfile.mkdtemp(prefix="tandem-pg-"))
    top.chmod(0o755)
    data, sock = top / "data", top / "sock"
    sock.mkdir()
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(top, entry.pw_uid, entry.pw_gid)
        os.chown(sock, entry.pw_uid, entry.pw_gid)
    cluster = PgCluster(bin_dir, sock, free_port(), run_as)
    started = False
    try:
        # fsync off: a throwaway cluster need not survive a power cut, and the tests run faster.
        # Locale C: text sorts by code point, as the tests' expected orders are computed in
        # Python, whatever locale the machine has.
        cluster.run(
            "initdb", "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        options = f"-k {sock} -p {cluster.port} -c listen_addresses='' -c fsync=off -c max_connections=200"
        cluster.run(
            "pg_ctl", "-D", str(data), "-l", str(top / "log"), "-o", options, "-w", "-t", "60", "start"
        )
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(top, ignore_errors=True)


_counter_lock = threading.Lock()
_counter = [0]


def create_database(cluster: PgCluster, prefix: str = "t", template: str | None = None) -> str:
    """A fresh database on the cluster (empty, or a copy of ``template``); its SQLAlchemy URL."""
    with _counter_lock:
        _counter[0] += 1
        name = f"{prefix}_{os.getpid()}_{_counter[0]}"
    copy = ["-T", template] if template else []
    cluster.run(
        "createdb", "-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", SUPERUSER, *copy, name
    )
    return cluster.url(name)
