"""The tamper-evident audit log on a real database: built by real requests through the app (SIP
off), copied, tampered with through sqlite3 directly, and checked by ``tandem-server audit
verify`` (in process and as a subprocess); signed checkpoints; refusals and list reads audited;
one unbroken chain from many threads and two processes writing at once; the migration chaining
records written before it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from server.api.app import create_app
from server.cli import main
from server.settings import load_settings
from server.sip.listener import CallAccepted, CallOffer
from server.store import audit, models
from server.store.audit_chain import GENESIS_HASH, ChainRecord, record_hash
from server.store.audit_checkpoint import public_key_hex
from server.store.db import alembic_config, make_engine, make_session_factory, migrate, session_scope
from server.store.users import create_user

PASSWORD = "correct-horse-battery"
ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    "id, seq, prev_hash, hash, at, user_id, username, action, target_type, target_id, outcome, detail, "
    "remote_addr"
)


def auth(http: TestClient, user: str, **extra: object) -> dict[str, str]:
    r = http.post("/api/auth/login", json={"username": user, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(None, data_dir=tmp_path / "data", sip_enabled=False, media_encoder_process=False)
    app = create_app(settings)
    add_users(app)
    with TestClient(app) as c:
        yield c


def add_users(app: Any) -> None:
    with session_scope(app.state.ctx.sessions) as s:
        create_user(s, "admin", PASSWORD, "admin")
        create_user(s, "auditor", PASSWORD, "compliance")
        create_user(s, "sup", PASSWORD, "supervisor", supervises=["Blue"])
        create_user(s, "agent1", PASSWORD, "agent", team="Blue")
        create_user(s, "agent2", PASSWORD, "agent", team="Red")


def ctx(http: TestClient) -> Any:
    return http.app.state.ctx  # type: ignore[attr-defined]


def db_file(http: TestClient) -> Path:
    return Path(ctx(http).settings.resolved_database_url.removeprefix("sqlite:///"))


def stored_interaction(http: TestClient, agent: str) -> str:
    iid = f"iid-{agent}-{time.monotonic_ns()}"
    with session_scope(ctx(http).sessions) as s:
        agent_id = s.query(models.User).filter_by(username=agent).one().id
        now = time.time()
        s.add(
            models.Interaction(
                id=iid,
                call_id=f"call-{iid}",
                dn="1001",
                agent_id=agent_id,
                state="done",
                started_at=now - 60,
                ended_at=now - 30,
                screen_decision=False,
                screen_percentage=0,
                voice_state="stopped",
                screen_state="off",
            )
        )
    return iid


def real_traffic(http: TestClient) -> None:
    """Logins (one refused), list reads, 404 probes, a forbidden read, a refused pause, admin reads."""
    assert (
        http.post("/api/auth/login", json={"username": "agent1", "password": "wrong-wrong"}).status_code
        == 401
    )
    admin, sup, agent1 = auth(http, "admin"), auth(http, "sup"), auth(http, "agent1")
    iid = stored_interaction(http, "agent2")  # Red team: not sup's
    assert http.get("/api/interactions", headers=sup).status_code == 200
    assert http.get(f"/api/interactions/{iid}", headers=sup).status_code == 403
    assert http.get("/api/interactions/no-such-id", headers=sup).status_code == 404
    assert http.get(f"/api/interactions/{iid}", headers=admin).status_code == 200
    assert http.post("/api/interactions/no-such-id/pause", headers=agent1).status_code == 404
    assert http.get("/api/audit", headers=admin).status_code == 200


def copy_db(http: TestClient, dest_dir: Path) -> Path:
    """A consistent copy of the live database file (SQLite's backup API, which takes the WAL in)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "tandem.db"
    src = sqlite3.connect(db_file(http))
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return dest


def tamper(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    try:
        for sql in statements:
            con.execute(sql)
        con.commit()
    finally:
        con.close()


def rows(db: Path, where: str = "1=1") -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(f"SELECT {COLUMNS} FROM audit_log WHERE {where} ORDER BY seq"))
    finally:
        con.close()


def verify_cli(capsys: pytest.CaptureFixture[str], data_dir: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--data-dir", str(data_dir), "audit", "verify", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_verify_detects_a_row_rewritten_with_insert_or_replace(client: TestClient, tmp_path: Path) -> None:
    """The acceptance line: a copy of a real database, one record rewritten with INSERT OR
    REPLACE (which fires no DELETE trigger), and ``tandem-server audit verify`` as a process."""
    real_traffic(client)
    copy = copy_db(client, tmp_path / "copy")
    target = next(r for r in rows(copy) if r["action"] == "auth.login" and r["outcome"] == "denied")
    argv = [sys.executable, "-m", "server.cli", "--data-dir", str(copy.parent), "audit", "verify"]
    intact = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "audit log intact" in intact.stdout
    tamper(
        copy,
        f"INSERT OR REPLACE INTO audit_log ({COLUMNS}) SELECT id, seq, prev_hash, hash, at, user_id, "
        f"'admin', action, target_type, target_id, 'allowed', detail, remote_addr FROM audit_log "
        f"WHERE id = {target['id']}",
    )
    rewritten = rows(copy, f"id = {target['id']}")[0]
    assert (rewritten["username"], rewritten["outcome"]) == ("admin", "allowed"), "the tamper did not happen"
    broken = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"edited: record seq {target['seq']} (id {target['id']})" in broken.stdout
    assert "NOT intact: 1 finding" in broken.stdout


@pytest.mark.parametrize(
    ("statements", "kind"),
    [
        # Deletion in the middle, once the trigger is out of the way.
        (("DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE seq = 3"), "deleted"),
        # Back-dating a record (its hash then no longer holds).
        (
            ("DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET at = at - 86400 WHERE seq = 4"),
            "edited",
        ),
        # Two records' ids swapped (each hash still holds: only their order changed).
        (
            (
                "DROP TRIGGER audit_log_no_update",
                "CREATE TEMP TABLE old_ids AS SELECT seq, id FROM audit_log WHERE seq IN (2, 3)",
                "UPDATE audit_log SET id = -id WHERE seq IN (2, 3)",
                "UPDATE audit_log SET id = (SELECT id FROM old_ids WHERE old_ids.seq = 5 - audit_log.seq) "
                "WHERE seq IN (2, 3)",
            ),
            "reordered",
        ),
        # A record appended by hand, with a made-up hash and the head left alone.
        (
            (
                f"INSERT INTO audit_log ({COLUMNS}) SELECT id + 1000, seq + 1, hash, hash, at, user_id, "
                "username, action, target_type, target_id, outcome, 'forged', remote_addr "
                "FROM audit_log ORDER BY seq DESC LIMIT 1",
            ),
            "inserted",
        ),
        # Records at the end deleted, the head left as it was: it still counts them.
        (("DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE seq > 5"), "truncated"),
    ],
)
def test_verify_finds_each_kind_of_tampering(
    client: TestClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    statements: tuple[str, ...],
    kind: str,
) -> None:
    real_traffic(client)
    copy = copy_db(client, tmp_path / "copy")
    assert verify_cli(capsys, copy.parent)[0] == 0
    tamper(copy, *statements)
    code, out = verify_cli(capsys, copy.parent)
    assert code == 1, out
    assert f"{kind}: " in out, out


def rewrite_chain(db: Path, change_seq: int) -> None:
    """What a forger with the code does: alter one record and recompute every hash after it,
    head included, so the chain verifies on its own."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("DROP TRIGGER audit_head_forward_only")
    prev = GENESIS_HASH
    for row in list(con.execute(f"SELECT {COLUMNS} FROM audit_log ORDER BY seq")):
        rec = ChainRecord(**{k: row[k] for k in row.keys()})
        if rec.seq == change_seq:
            rec = dataclasses.replace(rec, outcome="allowed", detail="nothing happened")
        rec = dataclasses.replace(rec, prev_hash=prev)
        rec = dataclasses.replace(rec, hash=record_hash(rec))
        con.execute(
            "UPDATE audit_log SET prev_hash = ?, hash = ?, outcome = ?, detail = ? WHERE id = ?",
            (rec.prev_hash, rec.hash, rec.outcome, rec.detail, rec.id),
        )
        prev = rec.hash or ""
    con.execute("UPDATE audit_head SET hash = ?", (prev,))
    con.commit()
    con.close()


def test_signed_checkpoints_catch_a_rewritten_chain_and_a_cut_tail(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real_traffic(client)
    data_dir = ctx(client).settings.data_dir
    worm = tmp_path / "worm"
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "audit", "checkpoint", "--out", str(worm)]) == 0
    assert "checkpoint at seq" in capsys.readouterr().out
    assert (data_dir / "audit-signing-key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["--data-dir", str(data_dir), "audit", "public-key"]) == 0
    public_key = capsys.readouterr().out.strip()
    [checkpoint] = list(worm.glob("*.json"))
    body = json.loads(checkpoint.read_text())["checkpoint"]
    assert body["public_key"] == public_key
    assert rows(db_file(client), f"seq = {body['seq']}")[0]["action"] == "audit.checkpoint"

    # A copy taken elsewhere: checked against the exported public key.
    copy = copy_db(client, tmp_path / "copy")
    key_arg = ("--checkpoints", str(worm), "--public-key", public_key)
    code, out = verify_cli(capsys, copy.parent, *key_arg)
    assert code == 0 and "1 anchor(s) matched" in out, out

    rewrite_chain(copy, change_seq=2)
    code, out = verify_cli(capsys, copy.parent)
    assert code == 0, "the rewrite should fool a check without checkpoints: " + out
    code, out = verify_cli(capsys, copy.parent, *key_arg)
    assert code == 1 and f"rewritten: record seq {body['seq']}" in out, out

    cut = copy_db(client, tmp_path / "cut")
    tamper(
        cut,
        "DROP TRIGGER audit_log_no_delete",
        "DROP TRIGGER audit_head_forward_only",
        f"DELETE FROM audit_log WHERE seq >= {body['seq'] - 1}",
        f"UPDATE audit_head SET seq = {body['seq'] - 2}, "
        f"hash = (SELECT hash FROM audit_log WHERE seq = {body['seq'] - 2})",
    )
    code, out = verify_cli(capsys, cut.parent)
    assert code == 0, "a consistent cut should fool a check without checkpoints: " + out
    code, out = verify_cli(capsys, cut.parent, *key_arg)
    assert code == 1 and f"truncated: the chain ends at seq {body['seq'] - 2}" in out, out

    # A checkpoint file altered, or signed by some other key, does not count.
    forged = json.loads(checkpoint.read_text())
    forged["checkpoint"]["seq"] = 1
    (worm / checkpoint.name.replace(".json", "-x.json")).write_text(json.dumps(forged))
    other_key = public_key_hex(Ed25519PrivateKey.generate())
    code, out = verify_cli(capsys, cut.parent, "--checkpoints", str(worm), "--public-key", other_key)
    assert code == 1 and out.count("is signed by another key") == 2, out
    code, out = verify_cli(capsys, tmp_path / "copy", *key_arg)
    assert "signature does not match its contents" in out, out


def test_verify_api_for_auditors_only_and_audited(client: TestClient, tmp_path: Path) -> None:
    real_traffic(client)
    auditor = auth(client, "auditor")
    r = client.get("/api/audit/verify", headers=auditor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intact"] is True and body["findings"] == [] and body["records"] == body["last_seq"] > 5
    assert client.get("/api/audit/verify", headers=auth(client, "sup")).status_code == 403
    records = client.get("/api/audit", headers=auth(client, "admin")).json()
    assert any(a["action"] == "audit.verify" and a["username"] == "auditor" for a in records)
    assert any(a["action"] == "access.denied" and a["target_id"] == "/api/audit/verify" for a in records)
    # The live database tampered with: the API says so too.
    tamper(
        db_file(client),
        f"INSERT OR REPLACE INTO audit_log ({COLUMNS}) SELECT id, seq, prev_hash, hash, at, user_id, "
        "username, action, target_type, target_id, outcome, 'edited', remote_addr FROM audit_log "
        "WHERE seq = 2",
    )
    body = client.get("/api/audit/verify", headers=auditor).json()
    assert body["intact"] is False
    assert [(f["kind"], f["seq"]) for f in body["findings"]] == [("edited", 2)]


def audit_rows(http: TestClient, action: str) -> list[models.AuditRecord]:
    with session_scope(ctx(http).sessions) as s:
        return list(
            s.query(models.AuditRecord)
            .filter(models.AuditRecord.action == action)
            .order_by(models.AuditRecord.seq)
        )


def test_refusals_and_list_reads_leave_audit_records(client: TestClient) -> None:
    sup, agent1, agent2 = (
        auth(client, "sup"),
        auth(client, "agent1", client="desktop", dn="1001"),
        auth(client, "agent2"),
    )
    # A live call of agent1's, offered the way the SIP side offers it.
    offer = CallOffer(
        call_id="c-1", dn="1001", caller="+15550100", callee="1001", source=("127.0.0.1", 5060), codec="PCMU"
    )
    assert client.portal is not None
    accepted = client.portal.call(ctx(client).coordinator.on_call_offered, offer)
    assert isinstance(accepted, CallAccepted), accepted
    iid = accepted.interaction_id

    r = client.post(f"/api/interactions/{iid}/pause", headers=agent2)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert client.post("/api/interactions/nope/stop", headers=agent1).status_code == 404
    assert client.post(f"/api/interactions/{iid}/done", headers=agent1).status_code == 409
    refused = {
        (a.action, a.username, a.target_id, a.outcome, a.detail.split(":")[0])
        for a in audit_rows(client, "call.pause")
        + audit_rows(client, "call.stop")
        + audit_rows(client, "call.done")
    }
    assert refused == {
        ("call.pause", "agent2", iid, "denied", "forbidden"),
        ("call.stop", "agent1", "nope", "denied", "unknown_interaction"),
        ("call.done", "agent1", iid, "denied", "not_in_acw"),
    }

    assert client.get("/api/interactions/no-such-id", headers=sup).status_code == 404
    assert client.get(f"/api/interactions/{iid}/media/bogus", headers=sup).status_code == 404
    assert client.get(f"/api/interactions/{iid}/media/voice", headers=sup).status_code == 404
    reads = [(a.target_id, a.outcome, a.detail) for a in audit_rows(client, "interaction.read")]
    assert ("no-such-id", "denied", "404 unknown_interaction: no such interaction") in reads
    media = [(a.target_id, a.outcome, a.detail) for a in audit_rows(client, "recording.read")]
    assert (iid, "denied", "404 unknown_media: kind bogus") in media
    assert (iid, "denied", "404 media_not_ready: kind voice") in media

    assert len(client.get("/api/interactions?limit=50", headers=sup).json()) == 1
    assert client.get("/api/interactions", headers=agent2).json() == []
    lists = [(a.username, json.loads(a.detail)) for a in audit_rows(client, "interaction.list")]
    assert ("sup", {"count": 1, "limit": 50, "scope": "teams 1"}) in lists
    assert ("agent2", {"count": 0, "limit": 200, "scope": "own"}) in lists
    with session_scope(ctx(client).sessions) as s:
        assert audit.verify(s).intact


WRITER = """
import sys, threading
from server.store import audit
from server.store.db import make_engine, make_session_factory, session_scope
from sqlalchemy import create_engine
url, name, threads, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# A generous lock wait (the file is in WAL mode already): a loaded machine must not fail the test.
factory = make_session_factory(create_engine(url, connect_args={"timeout": 120, "check_same_thread": False}))
print("ready", flush=True)
sys.stdin.readline()
def work(k):
    for i in range(count):
        with session_scope(factory) as s:
            audit.record(s, action="load", outcome="allowed", username=f"{name}", detail=f"{k}/{i}")
ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
print("done", flush=True)
"""


def test_many_threads_and_two_processes_make_one_unbroken_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    migrate(url)
    threads, count = 4, 30
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"proc{i}", str(threads), str(count)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    factory = make_session_factory(
        create_engine(url, connect_args={"timeout": 120, "check_same_thread": False})
    )

    def work(k: int) -> None:
        for i in range(count):
            with session_scope(factory) as s:
                audit.record(s, action="load", outcome="allowed", username="main", detail=f"{k}/{i}")

    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        local = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for t in local:
            t.start()
        for t in local:
            t.join()
        for p in procs:
            out, _ = p.communicate(timeout=300)
            assert p.returncode == 0 and out.strip() == "done"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    with session_scope(factory) as s:
        result = audit.verify(s)
        origins = [r.username for r in audit.chain_records(s)]
    total = 3 * threads * count
    assert result.findings == [] and result.records == result.last_seq == total
    assert sorted(set(origins)) == ["main", "proc0", "proc1"]
    switches = sum(1 for a, b in itertools.pairwise(origins) if a != b)
    assert switches > 2, "the writers did not overlap, so the test proved nothing"


def test_migration_chains_the_records_written_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tandem.db'}"
    command.upgrade(alembic_config(url), "0003")
    con = sqlite3.connect(tmp_path / "tandem.db")
    con.executemany(
        "INSERT INTO audit_log (id, at, user_id, username, action, target_type, target_id, outcome, detail, "
        "remote_addr) VALUES (?, ?, NULL, ?, 'auth.login', 'user', '', 'allowed', ?, '')",
        [(7, 1000.5, "a", "first"), (3, 1001.25, "b", "second?"), (12, 1002.0, "c", "third")],
    )
    con.commit()
    con.close()
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        audit.record(s, action="after", outcome="allowed")
    with session_scope(factory) as s:
        chained = [(r.id, r.seq) for r in audit.chain_records(s)]
        assert chained[:3] == [(3, 1), (7, 2), (12, 3)]  # id order
        assert chained[3][1] == 4
        assert audit.verify(s, time_tolerance=10).intact
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    for sql in ("UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log", "DELETE FROM audit_head"):
        with pytest.raises(DatabaseError), session_scope(factory) as s:
            s.execute(text(sql))
    with pytest.raises(DatabaseError, match="forward"), session_scope(factory) as s:
        s.execute(text("UPDATE audit_head SET seq = seq - 1"))
    engine.dispose()


def test_the_server_writes_signed_checkpoints_while_running_and_at_shutdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worm = tmp_path / "worm"
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        sip_enabled=False,
        audit_checkpoint_dir=worm,
        audit_checkpoint_interval_seconds=0.2,
    )
    app = create_app(settings)
    add_users(app)
    with TestClient(app) as http:
        auth(http, "admin")
        deadline = time.monotonic() + 60
        while not list(worm.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(worm.glob("*.json")), "no periodic checkpoint within 60 s"
        real_traffic(http)
        with session_scope(app.state.ctx.sessions) as s:
            head = audit.read_head(s)
        assert head is not None
    # The last one, written at shutdown, names the final head.
    seqs = sorted(json.loads(p.read_text())["checkpoint"]["seq"] for p in worm.glob("*.json"))
    assert seqs[-1] == head.seq and len(seqs) == len(set(seqs)), seqs  # none repeats an unmoved head
    code, out = verify_cli(capsys, settings.data_dir, "--checkpoints", str(worm))
    assert code == 0 and f"{len(seqs)} anchor(s) matched" in out, out


def test_a_record_count_also_triggers_a_server_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import audit_checkpointer

    monkeypatch.setattr(audit_checkpointer, "RECORD_POLL_SECONDS", 0.05)
    worm = tmp_path / "worm"
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        sip_enabled=False,
        audit_checkpoint_dir=worm,
        audit_checkpoint_interval_seconds=3600,  # never, in this test: only the count can trigger
        audit_checkpoint_records=3,
    )
    app = create_app(settings)
    add_users(app)
    with TestClient(app) as http:
        real_traffic(http)
        deadline = time.monotonic() + 60
        while not list(worm.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(worm.glob("*.json")), "no checkpoint after the record count was reached"


def test_verify_refuses_to_judge_what_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No database: SQLite would create an empty one, which would "verify".
    code, out = verify_cli(capsys, tmp_path / "nothing")
    assert code == 2 and "no database at" in out
    assert not (tmp_path / "nothing" / "tandem.db").exists()
    # A database from before the chain (revision 0003): told to migrate, not "intact".
    (tmp_path / "old").mkdir()
    command.upgrade(alembic_config(f"sqlite:///{tmp_path / 'old' / 'tandem.db'}"), "0003")
    code, out = verify_cli(capsys, tmp_path / "old")
    assert code == 2 and "tandem-server migrate" in out
    # Checkpoints asked for but no key to trust them by.
    migrate(f"sqlite:///{tmp_path / 'new' / 'tandem.db'}")
    code, out = verify_cli(capsys, tmp_path / "new", "--checkpoints", str(tmp_path))
    assert code == 2 and "--public-key" in out


def test_concurrent_checkpoint_writes_never_repeat_a_head(tmp_path: Path) -> None:
    """stop() writes the last checkpoint while a cancelled periodic write may still be running in
    its thread: of writers racing on one head, exactly one writes."""
    from server.audit_checkpointer import AuditCheckpointer

    worm = tmp_path / "worm"
    settings = load_settings(None, data_dir=tmp_path / "data", audit_checkpoint_dir=worm)
    settings.data_dir.mkdir(parents=True)
    migrate(settings.resolved_database_url)
    factory = make_session_factory(make_engine(settings.resolved_database_url))
    checkpointer = AuditCheckpointer(factory, settings)
    rounds, writers = 5, 4
    for n in range(rounds):
        with session_scope(factory) as s:
            audit.record(s, action="tick", outcome="allowed", detail=str(n))
        barrier = threading.Barrier(writers)

        def write(start: threading.Barrier) -> None:
            start.wait()
            checkpointer.write_if_moved()

        threads = [threading.Thread(target=write, args=(barrier,)) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    seqs = sorted(json.loads(p.read_text())["checkpoint"]["seq"] for p in worm.glob("*.json"))
    assert seqs == list(range(1, rounds + 1))
